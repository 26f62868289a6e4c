// What the activation map and the Text view share: a slider over the steps a
// route listed (the last one follows new steps as training goes on), and the
// requests of one run and layer at one step.
import { getJSON } from "../api.js";
import { el } from "../dom.js";
import { LatestRequest } from "../latest.js";
import { capitalized } from "../model.js";

/**
 * The parameters of a one-step route for target `t` ({run, layer, gate}) at
 * `step` (-1: the latest). Only a step the route listed (`known`) is asked
 * for: any other would answer 404 (a console error); without one the route
 * answers the latest.
 */
export function stepParams(t, known, step) {
  const params = [["run", t.run], ["layer", t.layer], ["gate", t.gate]];
  if (known && known.includes(step)) params.push(["step", String(step)]);
  return params;
}

/** The latest answer of a one-step route (`activation_map`, `probe_sequences`), remembering each run and layer's steps. */
export class StepRequest {
  constructor(route) {
    this.route = route;
    this.latest = new LatestRequest();
    // Steps the route listed, by run and layer.
    this.steps = new Map();
  }

  clear() {
    this.latest.clear();
  }

  /** {data} or {error} for target `t` at `step`; null when a newer request overtook it or nothing changed. */
  async fetch(t, step) {
    const key = `${t.run}\u0000${t.layer}`;
    const known = this.steps.get(key);
    const result = await this.latest.fetch(() => getJSON(this.route, stepParams(t, known, step)));
    if (!result) return null;
    if (result.data) {
      this.steps.set(key, result.data.steps);
      // The first answer lists the steps: ask again for the chosen one if it is among them.
      if (!known && result.data.steps.includes(step) && result.data.step !== step) return this.fetch(t, step);
    }
    return this.latest.isNew(result.data ?? result.error.message) ? result : null;
  }
}

export class StepSlider {
  /**
   * @param prefix the class prefix of its elements (`map`: `.map-step`, `.map-step-label`, `.map-slider`)
   * @param onPick called with the step picked, or -1 for the last step
   */
  constructor(prefix, onPick) {
    this.prefix = prefix;
    this.steps = [];
    this.input = el("input", { type: "range", class: `${prefix}-step`, min: 0, step: 1, oninput: () => this.picked(onPick) });
    this.label = el("output", { class: `${prefix}-step-label` });
  }

  /** The slider with its label, named by the unit of the steps (`epoch`, `batch`, ...). */
  element(unit) {
    return el("label", { class: `slider ${this.prefix}-slider` }, el("span", { class: "label", text: capitalized(unit) }), this.input, this.label);
  }

  /** Shows `steps` (sorted) with `step` (null: none) selected. */
  show(steps, step) {
    this.steps = steps;
    this.input.max = String(Math.max(0, steps.length - 1));
    this.input.value = String(Math.max(0, steps.indexOf(step)));
    this.input.disabled = steps.length < 2;
    this.label.textContent = step == null ? "" : String(step);
  }

  picked(onPick) {
    const i = Number(this.input.value);
    if (!(i in this.steps)) return;
    this.label.textContent = String(this.steps[i]);
    onPick(i === this.steps.length - 1 ? -1 : this.steps[i]);
  }
}

// The step slider the Activations and Text views share: pick one of the
// steps a route listed; the last one follows new steps as training goes on.
import { el } from "../dom.js";
import { capitalized } from "../model.js";

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

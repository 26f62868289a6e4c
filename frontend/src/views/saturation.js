// The Activations view's saturation scatter (Karpathy, Johnson and Fei-Fei,
// 2015): for one gate at one step, each unit's fraction of probe time steps
// left-saturated against right-saturated, a dot per unit and run, from the
// `unit_saturation` route.
import { getJSON, runParams } from "../api.js";
import { drawScatter } from "../charts/scatter.js";
import { el, formatValue, labelled, select } from "../dom.js";
import { contract, saturationBounds } from "../contract.js";
import { LatestRequest } from "../latest.js";
import { StepSlider } from "./step_slider.js";

/** The `unit_saturation` parameters for target `t` at `step` (-1: each run's latest). */
export function saturationParams(t, step) {
  const params = [["layer", t.layer], ["gate", t.gate], ...runParams(t.runs)];
  if (step >= 0) params.push(["step", String(step)]);
  return params;
}

/** Every step of any run of the answer, in order: the slider's stops. */
export const saturationSteps = (answer) => [...new Set(answer.runs.flatMap((r) => r.steps))].sort((a, b) => a - b);

/** The dots of an answer: one per unit and run, {run, unit, x, y, color}; a unit without a valid probe step has none. */
export function saturationDots(answer, colorOf) {
  return answer.runs.flatMap((r) =>
    r.units.flatMap(([x, y], unit) => (x == null || y == null ? [] : [{ run: r.run, unit, x, y, color: colorOf(r.run) }])),
  );
}

/** The axis labels of a gate's scatter, with its saturation thresholds. */
export function axisLabels(gate, fn = null) {
  const bounds = saturationBounds(gate, fn);
  if (!bounds) {
    const flat = `slope below ${contract.saturation_slope}`;
    return { xLabel: `fraction of time steps flat low, "dead" (${fn}: ${flat})`, yLabel: `fraction flat high (${flat})` };
  }
  const [low, high] = bounds;
  return { xLabel: `fraction of time steps below ${low} (left-saturated)`, yLabel: `fraction above ${high} (right-saturated)` };
}

/**
 * The line under the chart: which gate, and each run's step (runs logged at other steps show their last one before),
 * in `unit` (what the runs' steps count: epoch, batch, ...).
 */
export function saturationMessage(answer, unit = "step") {
  const steps = answer.runs.map((r) => `${r.run} at ${unit} ${r.step}`).join(", ");
  return `${answer.gate} gate, one dot per unit: ${steps}.`;
}

export class SaturationView {
  /** @param app the tab (app.js) */
  constructor(app) {
    this.app = app;
    this.latest = new LatestRequest();
    this.data = null;
    this.steps = [];
    this.locate = null;
    this.header = el("div", { class: "sat-controls" });
    this.readout = el("span", { class: "sat-readout" });
    this.canvas = el("canvas", {
      class: "sat-canvas",
      role: "img",
      "aria-label": "Per-unit saturation scatter",
      onmousemove: (e) => {
        const d = this.locate && this.locate(e.offsetX, e.offsetY);
        this.readout.textContent = d ? `${d.run} · unit ${d.unit} · left ${formatValue(d.x)} · right ${formatValue(d.y)}` : "";
      },
      onmouseleave: () => (this.readout.textContent = ""),
    });
    this.message = el("p", { class: "message" });
    this.slider = new StepSlider("sat", (satStep) => this.app.update({ satStep }, () => this.load()));
    this.section = el("section", { class: "saturation", hidden: true }, this.header, this.message, this.canvas);
  }

  /** Rebuilds the gate selector for the current runs and layer. */
  sync() {
    const t = this.app.model.saturationTarget(this.app.state);
    this.section.hidden = !t;
    if (!t) return;
    const onGate = (satGate) =>
      this.app.update({ satGate }, () => {
        this.sync();
        this.load();
      });
    this.header.replaceChildren(
      el("h2", { text: "Saturation per unit" }),
      labelled("Gate", select(t.gates.map((g) => [g, g]), t.gate, onGate, { class: "sat-gate" })),
      this.slider.element(t.unit),
      this.readout,
    );
    this.syncStep();
  }

  syncStep() {
    this.slider.show(this.steps, this.data ? Math.max(...this.data.runs.map((r) => r.step)) : null);
  }

  async load() {
    const t = this.app.model.saturationTarget(this.app.state);
    if (!t) {
      this.latest.clear();
      this.data = null;
      this.draw();
      return;
    }
    const result = await this.latest.fetch(() => getJSON("unit_saturation", saturationParams(t, this.app.state.satStep)));
    if (!result) return;
    if (!this.latest.isNew(result.data ?? result.error.message)) return;
    this.data = result.data || null;
    if (this.data) this.steps = saturationSteps(this.data);
    this.message.textContent = result.error ? `Could not load the saturation of this gate: ${result.error.message}` : saturationMessage(this.data, t.unit);
    this.draw();
  }

  draw() {
    this.syncStep();
    if (this.section.hidden || !this.data) {
      this.canvas.hidden = true;
      return;
    }
    this.canvas.hidden = false;
    const dots = saturationDots(this.data, (run) => this.app.colorOf(run));
    this.canvas.dataset.dots = String(dots.length);
    this.locate = drawScatter(this.canvas, dots, { dark: this.app.theme.dark, ...axisLabels(this.data.gate, this.data.function) });
  }

  render() {
    this.draw();
  }

  resize() {
    if (this.data) this.draw();
  }
}

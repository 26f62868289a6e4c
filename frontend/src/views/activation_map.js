// The Activations view's activation map: one gate's activations on the
// probe's first sequence (time steps by units) at one step, with a step slider.
import { drawActivationMap } from "../charts/activation_map.js";
import { el, formatValue, labelled, select } from "../dom.js";
import { StepRequest, StepSlider } from "./step_slider.js";

/** Whether a map has a masked (padded) time step: a row of null, drawn hatched. */
export const hasMaskedSteps = (map) => map.values.some((row) => row.length > 0 && row.every((v) => v == null));

/** The message above the canvas for an `activation_map` answer ({data} or {error}). */
export function mapMessage({ data, error }, unit = "step") {
  if (error) {
    return error.status === 404 ? "No activation map for this gate in this run." : `Could not load the activation map: ${error.message}`;
  }
  const masked = hasMaskedSteps(data) ? "; hatched time steps are masked" : "";
  return `${data.gate} gate on the probe's first sequence at ${unit} ${data.step}${masked}.`;
}

const pairs = (xs) => xs.map((x) => [x, x]);

export class ActivationMapView {
  /** @param app the tab (app.js) */
  constructor(app) {
    this.app = app;
    this.request = new StepRequest("activation_map");
    this.data = null;
    this.locate = null;
    this.header = el("div", { class: "map-controls" });
    this.readout = el("span", { class: "map-readout" });
    this.canvas = el("canvas", {
      class: "map-canvas",
      onmousemove: (e) => {
        const at = this.locate && this.locate(e.offsetX, e.offsetY);
        const token = at && at.token != null ? ` ${JSON.stringify(at.token)}` : "";
        this.readout.textContent = at ? `t ${at.t}${token} · unit ${at.unit} · ${at.value == null ? "masked" : formatValue(at.value)}` : "";
      },
      onmouseleave: () => (this.readout.textContent = ""),
    });
    this.message = el("p", { class: "message" });
    this.section = el("section", { class: "activation-map", hidden: true }, this.header, this.message, this.canvas);
    this.slider = new StepSlider("map", (actStep) => this.app.update({ actStep }, () => this.load()));
  }

  /** Rebuilds the selectors for the current runs, layer and gate. */
  sync() {
    const t = this.app.model.mapTarget(this.app.state);
    this.section.hidden = !t;
    if (!t) return;
    const change = (key) => (value) =>
      this.app.update({ [key]: value }, () => {
        this.sync();
        this.load();
      });
    this.header.replaceChildren(
      el("h2", { text: "Activation map" }),
      labelled("Run", select(pairs(t.runs), t.run, change("actRun"), { class: "map-run" })),
      labelled("Gate", select(pairs(t.gates), t.gate, change("actGate"), { class: "map-gate" })),
      this.slider.element(t.unit),
      this.readout,
    );
    this.syncStep();
  }

  /** Sets the step slider to the steps and the step of the map shown. */
  syncStep() {
    this.slider.show(this.data ? this.data.steps : [], this.data ? this.data.step : null);
  }

  async load() {
    const t = this.app.model.mapTarget(this.app.state);
    if (!t) {
      this.request.clear();
      this.data = null;
      this.draw();
      return;
    }
    const result = await this.request.fetch(t, this.app.state.actStep);
    if (!result) return;
    this.data = result.data || null;
    this.message.textContent = mapMessage(result, t.unit);
    this.draw();
  }

  draw() {
    this.syncStep();
    if (this.section.hidden || !this.data) {
      this.canvas.hidden = true;
      return;
    }
    this.canvas.hidden = false;
    this.locate = drawActivationMap(this.canvas, this.data, { dark: this.app.theme.dark });
  }

  render() {
    this.draw();
  }

  resize() {
    if (this.data) this.draw();
  }
}

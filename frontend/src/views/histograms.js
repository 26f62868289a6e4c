// The Weights view's histogram section: one block's histograms over steps
// (offset or heat map), for one run; opened from a chart of the gate grid or
// from the button beside the grid's title.
import { getJSON } from "../api.js";
import { drawHistograms } from "../charts/histogram.js";
import { el, formatValue, labelled, select } from "../dom.js";
import { LatestRequest } from "../latest.js";

/** The message above the canvas for a `histograms` answer ({data} or {error}). */
export function histogramMessage({ data, error }) {
  if (error) {
    return error.status === 404 ? "No histograms for this block in this run (histogram_freq=0?)." : `Could not load histograms: ${error.message}`;
  }
  return data.histograms.length === 0 ? "No histograms for this block yet." : "";
}

const pairs = (xs) => xs.map((x) => [x, x]);

export class HistogramView {
  /** @param app the tab (app.js) */
  constructor(app) {
    this.app = app;
    this.latest = new LatestRequest();
    this.data = null;
    // What the steps of the data shown count (epoch, batch, ...).
    this.unit = "step";
    this.locate = null;
    this.openButton = el("button", {
      type: "button",
      class: "open-histograms",
      text: "Histograms",
      title: "Histograms of one block over steps (or click a chart)",
      onclick: () => this.open(app.state.histPart, app.state.histGate),
    });
    this.header = el("div", { class: "hist-controls" });
    this.readout = el("span", { class: "hist-readout" });
    this.canvas = el("canvas", {
      class: "hist-canvas",
      onmousemove: (e) => {
        const at = this.locate && this.locate(e.offsetX, e.offsetY);
        this.readout.textContent = at ? `${this.unit} ${at.step} · value ${formatValue(at.value)} · count ${formatValue(at.count)}` : "";
      },
      onmouseleave: () => (this.readout.textContent = ""),
    });
    this.message = el("p", { class: "message" });
    this.section = el("section", { class: "histogram", hidden: true }, this.header, this.message, this.canvas);
  }

  /** Opens the section on the block (`part`, `gate`) of the current layer. */
  open(part, gate) {
    this.app.update({ histOpen: true, histPart: part, histGate: gate }, () => {
      this.sync();
      this.load();
      this.section.scrollIntoView({ block: "nearest", behavior: "smooth" });
    });
  }

  /** Shows the section when it has a target, else the button that opens it (when it could). */
  show(target) {
    const { model, state } = this.app;
    this.section.hidden = !target;
    this.openButton.hidden = Boolean(target) || !model.hasHistograms(model.currentLayer(state), state);
  }

  /** Rebuilds the selectors for the current runs, layer and block. */
  sync() {
    const { model, state } = this.app;
    const t = model.histogramTarget(state);
    this.show(t);
    if (!t) return;
    const change = (key) => (value) =>
      this.app.update({ [key]: value }, () => {
        this.sync();
        this.load();
      });
    this.header.replaceChildren(
      el("h2", { text: "Histogram" }),
      labelled("Run", select(pairs(t.runs), t.run, change("histRun"), { class: "hist-run" })),
      labelled("Part", select(pairs(t.parts), t.part, change("histPart"), { class: "hist-part" })),
      labelled("Gate", select(pairs(t.gates), t.gate, change("histGate"), { class: "hist-gate" })),
      labelled(
        "Mode",
        select([["offset", "offset"], ["heatmap", "heat map"]], state.histMode, (value) => this.app.update({ histMode: value }, () => this.draw()), {
          class: "hist-mode",
        }),
      ),
      this.readout,
      el("button", { type: "button", class: "close", text: "Close", onclick: () => this.app.update({ histOpen: false }, () => this.load()) }),
    );
  }

  async load() {
    const t = this.app.model.histogramTarget(this.app.state);
    this.show(t);
    if (!t) {
      this.latest.clear();
      this.data = null;
      return;
    }
    const params = [["run", t.run], ["layer", t.layer], ["part", t.part], ["gate", t.gate]];
    const result = await this.latest.fetch(() => getJSON("histograms", params));
    if (!result || !this.latest.isNew(result.data ?? result.error.message)) return;
    this.data = result.data || null;
    this.unit = t.unit;
    this.message.textContent = histogramMessage(result);
    this.draw();
  }

  draw() {
    const data = this.data;
    if (this.section.hidden || !data || data.histograms.length === 0) {
      this.canvas.hidden = true;
      return;
    }
    this.canvas.hidden = false;
    this.locate = drawHistograms(this.canvas, data.histograms, { mode: this.app.state.histMode, color: this.app.colorOf(data.run), dark: this.app.theme.dark, unit: this.unit });
  }

  /** Redraws from the data loaded (theme, run colours, selectors). */
  render() {
    this.sync();
    this.draw();
  }

  resize() {
    if (this.data) this.draw();
  }
}

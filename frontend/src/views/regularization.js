// The Weights view's regularization section: the current layer's per-gate
// penalties, every layer's total, and the model's regularization and training
// loss, one chart each, a line per run.
import { getJSON, runParams } from "../api.js";
import { ChartGroup } from "../charts/lines.js";
import { el } from "../dom.js";
import { LatestRequest, loadLatest } from "../latest.js";
import { contract } from "../contract.js";

/** A penalty chart's title. */
export function penaltyTitle(s) {
  if (s.layer === contract.model_layer) return s.stat === "loss" ? "training loss" : "regularization loss (model)";
  return s.part === contract.total ? `${s.layer}: total penalty` : `${s.part} · ${s.gate} penalty`;
}

/**
 * The charts of the section, in order: the gates of `layer` (in the parts
 * shown, `parts`), then every layer's total, then the model's regularization
 * loss and training loss; each [{title, series}] with a series per run.
 *
 * @param series the `regularization` route's series
 * @param layer the current layer's name, or null
 * @param parts the parts the gate grid shows
 */
export function penaltyPanels(series, layer, parts) {
  const rank = (s) => {
    if (s.layer === contract.model_layer) return s.stat === "loss" ? 3 : 2;
    if (s.part === contract.total) return 1;
    return s.layer === layer && parts.includes(s.part) ? 0 : -1;
  };
  const panels = new Map();
  for (const s of series) {
    const r = rank(s);
    if (r < 0) continue;
    const key = [r, s.layer, s.part, s.gate, s.stat].join("\u0000");
    if (!panels.has(key)) panels.set(key, { rank: r, title: penaltyTitle(s), series: [] });
    panels.get(key).series.push(s);
  }
  return [...panels.values()].sort((a, b) => a.rank - b.rank).map(({ title, series }) => ({ title, series }));
}

export class RegularizationView {
  /** @param app the tab (app.js) */
  constructor(app) {
    this.app = app;
    this.charts = new ChartGroup(app.theme);
    this.latest = new LatestRequest();
    this.data = null;
    this.shown = [];
    this.body = el("div", { class: "reg-grid" });
    this.note = el("p", { class: "message" });
    this.section = el("section", { class: "regularization" }, el("h2", { text: "Regularization" }), this.note, this.body);
  }

  async load() {
    const { model, state } = this.app;
    if (state.view !== "weights") return;
    const runs = model.regularizedRuns(model.visibleRuns(state));
    await loadLatest(this, runs.length > 0 && (() => getJSON("regularization", runParams(runs))));
  }

  render() {
    const { model, state } = this.app;
    this.charts.destroy();
    this.shown = [];
    this.body.replaceChildren();
    if (!model.anyRegularization) {
      this.note.textContent =
        "No run logs penalties. Train with tb_lstm_gates' gate-wise regularizers to see each gate's penalty next to the training loss here.";
      return;
    }
    const series = this.data ? this.data.series : [];
    if (series.length === 0) {
      this.note.textContent = "No penalties in the selected runs.";
      return;
    }
    const layer = model.currentLayer(state);
    const panels = penaltyPanels(series, layer && layer.layer, layer ? model.shownParts(layer, state) : []);
    this.note.textContent = layer ? `Per-gate penalties of ${layer.layer}, each layer's total, and the model's regularization and training loss.` : "";
    const holders = panels.map((p) => {
      const s = p.series[0];
      const holder = el("div", { class: "chart", "data-layer": s.layer, "data-stat": s.stat, "data-part": s.part, "data-gate": s.gate });
      this.body.append(el("figure", {}, el("figcaption", { text: p.title }), holder));
      return holder;
    });
    panels.forEach((p, i) => {
      const mark = this.app.markedStep(p.series[0]);
      const unit = model.stepUnit([...new Set(p.series.map((s) => s.run))]);
      this.charts.add(holders[i], { title: p.title, lines: this.app.lines(p.series), mark, unit }, this.app.chartView());
      this.shown.push(...p.series);
    });
  }

  resize() {
    this.charts.resize();
  }
}

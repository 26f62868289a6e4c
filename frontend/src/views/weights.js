// The Weights view's gate grid: one statistic of every (part, gate) block of
// the layer, a line per run; clicking a chart opens that block's histograms.
import { getJSON, runParams } from "../api.js";
import { ChartGroup } from "../charts/lines.js";
import { el } from "../dom.js";
import { statDescription, statName } from "../contract.js";
import { LatestRequest, loadLatest } from "../latest.js";
import { cellSeries, drawGrid } from "./grid.js";

/** The series of the `series` route's answer, each with its layer and statistic (the downloads name them). */
export const labelledSeries = (data) => data.series.map((s) => ({ layer: data.layer, stat: data.stat, ...s }));

/** Why the grid has no chart. */
export function emptyGridMessage(visibleRuns, layer) {
  if (!visibleRuns.length) return "No run selected.";
  return layer.stats.length ? "No data for the selected runs." : "This layer has only penalties: see Regularization below.";
}

export class WeightsView {
  /**
   * @param app the tab (app.js)
   * @param options {{titleButton: HTMLElement, onOpenBlock: (part, gate) => void}}: the
   *   button shown beside the title, and what clicking a chart does
   */
  constructor(app, { titleButton, onOpenBlock }) {
    this.app = app;
    this.titleButton = titleButton;
    this.onOpenBlock = onOpenBlock;
    this.charts = new ChartGroup(app.theme);
    this.latest = new LatestRequest();
    this.data = null;
    this.shown = [];
    this.title = el("h2");
    this.grid = el("div", { class: "grid" });
    // What the statistic shown measures and what a healthy value looks like, from the server's contract.
    this.description = el("p", { class: "stat-description" });
    this.section = el("section", { class: "gates" }, this.title, this.description, this.grid);
  }

  async load() {
    const { model, state } = this.app;
    // The Weights view's data stays as it was while hidden, and reloads when it is shown.
    if (state.view !== "weights") return;
    const layer = model.currentLayer(state);
    const stat = layer && model.currentStat(layer, state);
    const runs = stat ? model.runsWithStat(layer, stat, model.visibleRuns(state)) : [];
    const request = runs.length > 0 && (() => getJSON("series", [["layer", layer.layer], ["stat", stat], ...runParams(runs)]));
    await loadLatest(this, request);
  }

  render() {
    const { model, state } = this.app;
    this.charts.destroy();
    this.shown = [];
    const layer = model.currentLayer(state);
    const stat = layer && (this.data && this.data.layer === layer.layer ? this.data.stat : model.currentStat(layer, state));
    this.description.textContent = stat ? `${statName(stat)}: ${statDescription(stat)}` : "";
    this.description.hidden = !stat || !statDescription(stat);
    if (!layer) {
      this.title.textContent = "";
      this.grid.replaceChildren();
      return;
    }
    const data = this.data && this.data.layer === layer.layer ? this.data : null;
    this.title.replaceChildren(
      el("span", { class: "layer-name", text: layer.layer }),
      el("span", { class: "subtitle", text: ` ${layer.cell} · ${stat ? statName(stat) : "penalties only"}` }),
      this.titleButton,
    );
    if (!data || data.series.length === 0) {
      this.grid.replaceChildren(el("p", { class: "message", text: emptyGridMessage(model.visibleRuns(state), layer) }));
      return;
    }
    const series = labelledSeries(data);
    this.shown = drawGrid(this.app, this.grid, this.charts, {
      rows: model.shownParts(layer, state),
      rowKey: "part",
      gates: layer.gates,
      seriesAt: (part, gate) => cellSeries(series, "part", part, gate),
      onClick: this.onOpenBlock,
      unit: model.stepUnit([...new Set(series.map((s) => s.run))], layer),
      markAt: (part, gate) => this.app.markedStep({ layer: layer.layer, stat: data.stat, part, gate }),
    });
  }

  resize() {
    this.charts.resize();
  }
}

// The Weights view's gate grid: one statistic of every (part, gate) block of
// the layer, a line per run; clicking a chart opens that block's histograms.
import { getJSON, runParams } from "../api.js";
import { ChartGroup } from "../charts/lines.js";
import { el } from "../dom.js";
import { statDescription, statName } from "../contract.js";
import { LatestRequest, loadLatest } from "../latest.js";
import { weightOrigins } from "../model.js";
import { cellSeries, drawGrid } from "./grid.js";

/** The series of the `series` route's answer, each with its layer and statistic (the downloads name them). */
export const labelledSeries = (data) => data.series.map((s) => ({ layer: data.layer, stat: data.stat, ...s }));

/** `shown` series with the wall times of the series of `answer` (same run, part and gate) at their steps. */
export function withWallTimes(shown, answer) {
  const key = (s) => [s.run, s.part, s.gate].join("\u0000");
  const byKey = new Map(answer.map((s) => [key(s), s]));
  return shown.map((s) => {
    const full = byKey.get(key(s));
    if (!full) return s;
    const at = new Map(full.steps.map((step, i) => [step, full.wall_times[i]]));
    return { ...s, wall_times: s.steps.map((step) => at.get(step) ?? null) };
  });
}

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
    // Without wall times, which only downloads need: a third of the answer for a sweep of hundreds of runs.
    const request = runs.length > 0 && (() => getJSON("series", [["layer", layer.layer], ["stat", stat], ...runParams(runs), ["wall_times", "false"]]));
    await loadLatest(this, request);
  }

  /** The series shown, with their wall times (asked for again, as the charts load without them). */
  async shownWithWallTimes() {
    if (!this.data || this.shown.length === 0) return this.shown;
    const runs = [...new Set(this.shown.map((s) => s.run))];
    const answer = await getJSON("series", [["layer", this.data.layer], ["stat", this.data.stat], ...runParams(runs)]);
    return withWallTimes(this.shown, answer.series);
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
    const origins = weightOrigins(layer);
    this.title.replaceChildren(
      el("span", { class: "layer-name", text: layer.layer }),
      el("span", { class: "subtitle", text: ` ${layer.cell} · ${stat ? statName(stat) : "penalties only"}` }),
      ...(origins ? [el("span", { class: "weight-origins", title: "where the logged weights come from", text: ` · ${origins}` })] : []),
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

// The Activations view's grid: what each gate does on the probe batch (mean
// activation, saturation, retention), a row per statistic, a column per gate.
import { getJSON, runParams } from "../api.js";
import { ChartGroup } from "../charts/lines.js";
import { el } from "../dom.js";
import { LatestRequest, loadLatest } from "../latest.js";
import { contract, statDescription } from "../contract.js";
import { cellSeries, drawGrid } from "./grid.js";

/** The `series` requests of the grid: one per statistic, each for the runs that have it; [[stat, runs]]. */
export function activationRequests(model, layer, runs) {
  return model
    .activationRows(layer)
    .map((stat) => [stat, model.runsWithStat(layer, stat, runs)])
    .filter(([, statRuns]) => statRuns.length);
}

/** The probe's series of the `series` answers, each with its layer and statistic: {layer, series}. */
export function activationSeries(layer, answers) {
  return {
    layer,
    series: answers.flatMap((d) => d.series.filter((s) => s.part === contract.activation).map((s) => ({ layer: d.layer, stat: d.stat, ...s }))),
  };
}

export class ActivationsView {
  /** @param app the tab (app.js) */
  constructor(app) {
    this.app = app;
    this.charts = new ChartGroup(app.theme);
    this.latest = new LatestRequest();
    this.data = null;
    this.shown = [];
    this.title = el("h2");
    this.grid = el("div", { class: "grid" });
    this.empty = el(
      "div",
      { class: "empty-probe", hidden: true },
      el("p", { text: "No gate activations for this layer. Pass a probe, a small fixed batch of inputs, to the callback:" }),
      el("pre", {}, "tb_lstm_gates.LSTMGatesCallback(log_dir, probe=x[:32])"),
      el("p", {
        text:
          "At every logged step it records each gate's mean activation, saturation and retention on those sequences, " +
          "and with the histograms a heat map of the first sequence. Add probe_gradients=True with probe=(x[:32], y[:32]) " +
          "for per-gate gradient norms (Weights view, statistic grad_norm).",
      }),
    );
    this.section = el("section", { class: "activations", hidden: true }, this.title, this.empty, this.grid);
  }

  async load() {
    const { model, state } = this.app;
    if (state.view !== "activations") return;
    const layer = model.currentLayer(state);
    const requests = layer ? activationRequests(model, layer, model.probedRuns(layer, state)) : [];
    const load = () => Promise.all(requests.map(([stat, runs]) => getJSON("series", [["layer", layer.layer], ["stat", stat], ...runParams(runs)])));
    await loadLatest(this, requests.length > 0 && load, (answers) => activationSeries(layer.layer, answers));
  }

  render() {
    const { model, state } = this.app;
    this.charts.destroy();
    this.shown = [];
    const layer = model.currentLayer(state);
    this.grid.replaceChildren();
    this.title.replaceChildren();
    if (!layer) return;
    this.title.append(
      el("span", { class: "layer-name", text: layer.layer }),
      el("span", { class: "subtitle", text: ` ${layer.cell} · gate activations on the probe` }),
    );
    this.empty.hidden = layer.probeRuns.length > 0;
    if (!this.empty.hidden) return;
    const data = this.data && this.data.layer === layer.layer ? this.data : null;
    if (!data || data.series.length === 0) {
      const probed = model.probedRuns(layer, state).length > 0;
      const message = probed ? "No data for the selected runs." : "No selected run has a probe for this layer.";
      this.grid.replaceChildren(el("p", { class: "message", text: message }));
      return;
    }
    this.shown = drawGrid(this.app, this.grid, this.charts, {
      rows: model.activationRows(layer),
      rowKey: "stat",
      unit: model.stepUnit([...new Set(data.series.map((s) => s.run))], layer),
      rowTitles: Object.fromEntries(model.activationRows(layer).map((s) => [s, statDescription(s)])),
      gates: layer.gates,
      seriesAt: (stat, gate) => cellSeries(data.series, "stat", stat, gate),
      markAt: (stat, gate) => this.app.markedStep({ layer: layer.layer, stat, part: contract.activation, gate }),
    });
  }

  resize() {
    this.charts.resize();
  }
}

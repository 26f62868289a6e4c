// The LSTM Gates tab: the sidebar, the Findings panel, and the views of one
// layer, Weights (gate grid, histograms, regularization) and Activations (the
// probe's gate statistics, saturation scatter, activation map). This module arranges them and keeps the
// selection; each view (views/) loads and draws its own data, and model.js
// says what exists and what is selected.
import { getJSON } from "./api.js";
import { runColor } from "./colors.js";
import { useContract } from "./contract.js";
import { el } from "./dom.js";
import { saveFile, toCSV } from "./download.js";
import { onHostReload, watchDarkMode } from "./host.js";
import { Model } from "./model.js";
import { Sidebar } from "./sidebar.js";
import { smooth } from "./smoothing.js";
import { loadState, saveState } from "./state.js";
import { ActivationMapView } from "./views/activation_map.js";
import { ActivationsView } from "./views/activations.js";
import { FindingsView, findingSelection, marks } from "./views/findings.js";
import { HistogramView } from "./views/histograms.js";
import { OverviewView } from "./views/overview.js";
import { RegularizationView } from "./views/regularization.js";
import { SaturationView } from "./views/saturation.js";
import { TextView } from "./views/text.js";
import { WeightsView } from "./views/weights.js";

const AUTO_RELOAD_MS = 30000;

export class App {
  constructor(root) {
    this.state = loadState();
    this.theme = { dark: false };
    this.model = new Model();
    this.loaded = false;
    this.runsSeen = null;
    this.sidebar = new Sidebar(this);
    this.histograms = new HistogramView(this);
    this.weights = new WeightsView(this, {
      titleButton: this.histograms.openButton,
      onOpenBlock: (part, gate) => this.histograms.open(part, gate),
    });
    this.regularization = new RegularizationView(this);
    this.activations = new ActivationsView(this);
    this.saturation = new SaturationView(this);
    this.activationMap = new ActivationMapView(this);
    this.text = new TextView(this);
    this.overview = new OverviewView(this);
    // In the order they load and draw, which is also their order on the page.
    this.views = [this.overview, this.weights, this.histograms, this.regularization, this.activations, this.saturation, this.activationMap, this.text];
    // Loaded on reloads only (the rules read every series of every run), not on each change of selection.
    this.findings = new FindingsView(this, (f) => this.selectFinding(f));
    // The finding whose chart is marked, or null.
    this.mark = null;
    this.build(root);
    watchDarkMode((dark) => {
      this.theme.dark = dark;
      document.documentElement.classList.toggle("dark", dark);
      if (this.loaded) this.redraw();
    });
    onHostReload(() => this.reload());
    this.setAutoReload(this.state.autoReload);
    new ResizeObserver(() => this.resize()).observe(this.main);
  }

  // ---- what views share ---------------------------------------------------

  /** Saves `changes` to the selection, then calls `then` to show them. */
  update(changes, then) {
    Object.assign(this.state, changes);
    saveState(this.state);
    then.call(this);
  }

  colorOf(run) {
    return runColor(this.model.runIndex.get(run) ?? 0, this.theme.dark);
  }

  /** Line chart settings of every chart. */
  chartView() {
    return { smoothing: this.state.smoothing, logScale: this.state.logScale };
  }

  /** Series as chart lines, in their run's colour. */
  lines(series) {
    return series.map((s) => ({ run: s.run, color: this.colorOf(s.run), steps: s.steps, values: s.values }));
  }

  /** The step to mark on the chart of one series ({layer, stat, part, gate}), or null. */
  markedStep(chart) {
    return marks(this.mark, chart) ? this.mark.step : null;
  }

  /** Shows finding `f`'s chart with its first step marked, and scrolls to it. */
  async selectFinding(f) {
    this.mark = f;
    Object.assign(this.state, findingSelection(f, this.state));
    saveState(this.state);
    this.showView();
    this.sidebar.renderControls();
    this.sidebar.renderRunList();
    this.syncSelectors();
    this.resize();
    await this.loadAll();
    // Views whose data did not change did not redraw: draw them again with the mark.
    this.redraw();
    // uPlot sizes its charts in a microtask: scroll once they have their height.
    await new Promise(requestAnimationFrame);
    const marked = [...this.main.querySelectorAll(".chart.marked")].find((c) => c.offsetParent !== null);
    if (marked) marked.scrollIntoView({ block: "center" });
  }

  showError(error) {
    this.status.textContent = error ? `Could not load: ${error.message}` : "";
    this.status.classList.toggle("error", Boolean(error));
  }

  // ---- layout -------------------------------------------------------------

  build(root) {
    this.status = el("div", { class: "status", role: "status" });
    this.empty = el(
      "section",
      { class: "empty", hidden: true },
      el("h2", { text: "No LSTM gate data was found." }),
      el("p", { text: "Log per-gate statistics of your recurrent layers by adding the callback to model.fit:" }),
      el("pre", {}, "import tb_lstm_gates\n\nmodel.fit(x, y, epochs=10,\n          callbacks=[tb_lstm_gates.LSTMGatesCallback(log_dir)])"),
      el("p", { text: "then point TensorBoard at the same log directory: tensorboard --logdir log_dir" }),
    );
    this.viewButtons = [
      ["overview", "Overview"],
      ["weights", "Weights"],
      ["activations", "Activations"],
      ["text", "Text"],
    ].map(([view, label]) => el("button", { type: "button", "data-view": view, text: label, onclick: () => this.update({ view }, this.onViewChanged) }));
    this.viewSwitch = el("div", { class: "view-switch", role: "group", "aria-label": "View" }, this.viewButtons);
    this.main = el("main", {}, this.status, this.findings.section, this.empty, this.viewSwitch, ...this.views.map((v) => v.section));
    root.replaceChildren(el("div", { class: "app" }, this.sidebar.element, this.main));
  }

  /** Shows the sections of the current view (or the empty state when there is no data). */
  showView() {
    const nothing = this.model.empty;
    const { view } = this.state;
    this.empty.hidden = !nothing;
    this.viewSwitch.hidden = nothing;
    for (const button of this.viewButtons) {
      const on = button.dataset.view === this.state.view;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", String(on));
    }
    for (const weights of [this.weights, this.regularization]) weights.section.hidden = nothing || view !== "weights";
    this.activations.section.hidden = nothing || view !== "activations";
    this.overview.section.hidden = nothing || view !== "overview";
  }

  setAutoReload(on) {
    clearInterval(this.timer);
    this.timer = on ? setInterval(() => this.reload(), AUTO_RELOAD_MS) : null;
  }

  // ---- loading --------------------------------------------------------------

  /** Fetches the run list (or takes `prefetched`, a pending answer that is null if it failed) and reloads the views. */
  async reload(prefetched = null) {
    let data;
    try {
      data = (prefetched && (await prefetched)) || (await getJSON("runs"));
    } catch (error) {
      this.showError(error);
      return;
    }
    this.showError(null);
    this.loaded = true;
    // Rebuilding unchanged controls would close an open drop-down on every auto-reload.
    const text = JSON.stringify(data);
    if (text !== this.runsSeen) {
      this.runsSeen = text;
      useContract(data.contract);
      this.model = new Model(data.runs);
      this.showView();
      this.sidebar.renderControls();
      this.sidebar.renderRunList();
      this.syncSelectors();
    }
    // The findings after the charts: checking a sweep's runs takes the server seconds, which the
    // charts' requests would otherwise wait behind (the server computes on one interpreter).
    await this.loadAll();
    // The Overview outlines the cells with findings: drawn again with each answer of the findings,
    // once it has its own data (before, it draws when that comes).
    await this.findings.load(() => this.overview.data && this.overview.render());
  }

  /** Loads what the current view shows; the other view loads when it is opened. */
  loadAll() {
    return Promise.all(this.views.map((v) => v.load()));
  }

  /** Rebuilds the histogram and activation-map selectors for the current runs, layer and view. */
  syncSelectors() {
    this.histograms.sync();
    this.saturation.sync();
    this.activationMap.sync();
    this.text.sync();
  }

  onRunsChanged() {
    this.sidebar.renderRunList();
    this.syncSelectors();
    this.loadAll();
  }

  onLayerChanged() {
    this.sidebar.renderControls();
    this.syncSelectors();
    this.regularization.render();
    this.loadAll();
  }

  onViewChanged() {
    this.showView();
    this.sidebar.renderControls();
    this.syncSelectors();
    // Charts drawn or resized while hidden have the minimum width.
    this.resize();
    this.loadAll();
  }

  /** Redraws every view from the data already loaded (theme, smoothing, scale, parts). */
  redraw() {
    this.sidebar.renderRunList();
    this.findings.render();
    for (const view of this.views) view.render();
  }

  resize() {
    for (const view of this.views) view.resize();
  }

  // ---- downloads ------------------------------------------------------------

  /** Saves what the charts show, with the smoothed values, as CSV or JSON. */
  async download(format) {
    const { model, state } = this;
    const layer = model.currentLayer(state);
    let gates;
    try {
      gates = await this.weights.shownWithWallTimes();
    } catch (error) {
      this.showError(error);
      return;
    }
    const sections = [
      ["gates", gates],
      ["regularization", this.regularization.shown],
      ["activations", this.activations.shown],
    ];
    const shown = sections.flatMap(([section, series]) => series.map((s) => ({ section, ...s, smoothed: smooth(s.values, state.smoothing) })));
    const what = state.view === "activations" ? "activations" : (layer && model.currentStat(layer, state)) || "penalties";
    const name = layer ? `lstm_gates_${layer.layer.replace(/[^\w.-]+/g, "_")}_${what}` : "lstm_gates";
    if (format === "csv") saveFile(`${name}.csv`, toCSV(shown), "text/csv");
    else saveFile(`${name}.json`, JSON.stringify({ smoothing: state.smoothing, series: shown }, null, 1), "application/json");
  }
}

// The LSTM Gates tab: sidebar (settings, runs) and the views of one layer:
// Weights (gate grid, histograms, regularization) and Activations (the
// probe's gate statistics and activation maps).
import { drawActivationMap } from "./activation_map.js";
import { getJSON, runParams } from "./api.js";
import { ChartGroup } from "./charts.js";
import { runColor } from "./colors.js";
import { el, formatValue, select } from "./dom.js";
import { toCSV, saveFile } from "./download.js";
import { drawHistograms } from "./histogram.js";
import { onHostReload, watchDarkMode } from "./host.js";
import { smooth } from "./smoothing.js";
import { loadState, saveState } from "./state.js";

const AUTO_RELOAD_MS = 30000;
const TOTAL = "total";
const MODEL_LAYER = "model";
// The probe's part and statistics (tb_lstm_gates.metadata); `grad_norm` is a
// probe statistic too, but on the weights' parts, so the Weights view shows it.
const ACTIVATION = "activation";
const ACTIVATION_STATS = ["act_mean", "saturated", "saturated_low", "saturated_high", "retention"];
// Rows of the Activations grid: `saturated` is the sum of low and high, which tell more apart.
const ACTIVATION_ROWS = ["act_mean", "saturated_low", "saturated_high", "retention"];
const STAT_LABELS = { grad_norm: "grad_norm (probe gradient)" };
const ROW_TITLES = {
  act_mean: "mean activation on the probe",
  saturated_low: "fraction of activations below 0.1 (sigmoid gates) or -0.9 (tanh gates)",
  saturated_high: "fraction of activations above 0.9",
  retention: "steps the state lasts: mean of 1 / (1 - forget or update activation)",
};

/** Union of lists, in order of first appearance (each list is in canonical order). */
const union = (lists) => [...new Set(lists.flat())];

/** The parts of a layer's weights (the probe's `activation` part has its own view). */
const weightParts = (layer) => layer.parts.filter((p) => p !== ACTIVATION);

/** A case-insensitive regex test like TensorBoard's run filter; a bad regex matches as plain text. */
function runMatcher(filter) {
  if (!filter) return () => true;
  try {
    const re = new RegExp(filter, "i");
    return (name) => re.test(name);
  } catch {
    const needle = filter.toLowerCase();
    return (name) => name.toLowerCase().includes(needle);
  }
}

export class App {
  constructor(root) {
    this.root = root;
    this.state = loadState();
    this.theme = { dark: false };
    this.runs = [];
    this.loaded = false;
    this.seriesData = null;
    this.regData = null;
    this.histData = null;
    this.actData = null;
    this.mapData = null;
    // Steps with an activation map, by run and layer, as the route listed them.
    this.mapSteps = new Map();
    this.shown = [];
    this.requests = { series: 0, reg: 0, hist: 0, act: 0, map: 0 };
    this.seen = {};
    this.gateCharts = new ChartGroup(this.theme);
    this.regCharts = new ChartGroup(this.theme);
    this.actCharts = new ChartGroup(this.theme);
    this.build();
    watchDarkMode((dark) => {
      this.theme.dark = dark;
      document.documentElement.classList.toggle("dark", dark);
      if (this.loaded) this.redraw();
    });
    onHostReload(() => this.reload());
    this.setAutoReload(this.state.autoReload);
    new ResizeObserver(() => {
      this.resizeCharts();
      if (this.histData) this.drawHistogram();
      if (this.mapData) this.drawMap();
    }).observe(this.main);
  }

  // ---- state ------------------------------------------------------------

  update(changes, then) {
    Object.assign(this.state, changes);
    saveState(this.state);
    then.call(this);
  }

  get runNames() {
    return this.runs.map((r) => r.run);
  }

  colorOf(run) {
    return runColor(Math.max(0, this.runNames.indexOf(run)), this.theme.dark);
  }

  visibleRuns() {
    const match = runMatcher(this.state.runFilter);
    const hidden = new Set(this.state.hiddenRuns);
    return this.runNames.filter((run) => match(run) && !hidden.has(run));
  }

  /** Every layer across runs, merged: {layer, cell, parts, gates, stats, runs, histogramRuns, probeRuns, mapRuns}. */
  layers() {
    const byName = new Map();
    for (const run of this.runs) {
      for (const info of run.layers) {
        const entry = byName.get(info.layer) || {
          layer: info.layer,
          cell: info.cell,
          infos: [],
          runs: [],
          histogramRuns: [],
          probeRuns: [],
          mapRuns: [],
        };
        entry.infos.push(info);
        entry.runs.push(run.run);
        if (info.histograms) entry.histogramRuns.push(run.run);
        if (info.parts.includes(ACTIVATION)) entry.probeRuns.push(run.run);
        if (info.activation_maps) entry.mapRuns.push(run.run);
        byName.set(info.layer, entry);
      }
    }
    return [...byName.values()]
      .sort((a, b) => a.layer.localeCompare(b.layer))
      .map((e) => ({
        ...e,
        parts: union(e.infos.map((i) => i.parts)),
        gates: union(e.infos.map((i) => i.gates)),
        stats: union(e.infos.map((i) => i.stats)),
      }));
  }

  currentLayer() {
    const layers = this.layers();
    return layers.find((l) => l.layer === this.state.layer) || layers[0] || null;
  }

  /** The statistics of the Weights view: all but the probe's activation statistics. */
  weightStats(layer) {
    return layer.stats.filter((s) => !ACTIVATION_STATS.includes(s));
  }

  currentStat(layer) {
    const stats = this.weightStats(layer);
    if (stats.includes(this.state.stat)) return this.state.stat;
    return stats.includes("l2") ? "l2" : stats[0];
  }

  /** Runs of `layer` that hold `stat`, among `runs`: the series route answers 404 for the others. */
  runsWithStat(layer, stat, runs) {
    return runs.filter((r) => layer.infos[layer.runs.indexOf(r)]?.stats.includes(stat));
  }

  get activationsView() {
    return this.state.view === "activations";
  }

  // ---- layout -----------------------------------------------------------

  build() {
    this.status = el("div", { class: "status", role: "status" });
    this.controls = el("div", { class: "controls" });
    this.runList = el("ul", { class: "run-list" });
    this.runToggle = el("input", {
      type: "checkbox",
      title: "Show or hide all listed runs",
      onchange: () => this.toggleAllRuns(this.runToggle.checked),
    });
    const filter = el("input", {
      type: "search",
      class: "run-filter",
      placeholder: "Filter runs (regex)",
      props: { value: this.state.runFilter },
      oninput: () => this.update({ runFilter: filter.value }, this.onRunsChanged),
    });
    const smoothingValue = el("output", { text: this.state.smoothing.toFixed(2) });
    const smoothing = el("input", {
      type: "range",
      min: 0,
      max: 0.99,
      step: 0.01,
      props: { value: String(this.state.smoothing) },
      oninput: () => {
        smoothingValue.textContent = Number(smoothing.value).toFixed(2);
        this.update({ smoothing: Number(smoothing.value) }, this.redraw);
      },
    });
    const checkbox = (key, label, then) =>
      el(
        "label",
        { class: "check" },
        el("input", {
          type: "checkbox",
          props: { checked: this.state[key] },
          onchange: (e) => this.update({ [key]: e.target.checked }, then),
        }),
        label,
      );
    const settings = el(
      "section",
      { class: "settings" },
      el("h3", { text: "Settings" }),
      this.controls,
      el("div", { class: "field" }, el("span", { class: "label", text: "Smoothing" }), el("div", { class: "slider" }, smoothing, smoothingValue)),
      checkbox("logScale", "Log scale", this.redraw),
      el(
        "div",
        { class: "buttons" },
        el("button", { type: "button", class: "reload", text: "Reload", onclick: () => this.reload() }),
        checkbox("autoReload", "Auto-reload (30 s)", () => this.setAutoReload(this.state.autoReload)),
      ),
      el(
        "div",
        { class: "buttons" },
        el("span", { class: "label", text: "Download" }),
        el("button", { type: "button", text: "CSV", onclick: () => this.download("csv") }),
        el("button", { type: "button", text: "JSON", onclick: () => this.download("json") }),
      ),
    );
    const runs = el(
      "section",
      { class: "runs" },
      el("h3", {}, el("label", { class: "check" }, this.runToggle, "Runs")),
      filter,
      this.runList,
    );
    this.empty = el(
      "section",
      { class: "empty", hidden: true },
      el("h2", { text: "No LSTM gate data was found." }),
      el("p", { text: "Log per-gate statistics of your recurrent layers by adding the callback to model.fit:" }),
      el(
        "pre",
        {},
        "import tb_lstm_gates\n\nmodel.fit(x, y, epochs=10,\n          callbacks=[tb_lstm_gates.LSTMGatesCallback(log_dir)])",
      ),
      el("p", { text: "then point TensorBoard at the same log directory: tensorboard --logdir log_dir" }),
    );
    this.gatesTitle = el("h2");
    this.histButton = el("button", {
      type: "button",
      class: "open-histograms",
      text: "Histograms",
      title: "Histograms of one block over steps (or click a chart)",
      onclick: () => this.openHistogram(this.state.histPart, this.state.histGate),
    });
    this.grid = el("div", { class: "grid" });
    this.gates = el("section", { class: "gates" }, this.gatesTitle, this.grid);
    this.histHeader = el("div", { class: "hist-controls" });
    this.histReadout = el("span", { class: "hist-readout" });
    this.histCanvas = el("canvas", {
      class: "hist-canvas",
      onmousemove: (e) => {
        const at = this.histLocate && this.histLocate(e.offsetX, e.offsetY);
        this.histReadout.textContent = at ? `step ${at.step} · value ${formatValue(at.value)} · count ${formatValue(at.count)}` : "";
      },
      onmouseleave: () => (this.histReadout.textContent = ""),
    });
    this.histMessage = el("p", { class: "message" });
    this.hist = el("section", { class: "histogram", hidden: true }, this.histHeader, this.histMessage, this.histCanvas);
    this.regBody = el("div", { class: "reg-grid" });
    this.regNote = el("p", { class: "message" });
    this.reg = el("section", { class: "regularization" }, el("h2", { text: "Regularization" }), this.regNote, this.regBody);
    this.viewButtons = [
      ["weights", "Weights"],
      ["activations", "Activations"],
    ].map(([view, label]) =>
      el("button", { type: "button", "data-view": view, text: label, onclick: () => this.update({ view }, this.onViewChanged) }),
    );
    this.viewSwitch = el("div", { class: "view-switch", role: "group", "aria-label": "View" }, this.viewButtons);
    this.actTitle = el("h2");
    this.actGrid = el("div", { class: "grid" });
    this.actEmpty = el(
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
    this.acts = el("section", { class: "activations", hidden: true }, this.actTitle, this.actEmpty, this.actGrid);
    this.mapHeader = el("div", { class: "map-controls" });
    this.mapReadout = el("span", { class: "map-readout" });
    this.mapCanvas = el("canvas", {
      class: "map-canvas",
      onmousemove: (e) => {
        const at = this.mapLocate && this.mapLocate(e.offsetX, e.offsetY);
        this.mapReadout.textContent = at ? `t ${at.t} · unit ${at.unit} · ${at.value == null ? "masked" : formatValue(at.value)}` : "";
      },
      onmouseleave: () => (this.mapReadout.textContent = ""),
    });
    this.mapMessage = el("p", { class: "message" });
    this.map = el("section", { class: "activation-map", hidden: true }, this.mapHeader, this.mapMessage, this.mapCanvas);
    this.main = el("main", {}, this.status, this.empty, this.viewSwitch, this.gates, this.hist, this.reg, this.acts, this.map);
    this.root.replaceChildren(el("div", { class: "app" }, el("aside", { class: "sidebar" }, settings, runs), this.main));
  }

  setAutoReload(on) {
    clearInterval(this.timer);
    this.timer = on ? setInterval(() => this.reload(), AUTO_RELOAD_MS) : null;
  }

  showError(error) {
    this.status.textContent = error ? `Could not load: ${error.message}` : "";
    this.status.classList.toggle("error", Boolean(error));
  }

  // ---- loading ----------------------------------------------------------

  /** Fetches the run list (or takes `prefetched`, a pending answer that is null if it failed) and redraws. */
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
    if (this.changed("runs", data)) {
      this.runs = [...data.runs].sort((a, b) => a.run.localeCompare(b.run));
      this.showView();
      this.renderControls();
      this.renderRunList();
      this.renderHistogramControls();
      this.renderMapControls();
    }
    await this.loadAll();
  }

  /** Loads what the current view shows; the other view loads when it is opened. */
  loadAll() {
    return Promise.all([this.loadSeries(), this.loadRegularization(), this.loadHistogram(), this.loadActivations(), this.loadMap()]);
  }

  onRunsChanged() {
    this.renderRunList();
    this.renderHistogramControls();
    this.renderMapControls();
    this.loadAll();
  }

  onLayerChanged() {
    this.renderControls();
    this.renderHistogramControls();
    this.renderMapControls();
    this.renderRegularization();
    this.loadAll();
  }

  onViewChanged() {
    this.showView();
    this.renderControls();
    this.renderHistogramControls();
    this.renderMapControls();
    // Charts drawn or resized while hidden have the minimum width.
    this.resizeCharts();
    this.loadAll();
  }

  /** Shows the sections of the current view (or the empty state when there is no data). */
  showView() {
    const nothing = this.runs.every((r) => r.layers.length === 0);
    const acts = this.activationsView;
    this.empty.hidden = !nothing;
    this.viewSwitch.hidden = nothing;
    for (const button of this.viewButtons) {
      const on = button.dataset.view === this.state.view;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", String(on));
    }
    for (const section of [this.gates, this.reg]) section.hidden = nothing || acts;
    this.acts.hidden = nothing || !acts;
  }

  resizeCharts() {
    this.gateCharts.resize();
    this.regCharts.resize();
    this.actCharts.resize();
  }

  /** Whether `data` differs from the last data seen under `key`; redrawing the same data would reset the hover. */
  changed(key, data) {
    const text = JSON.stringify(data);
    if (this.seen[key] === text) return false;
    this.seen[key] = text;
    return true;
  }

  /** Awaits `load()`, dropping the answer if a newer request of the same kind was made meanwhile. */
  async fetchLatest(kind, load) {
    const id = ++this.requests[kind];
    try {
      const data = await load();
      return id === this.requests[kind] ? { data } : null;
    } catch (error) {
      return id === this.requests[kind] ? { error } : null;
    }
  }

  async loadSeries() {
    // The Weights view's data stays as it was while hidden, and reloads when it is shown.
    if (this.activationsView) return;
    const layer = this.currentLayer();
    const stat = layer && this.currentStat(layer);
    const runs = stat ? this.runsWithStat(layer, stat, this.visibleRuns()) : [];
    if (runs.length === 0) {
      this.requests.series++;
      this.seriesData = null;
      delete this.seen.series;
      this.renderGates();
      return;
    }
    const result = await this.fetchLatest("series", () => getJSON("series", [["layer", layer.layer], ["stat", stat], ...runParams(runs)]));
    if (!result) return;
    this.showError(result.error);
    if (!this.changed("series", result.data)) return;
    this.seriesData = result.data || null;
    this.renderGates();
  }

  async loadRegularization() {
    if (this.activationsView) return;
    const runs = this.visibleRuns().filter((r) => this.runs.find((x) => x.run === r)?.regularization);
    if (runs.length === 0) {
      this.requests.reg++;
      this.regData = null;
      delete this.seen.reg;
      this.renderRegularization();
      return;
    }
    const result = await this.fetchLatest("reg", () => getJSON("regularization", runParams(runs)));
    if (!result) return;
    this.showError(result.error);
    if (!this.changed("reg", result.data)) return;
    this.regData = result.data || null;
    this.renderRegularization();
  }

  async loadHistogram() {
    const target = this.histogramTarget();
    this.showHistogramSection(target);
    if (!target) {
      this.requests.hist++;
      this.histData = null;
      delete this.seen.hist;
      return;
    }
    const { run, layer, part, gate } = target;
    const result = await this.fetchLatest("hist", () => getJSON("histograms", [["run", run], ["layer", layer], ["part", part], ["gate", gate]]));
    if (!result || !this.changed("hist", result.data ?? result.error.message)) return;
    this.histData = result.data || null;
    this.histMessage.textContent = result.error
      ? result.error.status === 404
        ? "No histograms for this block in this run (histogram_freq=0?)."
        : `Could not load histograms: ${result.error.message}`
      : this.histData.histograms.length === 0
        ? "No histograms for this block yet."
        : "";
    this.drawHistogram();
  }

  // ---- sidebar ----------------------------------------------------------

  renderControls() {
    const layers = this.layers();
    const layer = this.currentLayer();
    if (!layer) {
      this.controls.replaceChildren();
      return;
    }
    const field = (label, control) => el("label", { class: "field" }, el("span", { class: "label", text: label }), control);
    const layerSelect = field(
      "Layer",
      select(
        layers.map((l) => [l.layer, `${l.layer} (${l.cell})`]),
        layer.layer,
        (value) => this.update({ layer: value }, this.onLayerChanged),
        { class: "layer-select" },
      ),
    );
    // The Activations view shows every activation statistic and gate: only the layer is chosen.
    if (this.activationsView) {
      this.controls.replaceChildren(layerSelect);
      return;
    }
    const parts = weightParts(layer).map((part) =>
      el(
        "label",
        { class: "check" },
        el("input", {
          type: "checkbox",
          "data-part": part,
          props: { checked: !this.state.hiddenParts.includes(part) },
          onchange: (e) => {
            const hidden = new Set(this.state.hiddenParts);
            e.target.checked ? hidden.delete(part) : hidden.add(part);
            this.update({ hiddenParts: [...hidden] }, this.redraw);
          },
        }),
        part,
      ),
    );
    this.controls.replaceChildren(
      layerSelect,
      field(
        "Statistic",
        select(
          this.weightStats(layer).map((s) => [s, STAT_LABELS[s] || s]),
          this.currentStat(layer),
          (value) => this.update({ stat: value }, this.loadSeries),
          { class: "stat-select" },
        ),
      ),
      el("div", { class: "field" }, el("span", { class: "label", text: "Parts" }), el("div", { class: "parts" }, parts)),
    );
  }

  renderRunList() {
    const match = runMatcher(this.state.runFilter);
    const hidden = new Set(this.state.hiddenRuns);
    const listed = this.runNames.filter(match);
    this.runList.replaceChildren(
      ...listed.map((run) =>
        el(
          "li",
          {},
          el(
            "label",
            { class: "check run", title: run },
            el("input", {
              type: "checkbox",
              props: { checked: !hidden.has(run) },
              onchange: (e) => this.toggleRun(run, e.target.checked),
            }),
            el("span", { class: "swatch", style: `background:${this.colorOf(run)}` }),
            el("span", { class: "run-name", text: run }),
          ),
        ),
      ),
    );
    if (listed.length === 0 && this.runNames.length > 0) {
      this.runList.append(el("li", { class: "message", text: "No run matches the filter." }));
    }
    const shown = listed.filter((r) => !hidden.has(r)).length;
    this.runToggle.checked = listed.length > 0 && shown === listed.length;
    this.runToggle.indeterminate = shown > 0 && shown < listed.length;
  }

  toggleRun(run, visible) {
    const hidden = new Set(this.state.hiddenRuns);
    visible ? hidden.delete(run) : hidden.add(run);
    this.update({ hiddenRuns: [...hidden] }, this.onRunsChanged);
  }

  toggleAllRuns(visible) {
    const listed = this.runNames.filter(runMatcher(this.state.runFilter));
    const hidden = new Set(this.state.hiddenRuns);
    for (const run of listed) visible ? hidden.delete(run) : hidden.add(run);
    this.update({ hiddenRuns: [...hidden] }, this.onRunsChanged);
  }

  // ---- views ------------------------------------------------------------

  /** Redraws every view from the data already loaded (theme, smoothing, scale, parts). */
  redraw() {
    this.renderRunList();
    this.renderGates();
    this.renderRegularization();
    this.renderHistogramControls();
    this.drawHistogram();
    this.renderActivations();
    this.drawMap();
  }

  view() {
    return { smoothing: this.state.smoothing, logScale: this.state.logScale };
  }

  lines(series) {
    return series.map((s) => ({ run: s.run, color: this.colorOf(s.run), steps: s.steps, values: s.values }));
  }

  /** Records what a chart shows, for the downloads. */
  remember(section, series) {
    for (const s of series) this.shown.push({ section, ...s, smoothed: smooth(s.values, this.state.smoothing) });
  }

  renderGates() {
    this.gateCharts.destroy();
    this.shown = this.shown.filter((s) => s.section !== "gates");
    const layer = this.currentLayer();
    if (!layer) {
      this.gatesTitle.textContent = "";
      this.grid.replaceChildren();
      return;
    }
    const data = this.seriesData && this.seriesData.layer === layer.layer ? this.seriesData : null;
    this.gatesTitle.replaceChildren(
      el("span", { class: "layer-name", text: layer.layer }),
      el("span", { class: "subtitle", text: ` ${layer.cell} · ${data ? data.stat : this.currentStat(layer) || "penalties only"}` }),
      this.histButton,
    );
    if (!data || data.series.length === 0) {
      const message = !this.visibleRuns().length
        ? "No run selected."
        : layer.stats.length
          ? "No data for the selected runs."
          : "This layer has only penalties: see Regularization below.";
      this.grid.replaceChildren(el("p", { class: "message", text: message }));
      return;
    }
    const parts = weightParts(layer).filter((p) => !this.state.hiddenParts.includes(p));
    this.drawGrid(this.grid, this.gateCharts, "gates", {
      rows: parts,
      rowKey: "part",
      gates: layer.gates,
      seriesAt: (part, gate) =>
        data.series.filter((s) => s.part === part && s.gate === gate).map((s) => ({ layer: data.layer, stat: data.stat, ...s })),
      onClick: (part, gate) => this.openHistogram(part, gate),
    });
  }

  /**
   * Small multiples into `grid`: a row per item of `rows` (a part or a
   * statistic, named by `rowKey` in the charts' data attributes), a column
   * per gate, one line per run; `seriesAt(row, gate)` gives a chart's series.
   */
  drawGrid(grid, charts, section, { rows, rowKey, rowTitles = {}, gates, seriesAt, onClick }) {
    const holders = [];
    const cells = [el("div", { class: "corner" }), ...gates.map((g) => el("div", { class: "col-head", text: g }))];
    for (const row of rows) {
      cells.push(el("div", { class: "row-head", text: row, title: rowTitles[row] }));
      for (const gate of gates) {
        const series = seriesAt(row, gate);
        const holder = el("div", { class: "chart", [`data-${rowKey}`]: row, "data-gate": gate, role: "img", "aria-label": `${row} · ${gate}` });
        cells.push(holder);
        if (series.length) holders.push([holder, row, gate, series]);
        else holder.append(el("p", { class: "message", text: "—" }));
      }
    }
    grid.style.gridTemplateColumns = `auto repeat(${gates.length}, minmax(0, 1fr))`;
    grid.replaceChildren(...cells);
    for (const [holder, row, gate, series] of holders) {
      const panel = { title: `${row} · ${gate}`, lines: this.lines(series) };
      if (onClick) panel.onClick = () => onClick(row, gate);
      charts.add(holder, panel, this.view());
      this.remember(section, series);
    }
  }

  renderRegularization() {
    this.regCharts.destroy();
    this.shown = this.shown.filter((s) => s.section !== "regularization");
    this.regBody.replaceChildren();
    if (!this.runs.some((r) => r.regularization)) {
      this.regNote.textContent =
        "No run logs penalties. Train with tb_lstm_gates' gate-wise regularizers to see each gate's penalty next to the training loss here.";
      return;
    }
    const series = this.regData ? this.regData.series : [];
    if (series.length === 0) {
      this.regNote.textContent = "No penalties in the selected runs.";
      return;
    }
    const layer = this.currentLayer();
    // Panels: the current layer's gates, then every layer's total, then the model's totals.
    const rank = (s) =>
      s.layer === MODEL_LAYER ? (s.stat === "loss" ? 3 : 2) : s.part === TOTAL ? 1 : layer && s.layer === layer.layer ? 0 : -1;
    const panels = new Map();
    for (const s of series) {
      if (rank(s) < 0) continue;
      const key = [rank(s), s.layer, s.part, s.gate, s.stat].join("\u0000");
      if (!panels.has(key)) panels.set(key, { rank: rank(s), sample: s, series: [] });
      panels.get(key).series.push(s);
    }
    const title = (s) =>
      s.layer === MODEL_LAYER
        ? s.stat === "loss"
          ? "training loss"
          : "regularization loss (model)"
        : s.part === TOTAL
          ? `${s.layer}: total penalty`
          : `${s.part} · ${s.gate} penalty`;
    this.regNote.textContent = layer ? `Per-gate penalties of ${layer.layer}, each layer's total, and the model's regularization and training loss.` : "";
    const ordered = [...panels.values()].sort((a, b) => a.rank - b.rank);
    const holders = ordered.map((p) => {
      const holder = el("div", { class: "chart" });
      this.regBody.append(el("figure", {}, el("figcaption", { text: title(p.sample) }), holder));
      return holder;
    });
    ordered.forEach((p, i) => {
      this.regCharts.add(holders[i], { title: title(p.sample), lines: this.lines(p.series) }, this.view());
      this.remember("regularization", p.series);
    });
  }

  /** The block the histogram view shows, or null when it is closed or nothing fits. */
  histogramTarget() {
    const layer = this.currentLayer();
    if (!this.state.histOpen || !layer || this.activationsView) return null;
    const runs = this.visibleRuns().filter((r) => layer.histogramRuns.includes(r));
    if (runs.length === 0) return null;
    const run = runs.includes(this.state.histRun) ? this.state.histRun : runs[0];
    const parts = weightParts(layer);
    const part = parts.includes(this.state.histPart) ? this.state.histPart : parts[0];
    const gate = layer.gates.includes(this.state.histGate) ? this.state.histGate : layer.gates[0];
    return { runs, run, layer: layer.layer, parts, gates: layer.gates, part, gate };
  }

  openHistogram(part, gate) {
    this.update({ histOpen: true, histPart: part, histGate: gate }, () => {
      this.renderHistogramControls();
      this.loadHistogram();
      this.hist.scrollIntoView({ block: "nearest", behavior: "smooth" });
    });
  }

  /** Shows the histogram view when it has a target, else the button that opens it (when it could). */
  showHistogramSection(target) {
    const layer = this.currentLayer();
    this.hist.hidden = !target;
    this.histButton.hidden = Boolean(target) || !layer || !this.visibleRuns().some((r) => layer.histogramRuns.includes(r));
  }

  renderHistogramControls() {
    const t = this.histogramTarget();
    this.showHistogramSection(t);
    if (!t) return;
    const change = (key) => (value) => this.update({ [key]: value }, () => {
      this.renderHistogramControls();
      this.loadHistogram();
    });
    const pairs = (xs) => xs.map((x) => [x, x]);
    this.histHeader.replaceChildren(
      el("h2", { text: "Histogram" }),
      select(pairs(t.runs), t.run, change("histRun"), { class: "hist-run", title: "Run" }),
      select(pairs(t.parts), t.part, change("histPart"), { class: "hist-part", title: "Part" }),
      select(pairs(t.gates), t.gate, change("histGate"), { class: "hist-gate", title: "Gate" }),
      select([["offset", "offset"], ["heatmap", "heat map"]], this.state.histMode, (value) => this.update({ histMode: value }, this.drawHistogram), {
        class: "hist-mode",
        title: "Mode",
      }),
      this.histReadout,
      el("button", {
        type: "button",
        class: "close",
        text: "Close",
        onclick: () => this.update({ histOpen: false }, this.loadHistogram),
      }),
    );
  }

  drawHistogram() {
    const data = this.histData;
    if (this.hist.hidden || !data || data.histograms.length === 0) {
      this.histCanvas.hidden = true;
      return;
    }
    this.histCanvas.hidden = false;
    this.histLocate = drawHistograms(this.histCanvas, data.histograms, { mode: this.state.histMode, color: this.colorOf(data.run), dark: this.theme.dark });
  }

  // ---- activations ------------------------------------------------------

  async loadActivations() {
    if (!this.activationsView) return;
    const layer = this.currentLayer();
    const runs = layer ? this.visibleRuns().filter((r) => layer.probeRuns.includes(r)) : [];
    const stats = layer ? ACTIVATION_ROWS.filter((s) => layer.stats.includes(s)) : [];
    if (runs.length === 0 || stats.length === 0) {
      this.requests.act++;
      this.actData = null;
      delete this.seen.act;
      this.renderActivations();
      return;
    }
    // One series request per statistic, each for the runs that have it.
    const requests = stats
      .map((stat) => [stat, this.runsWithStat(layer, stat, runs)])
      .filter(([, statRuns]) => statRuns.length)
      .map(([stat, statRuns]) => getJSON("series", [["layer", layer.layer], ["stat", stat], ...runParams(statRuns)]));
    const result = await this.fetchLatest("act", () => Promise.all(requests));
    if (!result) return;
    this.showError(result.error);
    const data = result.data && {
      layer: layer.layer,
      series: result.data.flatMap((d) => d.series.filter((s) => s.part === ACTIVATION).map((s) => ({ layer: d.layer, stat: d.stat, ...s }))),
    };
    if (!this.changed("act", data)) return;
    this.actData = data || null;
    this.renderActivations();
  }

  renderActivations() {
    this.actCharts.destroy();
    this.shown = this.shown.filter((s) => s.section !== "activations");
    const layer = this.currentLayer();
    this.actGrid.replaceChildren();
    this.actTitle.replaceChildren();
    if (!layer) return;
    this.actTitle.append(
      el("span", { class: "layer-name", text: layer.layer }),
      el("span", { class: "subtitle", text: ` ${layer.cell} · gate activations on the probe` }),
    );
    this.actEmpty.hidden = layer.probeRuns.length > 0;
    if (!this.actEmpty.hidden) return;
    const data = this.actData && this.actData.layer === layer.layer ? this.actData : null;
    if (!data || data.series.length === 0) {
      const probed = this.visibleRuns().some((r) => layer.probeRuns.includes(r));
      const message = probed ? "No data for the selected runs." : "No selected run has a probe for this layer.";
      this.actGrid.replaceChildren(el("p", { class: "message", text: message }));
      return;
    }
    this.drawGrid(this.actGrid, this.actCharts, "activations", {
      rows: ACTIVATION_ROWS.filter((stat) => layer.stats.includes(stat)),
      rowKey: "stat",
      rowTitles: ROW_TITLES,
      gates: layer.gates,
      seriesAt: (stat, gate) => data.series.filter((s) => s.stat === stat && s.gate === gate),
    });
  }

  /** The run, layer and gate the activation map shows, or null when nothing fits. */
  mapTarget() {
    const layer = this.currentLayer();
    if (!this.activationsView || !layer) return null;
    const runs = this.visibleRuns().filter((r) => layer.mapRuns.includes(r));
    if (runs.length === 0) return null;
    const run = runs.includes(this.state.actRun) ? this.state.actRun : runs[0];
    const gate = layer.gates.includes(this.state.actGate) ? this.state.actGate : layer.gates[0];
    return { runs, run, layer: layer.layer, gates: layer.gates, gate };
  }

  renderMapControls() {
    const t = this.mapTarget();
    this.map.hidden = !t;
    if (!t) return;
    const change = (key) => (value) => this.update({ [key]: value }, () => {
      this.renderMapControls();
      this.loadMap();
    });
    const pairs = (xs) => xs.map((x) => [x, x]);
    this.mapStep = el("input", { type: "range", class: "map-step", min: 0, step: 1, oninput: () => this.onMapStep() });
    this.mapStepLabel = el("output", { class: "map-step-label" });
    this.mapHeader.replaceChildren(
      el("h2", { text: "Activation map" }),
      select(pairs(t.runs), t.run, change("actRun"), { class: "map-run", title: "Run" }),
      select(pairs(t.gates), t.gate, change("actGate"), { class: "map-gate", title: "Gate" }),
      el("label", { class: "slider map-slider", title: "Step" }, el("span", { class: "label", text: "step" }), this.mapStep, this.mapStepLabel),
      this.mapReadout,
    );
    this.syncMapStep();
  }

  /** Sets the step slider to the steps and the step of the map shown. */
  syncMapStep() {
    if (!this.mapStep) return;
    const steps = this.mapData ? this.mapData.steps : [];
    const i = this.mapData ? steps.indexOf(this.mapData.step) : 0;
    this.mapStep.max = String(Math.max(0, steps.length - 1));
    this.mapStep.value = String(i);
    this.mapStep.disabled = steps.length < 2;
    this.mapStepLabel.textContent = this.mapData ? String(this.mapData.step) : "";
  }

  onMapStep() {
    const steps = this.mapData ? this.mapData.steps : [];
    const i = Number(this.mapStep.value);
    if (!(i in steps)) return;
    this.mapStepLabel.textContent = String(steps[i]);
    // The last step follows new steps as training goes on.
    this.update({ actStep: i === steps.length - 1 ? -1 : steps[i] }, this.loadMap);
  }

  async loadMap() {
    const t = this.mapTarget();
    if (!t) {
      this.requests.map++;
      this.mapData = null;
      delete this.seen.map;
      this.drawMap();
      return;
    }
    const key = `${t.run}\u0000${t.layer}`;
    const known = this.mapSteps.get(key);
    const step = this.state.actStep;
    const params = [["run", t.run], ["layer", t.layer], ["gate", t.gate]];
    // Only a step the route listed: any other would answer 404 (a console error). Without one, the latest.
    if (known && known.includes(step)) params.push(["step", String(step)]);
    const result = await this.fetchLatest("map", () => getJSON("activation_map", params));
    if (!result) return;
    if (result.data) {
      this.mapSteps.set(key, result.data.steps);
      if (!known && result.data.steps.includes(step) && result.data.step !== step) return this.loadMap();
    }
    if (!this.changed("map", result.data ?? result.error.message)) return;
    this.mapData = result.data || null;
    this.mapMessage.textContent = result.error
      ? result.error.status === 404
        ? "No activation map for this gate in this run."
        : `Could not load the activation map: ${result.error.message}`
      : `${this.mapData.gate} gate on the probe's first sequence at step ${this.mapData.step}; hatched time steps are masked.`;
    this.drawMap();
  }

  drawMap() {
    this.syncMapStep();
    if (this.map.hidden || !this.mapData) {
      this.mapCanvas.hidden = true;
      return;
    }
    this.mapCanvas.hidden = false;
    this.mapLocate = drawActivationMap(this.mapCanvas, this.mapData, { dark: this.theme.dark });
  }

  // ---- downloads --------------------------------------------------------

  download(format) {
    const layer = this.currentLayer();
    const what = this.activationsView ? "activations" : this.currentStat(layer) || "penalties";
    const name = layer ? `lstm_gates_${layer.layer.replace(/[^\w.-]+/g, "_")}_${what}` : "lstm_gates";
    if (format === "csv") saveFile(`${name}.csv`, toCSV(this.shown), "text/csv");
    else saveFile(`${name}.json`, JSON.stringify({ smoothing: this.state.smoothing, series: this.shown }, null, 1), "application/json");
  }
}

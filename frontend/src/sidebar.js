// The sidebar, as in TensorBoard's dashboards: settings (layer, statistic,
// parts, smoothing, scale, reload, downloads) above the run list.
import { el, select } from "./dom.js";
import { statLogScale, statName } from "./contract.js";
import { headSiblings, runListSummary, weightParts, withRunsShown } from "./model.js";

// Typing in the run filter redraws the run list at once, and asks for the charts of the runs it lets
// through once typing pauses: each request reads every listed run, hundreds in a sweep.
const FILTER_PAUSE_MS = 250;

/** A control under its visible name. */
const field = (name, control) => el("label", { class: "field" }, el("span", { class: "label", text: name }), control);

export class Sidebar {
  /** @param app the tab (app.js) */
  constructor(app) {
    this.app = app;
    const { state } = app;
    this.controls = el("div", { class: "controls" });
    // One listener for every run's checkbox, however many runs are listed.
    this.runList = el("ul", {
      class: "run-list",
      onchange: (e) => e.target.dataset.run !== undefined && this.toggleRuns([e.target.dataset.run], e.target.checked),
    });
    this.runCount = el("span", { class: "run-count" });
    this.runToggle = el("input", {
      type: "checkbox",
      title: "Show or hide all listed runs",
      onchange: () => this.toggleAllRuns(this.runToggle.checked),
    });
    const filter = el("input", {
      type: "search",
      class: "run-filter",
      placeholder: "Filter runs (regex)",
      "aria-label": "Filter runs (regex)",
      props: { value: state.runFilter },
      oninput: () => {
        app.update({ runFilter: filter.value }, () => this.renderRunList());
        clearTimeout(this.filterTimer);
        this.filterTimer = setTimeout(() => app.onRunsChanged(), FILTER_PAUSE_MS);
      },
    });
    const smoothingValue = el("output", { text: state.smoothing.toFixed(2) });
    const smoothing = el("input", {
      type: "range",
      min: 0,
      max: 0.99,
      step: 0.01,
      props: { value: String(state.smoothing) },
      oninput: () => {
        smoothingValue.textContent = Number(smoothing.value).toFixed(2);
        app.update({ smoothing: Number(smoothing.value) }, () => app.redraw());
      },
    });
    const checkbox = (key, label, then) =>
      el(
        "label",
        { class: "check" },
        el("input", {
          type: "checkbox",
          props: { checked: state[key] },
          onchange: (e) => app.update({ [key]: e.target.checked }, then),
        }),
        label,
      );
    const settings = el(
      "section",
      { class: "settings" },
      el("h3", { text: "Settings" }),
      this.controls,
      field("Smoothing", el("div", { class: "slider" }, smoothing, smoothingValue)),
      (this.logScale = checkbox("logScale", "Log scale", () => app.redraw())),
      el(
        "div",
        { class: "buttons" },
        el("button", { type: "button", class: "reload", text: "Reload", onclick: () => app.reload() }),
        checkbox("autoReload", "Auto-reload (30 s)", () => app.setAutoReload(app.state.autoReload)),
      ),
      el(
        "div",
        { class: "buttons" },
        el("span", { class: "label", text: "Download" }),
        el("button", { type: "button", text: "CSV", onclick: () => app.download("csv") }),
        el("button", { type: "button", text: "JSON", onclick: () => app.download("json") }),
      ),
    );
    const runButtons = el(
      "div",
      { class: "buttons run-buttons" },
      el("button", { type: "button", class: "runs-all", title: "Show every run the filter lets through", text: "All", onclick: () => this.toggleAllRuns(true) }),
      el("button", { type: "button", class: "runs-none", title: "Hide every run the filter lets through", text: "None", onclick: () => this.toggleAllRuns(false) }),
      this.runCount,
    );
    const runs = el("section", { class: "runs" }, el("h3", {}, el("label", { class: "check" }, this.runToggle, "Runs")), filter, runButtons, this.runList);
    this.element = el("aside", { class: "sidebar" }, settings, runs);
  }

  /** The layer selector and, in the Weights view, the statistic and the part toggles. */
  renderControls() {
    const { app } = this;
    const { model, state } = app;
    const layer = model.currentLayer(state);
    if (!layer) {
      this.controls.replaceChildren();
      return;
    }
    const chooseLayer = (value) => app.update({ layer: value }, () => app.onLayerChanged());
    const layerField = field(
      "Layer",
      select(
        model.layers.map((l) => [l.layer, `${l.layer} (${l.cell})`]),
        layer.layer,
        chooseLayer,
        { class: "layer-select" },
      ),
    );
    // A layer with heads (xLSTM's sLSTM logs each head as a layer): its heads side by side in one selector.
    const heads = headSiblings(model.layers, layer);
    const layerSelect = heads.length
      ? el(
          "div",
          { class: "layer-fields" },
          layerField,
          field(
            "Head",
            select(
              heads.map((h) => [h.layer, `head ${h.head} of ${layer.heads.count}`]),
              layer.layer,
              chooseLayer,
              { class: "head-select" },
            ),
          ),
        )
      : layerField;
    // The Activations and Text views show every activation statistic and gate, and the Overview every
    // layer: only the layer is chosen.
    if (state.view !== "weights") {
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
          props: { checked: !state.hiddenParts.includes(part) },
          onchange: (e) => {
            const hidden = new Set(app.state.hiddenParts);
            e.target.checked ? hidden.delete(part) : hidden.add(part);
            app.update({ hiddenParts: [...hidden] }, () => app.redraw());
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
          model.weightStats(layer).map((s) => [s, statName(s)]),
          model.currentStat(layer, state),
          // Each statistic opens on its own scale (update ratios and gradient norms span decades); the box then overrides it.
          (value) => app.update({ stat: value, logScale: statLogScale(value) }, () => this.onScaleChosen()),
          { class: "stat-select" },
        ),
      ),
      el("div", { class: "field", role: "group", "aria-label": "Parts" }, el("span", { class: "label", text: "Parts" }), el("div", { class: "parts" }, parts)),
    );
  }

  /** Shows the scale the chosen statistic opens on, and loads its charts. */
  onScaleChosen() {
    this.logScale.querySelector("input").checked = this.app.state.logScale;
    this.app.weights.load();
  }

  /** The runs that pass the filter, each with its colour and a checkbox that shows or hides it. */
  renderRunList() {
    const { model, state } = this.app;
    const hidden = new Set(state.hiddenRuns);
    const listed = model.listedRuns(state);
    this.runList.replaceChildren(
      ...listed.map((run) =>
        el(
          "li",
          {},
          el(
            "label",
            { class: "check run", title: run },
            el("input", { type: "checkbox", "data-run": run, props: { checked: !hidden.has(run) } }),
            el("span", { class: "swatch", style: `background:${this.app.colorOf(run)}` }),
            el("span", { class: "run-name", text: run }),
          ),
        ),
      ),
    );
    if (listed.length === 0 && model.runNames.length > 0) {
      this.runList.append(el("li", { class: "message", text: "No run matches the filter." }));
    }
    const summary = runListSummary(model.runNames.length, listed, hidden);
    this.runCount.textContent = summary.text;
    this.runToggle.checked = summary.all;
    this.runToggle.indeterminate = summary.some;
  }

  toggleAllRuns(visible) {
    this.toggleRuns(this.app.model.listedRuns(this.app.state), visible);
  }

  toggleRuns(runs, visible) {
    this.app.update({ hiddenRuns: withRunsShown(this.app.state.hiddenRuns, runs, visible) }, () => this.app.onRunsChanged());
  }
}

// The Findings panel at the top of the tab: what the rules of
// tb_lstm_gates.findings (the `findings` route, the same rules as
// `tb-lstm-gates report`) say about each run, counts by severity per run and
// the findings themselves. Clicking a finding shows its chart and marks its
// first step there.
import { getJSON } from "../api.js";
import { el, formatValue } from "../dom.js";
import { LatestRequest } from "../latest.js";
import { contract } from "../contract.js";
import { runMatcher } from "../model.js";

export const SEVERITIES = ["error", "warning", "info"];

/** The block a finding is about, as the list shows it: `part · gate`, or the model's total. */
export const findingBlock = (f) => (f.layer === contract.model_layer ? contract.total : `${f.part} · ${f.gate}`);

/** The view showing a finding's chart: the probe's statistics in Activations, the rest (with penalties) in Weights. */
export const findingView = (f) => (f.part === contract.activation ? "activations" : "weights");

/**
 * Whether the chart of `chart` ({layer, stat, part, gate}: one series of the
 * `series` or `regularization` route) is the one to mark for finding `f`.
 * The Activations grid splits `saturated` into its low and high rows: both are marked.
 */
export function marks(f, chart) {
  if (!f || f.layer !== chart.layer || f.part !== chart.part || f.gate !== chart.gate) return false;
  return f.stat === chart.stat || (f.stat === "saturated" && /^saturated_(low|high)$/.test(chart.stat));
}

/**
 * The changes to the selection (state.js) that show finding `f`'s chart: its
 * view, run (shown, and let through the run filter), layer, and statistic or
 * gate. A `regularization_dominates` finding (layer `model`) keeps the layer:
 * the model's penalty chart is under every layer's grid.
 */
export function findingSelection(f, state) {
  const view = findingView(f);
  const changes = { view, hiddenRuns: state.hiddenRuns.filter((r) => r !== f.run) };
  if (!runMatcher(state.runFilter)(f.run)) changes.runFilter = "";
  if (f.layer === contract.model_layer) return changes;
  changes.layer = f.layer;
  if (view === "activations") return { ...changes, actRun: f.run, actGate: f.gate, satGate: f.gate };
  return { ...changes, stat: f.stat, hiddenParts: state.hiddenParts.filter((p) => p !== f.part), histRun: f.run };
}

/** The counts table's rows: [run, error, warning, info], runs with findings first, then by name. */
export function countRows(counts) {
  const total = (c) => SEVERITIES.reduce((n, s) => n + c[s], 0);
  return [...counts]
    .sort((a, b) => (total(b) > 0) - (total(a) > 0) || a.run.localeCompare(b.run))
    .map((c) => [c.run, ...SEVERITIES.map((s) => c[s])]);
}

/** The panel's headline: how many findings of each severity, over how many runs, and how many runs are still being checked. */
export function summary(data) {
  const runs = data.counts.length;
  const of = runs === 1 ? "1 run" : `${runs} runs`;
  const pending = (data.pending || []).length;
  if (runs === 0 && pending) return `Checking ${pending} run${pending === 1 ? "" : "s"}…`;
  const checking = pending ? ` Checking ${pending} more run${pending === 1 ? "" : "s"}…` : "";
  if (data.findings.length === 0) return `No findings in ${of}.${checking}`;
  const parts = SEVERITIES.map((s) => [s, data.findings.filter((f) => f.severity === s).length])
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}${n === 1 ? "" : "s"}`);
  return `${parts.join(", ")} in ${of}.${checking}`;
}

// While the route lists runs as pending, the panel asks again this often: the server checks them
// meanwhile, and each poll's listing would take the checking thread's time.
export const POLL_MS = 1000;

/** A finding's identity, to tell which row is selected across reloads. */
export const findingKey = (f) => [f.run, f.layer, f.part, f.gate, f.rule].join("\u0000");

export class FindingsView {
  /** @param app the tab (app.js); it calls `onSelect(finding)` (app.selectFinding) on a click */
  constructor(app, onSelect) {
    this.app = app;
    this.onSelect = onSelect;
    this.latest = new LatestRequest();
    this.data = null;
    this.selected = null;
    this.headline = el("span", { class: "findings-headline" });
    this.body = el("div", { class: "findings-body" });
    this.section = el(
      "details",
      { class: "findings", open: true },
      el("summary", {}, el("span", { class: "findings-title", text: "Findings" }), this.headline),
      this.body,
    );
  }

  /**
   * Asks for every run's findings; the tab calls it on reloads only, since the rules read every series.
   * The route checks runs for about half a second an answer: while it lists runs as `pending`, the panel
   * shows what it has and asks again, until every run is checked or a newer load starts. `onData` is
   * called after each new answer is drawn (the Overview outlines the cells with findings).
   */
  async load(onData = () => {}) {
    if (!this.data) this.render();
    if (this.app.model.runs.length === 0) {
      this.latest.clear();
      this.data = null;
      this.render();
      return;
    }
    for (;;) {
      const result = await this.latest.fetch(() => getJSON("findings"));
      if (!result) return;
      if (result.error) {
        this.headline.textContent = ` · could not load: ${result.error.message}`;
        return;
      }
      if (this.latest.isNew(result.data)) {
        this.data = result.data;
        this.render();
        onData();
      }
      if (!(result.data.pending || []).length) return;
      const id = this.latest.id;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      // A newer load (a reload) took over meanwhile.
      if (id !== this.latest.id) return;
    }
  }

  render() {
    this.section.hidden = this.app.model.empty;
    if (this.section.hidden) return;
    const data = this.data;
    // Nothing to list (the runs still being checked, or no finding): the panel is its headline alone, one
    // line, so a healthy sweep keeps its charts in view; the list opens when the first finding comes.
    this.body.hidden = !data || data.findings.length === 0;
    if (!data) {
      this.headline.textContent = " · checking the runs…";
      this.body.replaceChildren();
      return;
    }
    this.headline.textContent = ` · ${summary(data)}`;
    if (this.body.hidden) {
      this.body.replaceChildren();
      return;
    }
    const counts = el(
      "table",
      { class: "findings-counts" },
      el("thead", {}, el("tr", {}, el("th", { text: "run" }), SEVERITIES.map((s) => el("th", { class: `num sev-${s}`, text: s })))),
      el(
        "tbody",
        {},
        countRows(data.counts).map(([run, ...ns]) =>
          el("tr", {}, el("td", { class: "run-cell" }, el("span", { class: "swatch", style: `background:${this.app.colorOf(run)}` }), run), ns.map((n, i) => el("td", { class: `num${n ? ` sev-${SEVERITIES[i]}` : ""}`, text: String(n) }))),
        ),
      ),
    );
    const head = ["rule", "severity", "run", "layer", "part · gate", "step", "value", "message"];
    const rows = data.findings.map((f) => {
      const selected = this.selected === findingKey(f);
      return el(
        "tr",
        { class: `finding${selected ? " selected" : ""}`, "data-rule": f.rule, "data-run": f.run, onclick: () => this.select(f) },
        el("td", {}, el("button", { type: "button", class: "finding-link", title: "Show this finding's chart", "aria-pressed": String(selected), text: f.rule })),
        el("td", {}, el("span", { class: `severity sev-${f.severity}`, text: f.severity })),
        el("td", { class: "run-cell" }, el("span", { class: "swatch", style: `background:${this.app.colorOf(f.run)}` }), f.run),
        el("td", { text: f.layer }),
        el("td", { class: "finding-block", text: findingBlock(f) }),
        el("td", { class: "num", text: String(f.step) }),
        el("td", { class: "num", text: formatValue(f.value) }),
        el("td", { class: "finding-message", text: f.message }),
      );
    });
    const list = el("div", { class: "findings-list" }, el("table", {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", { text: h })))), el("tbody", {}, rows)));
    this.body.replaceChildren(el("div", { class: "findings-runs" }, counts), list);
  }

  select(f) {
    this.selected = findingKey(f);
    this.render();
    this.onSelect(f);
  }
}

// The Overview: every recurrent cell of the model on one screen. Rows are
// the layers in the model's order, columns their gates; each cell is a
// sparkline of the chosen statistic over training for the shown runs, outlined
// in the colour of the worst finding on that gate. A click opens the layer in
// the Weights view.
import { getJSON, runParams } from "../api.js";
import { drawSparkline } from "../charts/sparkline.js";
import { contract, statLogScale, statName } from "../contract.js";
import { el, formatValue, labelled, select } from "../dom.js";
import { LatestRequest } from "../latest.js";
import { SEVERITIES } from "./findings.js";

/** The worst severity of `findings` on `gate` of `layer` among `runs`, or null. */
export function worstSeverity(findings, layer, gate, runs) {
  const found = (findings || []).filter((f) => f.layer === layer && f.gate === gate && runs.includes(f.run));
  return SEVERITIES.find((s) => found.some((f) => f.severity === s)) || null;
}

/** The part a row shows: the chosen one if the layer has it, else its recurrent part, else its first. */
export const rowPart = (row, chosen) => (row.parts.includes(chosen) ? chosen : row.parts.includes("recurrent") ? "recurrent" : row.parts[0]);

/** The chosen statistic if some layer has it, else `l2`, else the first the Overview can show. */
export const overviewStat = (stats, chosen) => (stats.includes(chosen) ? chosen : stats.includes("l2") ? "l2" : stats[0]);

export class OverviewView {
  /** @param app the tab (app.js) */
  constructor(app) {
    this.app = app;
    this.latest = new LatestRequest();
    this.data = null;
    this.header = el("div", { class: "overview-controls" });
    this.description = el("p", { class: "stat-description" });
    this.grid = el("div", { class: "overview-grid" });
    this.section = el("section", { class: "overview", hidden: true }, this.header, this.description, this.grid);
  }

  get shown() {
    return this.app.state.view === "overview" && !this.app.model.empty;
  }

  async load() {
    const { model, state } = this.app;
    this.section.hidden = !this.shown;
    if (!this.shown) return;
    const runs = model.visibleRuns(state);
    const stat = overviewStat(model.overviewStats(runs), state.overviewStat);
    const rows = stat ? model.overviewRows(stat, runs) : [];
    const asked = rows.map((row) => [row, row.runs.filter((r) => runs.includes(r) && row.infos[row.runs.indexOf(r)].stats.includes(stat))]);
    const result = await this.latest.fetch(() =>
      Promise.all(asked.map(([row, rs]) => (rs.length ? getJSON("series", [["layer", row.layer], ["stat", stat], ...runParams(rs)]) : { layer: row.layer, stat, series: [] }))),
    );
    if (!result) return;
    this.app.showError(result.error);
    const data = result.data ? { stat, answers: result.data } : null;
    if (!this.latest.isNew(data)) return;
    this.data = data;
    this.render();
  }

  render() {
    const { model, state } = this.app;
    this.section.hidden = !this.shown;
    if (this.section.hidden) return;
    const stats = model.overviewStats(model.visibleRuns(state));
    const stat = overviewStat(stats, state.overviewStat);
    const rows = stat ? model.overviewRows(stat, model.visibleRuns(state)) : [];
    const parts = [...new Set(rows.flatMap((r) => r.parts))];
    this.header.replaceChildren(
      el("h2", { text: "Overview" }),
      labelled("Statistic", select(stats.map((s) => [s, statName(s)]), stat || "", (value) => this.app.update({ overviewStat: value }, () => this.load()), { class: "overview-stat" })),
      labelled("Part", select(parts.map((p) => [p, p]), parts.includes(state.overviewPart) ? state.overviewPart : rowPart({ parts }, ""), (value) => this.app.update({ overviewPart: value }, () => this.render()), { class: "overview-part" })),
    );
    this.description.textContent = stat ? `${statName(stat)} over training, per layer (in the model's order) and gate; outlined: a finding. Click a cell to open its layer.` : "";
    const answers = new Map((this.data && this.data.stat === stat ? this.data.answers : []).map((a) => [a.layer, a]));
    const visible = model.visibleRuns(state);
    const findings = this.app.findings.data ? this.app.findings.data.findings : [];
    const logScale = statLogScale(stat);
    this.draws = [];
    this.grid.replaceChildren(
      ...rows.map((row) => {
        const part = rowPart(row, state.overviewPart);
        const series = (answers.get(row.layer)?.series || []).filter((s) => s.part === part && visible.includes(s.run));
        return el(
          "div",
          { class: "overview-row", "data-layer": row.layer },
          el("div", { class: "overview-layer", title: row.layer }, el("span", { class: "name", text: row.layer }), el("span", { class: "cell", text: `${row.cell} · ${part}` })),
          ...row.gates.map((gate) => {
            const lines = series.filter((s) => s.gate === gate).map((s) => ({ color: this.app.colorOf(s.run), steps: s.steps, values: s.values }));
            const severity = worstSeverity(findings, row.layer, gate, visible);
            const canvas = el("canvas", { class: "spark" });
            const last = lines.length ? lines[0].values[lines[0].values.length - 1] : null;
            const cell = el(
              "button",
              {
                type: "button",
                class: `overview-cell${severity ? ` finding sev-outline-${severity}` : ""}`,
                "data-gate": gate,
                "data-lines": String(lines.length),
                title: `${row.layer} · ${part} · ${gate}: open in Weights`,
                onclick: () => this.open(row.layer),
              },
              el("span", { class: "overview-gate", text: gate }),
              el("span", { class: "overview-last", text: lines.length ? formatValue(last) : "no data" }),
              canvas,
            );
            this.draws.push(() => drawSparkline(canvas, lines, { logScale }));
            return cell;
          }),
        );
      }),
    );
    if (rows.length === 0) this.grid.append(el("p", { class: "message", text: `No layer has ${statName(stat)}.` }));
    // Canvases take their width once laid out.
    requestAnimationFrame(() => this.redrawSparklines());
  }

  redrawSparklines() {
    for (const draw of this.draws || []) draw();
  }

  /** Opens `layer` in the Weights view. */
  open(layer) {
    const { model, state } = this.app;
    const stat = overviewStat(model.overviewStats(model.visibleRuns(state)), state.overviewStat);
    const changes = { view: "weights", layer };
    if (contract.weight_stats.includes(stat)) changes.stat = stat;
    this.app.update(changes, () => {
      this.app.onViewChanged();
      this.app.regularization.render();
    });
  }

  resize() {
    if (this.shown) this.redrawSparklines();
  }
}

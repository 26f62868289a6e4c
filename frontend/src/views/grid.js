// Small multiples shared by the Weights and Activations views: a row per
// part or statistic, a column per gate, one line per run in each chart.
import { el } from "../dom.js";

/** The series of one chart of the grid: those of `row` (matched on `rowKey`) and `gate`. */
export const cellSeries = (series, rowKey, row, gate) => series.filter((s) => s[rowKey] === row && s.gate === gate);

/**
 * Draws the grid into `grid` with the charts of `charts` (a ChartGroup);
 * `seriesAt(row, gate)` gives a chart's series, `onClick(row, gate)` (optional)
 * what clicking a chart does, `markAt(row, gate)` (optional) the step to mark
 * on a chart or null, `unit` what the steps count (the x axes' name). Returns the series drawn, for the downloads.
 *
 * @param app the tab (app.js): run colours and chart settings
 */
export function drawGrid(app, grid, charts, { rows, rowKey, rowTitles = {}, gates, seriesAt, onClick, markAt, unit }) {
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
  // Charts are added once the holders are in the document, so they have a width.
  grid.replaceChildren(...cells);
  const drawn = [];
  for (const [holder, row, gate, series] of holders) {
    const panel = { title: `${row} · ${gate}`, lines: app.lines(series), unit };
    if (onClick) panel.onClick = () => onClick(row, gate);
    if (markAt) panel.mark = markAt(row, gate);
    charts.add(holder, panel, app.chartView());
    drawn.push(...series);
  }
  return drawn;
}

// Small line charts (uPlot) that share one cursor: hovering a step in one
// chart moves the cursor in all charts of the group, and a tooltip lists
// every run's value at that step in the hovered chart.
import uPlot from "uplot";
import { el, formatValue } from "../dom.js";
import { smooth } from "../smoothing.js";
import { withAlpha } from "../colors.js";
import { FONT } from "./canvas.js";
import { formatLogTicks, formatTicks } from "./ticks.js";

const HEIGHT = 170;
// Steps are integers: ticks at 1, 2, 5, 10, 20, 50, ... steps apart.
const STEP_INCREMENTS = Array.from({ length: 30 }, (_, i) => [1, 2, 5][i % 3] * 10 ** Math.floor(i / 3));

/**
 * Aligns lines on the union of their steps, smooths each line over its own
 * points first (so smoothing does not depend on other runs' steps), and
 * applies the log scale by dropping values <= 0, as TensorBoard does. Without
 * a positive value there is nothing to put on a log scale: the lines keep
 * their values on a linear one (dropping them all would leave an empty 0-100 axis).
 *
 * @param lines [{run, color, steps, values}]
 * @returns {{xs, raw: Array[], smoothed: Array[], log: boolean}}
 */
function alignLines(lines, smoothing, logScale) {
  const xs = [...new Set(lines.flatMap((l) => l.steps))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const log = logScale && lines.some((line) => line.values.some((v) => v > 0));
  const keep = (v) => (v == null || (log && !(v > 0)) ? null : v);
  const raw = [];
  const smoothed = [];
  for (const line of lines) {
    const r = new Array(xs.length).fill(null);
    const s = new Array(xs.length).fill(null);
    const sm = smooth(line.values, smoothing);
    line.steps.forEach((step, i) => {
      const j = index.get(step);
      r[j] = keep(line.values[i]);
      s[j] = keep(sm[i]);
    });
    raw.push(r);
    smoothed.push(s);
  }
  return { xs, raw, smoothed, log };
}

/** uPlot's own y range, except that all zeros (no saturation, no non-finite values) read 0..1, not 0..100. */
const yRange = (u, min, max) => (min === 0 && max === 0 ? [0, 1] : uPlot.rangeNum(min, max, 0.1, true));

export const MARK_COLOR = "#f57c00";

/** A dashed vertical line at `step` across the plot area (nothing when the step is off the x range). */
function drawMark(u, step) {
  const { left, top, width, height } = u.bbox;
  const x = Math.round(u.valToPos(step, "x", true));
  if (!(x >= left && x <= left + width)) return;
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = MARK_COLOR;
  ctx.lineWidth = 2 * uPlot.pxRatio;
  ctx.setLineDash([4 * uPlot.pxRatio, 3 * uPlot.pxRatio]);
  ctx.beginPath();
  ctx.moveTo(x, top);
  ctx.lineTo(x, top + height);
  ctx.stroke();
  ctx.restore();
}

export class ChartGroup {
  /** @param theme {{dark: boolean}} */
  constructor(theme) {
    this.theme = theme;
    this.syncKey = `lstm-gates-${Math.random().toString(36).slice(2)}`;
    this.charts = [];
    this.tooltip = el("div", { class: "tooltip", hidden: true });
    document.body.append(this.tooltip);
  }

  /**
   * Draws one chart into `holder` (already in the document, so it has a width).
   *
   * @param panel {{title?: string, lines: Array, onClick?: Function, mark?: number, unit?: string}}: `mark`, a
   *   step to mark with a vertical line (a finding's first step), the holder then gets the class `marked`;
   *   `unit`, what the steps count (epoch, batch, global step; default step), names the x axis
   * @param view {{smoothing: number, logScale: boolean}}
   */
  add(holder, panel, view) {
    const { lines } = panel;
    const aligned = alignLines(lines, view.smoothing, view.logScale);
    const log = aligned.log;
    const smoothing = view.smoothing > 0;
    const dark = this.theme.dark;
    const axisColor = dark ? "#bbb" : "#555";
    const gridColor = dark ? "rgba(255,255,255,0.08)" : "rgba(0,0,0,0.07)";
    const axis = {
      stroke: axisColor,
      font: FONT,
      grid: { stroke: gridColor, width: 1 },
      ticks: { stroke: gridColor, width: 1, size: 4 },
    };
    const series = [{}];
    const data = [aligned.xs];
    lines.forEach((line, i) => {
      if (smoothing) {
        series.push({ stroke: withAlpha(line.color, 0.25), width: 1, spanGaps: true, points: { show: false } });
        data.push(aligned.raw[i]);
      }
      series.push({ stroke: line.color, width: 1.5, spanGaps: true, points: { show: aligned.xs.length < 3 } });
      data.push(smoothing ? aligned.smoothed[i] : aligned.raw[i]);
    });
    const opts = {
      width: Math.max(120, holder.clientWidth),
      height: HEIGHT,
      legend: { show: false },
      cursor: {
        sync: { key: this.syncKey, setSeries: false },
        drag: { x: true, y: false },
        points: { size: 5 },
      },
      scales: { x: { time: false }, y: log ? { distr: 3 } : { range: yRange } },
      axes: [
        { ...axis, size: 24, incrs: STEP_INCREMENTS, label: panel.unit || "step", labelSize: 14, labelFont: FONT },
        // uPlot passes null for the log ticks it leaves unlabelled, so labels do not overlap.
        { ...axis, size: 52, values: (u, ticks) => (log ? formatLogTicks(ticks) : formatTicks(ticks)) },
      ],
      series,
      hooks: {
        setCursor: [(u) => this.showTooltip(u, panel, aligned, smoothing)],
        draw: panel.mark == null ? [] : [(u) => drawMark(u, panel.mark)],
      },
    };
    const chart = new uPlot(opts, data, holder);
    chart.over.addEventListener("mouseenter", () => (this.hovered = chart));
    chart.over.addEventListener("mouseleave", () => {
      this.hovered = null;
      this.tooltip.hidden = true;
    });
    if (panel.onClick) {
      chart.over.addEventListener("click", () => panel.onClick());
      chart.over.style.cursor = "pointer";
    }
    chart.holder = holder;
    this.charts.push(chart);
    holder.classList.toggle("marked", panel.mark != null);
    if (panel.mark != null) holder.dataset.markStep = String(panel.mark);
    else delete holder.dataset.markStep;
    if (view.logScale && !log) {
      holder.append(el("div", { class: "chart-note", text: "no positive values: linear scale" }));
    }
    return chart;
  }

  showTooltip(u, panel, aligned, smoothing) {
    if (u !== this.hovered) return;
    const idx = u.cursor.idx;
    if (idx == null) {
      this.tooltip.hidden = true;
      return;
    }
    const rows = panel.lines.map((line, i) =>
      el(
        "tr",
        {},
        el("td", {}, el("span", { class: "swatch", style: `background:${line.color}` })),
        el("td", { class: "name", text: line.run }),
        el("td", { class: "num", text: formatValue((smoothing ? aligned.smoothed : aligned.raw)[i][idx]) }),
        smoothing ? el("td", { class: "num raw", text: formatValue(aligned.raw[i][idx]) }) : null,
      ),
    );
    const head = el(
      "tr",
      {},
      el("th", { colspan: 2, text: `${panel.title ? panel.title + " · " : ""}${panel.unit || "step"} ${aligned.xs[idx]}` }),
      el("th", { class: "num", text: smoothing ? "smoothed" : "value" }),
      smoothing ? el("th", { class: "num", text: "value" }) : null,
    );
    this.tooltip.replaceChildren(el("table", {}, el("thead", {}, head), el("tbody", {}, rows)));
    this.tooltip.hidden = false;
    const box = u.over.getBoundingClientRect();
    const x = box.left + u.cursor.left + 16;
    const y = box.top + u.cursor.top + 16;
    const { width, height } = this.tooltip.getBoundingClientRect();
    this.tooltip.style.left = `${Math.max(4, x + width > innerWidth ? x - width - 32 : x)}px`;
    this.tooltip.style.top = `${Math.max(4, y + height > innerHeight ? y - height - 32 : y)}px`;
  }

  /** Follows the holders' widths after a layout change. */
  resize() {
    for (const chart of this.charts) {
      const width = Math.max(120, chart.holder.clientWidth);
      if (width !== chart.width) chart.setSize({ width, height: HEIGHT });
    }
  }

  destroy() {
    for (const chart of this.charts) chart.destroy();
    this.charts = [];
    this.hovered = null;
    this.tooltip.hidden = true;
  }
}

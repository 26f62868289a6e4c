// One block's histograms over steps, drawn on a canvas, in TensorBoard's
// "offset" mode (one ridge per step, later steps in front) or as a heat map
// (steps across, values up, density as colour).
import { ramp } from "../colors.js";
import { prepare } from "./canvas.js";
import { formatTicks, niceTicks } from "./ticks.js";

const MAX_RIDGES = 40;

/** Value range covered by every histogram, and the highest bucket density. */
function extent(histograms) {
  let lo = Infinity;
  let hi = -Infinity;
  let peak = 0;
  for (const h of histograms) {
    for (const [left, right, count] of h.buckets) {
      lo = Math.min(lo, left);
      hi = Math.max(hi, right);
      peak = Math.max(peak, density(left, right, count));
    }
  }
  if (!(hi > lo)) {
    const mid = Number.isFinite(lo) ? lo : 0;
    [lo, hi] = [mid - 0.5, mid + 0.5];
  }
  return { lo, hi, peak: peak || 1 };
}

// A zero-width bucket (all weights equal) is drawn as a thin spike.
const density = (left, right, count) => count / Math.max(right - left, 1e-12);

/** Evenly picks at most `n` items, keeping the first and the last. */
function thin(items, n) {
  if (items.length <= n) return items;
  return Array.from({ length: n }, (_, i) => items[Math.round((i * (items.length - 1)) / (n - 1))]);
}

/** Count of the bucket of `h` holding `value`, or 0. */
function countAt(h, value) {
  const bucket = h.buckets.find(([left, right]) => value >= left && value <= right);
  return bucket ? bucket[2] : 0;
}

/**
 * The heat map's colour bar: densities (count per unit of value) from 0 at
 * the bottom to the peak at the top, on the square-root scale of the cells.
 */
function densityLegend(ctx, { x, top, height, peak, text }) {
  const width = 12;
  for (let y = 0; y < height; y++) {
    ctx.fillStyle = ramp(1 - y / (height - 1));
    ctx.fillRect(x, top + y, width, 1);
  }
  const values = niceTicks(0, peak, 4);
  ctx.fillStyle = text;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  formatTicks(values).forEach((label, i) => ctx.fillText(label, x + width + 5, top + height - Math.sqrt(values[i] / peak) * height));
  ctx.save();
  ctx.translate(x + width + 70, top + height / 2);
  ctx.rotate(Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillText("density (count / value)", 0, 0);
  ctx.restore();
}

/**
 * @param canvas HTMLCanvasElement
 * @param histograms [{step, buckets: [[left, right, count], ...]}], by step
 * @param options {{mode: "offset"|"heatmap", color: string, dark: boolean, unit?: string}}: `unit`,
 *   what the steps count (epoch, batch, global step), names the step axis
 * @returns {(x: number, y: number) => ({step, value, count}|null)} what is
 *   under a point of the canvas (CSS pixels), for a hover readout.
 */
export function drawHistograms(canvas, histograms, { mode, color, dark, unit = "step" }) {
  // Buckets with non-finite edges or counts (sent as null) cannot be placed.
  histograms = histograms.map((h) => ({ ...h, buckets: h.buckets.filter((b) => b.every(Number.isFinite)) }));
  const text = dark ? "#ccc" : "#444";
  const grid = dark ? "rgba(255,255,255,0.15)" : "rgba(0,0,0,0.15)";
  const { lo, hi, peak } = extent(histograms);
  const steps = histograms.map((h) => h.step);
  // Room for "<unit> <step>" beside the ridges: a longer unit than "step" gets more.
  const pad = { left: 58, right: 56 + 6 * Math.max(0, unit.length - 4), top: 12, bottom: 26 };
  if (mode === "heatmap") {
    // Room for the colour legend.
    pad.right = 110;
    const { ctx, width } = prepare(canvas, 320);
    const plotW = width - pad.left - pad.right;
    const plotH = 320 - pad.top - pad.bottom;
    const colW = plotW / Math.max(1, histograms.length);
    const yOf = (v) => pad.top + plotH - ((v - lo) / (hi - lo)) * plotH;
    ctx.fillStyle = ramp(0);
    ctx.fillRect(pad.left, pad.top, plotW, plotH);
    histograms.forEach((h, i) => {
      for (const [left, right, count] of h.buckets) {
        if (!count) continue;
        // Square root keeps sparse tails visible next to a sharp peak.
        ctx.fillStyle = ramp(Math.sqrt(density(left, right, count) / peak));
        const top = yOf(right);
        ctx.fillRect(pad.left + i * colW, top, Math.ceil(colW), Math.max(1, yOf(left) - top));
      }
    });
    ctx.fillStyle = text;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const values = niceTicks(lo, hi, 4);
    formatTicks(values).forEach((label, i) => ctx.fillText(label, pad.left - 6, yOf(values[i])));
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const i of thin([...histograms.keys()], 8)) {
      ctx.fillText(String(steps[i]), pad.left + (i + 0.5) * colW, pad.top + plotH + 6);
    }
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.fillText(`${unit} →`, pad.left + plotW + 6, pad.top + plotH + 12);
    densityLegend(ctx, { x: pad.left + plotW + 16, top: pad.top, height: plotH, peak, text });
    return (x, y) => {
      const i = Math.floor((x - pad.left) / colW);
      if (i < 0 || i >= histograms.length || y < pad.top || y > pad.top + plotH) return null;
      const value = lo + ((pad.top + plotH - y) / plotH) * (hi - lo);
      return { step: steps[i], value, count: countAt(histograms[i], value) };
    };
  }
  const shown = thin(histograms, MAX_RIDGES);
  const height = 340;
  const { ctx, width } = prepare(canvas, height);
  const plotW = width - pad.left - pad.right;
  const ridge = 70;
  const plotH = height - pad.top - pad.bottom - ridge;
  const gap = shown.length > 1 ? plotH / (shown.length - 1) : 0;
  const xOf = (v) => pad.left + ((v - lo) / (hi - lo)) * plotW;
  const [r, g, b] = [1, 3, 5].map((k) => parseInt(color.slice(k, k + 2), 16));
  shown.forEach((h, i) => {
    const base = pad.top + ridge + i * gap;
    // Older steps fade, as in TensorBoard's offset view.
    const t = shown.length > 1 ? i / (shown.length - 1) : 1;
    if (h.buckets.length === 0) return;
    ctx.beginPath();
    ctx.moveTo(xOf(h.buckets[0][0]), base);
    for (const [left, right, count] of h.buckets) {
      const y = base - (density(left, right, count) / peak) * ridge;
      ctx.lineTo(xOf(left), y);
      ctx.lineTo(xOf(right), y);
    }
    ctx.lineTo(xOf(h.buckets[h.buckets.length - 1][1]), base);
    ctx.closePath();
    ctx.fillStyle = `rgba(${r},${g},${b},${0.25 + 0.6 * t})`;
    ctx.fill();
    ctx.strokeStyle = dark ? "rgba(0,0,0,0.6)" : "rgba(255,255,255,0.9)";
    ctx.lineWidth = 1;
    ctx.stroke();
  });
  ctx.strokeStyle = grid;
  ctx.beginPath();
  ctx.moveTo(pad.left, height - pad.bottom);
  ctx.lineTo(pad.left + plotW, height - pad.bottom);
  ctx.stroke();
  ctx.fillStyle = text;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const values = niceTicks(lo, hi, 5);
  formatTicks(values).forEach((label, i) => ctx.fillText(label, xOf(values[i]), height - pad.bottom + 6));
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  for (const i of thin([...shown.keys()], 8)) {
    ctx.fillText(`${unit} ${shown[i].step}`, pad.left + plotW + 6, pad.top + ridge + i * gap);
  }
  return (x, y) => {
    if (x < pad.left || x > pad.left + plotW) return null;
    // The ridge whose baseline is nearest below the pointer.
    const i = gap ? Math.min(shown.length - 1, Math.max(0, Math.ceil((y - pad.top - ridge) / gap))) : 0;
    const value = lo + ((x - pad.left) / plotW) * (hi - lo);
    return { step: shown[i].step, value, count: countAt(shown[i], value) };
  };
}

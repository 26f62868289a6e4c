// One gate's activations on the probe's first sequence: a heat map of time
// steps (across) by units (down), on a fixed colour scale (sigmoid gates
// 0..1, tanh gates -1..1) so maps compare across steps, with its legend.
// Masked (padded) time steps come as rows of null and are drawn hatched.
import { DIVERGING, DIVERGING_DARK, VIRIDIS, ramp } from "../colors.js";
import { isTanhGate } from "../contract.js";
import { hatch, prepare } from "./canvas.js";
import { formatTicks, niceTicks } from "./ticks.js";

/** The colour scale of a gate: {lo, hi, stops}. */
export function gateScale(gate, dark) {
  return isTanhGate(gate) ? { lo: -1, hi: 1, stops: dark ? DIVERGING_DARK : DIVERGING } : { lo: 0, hi: 1, stops: VIRIDIS };
}

/** A token as a one-line axis label: whitespace made visible, long tokens cut. */
export function tokenLabel(token) {
  if (token == null) return "";
  if (token === "") return "·";
  const shown = token.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "→");
  return shown.length > 6 ? `${shown.slice(0, 5)}…` : shown;
}

/** 0, k, 2k, ... below `n`, with k the smallest of 1, 2, 5, 10, 20, ... that gives at most `most` ticks. */
export function indexTicks(n, most) {
  let k = 1;
  for (let i = 0; n / k > most; i++) k = [2, 5, 10][i % 3] * 10 ** Math.floor(i / 3);
  return Array.from({ length: Math.ceil(n / k) }, (_, i) => i * k);
}

/**
 * @param canvas HTMLCanvasElement
 * @param map {{gate, time_steps, units, values: (number|null)[][], tokens: string[]|null}}
 *   as the `activation_map` route sends it: `values[t][unit]`, and the
 *   probe's tokens of the sequence, which label the time axis.
 * @param options {{dark: boolean}}
 * @returns {(x: number, y: number) => ({t, unit, value}|null)} what is under
 *   a point of the canvas (CSS pixels), for a hover readout.
 */
export function drawActivationMap(canvas, map, { dark }) {
  const { time_steps: steps, units, values } = map;
  const { lo, hi, stops } = gateScale(map.gate, dark);
  const text = dark ? "#ccc" : "#444";
  const pad = { left: 44, right: 86, top: 10, bottom: 30 };
  // About 6 px per unit, within bounds, so 4 units and 256 units both read.
  const plotH = Math.min(420, Math.max(120, units * 6));
  const height = pad.top + plotH + pad.bottom;
  const { ctx, width } = prepare(canvas, height);
  const plotW = Math.max(40, width - pad.left - pad.right);
  const cellW = plotW / Math.max(1, steps);
  const cellH = plotH / Math.max(1, units);
  const masked = hatch(ctx, dark);
  for (let t = 0; t < steps; t++) {
    const row = values[t] || [];
    const x = pad.left + t * cellW;
    for (let u = 0; u < units; u++) {
      const v = row[u];
      // Cells are drawn a pixel wider than their share, so no seams show.
      ctx.fillStyle = v == null ? masked : ramp((v - lo) / (hi - lo), stops);
      ctx.fillRect(x, pad.top + u * cellH, Math.ceil(cellW) + 0.5, Math.ceil(cellH) + 0.5);
    }
  }
  ctx.fillStyle = text;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  // With the probe's tokens, as many as fit (about 9 px each), else step numbers.
  const { tokens } = map;
  const ticks = tokens ? indexTicks(steps, Math.max(1, Math.floor(plotW / 9))) : indexTicks(steps, 12);
  for (const t of ticks) ctx.fillText(tokens ? tokenLabel(tokens[t]) : String(t), pad.left + (t + 0.5) * cellW, pad.top + plotH + 4);
  ctx.fillText(tokens ? "token →" : "time step →", pad.left + plotW / 2, pad.top + plotH + 17);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const u of indexTicks(units, 8)) ctx.fillText(String(u), pad.left - 6, pad.top + (u + 0.5) * cellH);
  ctx.save();
  ctx.translate(12, pad.top + plotH / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillText("unit", 0, 0);
  ctx.restore();

  // Legend: the colour bar of the gate's fixed range, high values on top.
  const barX = pad.left + plotW + 16;
  const barW = 12;
  for (let y = 0; y < plotH; y++) {
    ctx.fillStyle = ramp(1 - y / (plotH - 1), stops);
    ctx.fillRect(barX, pad.top + y, barW, 1);
  }
  ctx.fillStyle = text;
  ctx.textAlign = "left";
  const legend = niceTicks(lo, hi, 4);
  formatTicks(legend).forEach((label, i) => ctx.fillText(label, barX + barW + 5, pad.top + ((hi - legend[i]) / (hi - lo)) * plotH));

  return (x, y) => {
    const t = Math.floor((x - pad.left) / cellW);
    const unit = Math.floor((y - pad.top) / cellH);
    if (t < 0 || t >= steps || unit < 0 || unit >= units || x > pad.left + plotW) return null;
    return { t, unit, value: (values[t] || [])[unit] ?? null, token: tokens ? tokens[t] ?? null : null };
  };
}

// A sparkline: a few lines (one per run) of one statistic over training,
// without axes, for the Overview's cells. Steps share the x axis; the lines
// share a y range (log when asked and every value is positive).
import { prepare } from "./canvas.js";

/**
 * The [lo, hi] of the finite values of `lines` (on a log scale, of the
 * positive ones, as log10), or null when there is none; a flat line gets a
 * range around its value.
 */
export function sparkRange(lines, logScale = false) {
  const values = lines.flatMap((l) => l.values).filter((v) => v != null && Number.isFinite(v) && (!logScale || v > 0));
  if (values.length === 0) return null;
  const scaled = logScale ? values.map(Math.log10) : values;
  let lo = Math.min(...scaled);
  let hi = Math.max(...scaled);
  if (hi === lo) {
    const pad = Math.abs(lo) * 0.1 || 1;
    lo -= pad;
    hi += pad;
  }
  return [lo, hi];
}

/**
 * @param canvas HTMLCanvasElement
 * @param lines [{color, steps, values}]
 * @param options {{height: number, logScale: boolean}}
 */
export function drawSparkline(canvas, lines, { height = 36, logScale = false } = {}) {
  const { ctx, width } = prepare(canvas, height);
  const range = sparkRange(lines, logScale);
  const steps = lines.flatMap((l) => l.steps);
  if (!range || steps.length === 0) return;
  const first = Math.min(...steps);
  const last = Math.max(...steps);
  const pad = 3;
  const x = (step) => pad + ((step - first) / (last - first || 1)) * (width - 2 * pad);
  const y = (v) => height - pad - (((logScale ? Math.log10(v) : v) - range[0]) / (range[1] - range[0])) * (height - 2 * pad);
  ctx.lineWidth = 1.5;
  for (const line of lines) {
    ctx.strokeStyle = line.color;
    ctx.beginPath();
    let drawing = false;
    line.values.forEach((v, i) => {
      const ok = v != null && Number.isFinite(v) && (!logScale || v > 0);
      if (!ok) {
        drawing = false;
        return;
      }
      if (drawing) ctx.lineTo(x(line.steps[i]), y(v));
      else ctx.moveTo(x(line.steps[i]), y(v));
      drawing = true;
    });
    ctx.stroke();
  }
}

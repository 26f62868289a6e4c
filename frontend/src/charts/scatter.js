// Karpathy, Johnson and Fei-Fei's (2015) saturation plot: per unit of a gate,
// the fraction of time steps it is left-saturated (x) against right-saturated
// (y), one dot per unit, coloured by run. Both axes run 0..1, so no point lies
// above the diagonal x + y = 1, which is drawn for reference.
import { withAlpha } from "../colors.js";
import { prepare } from "./canvas.js";
import { formatTicks } from "./ticks.js";

const SIZE = 320;
const RADIUS = 3.5;
const TICKS = [0, 0.2, 0.4, 0.6, 0.8, 1];

/**
 * @param canvas HTMLCanvasElement (its CSS width sets the chart's width; the plot stays square)
 * @param dots [{run, unit, x, y, color}] with x, y in [0, 1]
 * @param options {{dark: boolean, xLabel: string, yLabel: string}}
 * @returns {(x: number, y: number) => (object|null)} the dot nearest a point of the canvas (CSS pixels), for a readout
 */
export function drawScatter(canvas, dots, { dark, xLabel, yLabel }) {
  const pad = { left: 52, right: 16, top: 12, bottom: 40 };
  const { ctx, width } = prepare(canvas, SIZE + pad.top + pad.bottom);
  const side = Math.max(60, Math.min(SIZE, width - pad.left - pad.right));
  const px = (v) => pad.left + v * side;
  const py = (v) => pad.top + (1 - v) * side;
  const text = dark ? "#ccc" : "#444";
  const grid = dark ? "rgba(255,255,255,0.08)" : "rgba(0,0,0,0.07)";
  ctx.lineWidth = 1;
  ctx.strokeStyle = grid;
  ctx.fillStyle = text;
  const labels = formatTicks(TICKS);
  TICKS.forEach((t, i) => {
    ctx.beginPath();
    ctx.moveTo(px(t), py(0));
    ctx.lineTo(px(t), py(1));
    ctx.moveTo(px(0), py(t));
    ctx.lineTo(px(1), py(t));
    ctx.stroke();
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillText(labels[i], px(t), py(0) + 4);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText(labels[i], px(0) - 6, py(t));
  });
  ctx.strokeStyle = dark ? "rgba(255,255,255,0.3)" : "rgba(0,0,0,0.25)";
  ctx.setLineDash([4, 4]);
  ctx.beginPath();
  ctx.moveTo(px(0), py(1));
  ctx.lineTo(px(1), py(0));
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  ctx.fillText(xLabel, px(0.5), pad.top + side + pad.bottom - 2);
  ctx.save();
  ctx.translate(12, py(0.5));
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "top";
  ctx.fillText(yLabel, 0, -8);
  ctx.restore();
  // Translucent fill: units that saturate alike pile up into a darker dot.
  for (const d of dots) {
    ctx.beginPath();
    ctx.arc(px(d.x), py(d.y), RADIUS, 0, 2 * Math.PI);
    ctx.fillStyle = withAlpha(d.color, 0.6);
    ctx.fill();
    ctx.strokeStyle = d.color;
    ctx.stroke();
  }
  return (x, y) => {
    let best = null;
    let bestDistance = (RADIUS + 3) ** 2;
    for (const d of dots) {
      const distance = (px(d.x) - x) ** 2 + (py(d.y) - y) ** 2;
      if (distance <= bestDistance) [best, bestDistance] = [d, distance];
    }
    return best;
  };
}

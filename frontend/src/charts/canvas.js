// Canvas helpers shared by the histogram and activation-map charts (and the
// font of the line charts).

export const FONT = "11px Roboto, 'Helvetica Neue', Arial, sans-serif";

/** Sizes the canvas for its CSS box and the device pixel ratio; returns its 2D context and CSS width. */
export function prepare(canvas, height) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 600;
  canvas.style.height = `${height}px`;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = FONT;
  return { ctx, width };
}

/** A fill pattern of diagonal lines, for cells that hold no value. */
export function hatch(ctx, dark) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 6;
  const t = tile.getContext("2d");
  t.strokeStyle = dark ? "rgba(255,255,255,0.35)" : "rgba(0,0,0,0.3)";
  t.beginPath();
  t.moveTo(0, 6);
  t.lineTo(6, 0);
  t.stroke();
  return ctx.createPattern(tile, "repeat");
}

// TensorBoard's default run palette (light and dark variants), assigned to
// runs in order, as TensorBoard does.
const PALETTE = [
  ["#425066", "#8e98a3"],
  ["#12b5cb", "#12b5cb"],
  ["#e52592", "#e52592"],
  ["#f9ab00", "#f9ab00"],
  ["#9334e6", "#9334e6"],
  ["#7cb342", "#7cb342"],
  ["#e8710a", "#e8710a"],
];

export function runColor(index, dark) {
  return PALETTE[index % PALETTE.length][dark ? 1 : 0];
}

/** `#rrggbb` with an alpha in [0, 1], as `rgba(...)`. */
export function withAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

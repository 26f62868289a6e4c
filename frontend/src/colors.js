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

// Colour ramps as RGB stops: viridis-like for densities and sigmoid gates
// (0..1); diverging blue-neutral-red for tanh gates (-1..1), with a neutral
// middle that matches the card colour of the theme.
export const VIRIDIS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];
export const DIVERGING = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];
export const DIVERGING_DARK = [[67, 147, 195], [33, 72, 110], [40, 42, 45], [120, 40, 45], [214, 96, 77]];

/** The colour at t in [0, 1] of a ramp of evenly spaced RGB stops, as `rgb(...)`. */
export function ramp(t, stops = VIRIDIS) {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

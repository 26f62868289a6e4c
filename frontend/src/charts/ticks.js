// Axis ticks that read well: round values (1, 2 or 5 times a power of ten
// apart) with labels that tell them apart and carry no digits they do not
// need ("1.0555, 1.056, 1.0565", not "1.056, 1.056, 1.056"; "6e-4", not
// "6.000e-4"). Pure, tested with node --test.

/** Round values within [lo, hi], 1, 2 or 5 times a power of ten apart, about `n` intervals (as d3's ticks). */
export function niceTicks(lo, hi, n) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  // The round step nearest to `raw` on a log scale: 1, 2, 5 or 10 times the magnitude.
  const error = raw / magnitude;
  const step = magnitude * (error >= Math.sqrt(50) ? 10 : error >= Math.sqrt(10) ? 5 : error >= Math.sqrt(2) ? 2 : 1);
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  // Multiplying the step, rounded to 12 significant digits, keeps 0.1 * 3 from reading 0.30000000000000004.
  return Array.from({ length: last - first + 1 }, (_, i) => Number(((first + i) * step).toPrecision(12)) || 0);
}

/** Exponent notation for labels this large or small, as formatValue does. */
const exponential = (v) => v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3);

function format(v, digits, exp) {
  const text = exp ? v.toExponential(digits).replace("e+", "e") : v.toFixed(digits);
  // -0.000 and the like read as 0.000.
  return Number(text) === 0 ? text.replace(/^-/, "") : text;
}

/**
 * Labels for tick values: one number of digits for all (so they line up),
 * the fewest that show every value exactly, up to a millionth of the
 * spacing between ticks. Null ticks (skipped by the chart) get "".
 */
export function formatTicks(values) {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return values.map(() => "");
  const sorted = [...new Set(finite)].sort((a, b) => a - b);
  const gaps = sorted.slice(1).map((v, i) => v - sorted[i]);
  const spacing = gaps.length ? Math.min(...gaps) : Math.abs(sorted[0]) || 1;
  const exp = exponential(Math.max(...finite.map(Math.abs)));
  let digits = 0;
  while (digits < 15 && !finite.every((v) => Math.abs(Number(format(v, digits, exp)) - v) <= spacing * 1e-6)) digits++;
  return values.map((v) => (Number.isFinite(v) ? format(v, digits, exp) : ""));
}

/** Labels for a log axis: each value by itself (1e-3, 0.01, 0.1, 1 need different digits). */
export const formatLogTicks = (values) => values.map((v) => (Number.isFinite(v) ? formatTicks([v])[0] : ""));

/**
 * TensorBoard's scalar smoothing: an exponential moving average, debiased so
 * the first points are not pulled towards zero. Non-finite values (sent as
 * null) pass through unsmoothed, and a constant series stays as is, exactly
 * as in TensorBoard's scalar dashboard.
 *
 * @param {Array<number|null>} values
 * @param {number} weight in [0, 1); 0 returns the values unchanged.
 */
export function smooth(values, weight) {
  if (!(weight > 0)) return values.slice();
  const constant = values.every((v) => v === values[0]);
  let last = 0;
  let count = 0;
  return values.map((v) => {
    if (constant || v == null || !Number.isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    count += 1;
    return last / (1 - Math.pow(weight, count));
  });
}

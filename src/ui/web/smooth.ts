// Curve smoothing for the loss charts: an exponential moving average with the start-up bias removed (as
// TensorBoard's slider does), so the first points are not pulled towards zero. Gaps (null) are kept.

/** weight in [0, 1): 0 = raw values, 0.9 = heavy smoothing. */
export function smoothEma(values: readonly (number | null)[], weight: number): (number | null)[] {
  if (!(weight > 0)) return [...values];
  const w = Math.min(weight, 0.999);
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return null;
    last = last * w + (1 - w) * v;
    n++;
    return last / (1 - w ** n);
  });
}

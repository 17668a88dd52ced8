// Hand-made model batches for the native tests: right-padded rows with labels from a position on.

/** Rows padded to the longest; row b is labelled (its own ids) from position labelFrom[b] on, -100 before. */
export function batchOf(rows: number[][], labelFrom: number[]) {
  const T = Math.max(...rows.map((r) => r.length));
  const B = rows.length;
  const inputIds = new Int32Array(B * T);
  const labels = new Int32Array(B * T).fill(-100);
  const attentionMask = new Uint8Array(B * T);
  rows.forEach((r, b) => r.forEach((id, t) => {
    inputIds[b * T + t] = id;
    attentionMask[b * T + t] = 1;
    if (t >= (labelFrom[b] as number)) labels[b * T + t] = id;
  }));
  return { inputIds, labels, attentionMask, shape: [B, T] as [number, number] };
}

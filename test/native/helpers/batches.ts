// Hand-made model batches for the native tests: right-padded rows with labels from a position on, random rows.
import type { Batch } from '../../../src/native/model.ts';

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

/** B rows of T pseudo-random ids in [3, vocab) (a fixed LCG from `seed`), every token labelled but each row's first. */
export function randomBatch(B: number, T: number, seed = 1, vocab = 128): Batch {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) % (vocab - 3)) + 3;
  const inputIds = Int32Array.from({ length: B * T }, rnd);
  const labels = Int32Array.from(inputIds);
  for (let b = 0; b < B; ++b) labels[b * T] = -100;
  return { inputIds, labels, shape: [B, T] };
}

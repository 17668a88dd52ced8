// Best-fit-decreasing packing of examples into rows of at most `capacity` tokens.

import { invalidParameterError } from '../errors.ts';

/**
 * Bins of example indices. Items are taken longest first (ties by index); each goes into the open bin with the
 * least room that still fits it (ties: the lowest bin index; a segment tree over remaining room finds it quickly),
 * else a new bin.
 * Within a bin, items keep the order they were placed in. Deterministic.
 */
export function packBestFitDecreasing(lengths: readonly number[], capacity: number): number[][] {
  if (!Number.isInteger(capacity) || capacity < 1) throw invalidParameterError('capacity', 'a positive integer', capacity);
  lengths.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 1 || l > capacity) {
      throw invalidParameterError(`lengths[${i}]`, `an integer in [1, ${capacity}] (truncate or drop longer examples first)`, l);
    }
  });
  const order = lengths.map((_, i) => i).sort((a, b) => (lengths[b] as number) - (lengths[a] as number) || a - b);
  // Segment tree over room r in [0, capacity]: count of open bins with exactly r tokens of room.
  let size = 1;
  while (size < capacity + 1) size *= 2;
  const tree = new Int32Array(2 * size);
  const binsByRoom: number[][] = Array.from({ length: capacity + 1 }, () => []);
  const bins: number[][] = [];
  const room: number[] = [];
  const update = (r: number, delta: number) => {
    for (let i = r + size; i >= 1; i >>= 1) tree[i]! += delta;
  };
  /** Smallest room >= need with an open bin, or -1. */
  const query = (need: number): number => {
    const find = (node: number, lo: number, hi: number): number => {
      if (hi < need || tree[node] === 0) return -1;
      if (lo === hi) return lo;
      const mid = (lo + hi) >> 1;
      const left = find(2 * node, lo, mid);
      return left !== -1 ? left : find(2 * node + 1, mid + 1, hi);
    };
    return find(1, 0, size - 1);
  };
  for (const idx of order) {
    const len = lengths[idx] as number;
    const r = query(len);
    let bin: number;
    if (r === -1) {
      bin = bins.length;
      bins.push([]);
      room.push(capacity);
    } else {
      // Ties (several bins with the same room): the lowest bin index.
      const bucket = binsByRoom[r] as number[];
      let best = 0;
      for (let k = 1; k < bucket.length; k++) if ((bucket[k] as number) < (bucket[best] as number)) best = k;
      bin = bucket[best] as number;
      bucket[best] = bucket[bucket.length - 1] as number;
      bucket.pop();
      update(r, -1);
    }
    (bins[bin] as number[]).push(idx);
    const left = (room[bin] as number) - len;
    room[bin] = left;
    if (left > 0) {
      (binsByRoom[left] as number[]).push(bin);
      update(left, 1);
    }
  }
  return bins;
}

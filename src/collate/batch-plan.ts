// Which examples go in which batch for an epoch: shuffling by seed, drop_last, length grouping.

import { invalidParameterError } from '../errors.ts';
import { Rng, deriveSeed, permutation, shuffleInPlace } from '../shared/index.ts';

export interface BatchPlanOptions {
  batchSize: number;
  /** Shuffle each epoch (default true). The order depends only on (seed, epoch): resuming needs no saved state. */
  shuffle?: boolean;
  seed?: number;
  epoch?: number;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /**
   * Put examples of similar length together (less padding): the shuffled order is cut into mega-batches of
   * 50 x batchSize, each sorted by length (longest first) and cut into batches; the batch order is shuffled.
   */
  groupByLength?: boolean;
}

export function validateBatchPlan(options: BatchPlanOptions): Required<BatchPlanOptions> {
  const { batchSize, shuffle = true, seed = 123, epoch = 0, dropLast = false, groupByLength = false } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw invalidParameterError('batchSize', 'a positive integer', batchSize);
  if (!Number.isSafeInteger(seed) || seed < 0) throw invalidParameterError('seed', 'a non-negative integer', seed);
  if (!Number.isInteger(epoch) || epoch < 0) throw invalidParameterError('epoch', 'a non-negative integer', epoch);
  for (const [k, v] of [['shuffle', shuffle], ['dropLast', dropLast], ['groupByLength', groupByLength]] as const) {
    if (typeof v !== 'boolean') throw invalidParameterError(k, 'a boolean', v);
  }
  return { batchSize, shuffle, seed, epoch, dropLast, groupByLength };
}

/** Batches of indices into `lengths` (one entry per example or packed row) for one epoch. */
export function planBatches(lengths: readonly number[], options: BatchPlanOptions): number[][] {
  const { batchSize, shuffle, seed, epoch, dropLast, groupByLength } = validateBatchPlan(options);
  const n = lengths.length;
  const rng = Rng.fromSeed(deriveSeed(seed, epoch));
  const order = shuffle ? permutation(n, rng) : Array.from({ length: n }, (_, i) => i);
  let batches: number[][] = [];
  if (groupByLength) {
    const mega = batchSize * 50;
    for (let start = 0; start < n; start += mega) {
      const chunk = order.slice(start, start + mega).sort((a, b) => (lengths[b] as number) - (lengths[a] as number) || a - b);
      for (let i = 0; i < chunk.length; i += batchSize) batches.push(chunk.slice(i, i + batchSize));
    }
    if (dropLast) batches = batches.filter((b) => b.length === batchSize);
    if (shuffle) shuffleInPlace(batches, rng);
    return batches;
  }
  for (let i = 0; i < n; i += batchSize) batches.push(order.slice(i, i + batchSize));
  if (dropLast && batches.length > 0 && (batches[batches.length - 1] as number[]).length < batchSize) batches.pop();
  return batches;
}

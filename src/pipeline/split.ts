// Deterministic train/val/test split (ch7's 85/10/5, test sliced before val), optionally shuffled by seed.

import { invalidParameterError } from '../errors.ts';
import { Rng, permutation } from '../shared/index.ts';

export interface SplitOptions {
  /** Fractions; defaults 0.85 / 0.10 / 0.05. val takes the remainder when the three add up to 1. */
  train?: number;
  test?: number;
  val?: number;
  /** Shuffle indices with `seed` before slicing (default true); false reproduces the book's in-order split. */
  shuffle?: boolean;
  seed?: number;
}

export interface SplitIndices {
  train: number[];
  val: number[];
  test: number[];
}

/**
 * Sizes as in ch7: train = floor(n * train), test = floor(n * test), val = the rest (or floor(n * val) when the
 * fractions add up to less than 1). Order of slicing: train, then test, then val.
 */
export function splitIndices(n: number, options: SplitOptions = {}): SplitIndices {
  if (!Number.isInteger(n) || n < 0) throw invalidParameterError('n', 'a non-negative integer', n);
  const train = options.train ?? 0.85;
  const test = options.test ?? 0.1;
  const val = options.val ?? Math.max(0, 1 - train - test);
  for (const [name, v] of [['split.train', train], ['split.test', test], ['split.val', val]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw invalidParameterError(name, 'a fraction in [0, 1]', v);
  }
  const sum = train + test + val;
  if (sum > 1 + 1e-9) throw invalidParameterError('split', 'fractions adding up to at most 1', sum);
  const shuffle = options.shuffle ?? true;
  const seed = options.seed ?? 123;
  const order = shuffle ? permutation(n, Rng.fromSeed(seed)) : Array.from({ length: n }, (_, i) => i);
  const nTrain = Math.floor(n * train);
  const nTest = Math.floor(n * test);
  const nVal = Math.abs(sum - 1) < 1e-9 ? n - nTrain - nTest : Math.min(n - nTrain - nTest, Math.floor(n * val));
  return {
    train: order.slice(0, nTrain),
    test: order.slice(nTrain, nTrain + nTest),
    val: order.slice(nTrain + nTest, nTrain + nTest + nVal),
  };
}

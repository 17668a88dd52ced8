// The loss batches of one epoch: length-grouped, shuffled plans (batch-plan) of examples (collateForLoss: the
// padding-free form, or padded rows when there is too little padding to matter) or of packed rows (best-fit-decreasing
// packing, collatePacked).

import { invalidParameterError } from '../errors.ts';
import type { TokenizedExample } from '../mask/index.ts';
import { collateForLoss, collatePacked, type Batch } from './batch.ts';
import { planBatches, type BatchPlanOptions } from './batch-plan.ts';
import { packBestFitDecreasing } from './pack.ts';

export interface BatchOptions extends BatchPlanOptions {
  /** Pad id (use the tokenizer's padId: pad, else EOS). */
  padId: number;
  padToMultiple?: number;
  /** Pack examples into rows of `maxLength` tokens (best-fit-decreasing), with position ids and doc lengths. */
  packing?: boolean;
  /** Row capacity for packing. */
  maxLength?: number;
}

/**
 * The batches of one epoch, lazily. Depends only on (examples, options): resuming at batch k of epoch e is
 * `[...batches(examples, {...o, epoch: e})].slice(k)` or `planBatches` directly.
 */
export function* batches(examples: readonly TokenizedExample[], options: BatchOptions): Generator<Batch> {
  const pad = { padId: options.padId, ...(options.padToMultiple !== undefined ? { padToMultiple: options.padToMultiple } : {}) };
  if (options.packing) {
    const capacity = options.maxLength;
    if (capacity === undefined || !Number.isInteger(capacity) || capacity < 2) {
      throw invalidParameterError('maxLength', 'an integer >= 2 (the packed row length)', capacity);
    }
    const rows = packBestFitDecreasing(examples.map((e) => e.inputIds.length), capacity).map((bin) =>
      bin.map((i) => examples[i] as TokenizedExample),
    );
    const lengths = rows.map((r) => r.reduce((s, e) => s + e.inputIds.length, 0));
    for (const plan of planBatches(lengths, options)) yield collatePacked(plan.map((i) => rows[i] as TokenizedExample[]), pad);
    return;
  }
  const lengths = examples.map((e) => e.inputIds.length);
  for (const plan of planBatches(lengths, options)) yield collateForLoss(plan.map((i) => examples[i] as TokenizedExample), pad);
}

// The one Batch type, from collate to the native call, in the layouts the engine computes directly: right-padded rows
// (per-row results: DPO log-probabilities, generation-free scoring), packed rows, and the padding-free form of a loss
// batch (the examples end to end in one row, each its own document: no padding position exists to compute or strip).

import { invalidParameterError } from '../errors.ts';
import { IGNORE_INDEX, type TokenizedExample } from '../mask/index.ts';

/**
 * A batch. Every array is row-major with shape [B, T] (`shape`), except `docLengths`. Two layouts, never mixed:
 * - padded rows (`attentionMask`): one example per row, padding on the right (1 on real tokens, 0 on padding);
 * - documents (`positionIds` + `docLengths`): each row holds documents end to end, then padding (T - their sum);
 *   positions restart at 0 for every document (padding gets 0, 1, ... too) and attention stays inside each one.
 *   Packed rows (collatePacked) and the padding-free loss form (collateForLoss: one row, one document per example)
 *   are this layout.
 * - `inputIds`: token ids; padding positions hold the pad id.
 * - `labels`: aligned with inputIds (unshifted: the model shifts), IGNORE_INDEX (-100) where no loss is taken,
 *   always on padding and on the first token of every document (it has no predecessor in its document).
 * - `labelTokens`: number of targets after the shift, counted once here, for token-weighted loss averaging.
 */
export interface Batch {
  inputIds: Int32Array;
  labels: Int32Array;
  shape: [number, number];
  attentionMask?: Uint8Array;
  positionIds?: Int32Array;
  docLengths?: Int32Array[];
  labelTokens: number;
}

/** A Batch whose label count may be missing (built by hand; the engine's loss counts the labels itself). */
export type UncountedBatch = Omit<Batch, 'labelTokens'> & { labelTokens?: number };

/** The real (non-padding) tokens of a batch, in either layout. */
export function realTokens(b: Pick<Batch, 'attentionMask' | 'docLengths' | 'shape'>): number {
  let n = 0;
  if (b.attentionMask !== undefined) {
    for (let i = 0; i < b.attentionMask.length; i++) n += b.attentionMask[i] as number;
    return n;
  }
  if (b.docLengths !== undefined) {
    for (const row of b.docLengths) for (const d of row) n += d;
    return n;
  }
  return b.shape[0] * b.shape[1];
}

export interface PadOptions {
  padId: number;
  /** Round T up to a multiple of this (e.g. 8); default 1. */
  padToMultiple?: number;
}

export function validatePadOptions(options: PadOptions): { padId: number; padToMultiple: number } {
  const { padId, padToMultiple = 1 } = options;
  if (!Number.isInteger(padId) || padId < 0) throw invalidParameterError('padId', 'a non-negative integer', padId);
  if (!Number.isInteger(padToMultiple) || padToMultiple < 1) {
    throw invalidParameterError('padToMultiple', 'a positive integer', padToMultiple);
  }
  return { padId, padToMultiple };
}

export function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

function countTargets(labels: Int32Array, B: number, T: number): number {
  let n = 0;
  for (let b = 0; b < B; b++) for (let t = 1; t < T; t++) if (labels[b * T + t] !== IGNORE_INDEX) n++;
  return n;
}

/**
 * Pads examples to the longest one in the batch (dynamic padding), on the right: pad id in inputIds, 0 in the
 * attention mask, -100 in labels. With pad == eos, the example's own trained EOS keeps its label; only padding is
 * masked.
 */
export function collate(examples: readonly TokenizedExample[], options: PadOptions): Batch {
  const { padId, padToMultiple } = validatePadOptions(options);
  if (examples.length === 0) throw invalidParameterError('examples', 'at least one example', examples);
  const B = examples.length;
  let longest = 0;
  for (const e of examples) longest = Math.max(longest, e.inputIds.length);
  const T = roundUp(Math.max(longest, 1), padToMultiple);
  const inputIds = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  const attentionMask = new Uint8Array(B * T);
  examples.forEach((e, b) => {
    inputIds.set(e.inputIds, b * T);
    labels.set(e.labels, b * T);
    attentionMask.fill(1, b * T, b * T + e.inputIds.length);
  });
  return { inputIds, labels, attentionMask, shape: [B, T], labelTokens: countTargets(labels, B, T) };
}

/**
 * Packed rows: each row is several documents laid end to end. Positions restart per document, the first label of
 * each document is masked, and docLengths tell the model where documents end. T = the longest row (rounded up to
 * padToMultiple) unless `rowLength` fixes it.
 */
export function collatePacked(
  rows: readonly (readonly TokenizedExample[])[],
  options: PadOptions & { rowLength?: number },
): Batch {
  const { padId, padToMultiple } = validatePadOptions(options);
  if (rows.length === 0) throw invalidParameterError('rows', 'at least one row', rows);
  const B = rows.length;
  const rowTokens = rows.map((docs) => docs.reduce((s, d) => s + d.inputIds.length, 0));
  const longest = Math.max(1, ...rowTokens);
  if (options.rowLength !== undefined && (!Number.isInteger(options.rowLength) || options.rowLength < longest)) {
    throw invalidParameterError('rowLength', `an integer >= the longest packed row (${longest})`, options.rowLength);
  }
  const T = options.rowLength ?? roundUp(longest, padToMultiple);
  const inputIds = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  const positionIds = new Int32Array(B * T);
  const docLengths: Int32Array[] = [];
  rows.forEach((docs, b) => {
    let at = b * T;
    for (const d of docs) {
      const n = d.inputIds.length;
      inputIds.set(d.inputIds, at);
      labels.set(d.labels, at);
      labels[at] = IGNORE_INDEX;
      for (let i = 0; i < n; i++) positionIds[at + i] = i;
      at += n;
    }
    for (let i = 0; at + i < (b + 1) * T; i++) positionIds[at + i] = i;
    docLengths.push(Int32Array.from(docs, (d) => d.inputIds.length));
  });
  return { inputIds, labels, positionIds, docLengths, shape: [B, T], labelTokens: countTargets(labels, B, T) };
}

/**
 * Whether examples of these lengths, as right-padded rows, carry enough padding (at least 1/20 of the B x longest
 * positions, B >= 2) that the engine should compute them in the document layout instead: below that, one dense
 * attention call over [B, T] costs less than the per-length buckets (the engine's measured break-even).
 */
export function paddingFreePays(lengths: readonly number[]): boolean {
  let total = 0;
  let longest = 0;
  for (const n of lengths) {
    total += n;
    longest = Math.max(longest, n);
  }
  const positions = lengths.length * longest;
  return lengths.length >= 2 && total > 0 && (positions - total) * 20 >= positions;
}

/**
 * A batch whose losses are summed (training steps, validation and evaluation loss, distillation) in the form the
 * engine computes without any padding position: when padding pays (paddingFreePays), the examples go end to end into
 * ONE row [1, N], each its own document (positions restart; the first label of each is -100, as it is never a target
 * in a row of its own); otherwise padded rows as `collate`. Losses and gradients are those of the padded rows: padding
 * never influences a real position and carries no label.
 */
export function collateForLoss(examples: readonly TokenizedExample[], options: PadOptions): Batch {
  const { padId } = validatePadOptions(options);
  if (examples.length === 0) throw invalidParameterError('examples', 'at least one example', examples);
  const lengths = examples.map((e) => e.inputIds.length);
  if (!paddingFreePays(lengths)) return collate(examples, options);
  const docs = examples.filter((e) => e.inputIds.length > 0);
  return collatePacked([docs], { padId, rowLength: lengths.reduce((a, n) => a + n, 0) });
}

/**
 * A batch built as right-padded rows (attentionMask), in the form collateForLoss gives for the same examples; other
 * batches are returned as they are. For callers that generate padded rows themselves (benchmarks, tests).
 */
export function lossForm<B extends UncountedBatch>(b: B): B | Batch {
  const mask = b.attentionMask;
  if (mask === undefined) return b;
  const [B, T] = b.shape;
  const rows: TokenizedExample[] = [];
  for (let r = 0; r < B; r++) {
    let n = 0;
    while (n < T && mask[r * T + n] === 1) n++;
    rows.push({ inputIds: b.inputIds.subarray(r * T, r * T + n), labels: b.labels.subarray(r * T, r * T + n) });
  }
  return paddingFreePays(rows.map((e) => e.inputIds.length)) ? collateForLoss(rows, { padId: 0 }) : b;
}

// The Batch handed to the native step, and padding of examples into one (dynamic, right padding).

import { invalidParameterError } from '../errors.ts';
import { IGNORE_INDEX, type TokenizedExample } from '../mask/index.ts';

/**
 * A training batch. Every array is row-major with shape [B, T] (`shape`), except `docLengths`.
 * - `inputIds`: token ids; padding positions hold the pad id.
 * - `labels`: aligned with inputIds (unshifted: the model shifts), IGNORE_INDEX (-100) where no loss is taken,
 *   always on padding; in packed rows also on the first token of every document (it would be predicted from the
 *   previous document).
 * - `attentionMask`: 1 on real tokens, 0 on padding.
 * - `positionIds` (packed batches): positions restarting at 0 for every document; padding gets 0, 1, ... as well.
 * - `docLengths` (packed batches): per row, the lengths of its documents in order; their sum is the row's number of
 *   real tokens and the rest of the row (T - sum) is padding. Attention stays inside each document.
 * - `labelTokens`: number of targets after the shift (labels[b, 1:] != -100), for token-weighted loss averaging.
 */
export interface Batch {
  inputIds: Int32Array;
  labels: Int32Array;
  attentionMask: Uint8Array;
  positionIds?: Int32Array;
  docLengths?: Int32Array[];
  shape: [number, number];
  labelTokens: number;
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
  const attentionMask = new Uint8Array(B * T);
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
    attentionMask.fill(1, b * T, at);
    for (let i = 0; at + i < (b + 1) * T; i++) positionIds[at + i] = i;
    docLengths.push(Int32Array.from(docs, (d) => d.inputIds.length));
  });
  return { inputIds, labels, attentionMask, positionIds, docLengths, shape: [B, T], labelTokens: countTargets(labels, B, T) };
}

// Segment[] -> {inputIds, labels}: per-segment encoding, BOS rule, truncation, and why an example is dropped.

import { invalidParameterError } from '../errors.ts';
import type { Segment } from '../template/index.ts';

/** Labels of tokens the loss ignores (Hugging Face convention). */
export const IGNORE_INDEX = -100;

/** The minimum a tokenizer must offer here (TextTokenizer satisfies it). */
export interface SegmentEncoder {
  encode(text: string, options?: { continuation?: boolean }): number[];
  readonly prefixIds: readonly number[];
  /** The id for text the vocabulary cannot represent, if the tokenizer has one (counted, see UnkReport). */
  readonly unkId?: number | undefined;
}

/** Token ids and labels, aligned (labels unshifted; the model shifts), IGNORE_INDEX where not trained. */
export interface TokenizedExample {
  inputIds: Int32Array;
  labels: Int32Array;
  /** 0-based index of the record it came from in its data file (to write the split a run used). */
  record?: number;
}

/**
 * `cut`: keep the first maxLength tokens (default); `drop`: drop examples longer than maxLength; `split`: keep long
 * examples whole here and cut them into pieces of maxLength later (splitLongExample: pretraining, nothing is lost).
 */
export type Truncation = 'cut' | 'drop' | 'split';
export const TRUNCATIONS: readonly Truncation[] = ['cut', 'drop', 'split'];

export interface MaskOptions {
  /** Longest example in tokens; undefined = no limit. */
  maxLength?: number | undefined;
  truncation?: Truncation | undefined;
}

/**
 * Why an example was dropped: `empty` (no tokens), `no-trained-tokens` (nothing to learn, e.g. no assistant turn),
 * `too-long` (truncation `drop`), `truncated-away` (cutting to maxLength removed every trained token).
 */
export type DropReason = 'empty' | 'no-trained-tokens' | 'too-long' | 'truncated-away';
export const DROP_REASONS: readonly DropReason[] = ['empty', 'no-trained-tokens', 'too-long', 'truncated-away'];

/**
 * The tokenizer's unknown token in an example's ids (before truncation): text of the template or of the data that the
 * vocabulary cannot represent (e.g. `###` on TinyStories), which the model then reads as `<unk>`.
 */
export interface UnkReport {
  /** Unknown-token ids among the example's ids. */
  tokens: number;
  /** Index of the first segment that produced one. */
  segment: number;
  /** A short piece of that segment that produces it on its own (a word, or the segment's start). */
  text: string;
  /** Filled in by the pipeline, which knows the record: whether `text` is in the record's own text or only in the template's. */
  source?: 'template' | 'data';
  /** Filled in by the pipeline: the record it came from. */
  where?: { file: string; line: number; record: number };
}

/** `unk` is present only when the example has unknown tokens. */
export type MaskResult =
  | { kept: true; example: TokenizedExample; truncated: boolean; trainedTokens: number; unk?: UnkReport }
  | { kept: false; reason: DropReason; tokens: number; unk?: UnkReport };

export function validateMaskOptions(options: MaskOptions): { maxLength: number | undefined; truncation: Truncation } {
  const { maxLength, truncation = 'cut' } = options;
  if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 2)) {
    throw invalidParameterError('maxLength', 'an integer >= 2', maxLength);
  }
  if (!(TRUNCATIONS as readonly string[]).includes(truncation)) {
    throw invalidParameterError('truncation', `one of ${TRUNCATIONS.join(', ')}`, truncation);
  }
  return { maxLength, truncation };
}

/**
 * Number of labels that are targets once the model shifts: labels[1:] != IGNORE_INDEX (labels[0] predicts nothing).
 */
export function countTrained(labels: ArrayLike<number>): number {
  let n = 0;
  for (let i = 1; i < labels.length; i++) if (labels[i] !== IGNORE_INDEX) n++;
  return n;
}

/**
 * The ids and labels of segments, before any truncation: each segment encoded on its own (later ones as
 * continuations), ids concatenated, the tokenizer's prefix ids (BOS) once at the start unless already there.
 * Generation prompts use it too, so a prompt is encoded exactly as in training.
 */
export function encodeSegments(segments: readonly Segment[], encoder: SegmentEncoder): { ids: number[]; labels: number[] } {
  const ids: number[] = [];
  const labels: number[] = [];
  let first = true;
  for (const s of segments) {
    if (s.text.length === 0) continue;
    const piece = encoder.encode(s.text, { continuation: !first });
    first = false;
    for (const id of piece) {
      ids.push(id);
      labels.push(s.trained ? id : IGNORE_INDEX);
    }
  }
  const prefix = encoder.prefixIds;
  if (prefix.length > 0 && ids.length > 0 && !prefix.every((p, i) => ids[i] === p)) {
    ids.unshift(...prefix);
    labels.unshift(...prefix.map(() => IGNORE_INDEX));
  }
  return { ids, labels };
}

/**
 * Encodes each segment on its own and concatenates the ids (never searching the stream for markers, never assuming
 * the prompt's ids are a prefix of the whole): a trained segment's labels are its ids, others IGNORE_INDEX. The
 * tokenizer's prefix ids (BOS) go first once, unless the rendered text already starts with them. Segments after the
 * first are encoded as continuations (no SentencePiece dummy prefix).
 */
export function tokenizeWithMask(segments: readonly Segment[], encoder: SegmentEncoder, options: MaskOptions = {}): MaskResult {
  const { maxLength, truncation } = validateMaskOptions(options);
  const { ids, labels } = encodeSegments(segments, encoder);
  const unk = findUnk(segments, ids, encoder);
  const withUnk = <T extends object>(r: T): T => (unk ? { ...r, unk } : r);
  if (ids.length === 0) return { kept: false, reason: 'empty', tokens: 0 };
  if (countTrained(labels) === 0) return withUnk({ kept: false, reason: 'no-trained-tokens', tokens: ids.length });
  let truncated = false;
  if (maxLength !== undefined && ids.length > maxLength && truncation !== 'split') {
    if (truncation === 'drop') return withUnk({ kept: false, reason: 'too-long', tokens: ids.length });
    ids.length = maxLength;
    labels.length = maxLength;
    truncated = true;
  }
  const trainedTokens = countTrained(labels);
  if (trainedTokens === 0) return withUnk({ kept: false, reason: 'truncated-away', tokens: ids.length });
  return withUnk({ kept: true, example: { inputIds: Int32Array.from(ids), labels: Int32Array.from(labels) }, truncated, trainedTokens });
}

const UNK_SNIPPET = 40;

/**
 * Counts the unknown-token ids in `ids` and, when there are any, finds the first segment that produces one and a short
 * piece of it that does on its own (its first whitespace-separated word that does, else the segment's start).
 */
export function findUnk(segments: readonly Segment[], ids: readonly number[], encoder: SegmentEncoder): UnkReport | undefined {
  const unkId = encoder.unkId;
  if (unkId === undefined) return undefined;
  let tokens = 0;
  for (const id of ids) if (id === unkId) tokens++;
  if (tokens === 0) return undefined;
  let first = true;
  for (let i = 0; i < segments.length; i++) {
    const text = (segments[i] as Segment).text;
    if (text.length === 0) continue;
    if (!encoder.encode(text, { continuation: !first }).includes(unkId)) {
      first = false;
      continue;
    }
    for (const word of text.split(/\s+/)) {
      if (word !== '' && encoder.encode(word, { continuation: true }).includes(unkId)) {
        return { tokens, segment: i, text: word.length > UNK_SNIPPET ? `${word.slice(0, UNK_SNIPPET)}…` : word };
      }
    }
    return { tokens, segment: i, text: text.length > UNK_SNIPPET ? `${text.slice(0, UNK_SNIPPET)}…` : text };
  }
  return { tokens, segment: 0, text: '' };
}

/**
 * Pieces of at most maxLength tokens of a long example, for pretraining: piece k starts at token k * (maxLength - 1),
 * so consecutive pieces overlap by one token and every target (a token after the first) is trained in exactly one
 * piece, predicted from the tokens before it in that piece. Pieces left with no trained target are dropped.
 */
export function splitLongExample(example: TokenizedExample, maxLength: number): TokenizedExample[] {
  if (!Number.isInteger(maxLength) || maxLength < 2) throw invalidParameterError('maxLength', 'an integer >= 2', maxLength);
  const n = example.inputIds.length;
  if (n <= maxLength) return [example];
  const out: TokenizedExample[] = [];
  for (let start = 0; start + 1 < n; start += maxLength - 1) {
    const end = Math.min(n, start + maxLength);
    const labels = example.labels.slice(start, end);
    if (countTrained(labels) === 0) continue;
    out.push({ inputIds: example.inputIds.slice(start, end), labels, ...(example.record !== undefined ? { record: example.record } : {}) });
  }
  return out;
}

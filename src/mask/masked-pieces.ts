// A tokenized example as text pieces with their token ids and whether they are trained: what `sftkit inspect`
// prints (runs of trained / masked text) and what the web inspector shows token by token.

import { tokenPieces, type PieceDecoder } from '../tokenize/index.ts';
import { IGNORE_INDEX, type TokenizedExample } from './tokenize-with-mask.ts';

export interface MaskedPiece {
  /** Token ids of the piece (usually one; several when they only make a character together). */
  ids: number[];
  text: string;
  /** The label of the piece's first token is a target (labels[i] !== -100). */
  trained: boolean;
}

/**
 * `token`: a piece per token (the web inspector: ids on hover); `run`: a piece per run of trained or masked tokens
 * (what `sftkit inspect` prints; two decodes per run instead of two per token).
 */
export function maskedPieces(
  example: Pick<TokenizedExample, 'inputIds' | 'labels'>,
  decoder: PieceDecoder,
  granularity: 'token' | 'run' = 'token',
): MaskedPiece[] {
  const ids = Array.from(example.inputIds);
  const trained = (i: number) => example.labels[i] !== IGNORE_INDEX;
  const breakBefore = granularity === 'run' ? (i: number) => trained(i) !== trained(i - 1) : undefined;
  return tokenPieces(decoder, ids, breakBefore).map((p) => ({
    ids: ids.slice(p.start, p.end),
    text: p.text,
    trained: trained(p.start),
  }));
}

/** Consecutive pieces with the same flag joined: the runs of trained and of masked text. */
export function maskedRuns(pieces: readonly MaskedPiece[]): { text: string; trained: boolean }[] {
  const runs: { text: string; trained: boolean }[] = [];
  for (const p of pieces) {
    const last = runs[runs.length - 1];
    if (last && last.trained === p.trained) last.text += p.text;
    else runs.push({ text: p.text, trained: p.trained });
  }
  return runs;
}

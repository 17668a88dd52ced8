// Token ids -> the text each token contributes in context, so a rendered example can be shown token by token
// (hover ids, trained/masked colouring) and still read exactly as the whole decode.
//
// Decoding tokens one at a time is wrong for two tokenizer families: SentencePiece-style decoders strip the space of
// the first token they see (`▁Once` -> `Once`), and byte-level / byte-fallback vocabularies split one UTF-8
// character over several tokens. So a token's text is the difference between decoding a short window that ends with
// it and the same window without it; a token whose text is not complete yet (an unfinished character) is merged
// with the next ones into one piece.

/** What a decoder must offer (TextTokenizer satisfies it). */
export interface PieceDecoder {
  decode(ids: ArrayLike<number>): string;
}

/** Tokens [start, end) of the id list and the text they add. Pieces cover the ids in order, without gaps. */
export interface TokenPiece {
  start: number;
  end: number;
  text: string;
}

/** Tokens of left context decoded before a piece (enough for every decoder rule that looks back). */
const CONTEXT = 4;
/** Most tokens merged while waiting for a character to complete (UTF-8 needs at most 4 bytes). */
const MAX_MERGE = 4;

/**
 * The pieces of `ids`: one per token, or with `breakBefore`, pieces that end only before the tokens it accepts
 * (e.g. where the labels switch between trained and masked: then a piece is a run, decoded twice, not per token).
 */
export function tokenPieces(decoder: PieceDecoder, ids: ArrayLike<number>, breakBefore?: (index: number) => boolean): TokenPiece[] {
  const list = Array.from(ids);
  const pieces: TokenPiece[] = [];
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const last = i === list.length - 1;
    if (!last && breakBefore && !breakBefore(i + 1)) continue;
    const from = Math.max(0, start - CONTEXT);
    const before = from === start ? '' : decoder.decode(list.slice(from, start));
    const after = decoder.decode(list.slice(from, i + 1));
    const incomplete = after.endsWith('\uFFFD') || !after.startsWith(before);
    if (incomplete && !last && (breakBefore !== undefined || i + 1 - start < MAX_MERGE)) continue;
    pieces.push({ start, end: i + 1, text: after.slice(commonPrefix(after, before)) });
    start = i + 1;
  }
  return pieces;
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

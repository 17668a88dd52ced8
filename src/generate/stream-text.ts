// Text streaming over token streaming: decodes the growing id list and emits only the new, complete text (a
// multi-byte character split across tokens is held back until it is whole).
import type { GenerateOptions, Model } from '../native/index.ts';
import type { TextTokenizer } from '../tokenize/index.ts';

export interface TextDelta {
  /** New text since the previous delta. */
  text: string;
  /** All ids generated so far (stop token included when reached). */
  ids: number[];
}

/** Streams the reply to one prompt as text deltas. Breaking out of the loop cancels generation. */
export async function* streamText(
  model: Model,
  tokenizer: TextTokenizer,
  prompt: readonly number[],
  options: GenerateOptions,
  stopIds: readonly number[],
): AsyncGenerator<TextDelta> {
  const ids: number[] = [];
  let emitted = '';
  for await (const step of model.generateStream([prompt], { ...options, stopIds: [...stopIds] })) {
    const id = step.tokens[0];
    if (id === undefined || id < 0) break;
    ids.push(id);
    const text = tokenizer.decode(ids.filter((i) => !stopIds.includes(i)), { skipSpecialTokens: true });
    if (text.endsWith('\uFFFD')) continue;
    if (text.length > emitted.length && text.startsWith(emitted)) {
      yield { text: text.slice(emitted.length), ids: [...ids] };
      emitted = text;
    } else if (text !== emitted) {
      yield { text: text.slice(commonPrefix(text, emitted)), ids: [...ids] };
      emitted = text;
    }
  }
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** The reply text of generated ids: stop tokens and special tokens removed, surrounding whitespace trimmed. */
export function replyText(tokenizer: TextTokenizer, ids: ArrayLike<number>, stopIds: readonly number[]): string {
  const kept: number[] = [];
  for (const id of Array.from(ids)) {
    if (id < 0 || stopIds.includes(id)) break;
    kept.push(id);
  }
  return tokenizer.decode(kept, { skipSpecialTokens: true }).trim();
}

// Masking modes: which messages (or tokens) are trained, decided before tokenization.

import type { Example, RecordFormat } from '../data/index.ts';
import { invalidParameterError } from '../errors.ts';
import type { Segment } from '../template/index.ts';

/**
 * - `completion`: what the record names as the completion (alpaca output, instruct label, prompt-completion's
 *   completion, a chat's assistant turns, the chosen answer);
 * - `assistant`: every assistant turn (also assistant turns inside a prompt);
 * - `last-assistant`: only the last assistant turn;
 * - `all`: every token of the rendered example (train on inputs too);
 * - `pretrain`: every token (text records; the same mask as `all`). Padding is never trained.
 */
export type MaskMode = 'completion' | 'assistant' | 'last-assistant' | 'all' | 'pretrain';
export const MASK_MODES: readonly MaskMode[] = ['completion', 'assistant', 'last-assistant', 'all', 'pretrain'];

export function validateMaskMode(mode: unknown): MaskMode {
  if (typeof mode === 'string' && (MASK_MODES as readonly string[]).includes(mode)) return mode as MaskMode;
  throw invalidParameterError('mask', `one of ${MASK_MODES.join(', ')}`, mode);
}

/** `completion` for instruction-style records, `assistant` for chats, `pretrain` for text. */
export function defaultMaskMode(format: RecordFormat): MaskMode {
  switch (format) {
    case 'alpaca':
    case 'instruct':
    case 'prompt-completion':
    case 'preference':
      return 'completion';
    case 'chat':
    case 'sharegpt':
      return 'assistant';
    case 'text':
      return 'pretrain';
  }
}

/** Sets the messages' trained flags for a mode (a new Example; `all`/`pretrain` act on segments instead). */
export function applyMaskMode(example: Example, mode: MaskMode): Example {
  switch (mode) {
    case 'completion':
    case 'all':
    case 'pretrain':
      return example;
    case 'assistant':
      return { ...example, messages: example.messages.map((m) => ({ ...m, trained: m.role === 'assistant' })) };
    case 'last-assistant': {
      let last = -1;
      example.messages.forEach((m, i) => {
        if (m.role === 'assistant') last = i;
      });
      return { ...example, messages: example.messages.map((m, i) => ({ ...m, trained: i === last })) };
    }
  }
}

/** For `all` and `pretrain`, every segment is trained; other modes keep the template's flags. */
export function applySegmentMode(segments: Segment[], mode: MaskMode): Segment[] {
  if (mode !== 'all' && mode !== 'pretrain') return segments;
  const text = segments.map((s) => s.text).join('');
  return text.length === 0 ? [] : [{ text, trained: true }];
}

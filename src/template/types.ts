// Segment: a piece of rendered text with a trained flag; a PromptTemplate turns an Example into Segment[].

import type { Example } from '../data/index.ts';

export interface Segment {
  text: string;
  /** Labels of this text's tokens are the ids themselves (trained) or -100 (masked). */
  trained: boolean;
}

export type TemplateName = 'plain' | 'alpaca' | 'phi3' | 'chatml' | 'model';
export const TEMPLATE_NAMES: readonly TemplateName[] = ['plain', 'alpaca', 'phi3', 'chatml', 'model'];

/** What a template may know about the tokenizer: token strings, never ids. */
export interface TemplateContext {
  eosToken: string;
  bosToken?: string | undefined;
  padToken?: string | undefined;
  unkToken?: string | undefined;
  /** The tokenizer's Jinja chat_template, when it has one. */
  chatTemplate?: string | undefined;
}

export interface PromptTemplate {
  /** Stable identity for cache keys (`alpaca`, `model:<hash>`, `file:<hash>`). */
  readonly id: string;
  /** Tokens that must each be one vocabulary token (e.g. `<|im_start|>`), checked before any data is rendered. */
  readonly requiredTokens: readonly string[];
  /**
   * Renders an example into segments: trained = an assistant message's content and its end-of-turn token when the
   * message is trained; role headers, prompts and separators are not. Adjacent segments with the same flag are
   * merged and empty ones dropped, so segment boundaries are exactly the trained-span boundaries.
   */
  render(example: Example): Segment[];
}

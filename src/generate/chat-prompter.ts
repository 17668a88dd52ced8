// A conversation rendered for a model: the chat template (the tokenizer's own, ChatML or Alpaca by default, or
// `none` for a raw continuation of the text), the prompt ids of a history, and the reply streamed as text.
// `sftkit chat` and the web playground both talk to models through it.
import { createPipeline } from '../pipeline/index.ts';
import type { Message } from '../data/index.ts';
import type { GenerateOptions, Model } from '../native/index.ts';
import type { TextTokenizer } from '../tokenize/index.ts';
import { defaultChatTemplate, promptIds, stopIdsFor } from './prompt.ts';
import { streamText, type TextDelta } from './stream-text.ts';

/** `none`: no template, the messages' text is continued as it is. */
export const RAW_TEMPLATE = 'none';

export interface ChatPrompter {
  /** The template in use: a built-in name, `model`, a Jinja file, or `none`. */
  readonly template: string;
  readonly tokenizer: TextTokenizer;
  /** Ids of the history (its last message a user turn) up to where the assistant's reply starts. */
  promptIds(history: readonly Message[]): number[];
}

/** Resolves the template (default: defaultChatTemplate) and checks the tokenizer has the tokens it needs. */
export async function chatPrompter(tokenizer: TextTokenizer, template?: string): Promise<ChatPrompter> {
  if (template === RAW_TEMPLATE) {
    return { template, tokenizer, promptIds: (history) => promptIds(history, tokenizer, undefined) };
  }
  const name = template ?? defaultChatTemplate(tokenizer);
  const { pipeline } = await createPipeline('chat', { tokenizer, template: name });
  return { template: name, tokenizer: pipeline.tokenizer, promptIds: (history) => promptIds(history, pipeline.tokenizer, pipeline.template, 'chat') };
}

/** Streams the model's reply to `history`; it stops at EOS or an end-of-turn token. Breaking out cancels. */
export function streamReply(model: Model, prompter: ChatPrompter, history: readonly Message[], sampling: GenerateOptions): AsyncGenerator<TextDelta> {
  const stopIds = stopIdsFor(prompter.tokenizer, model.spec.eosTokenIds);
  return streamText(model, prompter.tokenizer, prompter.promptIds(history), sampling, stopIds);
}

// Generation prompts: a user turn (or a chat history) rendered with the same template and per-segment encoding as
// training, cut where the assistant's reply would start, so the model sees exactly what it was trained to answer.
import type { Example, ExampleKind, Message } from '../data/index.ts';
import { encodeSegments } from '../mask/index.ts';
import type { PromptTemplate } from '../template/index.ts';
import type { TextTokenizer } from '../tokenize/index.ts';

/** End-of-turn tokens that stop a reply when the tokenizer has them (besides EOS). */
const END_OF_TURN = ['<|im_end|>', '<|end|>', '<|eot_id|>', '<|endoftext|>'];

/**
 * The template to talk to a model with when none is chosen: its tokenizer's chat template, else ChatML when the
 * tokenizer has those tokens, else the Alpaca instruction style (a base model with no chat tokens).
 */
export function defaultChatTemplate(tokenizer: TextTokenizer): 'model' | 'chatml' | 'alpaca' {
  if (tokenizer.chatTemplate) return 'model';
  return tokenizer.hasToken('<|im_start|>') && tokenizer.hasToken('<|im_end|>') ? 'chatml' : 'alpaca';
}

/** Ids that end a generated reply: the model's and tokenizer's EOS and any end-of-turn token the tokenizer has. */
export function stopIdsFor(tokenizer: TextTokenizer, modelEos: readonly number[] = []): number[] {
  const ids = new Set<number>([...modelEos, tokenizer.eosId]);
  for (const t of END_OF_TURN) {
    const id = tokenizer.tokenToId(t);
    if (id !== undefined) ids.add(id);
  }
  return [...ids];
}

/**
 * Prompt ids for `messages` (the last one a user turn). With a template: the conversation plus an empty trained
 * assistant turn is rendered, and the untrained segments before it are encoded. Without one: the text of the
 * messages as it is, with BOS where the tokenizer adds one.
 */
export function promptIds(
  messages: readonly Message[],
  tokenizer: TextTokenizer,
  template: PromptTemplate | undefined,
  kind: ExampleKind = 'instruction',
): number[] {
  if (!template) {
    const text = messages.map((m) => (m.input ? `${m.content}${m.input}` : m.content)).join('');
    return encodeSegments([{ text, trained: false }], tokenizer).ids;
  }
  const example: Example = {
    kind,
    messages: [...messages.map((m) => ({ ...m, trained: false })), { role: 'assistant', content: '', trained: true }],
    where: { file: '<prompt>', line: 1, record: 0 },
  };
  const segments = template.render(example);
  const cut = segments.findIndex((s) => s.trained);
  return encodeSegments(cut < 0 ? segments : segments.slice(0, cut), tokenizer).ids;
}

/**
 * The prompt part of a training example (everything before its last trained span), for generating a response to
 * compare with the reference answer.
 */
export function examplePromptIds(example: Example, tokenizer: TextTokenizer, template: PromptTemplate): number[] {
  const messages = [...example.messages];
  while (messages.length > 0 && messages[messages.length - 1]?.role === 'assistant') messages.pop();
  return promptIds(messages, tokenizer, template, example.kind);
}

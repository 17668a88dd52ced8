// `model` and custom templates: a Jinja chat_template rendered with @huggingface/jinja, split into trained spans.

import { createHash } from 'node:crypto';
import { Template } from '@huggingface/jinja';
import type { Example, Message } from '../data/index.ts';
import { SftkitError } from '../errors.ts';
import { SegmentBuilder, contentWithInput, renderText } from './segments.ts';
import type { PromptTemplate, Segment, TemplateContext } from './types.ts';

/** End-of-turn tokens recognised right after an assistant reply (besides the tokenizer's EOS). */
export const END_OF_TURN_TOKENS: readonly string[] = [
  '<|im_end|>',
  '<|end|>',
  '<|eot_id|>',
  '<|eot|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '</s>',
];

interface JinjaMessage {
  role: string;
  content: string;
}

/**
 * A PromptTemplate from Jinja source. Trained spans are found per message, never by searching tokens: for each
 * trained assistant message i, the conversation rendered up to i with `add_generation_prompt` must be a prefix of
 * the full rendering (the header ends there), and the rendering up to and including i must be one too (the turn ends
 * there). Inside that turn, the reply's content ends right before the end-of-turn token found at the turn's tail
 * (EOS, `<|im_end|>`, `<|end|>`, ...; followed only by whitespace). Trained: the content and that end token. Text
 * the template puts between the header and the content (e.g. an empty `<think>` block) is not trained, nor is the
 * newline after the end token. Templates that are not prefix-stable (Qwen3 renders the think block only after the
 * last user turn) fall back to sentinel contents (see bySentinels).
 */
export function jinjaTemplate(source: string, ctx: TemplateContext, origin: 'model' | 'file'): PromptTemplate {
  let compiled: Template;
  try {
    compiled = new Template(source);
  } catch (err) {
    throw new SftkitError('SFTKIT_LOAD', `cannot parse the ${origin === 'model' ? "tokenizer's chat_template" : 'template file'}: ${(err as Error).message}`, { cause: err });
  }
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const endTokens = [...new Set([ctx.eosToken, ...END_OF_TURN_TOKENS])].sort((a, b) => b.length - a.length);

  const renderMessages = (messages: readonly JinjaMessage[], addGenerationPrompt: boolean, example: Example): string => {
    try {
      return compiled.render({
        messages,
        add_generation_prompt: addGenerationPrompt,
        bos_token: ctx.bosToken ?? '',
        eos_token: ctx.eosToken,
        pad_token: ctx.padToken ?? '',
        unk_token: ctx.unkToken ?? '',
      });
    } catch (err) {
      throw new SftkitError(
        'SFTKIT_DATA',
        `${example.where.file}:${example.where.line} (record ${example.where.record}): the chat template failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
  };

  return {
    id: `${origin}:${hash}`,
    requiredTokens: [],
    render(example: Example): Segment[] {
      if (example.kind === 'text') return renderText(example.messages, ctx.eosToken);
      const msgs: JinjaMessage[] = example.messages.map((m: Message) => ({ role: m.role, content: contentWithInput(m) }));
      const full = renderMessages(msgs, false, example);
      return byPrefixes(example, msgs, full) ?? bySentinels(example, msgs, full);
    },
  };

  /** The trained span of one reply inside its turn text: [contentStart, spanEnd) relative to the turn start. */
  function spanInTurn(region: string, content: string): { contentStart: number; spanEnd: number } {
    const tail = region.trimEnd();
    const endTok = endTokens.find((t) => tail.endsWith(t));
    let contentEnd: number;
    if (endTok !== undefined) contentEnd = tail.length - endTok.length;
    else {
      const at = content === '' ? -1 : region.lastIndexOf(content);
      contentEnd = at >= 0 ? at + content.length : tail.length;
    }
    // The content sits right before the end token; when the template rewrote it, train the whole reply region.
    const contentStart = region.slice(0, contentEnd).endsWith(content) ? contentEnd - content.length : 0;
    return { contentStart, spanEnd: contentEnd + (endTok?.length ?? 0) };
  }

  /** Prefix method; undefined when the template is not prefix-stable (e.g. Qwen3 drops think blocks of old turns). */
  function byPrefixes(example: Example, msgs: JinjaMessage[], full: string): Segment[] | undefined {
    const b = new SegmentBuilder();
    let cursor = 0;
    for (let i = 0; i < example.messages.length; i++) {
      const m = example.messages[i] as Message;
      if (m.role !== 'assistant' || !m.trained) continue;
      const pre = renderMessages(msgs.slice(0, i), true, example);
      const turn = renderMessages(msgs.slice(0, i + 1), false, example);
      if (!full.startsWith(pre) || !full.startsWith(turn) || pre.length < cursor || turn.length < pre.length) return undefined;
      const headerEnd = pre.length;
      const { contentStart, spanEnd } = spanInTurn(full.slice(headerEnd, turn.length), msgs[i]?.content ?? '');
      b.push(full.slice(cursor, headerEnd + contentStart), false);
      b.push(full.slice(headerEnd + contentStart, headerEnd + spanEnd), true);
      cursor = headerEnd + spanEnd;
    }
    b.push(full.slice(cursor), false);
    return b.build();
  }

  /**
   * Sentinel method: every trained reply's content is replaced by a private-use marker, the conversation rendered
   * once, the markers located and the real contents put back; the end token right after a marker is trained too.
   * The result must reproduce the real rendering exactly, else the template is refused.
   */
  function bySentinels(example: Example, msgs: JinjaMessage[], full: string): Segment[] {
    const marker = (i: number) => `\uE000${i}\uE001`;
    const marked = msgs.map((m, i) => {
      const em = example.messages[i] as Message;
      return em.role === 'assistant' && em.trained ? { role: m.role, content: marker(i) } : m;
    });
    const text = renderMessages(marked, false, example);
    const b = new SegmentBuilder();
    let pos = 0;
    msgs.forEach((m, i) => {
      const at = text.indexOf(marker(i), pos);
      if (at < 0) return;
      b.push(text.slice(pos, at), false);
      const after = at + marker(i).length;
      const endTok = endTokens.find((t) => text.startsWith(t, after)) ?? '';
      b.push(m.content + endTok, true);
      pos = after + endTok.length;
    });
    b.push(text.slice(pos), false);
    const segments = b.build();
    if (segments.map((s) => s.text).join('') !== full) {
      throw new SftkitError(
        'SFTKIT_UNSUPPORTED',
        `${example.where.file}:${example.where.line} (record ${example.where.record}): the chat template changes assistant ` +
          'replies in a way that hides where they start and end; use --template chatml (or another built-in style)',
      );
    }
    return segments;
  }
}

// The built-in prompt styles: plain (seed 001), alpaca (LLMs-from-scratch ch7 wording), phi3, chatml.

import type { Example } from '../data/index.ts';
import { SegmentBuilder, contentWithInput, renderText } from './segments.ts';
import type { PromptTemplate, Segment, TemplateContext } from './types.ts';

/** The ch7 Alpaca preamble, word for word. */
export const ALPACA_PREAMBLE =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.';

/**
 * `plain`: no wrapping. Every message's text is concatenated as it is (instruct + input + label), and each assistant
 * message is followed by EOS, trained with it.
 */
export function plainTemplate(ctx: TemplateContext): PromptTemplate {
  return {
    id: 'plain',
    requiredTokens: [],
    render(example: Example): Segment[] {
      if (example.kind === 'text') return renderText(example.messages, ctx.eosToken);
      const b = new SegmentBuilder();
      for (const m of example.messages) {
        if (m.role === 'assistant') b.push(m.content, m.trained).push(ctx.eosToken, m.trained);
        else b.push(contentWithInput(m, ''), false);
      }
      return b.build();
    },
  };
}

/**
 * `alpaca` (ch7): preamble (or the system message), `\n\n### Instruction:\n{instruction}`, `\n\n### Input:\n{input}`
 * only when input is non-empty, `\n\n### Response:\n` (not trained), then the response and EOS (trained).
 * Further turns repeat the Instruction/Response blocks.
 */
export function alpacaTemplate(ctx: TemplateContext): PromptTemplate {
  return {
    id: 'alpaca',
    requiredTokens: [],
    render(example: Example): Segment[] {
      if (example.kind === 'text') return renderText(example.messages, ctx.eosToken);
      const b = new SegmentBuilder();
      const system = example.messages.find((m) => m.role === 'system');
      b.push(system ? system.content : ALPACA_PREAMBLE, false);
      for (const m of example.messages) {
        if (m.role === 'system') continue;
        if (m.role === 'assistant') {
          b.push('\n\n### Response:\n', false).push(m.content, m.trained).push(ctx.eosToken, m.trained);
        } else {
          b.push(`\n\n### Instruction:\n${m.content}`, false);
          if (m.input !== undefined && m.input !== '') b.push(`\n\n### Input:\n${m.input}`, false);
        }
      }
      return b.build();
    },
  };
}

interface TurnStyle {
  id: string;
  requiredTokens: readonly string[];
  header(role: string): string;
  endToken: string;
  afterEnd: string;
}

function turnTemplate(style: TurnStyle, ctx: TemplateContext): PromptTemplate {
  return {
    id: style.id,
    requiredTokens: style.requiredTokens,
    render(example: Example): Segment[] {
      if (example.kind === 'text') return renderText(example.messages, ctx.eosToken);
      const b = new SegmentBuilder();
      for (const m of example.messages) {
        const trained = m.role === 'assistant' && m.trained;
        b.push(style.header(m.role), false)
          .push(contentWithInput(m), trained)
          .push(style.endToken, trained)
          .push(style.afterEnd, false);
      }
      return b.build();
    },
  };
}

/** `chatml`: `<|im_start|>{role}\n{content}<|im_end|>\n`; trained: assistant content + `<|im_end|>`. */
export function chatmlTemplate(ctx: TemplateContext): PromptTemplate {
  return turnTemplate(
    {
      id: 'chatml',
      requiredTokens: ['<|im_start|>', '<|im_end|>'],
      header: (role) => `<|im_start|>${role}\n`,
      endToken: '<|im_end|>',
      afterEnd: '\n',
    },
    ctx,
  );
}

/** `phi3`: `<|{role}|>\n{content}<|end|>\n`; trained: assistant content + `<|end|>`. */
export function phi3Template(ctx: TemplateContext): PromptTemplate {
  return turnTemplate(
    {
      id: 'phi3',
      requiredTokens: ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>'],
      header: (role) => `<|${role}|>\n`,
      endToken: '<|end|>',
      afterEnd: '\n',
    },
    ctx,
  );
}

// The pipeline after reading: a record format's template, tokenizer and mask resolved once (createPipeline), and one
// example through it (render -> segments -> ids/labels per segment, unknown tokens traced to data or template).

import { SftkitError, invalidParameterError } from '../errors.ts';
import type { Example, RecordFormat } from '../data/index.ts';
import {
  addToSummary,
  applyMaskMode,
  applySegmentMode,
  defaultMaskMode,
  emptySummary,
  type MaskMode,
  type MaskResult,
  type MaskSummary,
  type TokenizedExample,
  tokenizeWithMask,
  type Truncation,
  validateMaskMode,
  validateMaskOptions,
} from '../mask/index.ts';
import {
  createTemplate,
  defaultTemplate,
  parseTemplateChoice,
  type PromptTemplate,
  type Segment,
  type TemplateChoice,
  type TemplateContext,
} from '../template/index.ts';
import { addSpecialTokens, loadTokenizer, TextTokenizer, type AddedTokenInfo } from '../tokenize/index.ts';

/** How examples become ids and labels: everything after reading. */
export interface Pipeline {
  tokenizer: TextTokenizer;
  template: PromptTemplate;
  mask: MaskMode;
  maxLength?: number | undefined;
  truncation: Truncation;
}

export interface PipelineOptions {
  /** A loaded tokenizer or a model directory holding tokenizer.json. */
  tokenizer: TextTokenizer | string;
  /** Default: by format (alpaca -> alpaca; instruct, prompt-completion, text -> plain; chats -> model or chatml). */
  template?: TemplateChoice | string | undefined;
  /** Default: by format (completion / assistant / pretrain). */
  mask?: MaskMode | undefined;
  maxLength?: number | undefined;
  /** `auto`: `split` for pretraining masks (pretrain, all: long texts become several examples), `cut` otherwise. */
  truncation?: Truncation | 'auto' | undefined;
  /** Add tokens the template needs but the tokenizer lacks (e.g. ChatML on GPT-2); otherwise that is an error. */
  addSpecialTokens?: boolean | undefined;
}

export function templateContext(tok: TextTokenizer): TemplateContext {
  return {
    eosToken: tok.eosToken,
    bosToken: tok.bosToken,
    padToken: tok.padToken,
    unkToken: tok.unkToken,
    chatTemplate: tok.chatTemplate,
  };
}

/**
 * Resolves the tokenizer, template and mask for a record format. Tokens the template needs must exist in the
 * tokenizer, or be added with `addSpecialTokens: true` (then `addedTokens` lists them and the caller resizes the
 * model to `pipeline.tokenizer.vocabSize`).
 */
export async function createPipeline(
  format: RecordFormat,
  options: PipelineOptions,
): Promise<{ pipeline: Pipeline; addedTokens: AddedTokenInfo[] }> {
  let tokenizer = typeof options.tokenizer === 'string' ? await loadTokenizer(options.tokenizer) : options.tokenizer;
  if (!(tokenizer instanceof TextTokenizer)) throw invalidParameterError('tokenizer', 'a TextTokenizer or a directory', tokenizer);
  const mask = options.mask === undefined ? defaultMaskMode(format) : validateMaskMode(options.mask);
  const { maxLength, truncation } = validateMaskOptions({
    maxLength: options.maxLength,
    truncation: options.truncation === 'auto' ? (mask === 'pretrain' || mask === 'all' ? 'split' : 'cut') : options.truncation,
  });
  if (options.addSpecialTokens !== undefined && typeof options.addSpecialTokens !== 'boolean') {
    throw invalidParameterError('addSpecialTokens', 'a boolean', options.addSpecialTokens);
  }
  const ctx = templateContext(tokenizer);
  const choice = options.template === undefined ? defaultTemplate(format, ctx) : parseTemplateChoice(options.template);
  let template = createTemplate(choice, ctx);
  const missing = template.requiredTokens.filter((t) => !tokenizer.hasToken(t));
  let addedTokens: AddedTokenInfo[] = [];
  if (missing.length > 0) {
    if (options.addSpecialTokens !== true) {
      throw new SftkitError(
        'SFTKIT_UNSUPPORTED',
        `template ${template.id} needs the tokens ${missing.join(' ')} which the tokenizer does not have; ` +
          'pass --add-special-tokens to add them (the model embeddings are resized and the saved tokenizer carries ' +
          'them), or choose another --template',
      );
    }
    const res = addSpecialTokens(tokenizer, missing);
    tokenizer = res.tokenizer;
    addedTokens = res.added;
    template = createTemplate(choice, templateContext(tokenizer));
  }
  return { pipeline: { tokenizer, template, mask, maxLength, truncation }, addedTokens };
}

/** One example through the pipeline: its segments (what the model reads, with trained flags) and its ids/labels. */
export function prepareExample(example: Example, p: Pipeline): { segments: Segment[]; result: MaskResult } {
  const segments = applySegmentMode(p.template.render(applyMaskMode(example, p.mask)), p.mask);
  const result = tokenizeWithMask(segments, p.tokenizer, { maxLength: p.maxLength, truncation: p.truncation });
  const unk = result.unk;
  if (unk) {
    // Whether the text that became the unknown token is the record's own, or only the template's.
    const inData = example.messages.some((m) => m.content.includes(unk.text) || (m.input ?? '').includes(unk.text));
    result.unk = { ...unk, source: inData ? 'data' : 'template', where: example.where };
  }
  return { segments, result };
}

/** Tokenizes a stream of examples; dropped ones are counted, not returned. */
export async function tokenizeExamples(
  examples: AsyncIterable<Example> | Iterable<Example>,
  p: Pipeline,
): Promise<{ examples: TokenizedExample[]; summary: MaskSummary }> {
  const out: TokenizedExample[] = [];
  const summary = emptySummary();
  for await (const e of examples) {
    const { result } = prepareExample(e, p);
    addToSummary(summary, result);
    if (result.kept) out.push({ ...result.example, record: e.where.record });
  }
  return { examples: out, summary };
}

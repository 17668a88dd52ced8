// Evaluation on a whole data file (no split): mean loss over label tokens and perplexity, and ch7-style generated
// responses ({instruction, input, output, model_response}) with optional judge scores.
import { batches } from '../collate/index.ts';
import { createPipeline, prepareExample, type Pipeline } from '../pipeline/index.ts';
import { addToSummary, emptySummary, type MaskMode, type MaskSummary, type TokenizedExample } from '../mask/index.ts';
import {
  EVAL_SPLITS,
  type Example,
  type FieldMap,
  openDataset,
  readRecords,
  type RecordFormat,
} from '../data/index.ts';
import { SftkitError, invalidParameterError } from '../errors.ts';
import { examplePromptIds, promptIds, replyText, stopIdsFor } from '../generate/index.ts';
import type { GenerateOptions, Model } from '../native/index.ts';
import type { Judge } from './judge.ts';

export interface DataSelection {
  /** A data file, URL or dataset directory (its test split, else validation, else train: EVAL_SPLITS). */
  data: string;
  format?: RecordFormat | 'auto' | undefined;
  template?: string | undefined;
  mask?: MaskMode | undefined;
  maxLength?: number | undefined;
  limit?: number | undefined;
  addSpecialTokens?: boolean | undefined;
  fieldMap?: FieldMap | undefined;
}

export interface LossReport {
  /** Mean token loss (nats) over every label token of the file. */
  loss: number;
  perplexity: number;
  /** Label tokens (targets after the shift). */
  tokens: number;
  /** Examples evaluated (kept after masking/truncation). */
  examples: number;
  dropped: number;
  /** Counts over the file as tokenized (kept, dropped, unknown tokens: see formatUnkWarning). */
  summary: MaskSummary;
  /** The tokenizer's unknown token as text, when it has one (for formatUnkWarning). */
  unkToken?: string | undefined;
}

async function tokenizedFile(sel: DataSelection, tokenizerDir: string): Promise<{ examples: TokenizedExample[]; pipeline: Pipeline; summary: MaskSummary; format: RecordFormat }> {
  const opened = await openDataset(sel.data, { format: sel.format ?? 'auto', fieldMap: sel.fieldMap ?? {}, split: EVAL_SPLITS, ...(sel.limit !== undefined ? { limit: sel.limit } : {}) });
  const { pipeline } = await createPipeline(opened.format, {
    tokenizer: tokenizerDir,
    template: sel.template,
    mask: sel.mask,
    maxLength: sel.maxLength,
    addSpecialTokens: sel.addSpecialTokens,
  });
  const summary = emptySummary();
  const examples: TokenizedExample[] = [];
  for await (const e of opened.examples) {
    const { result } = prepareExample(e, pipeline);
    addToSummary(summary, result);
    if (result.kept) examples.push(result.example);
  }
  return { examples, pipeline, summary, format: opened.format };
}

/** Loss over every example of `sel.data` with the model in `modelDir` (tokenizer from the same directory). */
export async function evaluateLoss(model: Model, modelDir: string, sel: DataSelection, batchSize = 8): Promise<LossReport> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw invalidParameterError('batchSize', 'a positive integer', batchSize);
  const maxLength = sel.maxLength ?? model.spec.maxPositions;
  const { examples, pipeline, summary } = await tokenizedFile({ ...sel, maxLength }, modelDir);
  if (examples.length === 0) {
    throw new SftkitError('SFTKIT_DATA', `${sel.data}: no example has a label token to evaluate`);
  }
  let sum = 0;
  let tokens = 0;
  for (const b of batches(examples, { batchSize, padId: pipeline.tokenizer.padId, shuffle: false, maxLength })) {
    const r = await model.evalLoss(b);
    sum += r.lossSum;
    tokens += r.tokens;
  }
  const loss = tokens > 0 ? sum / tokens : Number.NaN;
  const tok = pipeline.tokenizer;
  const unkToken = tok.unkId === undefined ? undefined : tok.idToToken(tok.unkId);
  return { loss, perplexity: Math.exp(loss), tokens, examples: examples.length, dropped: summary.droppedTotal, summary, ...(unkToken !== undefined ? { unkToken } : {}) };
}

export interface ResponseOptions extends DataSelection {
  batchSize?: number;
  generation?: GenerateOptions;
}

export interface GeneratedResponse {
  /** The source record's fields (instruction/input/output for alpaca data) plus the model's reply. */
  record: Record<string, unknown>;
  model_response: string;
}

/**
 * Generates a reply for every example of the file: the prompt is the example rendered up to its (last) answer, as
 * in training; the reply is decoded up to the first stop token (EOS or end of turn), with no prompt echo.
 */
export async function generateResponses(model: Model, modelDir: string, o: ResponseOptions): Promise<GeneratedResponse[]> {
  const batchSize = o.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw invalidParameterError('batchSize', 'a positive integer', batchSize);
  const opened = await openDataset(o.data, { format: o.format ?? 'auto', fieldMap: o.fieldMap ?? {}, split: EVAL_SPLITS, ...(o.limit !== undefined ? { limit: o.limit } : {}) });
  const { pipeline } = await createPipeline(opened.format, {
    tokenizer: modelDir,
    template: o.template,
    mask: o.mask,
    addSpecialTokens: o.addSpecialTokens,
  });
  const rawByIndex = new Map<number, Record<string, unknown>>();
  for await (const r of readRecords(opened.source, typeof opened.source === 'string' ? { displayName: opened.displayName } : {})) {
    if (o.limit !== undefined && r.where.record >= o.limit) break;
    if (r.value !== null && typeof r.value === 'object' && !Array.isArray(r.value)) rawByIndex.set(r.where.record, r.value as Record<string, unknown>);
  }
  const examples: Example[] = [];
  for await (const e of opened.examples) examples.push(e);
  const stopIds = stopIdsFor(pipeline.tokenizer, model.spec.eosTokenIds);
  const out: GeneratedResponse[] = [];
  for (let i = 0; i < examples.length; i += batchSize) {
    const chunk = examples.slice(i, i + batchSize);
    const prompts = chunk.map((e) => examplePromptIds(e, pipeline.tokenizer, pipeline.template));
    const replies = await model.generate(prompts, { maxNewTokens: 256, ...o.generation, stopIds });
    chunk.forEach((e, j) => {
      out.push({ record: rawByIndex.get(e.where.record) ?? {}, model_response: replyText(pipeline.tokenizer, replies[j] ?? [], stopIds) });
    });
  }
  return out;
}

/** A judge that is a local sftkit model: the judge prompt is sent as one user turn with the model's template. */
export class LocalModelJudge implements Judge {
  constructor(
    private readonly model: Model,
    private readonly pipeline: Pipeline,
    private readonly maxNewTokens = 16,
  ) {}

  async score(prompt: string): Promise<string> {
    const ids = promptIds([{ role: 'user', content: prompt, trained: false }], this.pipeline.tokenizer, this.pipeline.template);
    const stopIds = stopIdsFor(this.pipeline.tokenizer, this.model.spec.eosTokenIds);
    const [reply] = await this.model.generate([ids], { maxNewTokens: this.maxNewTokens, temperature: 0, stopIds });
    return replyText(this.pipeline.tokenizer, reply ?? [], stopIds);
  }
}

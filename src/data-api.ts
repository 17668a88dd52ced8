// The data front end as a trainer uses it: prepareDataset (load -> messages -> render -> tokenize+mask -> split)
// and batches (shuffle, pad or pack). Re-exports the rooms' public types.

import { join } from 'node:path';
import { cacheRoot, hashDataFiles, openDataset, splitSources, type DataSource, type OpenOptions, type SplitName } from './data/index.ts';
import type { Example, FieldMap, RecordFormat, RecordLocation } from './data/types.ts';
import { SftkitError, invalidParameterError } from './errors.ts';
import { collate, collatePacked, type Batch } from './collate/batch.ts';
import { planBatches, type BatchPlanOptions } from './collate/batch-plan.ts';
import { datasetCacheKey, readCachedDataset, writeCachedDataset } from './collate/dataset-cache.ts';
import { packBestFitDecreasing } from './collate/pack.ts';
import { splitIndices, type SplitOptions } from './collate/split.ts';
import { applyMaskMode, applySegmentMode, defaultMaskMode, validateMaskMode, type MaskMode } from './mask/mask-mode.ts';
import { addToSummary, emptySummary, formatSummary, type MaskSummary } from './mask/mask-summary.ts';
import { maskedPieces, type MaskedPiece } from './mask/masked-pieces.ts';
import {
  splitLongExample,
  tokenizeWithMask,
  validateMaskOptions,
  type MaskResult,
  type TokenizedExample,
  type Truncation,
} from './mask/tokenize-with-mask.ts';
import { createTemplate, defaultTemplate, parseTemplateChoice, type TemplateChoice } from './template/resolve-template.ts';
import type { PromptTemplate, Segment, TemplateContext } from './template/types.ts';
import { addSpecialTokens, loadTokenizer, TextTokenizer, type AddedTokenInfo } from './tokenize/tokenizer.ts';

export type { Batch } from './collate/batch.ts';
export type { BatchPlanOptions } from './collate/batch-plan.ts';
export type { SplitOptions, SplitIndices } from './collate/split.ts';
export type { Example, FieldMap, Message, RecordFormat, Role } from './data/types.ts';
export type { DataFiles, DataSource, SplitName } from './data/index.ts';
export type { MaskMode } from './mask/mask-mode.ts';
export type { MaskSummary } from './mask/mask-summary.ts';
export type { MaskedPiece } from './mask/masked-pieces.ts';
export type { DropReason, MaskResult, TokenizedExample, Truncation, UnkReport } from './mask/tokenize-with-mask.ts';
export type { PromptTemplate, Segment, TemplateName } from './template/types.ts';
export type { TemplateChoice } from './template/resolve-template.ts';
export type { AddedTokenInfo } from './tokenize/tokenizer.ts';
export { IGNORE_INDEX } from './mask/tokenize-with-mask.ts';
export { formatSummary, formatUnkWarning, emptySummary, addToSummary } from './mask/mask-summary.ts';
export { maskedPieces, maskedRuns } from './mask/masked-pieces.ts';
export { TextTokenizer, loadTokenizer, saveTokenizer, addSpecialTokens } from './tokenize/tokenizer.ts';
export { collate, collatePacked } from './collate/batch.ts';
export { planBatches } from './collate/batch-plan.ts';
export { packBestFitDecreasing } from './collate/pack.ts';
export { splitIndices } from './collate/split.ts';
export { Rng } from './collate/prng.ts';
export { openDataset, loadExamples } from './data/load-examples.ts';

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

/** What `sftkit inspect` and the web inspector read: a data file and the pipeline options. */
export interface InspectOptions extends PipelineOptions {
  /** A JSON/JSONL/Parquet/CSV/TSV file, a dataset directory (its train split), or an http(s) URL (cached). */
  data: string;
  format?: RecordFormat | 'auto' | undefined;
  fieldMap?: FieldMap | undefined;
  limit?: number | undefined;
  dataCacheDir?: string | undefined;
}

/** An opened data file with its resolved pipeline; `examples` streams the records in file order (single use). */
export interface Inspection {
  displayName: string;
  path: string;
  format: RecordFormat;
  pipeline: Pipeline;
  addedTokens: AddedTokenInfo[];
  examples: AsyncGenerator<Example>;
}

/** One example as the model reads it: its segments, its ids/labels (or why it is dropped), and its text pieces. */
export interface InspectedExample {
  where: RecordLocation;
  segments: Segment[];
  result: MaskResult;
  /** The kept example's tokens as text pieces with trained flags; empty when dropped. */
  pieces: MaskedPiece[];
}

/** Opens a data file for inspection: the format is settled from the first record and the pipeline resolved. */
export async function openInspection(options: InspectOptions): Promise<Inspection> {
  if (options === null || typeof options !== 'object') throw invalidParameterError('options', 'an object', options);
  const opened = await openDataset(options.data, {
    ...(options.format !== undefined ? { format: options.format } : {}),
    ...(options.fieldMap !== undefined ? { fieldMap: options.fieldMap } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
    ...(options.dataCacheDir !== undefined ? { cacheDir: options.dataCacheDir } : {}),
  });
  try {
    const { pipeline, addedTokens } = await createPipeline(opened.format, options);
    return { displayName: opened.displayName, path: opened.path, format: opened.format, pipeline, addedTokens, examples: opened.examples };
  } catch (e) {
    await opened.examples.return(undefined);
    throw e;
  }
}

/**
 * prepareExample plus the text pieces of the kept example (the inspectors' view): per token (default) or per run of
 * trained / masked tokens; `pieces: false` skips them when only ids and counts are wanted.
 */
export function inspectExample(example: Example, p: Pipeline, options: { pieces?: 'token' | 'run' | false } = {}): InspectedExample {
  const { segments, result } = prepareExample(example, p);
  const granularity = options.pieces ?? 'token';
  const pieces = result.kept && granularity !== false ? maskedPieces(result.example, p.tokenizer, granularity) : [];
  return { where: example.where, segments, result, pieces };
}

export interface PrepareOptions extends PipelineOptions {
  /**
   * A JSON/JSONL/Parquet/CSV/TSV file, an http(s) URL (downloaded once into `<cacheRoot>/data`), or a dataset
   * directory: its train files are `data`, its validation/test files (if any) the val/test splits unless
   * valData/testData are given.
   */
  data: string;
  format?: RecordFormat | 'auto' | undefined;
  fieldMap?: FieldMap | undefined;
  limit?: number | undefined;
  /**
   * Split of `data` into train/val/test (default 85/10/5, test sliced before val, shuffled with seed 123);
   * `false` keeps everything in train. Ignored when valData/testData are given or the dataset directory has
   * validation/test files.
   */
  split?: SplitOptions | false | undefined;
  valData?: string | undefined;
  testData?: string | undefined;
  /** Tokenized-dataset cache: true = `<cacheRoot>/tokenized`, or a directory; default off. */
  cache?: boolean | string | undefined;
  /** Where URL data is cached (default `<cacheRoot>/data`). */
  dataCacheDir?: string | undefined;
}

export interface PreparedDataset {
  /**
   * What the main data was read from (a local file, a URL's cached copy, or the files of a directory's split), and
   * the same for the val/test data: `readRecords` reads the same records from them again.
   */
  sources: { data: DataSource; valData?: DataSource; testData?: DataSource };
  /** The tokenizer to train and save with (it carries any added tokens). */
  tokenizer: TextTokenizer;
  /** Tokens added for the template: resize the model's embeddings to tokenizer.vocabSize. */
  addedTokens: AddedTokenInfo[];
  format: RecordFormat;
  templateId: string;
  mask: MaskMode;
  train: TokenizedExample[];
  val: TokenizedExample[];
  test: TokenizedExample[];
  /** Counts over `data` (and over valData/testData in their own entries). */
  summary: MaskSummary;
  valSummary?: MaskSummary;
  testSummary?: MaskSummary;
  /** True when the tokenized examples of `data` came from the cache. */
  fromCache: boolean;
}

interface CacheMeta {
  summary: MaskSummary;
  /** Source record index of every cached example, in order. */
  records?: number[];
}

async function tokenizeFile(
  source: DataSource,
  openOptions: OpenOptions,
  options: PipelineOptions,
  cache: string | undefined,
  reuse?: { pipeline: Pipeline; addedTokens: AddedTokenInfo[] },
): Promise<{ format: RecordFormat; source: DataSource; pipeline: Pipeline; addedTokens: AddedTokenInfo[]; examples: TokenizedExample[]; summary: MaskSummary; fromCache: boolean }> {
  const opened = await openDataset(source, openOptions);
  const { pipeline, addedTokens } = reuse ?? (await createPipeline(opened.format, options));
  let key: string | undefined;
  if (cache !== undefined) {
    key = datasetCacheKey({
      dataHash: await hashDataFiles(opened.files),
      tokenizerFingerprint: pipeline.tokenizer.fingerprint,
      templateId: pipeline.template.id,
      options: {
        format: opened.format,
        fieldMap: openOptions.fieldMap,
        limit: openOptions.limit,
        mask: pipeline.mask,
        maxLength: pipeline.maxLength,
        truncation: pipeline.truncation,
      },
    });
    const hit = await readCachedDataset<CacheMeta>(cache, key);
    // Entries written before the summary counted unknown tokens are tokenized again (and rewritten).
    if (hit && typeof hit.meta.summary.unkTokens === 'number') {
      await opened.examples.return(undefined);
      const records = hit.meta.records;
      const examples = records && records.length === hit.examples.length ? hit.examples.map((e, i) => ({ ...e, record: records[i] as number })) : hit.examples;
      return { format: opened.format, source: opened.source, pipeline, addedTokens, examples, summary: hit.meta.summary, fromCache: true };
    }
  }
  const { examples, summary } = await tokenizeExamples(opened.examples, pipeline);
  if (examples.length === 0) {
    throw new SftkitError(
      'SFTKIT_DATA',
      `${opened.displayName}: no example has a trained token left (${formatSummary(summary)}); check --format, --mask and --max-length`,
    );
  }
  if (cache !== undefined && key !== undefined) await writeCachedDataset<CacheMeta>(cache, key, { examples, meta: { summary, records: examples.map((e) => e.record ?? -1) } });
  return { format: opened.format, source: opened.source, pipeline, addedTokens, examples, summary, fromCache: false };
}

/**
 * Reads `data`, renders every example with the template, tokenizes it per segment with its labels, drops and counts
 * what has nothing to train, and splits the rest. An empty file, or one where nothing trainable is left, is an error.
 */
export async function prepareDataset(options: PrepareOptions): Promise<PreparedDataset> {
  if (options === null || typeof options !== 'object') throw invalidParameterError('options', 'an object', options);
  let cache: string | undefined;
  if (options.cache === true) cache = join(cacheRoot(), 'tokenized');
  else if (typeof options.cache === 'string' && options.cache !== '') cache = options.cache;
  else if (options.cache !== undefined && options.cache !== false) {
    throw invalidParameterError('cache', 'a boolean or a directory', options.cache);
  }
  const openOptions: OpenOptions = {
    ...(options.format !== undefined ? { format: options.format } : {}),
    ...(options.fieldMap !== undefined ? { fieldMap: options.fieldMap } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
    ...(options.dataCacheDir !== undefined ? { cacheDir: options.dataCacheDir } : {}),
  };
  const main = await tokenizeFile(options.data, { ...openOptions, split: 'train' }, options, cache);
  const { val: valSource, test: testSource } = await splitSources(options.data, options.valData, options.testData);
  // Truncation `split` (pretraining): long documents become pieces after the split, so one document never feeds both
  // train and validation.
  const { maxLength, truncation } = main.pipeline;
  const pieces = (xs: TokenizedExample[]): TokenizedExample[] =>
    truncation === 'split' && maxLength !== undefined ? xs.flatMap((e) => splitLongExample(e, maxLength)) : xs;
  const base = {
    tokenizer: main.pipeline.tokenizer,
    addedTokens: main.addedTokens,
    format: main.format,
    templateId: main.pipeline.template.id,
    mask: main.pipeline.mask,
    summary: main.summary,
    fromCache: main.fromCache,
    sources: { data: main.source },
  };
  if (valSource !== undefined || testSource !== undefined) {
    const reuse = { pipeline: main.pipeline, addedTokens: main.addedTokens };
    const other = async (src: DataSource | undefined, split: SplitName) =>
      src === undefined ? undefined : tokenizeFile(src, { ...openOptions, format: main.format, split }, options, cache, reuse);
    const val = await other(valSource, 'validation');
    const test = await other(testSource, 'test');
    return {
      ...base,
      sources: { data: main.source, ...(val ? { valData: val.source } : {}), ...(test ? { testData: test.source } : {}) },
      train: pieces(main.examples),
      val: pieces(val?.examples ?? []),
      test: pieces(test?.examples ?? []),
      ...(val ? { valSummary: val.summary } : {}),
      ...(test ? { testSummary: test.summary } : {}),
    };
  }
  if (options.split === false) return { ...base, train: pieces(main.examples), val: [], test: [] };
  const parts = splitIndices(main.examples.length, options.split ?? {});
  const pick = (idx: number[]) => pieces(idx.map((i) => main.examples[i] as TokenizedExample));
  return { ...base, train: pick(parts.train), val: pick(parts.val), test: pick(parts.test) };
}

export interface BatchOptions extends BatchPlanOptions {
  /** Pad id (use the tokenizer's padId: pad, else EOS). */
  padId: number;
  padToMultiple?: number;
  /** Pack examples into rows of `maxLength` tokens (best-fit-decreasing), with position ids and doc lengths. */
  packing?: boolean;
  /** Row capacity for packing. */
  maxLength?: number;
}

/**
 * The batches of one epoch, lazily. Depends only on (examples, options): resuming at batch k of epoch e is
 * `[...batches(examples, {...o, epoch: e})].slice(k)` or `planBatches` directly.
 */
export function* batches(examples: readonly TokenizedExample[], options: BatchOptions): Generator<Batch> {
  const pad = { padId: options.padId, ...(options.padToMultiple !== undefined ? { padToMultiple: options.padToMultiple } : {}) };
  if (options.packing) {
    const capacity = options.maxLength;
    if (capacity === undefined || !Number.isInteger(capacity) || capacity < 2) {
      throw invalidParameterError('maxLength', 'an integer >= 2 (the packed row length)', capacity);
    }
    const rows = packBestFitDecreasing(examples.map((e) => e.inputIds.length), capacity).map((bin) =>
      bin.map((i) => examples[i] as TokenizedExample),
    );
    const lengths = rows.map((r) => r.reduce((s, e) => s + e.inputIds.length, 0));
    for (const plan of planBatches(lengths, options)) yield collatePacked(plan.map((i) => rows[i] as TokenizedExample[]), pad);
    return;
  }
  const lengths = examples.map((e) => e.inputIds.length);
  for (const plan of planBatches(lengths, options)) yield collate(plan.map((i) => examples[i] as TokenizedExample), pad);
}

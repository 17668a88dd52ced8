// A tokenized dataset from a data file, URL or dataset directory: read -> pipeline -> drop and count -> split into
// train/val/test (or the given val/test files), with the on-disk tokenized-dataset cache.

import { join } from 'node:path';
import {
  cacheRoot,
  type DataSource,
  type FieldMap,
  hashDataFiles,
  openDataset,
  type OpenOptions,
  type RecordFormat,
  type SplitName,
  splitSources,
} from '../data/index.ts';
import { SftkitError, invalidParameterError } from '../errors.ts';
import {
  formatSummary,
  type MaskMode,
  type MaskSummary,
  splitLongExample,
  type TokenizedExample,
} from '../mask/index.ts';
import type { AddedTokenInfo, TextTokenizer } from '../tokenize/index.ts';
import { datasetCacheKey, readCachedDataset, writeCachedDataset } from './dataset-cache.ts';
import { createPipeline, tokenizeExamples, type Pipeline, type PipelineOptions } from './pipeline.ts';
import { splitIndices, type SplitOptions } from './split.ts';

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

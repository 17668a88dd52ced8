// Composes the data room: source (path, URL or dataset directory) -> streamed records -> detected format -> Examples.

import { SftkitError, invalidParameterError } from '../errors.ts';
import { isUrl, resolveDataSource } from './data-source.ts';
import { datasetDirectory, directorySplit, SPLIT_NAMES, type SplitName } from './dataset-dir.ts';
import { detectFormatOrThrow, toExample, validateFieldMap, validateFormat } from './formats.ts';
import { readRecords, type DataSource, type FileLayout } from './read-records.ts';
import type { Example, FieldMap, RawRecord, RecordFormat } from './types.ts';

export interface OpenOptions {
  /** A format, or `auto` (default) to detect it from the first record's keys. */
  format?: RecordFormat | 'auto';
  fieldMap?: FieldMap;
  /** Read at most this many records. */
  limit?: number;
  /** Where URLs are cached (default `<cacheRoot>/data`). */
  cacheDir?: string;
  layout?: FileLayout;
  /** For a dataset directory: the split to read, or the first of a list that the directory has (default train). */
  split?: SplitName | readonly SplitName[];
}

export interface OpenedDataset {
  format: RecordFormat;
  /** Local file read (the cached copy for a URL), or the dataset directory. */
  path: string;
  /** How errors name the source (path, URL, or `<dir> (<split> split)`). */
  displayName: string;
  /** What to read the same records from again: the local file, or the files of a directory's split. */
  source: DataSource;
  /** The local files read, in order. */
  files: string[];
  /** Every example in file order (single use). */
  examples: AsyncGenerator<Example>;
}

function validateSplit(split: unknown): readonly SplitName[] {
  if (split === undefined) return ['train'];
  const list = typeof split === 'string' ? [split] : split;
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => (SPLIT_NAMES as readonly unknown[]).includes(s))) {
    throw invalidParameterError('split', `one of ${SPLIT_NAMES.join(', ')} (or a list of them)`, split);
  }
  return list as SplitName[];
}

/**
 * Opens a data file, URL or dataset directory (one of its splits) and peeks at the first record to settle the
 * format. The examples are then streamed; an empty source is an error here, not a silent empty dataset.
 */
export async function openDataset(source: DataSource, options: OpenOptions = {}): Promise<OpenedDataset> {
  if (typeof source === 'string' ? source === '' : source === null || typeof source !== 'object' || !Array.isArray(source.files)) {
    throw invalidParameterError('data', 'a file path, dataset directory or URL', source);
  }
  const split = validateSplit(options.split);
  const requested = validateFormat(options.format);
  const map = validateFieldMap(options.fieldMap);
  const limit = options.limit;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    throw invalidParameterError('limit', 'a positive integer', limit);
  }
  let path: string;
  let displayName: string;
  let local: DataSource;
  if (typeof source === 'string') {
    const resolved = await resolveDataSource(source, options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {});
    const dir = isUrl(source) ? undefined : await datasetDirectory(resolved.path);
    path = resolved.path;
    local = dir === undefined ? resolved.path : await directorySplit(resolved.path, split);
    displayName = typeof local === 'string' ? resolved.displayName : local.displayName;
  } else {
    [path, displayName, local] = [source.dir, source.displayName, source];
  }
  const records = readRecords(local, {
    ...(typeof local === 'string' ? { displayName } : {}),
    ...(options.layout !== undefined ? { layout: options.layout } : {}),
  });
  const first = await records.next();
  if (first.done) {
    throw new SftkitError('SFTKIT_DATA', `${displayName}: ${typeof local === 'string' ? 'the file holds' : 'its files hold'} no records`);
  }
  const firstRecord: RawRecord = first.value;
  const format = requested === 'auto' ? detectFormatOrThrow(firstRecord, map) : requested;
  async function* examples(): AsyncGenerator<Example> {
    let n = 0;
    try {
      yield toExample(firstRecord, format, map);
      n++;
      for await (const raw of records) {
        if (limit !== undefined && n >= limit) break;
        yield toExample(raw, format, map);
        n++;
      }
    } finally {
      await records.return(undefined);
    }
  }
  const files = typeof local === 'string' ? [local] : [...local.files];
  return { format, path, displayName, source: local, files, examples: examples() };
}

/**
 * The validation and test sources of a run: `valData`/`testData` when given, else the validation/test files of the
 * dataset directory `data` is (undefined for a file or URL: the caller splits the data itself).
 */
export async function splitSources(
  data: string,
  valData: string | undefined,
  testData: string | undefined,
): Promise<{ val?: DataSource; test?: DataSource }> {
  const dir = await datasetDirectory(data);
  const val = valData ?? dir?.splits.validation;
  const test = testData ?? dir?.splits.test;
  return { ...(val !== undefined ? { val } : {}), ...(test !== undefined ? { test } : {}) };
}

/** Reads every example into memory (convenience for small files and tests). */
export async function loadExamples(
  source: DataSource,
  options: OpenOptions = {},
): Promise<{ format: RecordFormat; displayName: string; examples: Example[] }> {
  const opened = await openDataset(source, options);
  const examples: Example[] = [];
  for await (const e of opened.examples) examples.push(e);
  return { format: opened.format, displayName: opened.displayName, examples };
}

// Composes the data room: source (path or URL) -> streamed records -> detected format -> Examples.

import { SftkitError, invalidParameterError } from '../errors.ts';
import { resolveDataSource } from './data-source.ts';
import { detectFormatOrThrow, toExample, validateFieldMap, validateFormat } from './formats.ts';
import { readRecords, type FileLayout } from './read-records.ts';
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
}

export interface OpenedDataset {
  format: RecordFormat;
  /** Local file read (the cached copy for a URL). */
  path: string;
  /** How errors name the source (path or URL). */
  displayName: string;
  /** Every example in file order (single use). */
  examples: AsyncGenerator<Example>;
}

/**
 * Opens a data file or URL and peeks at the first record to settle the format. The examples are then streamed; an
 * empty file is an error here, not a silent empty dataset.
 */
export async function openDataset(source: string, options: OpenOptions = {}): Promise<OpenedDataset> {
  if (typeof source !== 'string' || source === '') throw invalidParameterError('data', 'a file path or URL', source);
  const requested = validateFormat(options.format);
  const map = validateFieldMap(options.fieldMap);
  const limit = options.limit;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    throw invalidParameterError('limit', 'a positive integer', limit);
  }
  const resolved = await resolveDataSource(source, options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {});
  const records = readRecords(resolved.path, {
    displayName: resolved.displayName,
    ...(options.layout !== undefined ? { layout: options.layout } : {}),
  });
  const first = await records.next();
  if (first.done) {
    throw new SftkitError('SFTKIT_DATA', `${resolved.displayName}: the file holds no records`);
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
  return { format, path: resolved.path, displayName: resolved.displayName, examples: examples() };
}

/** Reads every example into memory (convenience for small files and tests). */
export async function loadExamples(
  source: string,
  options: OpenOptions = {},
): Promise<{ format: RecordFormat; displayName: string; examples: Example[] }> {
  const opened = await openDataset(source, options);
  const examples: Example[] = [];
  for await (const e of opened.examples) examples.push(e);
  return { format: opened.format, displayName: opened.displayName, examples };
}

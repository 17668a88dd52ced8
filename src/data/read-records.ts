// The one reader of data files: `readRecords` opens a file (JSON array, JSONL, Parquet, CSV, TSV), a list of files
// (the shards of a split) or a dataset directory (a split of it) and streams records with where they come from.
// The JSON readers live here too: one record at a time, bounded memory, line numbers for errors.

import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { dataError, SftkitError } from '../errors.ts';
import { isUrl } from './data-source.ts';
import { directorySplit, type DataFiles, type SplitName } from './dataset-dir.ts';
import { readDelimited } from './read-csv.ts';
import { readParquet } from './read-parquet.ts';
import type { RawRecord } from './types.ts';

export type FileLayout = 'json-array' | 'jsonl' | 'parquet' | 'csv' | 'tsv';

export interface ReadOptions {
  /** Name used in error messages (e.g. the URL a cached file came from); defaults to the path. Single files only. */
  displayName?: string;
  /**
   * Force a layout instead of taking it from the extension (`.parquet`, `.csv`, `.tsv`) or the content (other names:
   * "PAR1" = Parquet unless `.json`/`.jsonl`; then first non-blank `[` = JSON array, else JSONL).
   */
  layout?: FileLayout;
  /** A dataset directory's split to read (default train). */
  split?: SplitName;
  /** Chunk size of the underlying stream (tests use a tiny one to exercise chunk boundaries). */
  highWaterMark?: number;
  /** Observes the byte ranges the Parquet reader reads (tests check that it goes row group by row group). */
  onParquetRead?: (start: number, end: number) => void;
}

/** Where records are read from: a file or dataset directory path, or the files of one split. */
export type DataSource = string | DataFiles;

const JSON_EXTENSIONS = ['.json', '.jsonl', '.ndjson'];
const LAYOUT_BY_EXTENSION: Record<string, FileLayout> = { '.parquet': 'parquet', '.pq': 'parquet', '.csv': 'csv', '.tsv': 'tsv', '.tab': 'tsv' };

function layoutFromName(name: string): FileLayout | undefined {
  let path = name;
  if (isUrl(name)) {
    try {
      path = new URL(name).pathname;
    } catch {
      // keep the name
    }
  }
  return LAYOUT_BY_EXTENSION[extname(path).toLowerCase()];
}

async function startsWithPar1(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    return bytesRead === 4 && head.toString('latin1') === 'PAR1';
  } finally {
    await fh.close();
  }
}

/**
 * Reads every record of `source` in order: a data file, a dataset directory (its `options.split`, default train) or
 * the files of a split (their records numbered on from file to file). Memory stays bounded by the largest record
 * (JSON, CSV) or row group (Parquet). Each record carries its file, its 1-based line (the row of a Parquet file, the
 * line a CSV record starts on) and its 0-based index; errors name them too.
 */
export async function* readRecords(source: DataSource, options: ReadOptions = {}): AsyncGenerator<RawRecord> {
  if (typeof source !== 'string') {
    let first = 0;
    for (const f of source.files) {
      await checkFile(f, f);
      for await (const r of readFile(f, f, options, first)) {
        yield r;
        first = r.where.record + 1;
      }
    }
    return;
  }
  const file = options.displayName ?? source;
  if (await checkFile(source, file)) yield* readRecords(await directorySplit(source, options.split ?? 'train'), options);
  else yield* readFile(source, file, options, 0);
}

/** True for a directory, false for a file; an error naming `file` otherwise. */
async function checkFile(path: string, file: string): Promise<boolean> {
  try {
    const st = await stat(path);
    if (st.isDirectory()) return true;
    if (!st.isFile()) throw new SftkitError('SFTKIT_IO', `${file}: not a file`);
    return false;
  } catch (err) {
    if (err instanceof SftkitError) throw err;
    throw new SftkitError('SFTKIT_IO', `${file}: cannot read data file (${(err as Error).message})`, { cause: err });
  }
}

async function* readFile(path: string, file: string, options: ReadOptions, firstRecord: number): AsyncGenerator<RawRecord> {
  let layout = options.layout ?? layoutFromName(path) ?? layoutFromName(file);
  if (layout === undefined && !JSON_EXTENSIONS.includes(extname(path).toLowerCase())) {
    try {
      if (await startsWithPar1(path)) layout = 'parquet';
    } catch (err) {
      throw new SftkitError('SFTKIT_IO', `${file}: cannot read data file (${(err as Error).message})`, { cause: err });
    }
  }
  if (layout === 'parquet') {
    yield* readParquet(path, file, { firstRecord, ...(options.onParquetRead ? { onRead: options.onParquetRead } : {}) });
    return;
  }
  if (layout === 'csv' || layout === 'tsv') {
    yield* readDelimited(path, file, {
      delimiter: layout === 'tsv' ? '\t' : ',',
      firstRecord,
      ...(options.highWaterMark !== undefined ? { highWaterMark: options.highWaterMark } : {}),
    });
    return;
  }
  yield* readJsonFile(path, file, layout, options.highWaterMark, firstRecord);
}

async function* chunks(path: string, highWaterMark: number | undefined): AsyncGenerator<string> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: highWaterMark ?? 1 << 16 });
  try {
    for await (const chunk of stream) yield chunk as string;
  } finally {
    stream.destroy();
  }
}

/** A JSON-array or JSONL file; the layout is sniffed from the first non-blank character unless given. */
async function* readJsonFile(
  path: string,
  file: string,
  given: 'json-array' | 'jsonl' | undefined,
  highWaterMark: number | undefined,
  firstRecord: number,
): AsyncGenerator<RawRecord> {
  const source = chunks(path, highWaterMark);
  let layout = given;
  // Sniff the layout from the first non-blank character without losing the chunk.
  const pending: string[] = [];
  if (layout === undefined) {
    // Manual next(): a for-await with break would close the stream.
    for (let r = await source.next(); !r.done; r = await source.next()) {
      pending.push(r.value);
      const m = /\S/.exec(r.value);
      if (m) {
        layout = m[0] === '[' ? 'json-array' : 'jsonl';
        break;
      }
    }
    layout ??= 'jsonl';
  }
  async function* replay(): AsyncGenerator<string> {
    yield* pending;
    yield* source;
  }
  if (layout === 'json-array') yield* readJsonArray(replay(), file, firstRecord);
  else yield* readJsonl(replay(), file, firstRecord);
}

/** JSONL: one JSON value per line; blank lines are skipped (they still count for line numbers). */
export async function* readJsonl(input: AsyncIterable<string>, file: string, firstRecord = 0): AsyncGenerator<RawRecord> {
  let carry = '';
  let line = 0;
  let record = firstRecord;
  function parse(text: string): RawRecord | undefined {
    line += 1;
    const trimmed = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (trimmed.trim() === '') return undefined;
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (err) {
      throw dataError({ file, line, record }, `invalid JSON (${(err as Error).message})`);
    }
    return { value, where: { file, line, record: record++ } };
  }
  for await (const chunk of input) {
    let text = carry + chunk;
    let start = 0;
    for (let nl = text.indexOf('\n', start); nl !== -1; nl = text.indexOf('\n', start)) {
      const r = parse(text.slice(start, nl));
      if (r) yield r;
      start = nl + 1;
    }
    carry = text.slice(start);
    text = '';
  }
  if (carry.length > 0) {
    const r = parse(carry);
    if (r) yield r;
  }
}

const enum Ch {
  Quote = 34,
  Backslash = 92,
  Comma = 44,
  OpenBracket = 91,
  CloseBracket = 93,
  OpenBrace = 123,
  CloseBrace = 125,
  Newline = 10,
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

/**
 * A top-level JSON array, element by element: a small scanner tracks strings and nesting depth so that only one
 * element is held in memory; each element is handed to JSON.parse.
 */
export async function* readJsonArray(input: AsyncIterable<string>, file: string, firstRecord = 0): AsyncGenerator<RawRecord> {
  let line = 1;
  let record = firstRecord;
  let opened = false; // saw the top-level '['
  let closed = false; // saw the matching ']'
  let expectComma = false; // an element ended; next must be ',' or ']'
  let inElement = false;
  let depth = 0; // nesting inside the current element
  let inString = false;
  let escaped = false;
  let elementLine = 0;
  let parts: string[] = [];
  let partStart = 0;

  const fail = (msg: string): never => {
    throw dataError({ file, line, record }, msg);
  };
  const finish = (text: string): RawRecord => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw dataError({ file, line: elementLine, record }, `invalid JSON (${(err as Error).message})`);
    }
    return { value, where: { file, line: elementLine, record: record++ } };
  };

  for await (const chunk of input) {
    partStart = 0;
    const out: RawRecord[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (inElement) {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === Ch.Backslash) escaped = true;
          else if (c === Ch.Quote) inString = false;
          else if (c === Ch.Newline) line++;
          continue;
        }
        if (c === Ch.Quote) {
          inString = true;
          continue;
        }
        if (c === Ch.OpenBrace || c === Ch.OpenBracket) {
          depth++;
          continue;
        }
        if (c === Ch.CloseBrace || c === Ch.CloseBracket) {
          if (depth > 0) {
            depth--;
            if (depth === 0) {
              parts.push(chunk.slice(partStart, i + 1));
              out.push(finish(parts.join('')));
              parts = [];
              inElement = false;
              expectComma = true;
            }
            continue;
          }
          // a ']' ending a scalar element at depth 0
        }
        if (depth === 0 && (c === Ch.Comma || c === Ch.CloseBracket || isBlank(c))) {
          // end of a scalar (number, true, null, ...) element
          parts.push(chunk.slice(partStart, i));
          out.push(finish(parts.join('')));
          parts = [];
          inElement = false;
          expectComma = true;
          // fall through to handle the delimiter below
        } else {
          if (c === Ch.Newline) line++;
          continue;
        }
      }
      // between elements
      if (isBlank(c)) {
        if (c === Ch.Newline) line++;
        continue;
      }
      if (closed) fail('unexpected content after the closing "]" of the top-level array');
      if (!opened) {
        if (c !== Ch.OpenBracket) fail('expected a JSON array of records (or JSONL, one record per line)');
        opened = true;
        continue;
      }
      if (c === Ch.CloseBracket) {
        closed = true;
        expectComma = false;
        continue;
      }
      if (expectComma) {
        if (c !== Ch.Comma) fail(`expected "," or "]" between records, found ${JSON.stringify(chunk[i])}`);
        expectComma = false;
        continue;
      }
      if (c === Ch.Comma) fail('unexpected "," (empty element)');
      // start of an element
      inElement = true;
      elementLine = line;
      partStart = i;
      if (c === Ch.Quote) inString = true;
      else if (c === Ch.OpenBrace || c === Ch.OpenBracket) depth = 1;
      else depth = 0;
    }
    if (inElement) parts.push(chunk.slice(partStart));
    yield* out;
  }
  if (inElement) {
    if (depth === 0 && !inString) {
      fail('the top-level array is not closed (missing "]")');
    }
    throw dataError({ file, line: elementLine, record }, 'unterminated record (the file ends inside it)');
  }
  if (!opened) return; // empty file: no records (the caller reports "no records")
  if (!closed) fail('the top-level array is not closed (missing "]")');
}

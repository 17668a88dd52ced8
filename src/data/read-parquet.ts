// Parquet records, one row group at a time (hyparquet over a file handle; hyparquet-compressors for zstd, gzip,
// brotli, lz4): values become what the same record holds as JSON.

import { open, type FileHandle } from 'node:fs/promises';
import { parquetMetadataAsync, parquetReadObjects, type AsyncBuffer, type FileMetaData, type ParquetParsers } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { dataError, SftkitError } from '../errors.ts';
import type { RawRecord } from './types.ts';

export interface ParquetReadOptions {
  /** 0-based index of the file's first record (the files of a split number their records on). */
  firstRecord?: number;
  /** Observes every byte range read from the file (tests check that reading goes row group by row group). */
  onRead?: (start: number, end: number) => void;
}

/** An AsyncBuffer over an open file: every slice is one positioned read, nothing else is kept. */
function fileBuffer(fh: FileHandle, size: number, onRead: ParquetReadOptions['onRead']): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end: number = size): Promise<ArrayBuffer> {
      const length = Math.max(0, Math.min(end, size) - start);
      const bytes = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(bytes, done, length - done, start + done);
        if (bytesRead === 0) throw new Error(`the file ends at byte ${start + done}, expected ${start + length} (was it changed while read?)`);
        done += bytesRead;
      }
      onRead?.(start, start + length);
      return bytes.buffer;
    },
  };
}

function isoDate(ms: number): string | number {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? ms : d.toISOString();
}

/** Dates as `YYYY-MM-DD`, timestamps as ISO 8601 strings (UTC): what a JSON export of the table holds. */
const PARSERS: Partial<ParquetParsers> = {
  dateFromDays: (days: number) => {
    const s = isoDate(days * 86_400_000);
    return typeof s === 'string' ? s.slice(0, 10) : days;
  },
  timestampFromMilliseconds: (ms: bigint) => isoDate(Number(ms)),
  timestampFromMicroseconds: (us: bigint) => isoDate(Number(us / 1000n)),
  timestampFromNanoseconds: (ns: bigint) => isoDate(Number(ns / 1_000_000n)),
};

/**
 * A decoded Parquet value as JSON would hold it: null for a null, INT64 as a number when it is a safe integer (a
 * decimal string beyond 2^53), typed arrays as arrays, binary (not UTF-8 annotated, not decodable) as base64, structs
 * as objects, lists as arrays.
 */
export function jsonValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  }
  if (typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(jsonValue);
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<unknown>, jsonValue);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x)]));
}

/**
 * Every row of a Parquet file in order, as a JSON-like object per record; `where.line` is the 1-based row. Only the
 * footer and one row group's column chunks are read at a time, so memory is bounded by the largest row group.
 * A file that is not Parquet (or is cut short) and a row group that cannot be decoded are errors naming the file
 * and the rows.
 */
export async function* readParquet(path: string, file: string, options: ParquetReadOptions = {}): AsyncGenerator<RawRecord> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new SftkitError('SFTKIT_IO', `${file}: cannot read data file (${(err as Error).message})`, { cause: err });
  }
  try {
    const size = (await fh.stat()).size;
    const buffer = fileBuffer(fh, size, options.onRead);
    if (size < 12) throw dataError({ file }, `not a Parquet file (${size} bytes; a Parquet file starts and ends with "PAR1")`);
    const head = new Uint8Array(await buffer.slice(0, 4));
    if (String.fromCharCode(...head) !== 'PAR1') {
      throw dataError({ file }, 'not a Parquet file (it does not start with "PAR1"); is it JSON or CSV with a .parquet name?');
    }
    let metadata: FileMetaData;
    try {
      metadata = await parquetMetadataAsync(buffer, { parsers: PARSERS });
    } catch (err) {
      throw dataError({ file }, `not a readable Parquet file, its footer is damaged or the file is cut short (${(err as Error).message})`);
    }
    let rowStart = 0;
    let record = options.firstRecord ?? 0;
    for (const [group, rowGroup] of metadata.row_groups.entries()) {
      const rows = Number(rowGroup.num_rows);
      if (rows === 0) continue;
      const rowEnd = rowStart + rows;
      let values: Record<string, unknown>[];
      try {
        values = await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd, compressors, parsers: PARSERS });
      } catch (err) {
        throw dataError(
          { file, line: rowStart + 1, record },
          `cannot decode row group ${group} (rows ${rowStart + 1}-${rowEnd}): ${(err as Error).message}`,
        );
      }
      if (values.length !== rows) {
        throw dataError({ file, line: rowStart + 1, record }, `row group ${group} holds ${values.length} rows, its metadata says ${rows}`);
      }
      for (let i = 0; i < rows; i++) {
        const value = jsonValue(values[i]);
        values[i] = undefined as never; // let the group's rows go as they are consumed
        yield { value, where: { file, line: rowStart + i + 1, record: record++ } };
      }
      rowStart = rowEnd;
    }
  } finally {
    await fh.close();
  }
}

// CSV and TSV records through csv-parse, streamed: the header row names the columns, every record is an object of
// strings, and `where.line` is the line the record starts on (quoted fields may span lines).

import { createReadStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse, CsvError, type Info } from 'csv-parse';
import { dataError, SftkitError } from '../errors.ts';
import type { RawRecord } from './types.ts';

export interface DelimitedReadOptions {
  /** `,` (CSV, default) or `\t` (TSV). */
  delimiter?: string;
  /** 0-based index of the file's first record (the files of a split number their records on). */
  firstRecord?: number;
  /** Chunk size of the underlying stream (tests use a tiny one to exercise chunk boundaries). */
  highWaterMark?: number;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Line numbers for byte offsets of a stream read once, front to back: it holds the bytes not yet passed (at most
 * what the parser has buffered), counts newlines as offsets advance and skips the empty lines csv-parse skips.
 */
class LineCounter {
  private chunks: Buffer[] = [];
  private base = 0; // offset of chunks[0][0]
  private pos = 0; // offset counted up to
  private line = 1; // line at `pos`

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  private byteAt(offset: number): number | undefined {
    let o = offset - this.base;
    for (const c of this.chunks) {
      if (o < c.length) return c[o];
      o -= c.length;
    }
    return undefined;
  }

  private advance(to: number): void {
    while (this.pos < to && this.chunks.length > 0) {
      const c = this.chunks[0] as Buffer;
      const end = Math.min(to - this.base, c.length);
      for (let i = c.indexOf(LF, this.pos - this.base); i !== -1 && i < end; i = c.indexOf(LF, i + 1)) this.line++;
      this.pos = this.base + end;
      if (end === c.length) {
        this.chunks.shift();
        this.base += c.length;
      }
    }
  }

  /** The line of the first character of a record that follows offset `from` (past the empty lines before it). */
  startLine(from: number): number {
    this.advance(from);
    for (;;) {
      const b = this.byteAt(this.pos);
      if (b === LF) this.advance(this.pos + 1);
      else if (b === CR && this.byteAt(this.pos + 1) === LF) this.advance(this.pos + 2);
      else return this.line;
    }
  }
}

interface Row {
  record: string[];
  info: Info;
}

/**
 * Every record of a CSV (or TSV) file in order, as `{column: string}` objects keyed by the header row. A UTF-8 BOM is
 * skipped; rows end with CRLF or LF; quoted fields may hold delimiters, doubled quotes and newlines; empty lines
 * are skipped. A row with another number of fields than the header, an empty or repeated column name and broken
 * quoting are errors naming the file, the line and the record (and the column where there is one).
 */
export async function* readDelimited(path: string, file: string, options: DelimitedReadOptions = {}): AsyncGenerator<RawRecord> {
  const delimiter = options.delimiter ?? ',';
  const lines = new LineCounter();
  const source = createReadStream(path, { highWaterMark: options.highWaterMark ?? 1 << 16 });
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      lines.push(chunk);
      done(null, chunk);
    },
  });
  const parser = parse({
    bom: true,
    delimiter,
    info: true,
    record_delimiter: ['\r\n', '\n'],
    relax_quotes: true, // a quote inside an unquoted field is a character, as Python's csv and pandas read it
    relax_column_count: true, // checked here, to name the columns
    skip_empty_lines: true,
  });
  const flowing = pipeline(source, tap, parser).catch(() => undefined); // errors surface from the parser's iterator
  let columns: string[] | undefined;
  let prevEnd = 0;
  let record = options.firstRecord ?? 0;
  let line = 1;
  try {
    for await (const row of parser as AsyncIterable<Row>) {
      line = lines.startLine(prevEnd);
      prevEnd = row.info.bytes;
      const fields = row.record;
      if (columns === undefined) {
        columns = header(fields, file);
        continue;
      }
      if (fields.length !== columns.length) {
        if (fields.length === 1 && (fields[0] as string).trim() === '') continue; // a line of blanks
        const names = columns.map((c) => JSON.stringify(c)).join(', ');
        if (fields.length < columns.length) {
          throw dataError(
            { file, line, record, field: columns[fields.length] as string },
            `missing: the row has ${fields.length} fields, the header has ${columns.length} columns (${names})`,
          );
        }
        throw dataError({ file, line, record }, `the row has ${fields.length} fields, the header has ${columns.length} columns (${names})`);
      }
      const value = Object.fromEntries(columns.map((c, i) => [c, fields[i] as string]));
      yield { value, where: { file, line, record: record++ } };
    }
  } catch (err) {
    if (err instanceof CsvError) {
      throw dataError({ file, line: lines.startLine(prevEnd), record }, `invalid ${delimiter === '\t' ? 'TSV' : 'CSV'} (${err.message})`);
    }
    if (err instanceof SftkitError) throw err;
    throw new SftkitError('SFTKIT_IO', `${file}: cannot read data file (${(err as Error).message})`, { cause: err });
  } finally {
    source.destroy();
    parser.destroy();
    await flowing;
  }
}

function header(fields: string[], file: string): string[] {
  const seen = new Set<string>();
  fields.forEach((name, i) => {
    if (name.trim() === '') throw dataError({ file, line: 1 }, `column ${i + 1} of the header row has no name`);
    if (seen.has(name)) throw dataError({ file, line: 1, field: name }, 'the header row names this column twice');
    seen.add(name);
  });
  return fields;
}

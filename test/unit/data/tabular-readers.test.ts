// The Parquet and CSV/TSV readers behind readRecords: values equal to the same records as JSONL (pyarrow and Python's
// csv module wrote the fixtures), row / line / record numbers, value conversion, reading row group by row group, CSV
// edge cases (BOM, CRLF, quoted newlines and quotes, blank lines) and errors naming the file, the row and the column.

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet';
import { loadExamples, openDataset, readRecords, type RawRecord, type ReadOptions } from '../../../src/data/index.ts';

const TAB = join(import.meta.dirname, '..', '..', 'fixtures', 'data', 'tabular');
const tmp = mkdtempSync(join(tmpdir(), 'sftkit-tabular-'));

async function all(path: string, options: ReadOptions = {}): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  for await (const r of readRecords(path, options)) out.push(r);
  return out;
}

function jsonl(name: string): Record<string, unknown>[] {
  return readFileSync(join(TAB, name), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

function write(name: string, text: string | Buffer): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

const ALPACA = jsonl('alpaca.jsonl');

test('Parquet (snappy, zstd, gzip, brotli) reads the records of the JSONL, nulls as null, rows as lines', async () => {
  assert.ok(ALPACA.some((r) => r.input === null), 'the fixture has null inputs');
  for (const codec of ['snappy', 'zstd', 'gzip', 'brotli']) {
    const path = join(TAB, `alpaca-${codec}.parquet`);
    const recs = await all(path);
    assert.deepEqual(recs.map((r) => r.value), ALPACA, codec);
    assert.deepEqual(recs.map((r) => r.where), ALPACA.map((_, i) => ({ file: path, line: i + 1, record: i })), codec);
  }
});

test('a Parquet list of {role, content} structs is the chat JSON: same records, same messages', async () => {
  const recs = await all(join(TAB, 'chat.parquet'));
  assert.deepEqual(recs.map((r) => r.value), jsonl('chat.jsonl'));
  const fromParquet = await loadExamples(join(TAB, 'chat.parquet'));
  const fromJsonl = await loadExamples(join(TAB, 'chat.jsonl'));
  assert.equal(fromParquet.format, 'chat');
  assert.deepEqual(fromParquet.examples.map((e) => e.messages), fromJsonl.examples.map((e) => e.messages));
});

test('Parquet values become JSON values: INT64 numbers (strings past 2^53), dates and timestamps as ISO text', async () => {
  const recs = await all(join(TAB, 'types.parquet'));
  assert.deepEqual(recs.map((r) => r.value), [
    { text: 'a', i64: 1, big: '9007199254740993', i32: 3, f64: 0.5, flag: true, day: '2024-02-29', when: '2024-02-29T12:30:05.250Z', blob: 'hi', ints: [1, 2], pair: { k: 'x', n: 1 }, price: 1.25 },
    { text: null, i64: -(2 ** 40), big: '-4611686018427387904', i32: null, f64: null, flag: false, day: null, when: null, blob: null, ints: [], pair: null, price: null },
    { text: 'c', i64: null, big: 7, i32: -4, f64: -2.25, flag: null, day: '1970-01-01', when: null, blob: '', ints: null, pair: { k: null, n: 2 }, price: -3.5 },
  ]);
  // What is read can be written as JSON as is (the split files of a run are JSONL).
  for (const r of recs) assert.deepEqual(JSON.parse(JSON.stringify(r.value)), r.value);
});

test('a Parquet null is what a JSON null is to the formats: optional fields absent, required ones an error', async () => {
  const parquet = await loadExamples(join(TAB, 'alpaca-zstd.parquet'));
  const json = await loadExamples(join(TAB, 'alpaca.jsonl'));
  assert.deepEqual(parquet.examples.map((e) => e.messages), json.examples.map((e) => e.messages));
  assert.equal(parquet.examples[2]?.messages[0]?.input, undefined, 'a null input is no input');
  const nullText = write('null-text.jsonl', '{"text":"a"}\n{"text":null}\n');
  const message = async (path: string) => (await loadExamples(path, { format: 'text' }).catch((e: Error) => e)) as Error;
  assert.equal((await message(join(TAB, 'types.parquet'))).message.replace(join(TAB, 'types.parquet'), 'F'), 'F:2 (record 1) field "text": expected a string, found null');
  assert.equal((await message(nullText)).message.replace(nullText, 'F'), 'F:2 (record 1) field "text": expected a string, found null');
});

test('Parquet is read one row group at a time: the first record reads the footer and row group 0 only', async () => {
  const path = join(TAB, 'alpaca-snappy.parquet');
  const meta = await parquetMetadataAsync(await asyncBufferFromFile(path));
  assert.equal(meta.row_groups.length, 5);
  const groupRange = (g: number): [number, number] => {
    const cols = meta.row_groups[g]!.columns.map((c) => c.meta_data!);
    const start = Math.min(...cols.map((m) => Number(m.dictionary_page_offset ?? m.data_page_offset)));
    const end = Math.max(...cols.map((m) => Number(m.dictionary_page_offset ?? m.data_page_offset) + Number(m.total_compressed_size)));
    return [start, end];
  };
  // The footer read (the file's tail, 512 KiB at most: here the whole small file) is not counted.
  const size = readFileSync(path).length;
  const reads: [number, number][] = [];
  const touches = (g: number) => reads.some(([s, e]) => s < groupRange(g)[1] && e > groupRange(g)[0]);
  const it = readRecords(path, { onParquetRead: (s, e) => e !== size && reads.push([s, e]) });
  const first = await it.next();
  assert.equal((first.value as RawRecord).where.record, 0);
  assert.ok(touches(0));
  for (let g = 1; g < 5; g++) assert.ok(!touches(g), `row group ${g} is not read before its rows are wanted`);
  for (let i = 1; i < 5; i++) await it.next(); // rows 1-4: still group 0
  assert.ok(!touches(1));
  await it.next(); // row 5: group 1
  assert.ok(touches(1) && !touches(2));
  await it.return(undefined);
});

test('Parquet errors name the file (and the rows): not Parquet, cut short, damaged row group, wrong column type', async () => {
  const notParquet = write('records.parquet', readFileSync(join(TAB, 'alpaca.jsonl')));
  await assert.rejects(all(notParquet), (e: Error) => e.message.startsWith(`${notParquet}: not a Parquet file`));
  await assert.rejects(all(write('tiny.parquet', 'PAR1')), /tiny\.parquet: not a Parquet file \(4 bytes/);
  const bytes = readFileSync(join(TAB, 'alpaca-zstd.parquet'));
  const cut = write('cut.parquet', bytes.subarray(0, bytes.length - 100));
  await assert.rejects(all(cut), /cut\.parquet: not a readable Parquet file, its footer is damaged or the file is cut short/);
  // Garbage over the page headers of row group 2: rows 1-10 are read, then the error names group 2 and its rows.
  const snappy = join(TAB, 'alpaca-snappy.parquet');
  const meta = await parquetMetadataAsync(await asyncBufferFromFile(snappy));
  const damaged = Buffer.from(readFileSync(snappy));
  for (const c of meta.row_groups[2]!.columns) {
    const at = Number(c.meta_data!.dictionary_page_offset ?? c.meta_data!.data_page_offset);
    damaged.fill(0xff, at, at + 12);
  }
  const bad = write('damaged.parquet', damaged);
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const r of readRecords(bad)) seen.push(r.where.record);
    })(),
    /damaged\.parquet:11 \(record 10\): cannot decode row group 2 \(rows 11-15\)/,
  );
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  // A column of the wrong type for the format: the error names the row and the column.
  await assert.rejects(loadExamples(join(TAB, 'bad-types.parquet')), /bad-types\.parquet:1 \(record 0\) field "output": expected a string, found number 1/);
});

test('a Parquet file without a .parquet name is recognised by its PAR1 magic', async () => {
  const p = join(tmp, 'download');
  copyFileSync(join(TAB, 'alpaca-zstd.parquet'), p);
  assert.deepEqual((await all(p)).map((r) => r.value), ALPACA);
});

/** The line each record of `rows` starts on when written as CSV after a header line (fields' newlines counted). */
function startLines(rows: Record<string, unknown>[]): number[] {
  let line = 2;
  return rows.map((r) => {
    const at = line;
    for (const v of Object.values(r)) line += typeof v === 'string' ? v.split('\n').length - 1 : 0;
    line += 1;
    return at;
  });
}

test('CSV and TSV (Python csv module) read the records of the JSONL as strings, a null as an empty cell', async () => {
  const expected = ALPACA.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v ?? ''])));
  assert.ok(ALPACA.some((r) => String(r.output).includes('\r\n')) && ALPACA.some((r) => String(r.input).includes('"')));
  for (const name of ['alpaca.csv', 'alpaca.tsv']) {
    const path = join(TAB, name);
    for (const highWaterMark of [7, 1 << 16]) {
      const recs = await all(path, { highWaterMark });
      assert.deepEqual(recs.map((r) => r.value), expected, name);
      assert.deepEqual(recs.map((r) => r.where.line), startLines(ALPACA), `${name} lines (chunks of ${highWaterMark})`);
      assert.deepEqual(recs.map((r) => r.where.record), ALPACA.map((_, i) => i));
      assert.ok(recs.every((r) => r.where.file === path));
    }
  }
});

test('CSV edge cases: BOM, CRLF and LF rows, blank lines, quoted delimiters, quotes and newlines, no final newline', async () => {
  const text =
    '\ufeffinstruction,input,output\r\n' + // 1
    '"a, b","",x\r\n' + // 2
    '\r\n' + // 3 (blank)
    '"multi\nline ""q""",in,out\n' + // 4-5
    'say "hi" now,,y\n' + // 6: a quote inside an unquoted field is a character
    '\n\n' + // 7, 8
    'x,"y\r\nz",w'; // 9-10, no final newline
  const p = write('edge.csv', text);
  for (const highWaterMark of [1, 3, 1 << 16]) {
    const recs = await all(p, { highWaterMark });
    assert.deepEqual(recs.map((r) => r.value), [
      { instruction: 'a, b', input: '', output: 'x' },
      { instruction: 'multi\nline "q"', input: 'in', output: 'out' },
      { instruction: 'say "hi" now', input: '', output: 'y' },
      { instruction: 'x', input: 'y\r\nz', output: 'w' },
    ]);
    assert.deepEqual(recs.map((r) => r.where.line), [2, 4, 6, 9], `chunks of ${highWaterMark}`);
    assert.deepEqual(recs.map((r) => r.where.record), [0, 1, 2, 3]);
  }
  const tsv = write('quotes.tsv', 'text\tnote\nHe said "hi", twice\t\t\n'.replace('\t\t', '\t'));
  assert.deepEqual((await all(tsv)).map((r) => r.value), [{ text: 'He said "hi", twice', note: '' }]);
  await assert.rejects(openDataset(write('header-only.csv', 'instruction,input,output\r\n')), /header-only\.csv: the file holds no records/);
});

test('CSV errors name the file, the line, the record and the column', async () => {
  const more = write('more.csv', 'instruction,input,output\na,b,c\n"x\ny",b,c,d\n');
  await assert.rejects(all(more), /more\.csv:3 \(record 1\): the row has 4 fields, the header has 3 columns \("instruction", "input", "output"\)/);
  const fewer = write('fewer.tsv', 'instruction\tinput\toutput\na\tb\tc\n\nd\te\n');
  await assert.rejects(all(fewer), /fewer\.tsv:4 \(record 1\) field "output": missing: the row has 2 fields/);
  const unclosed = write('unclosed.csv', 'text\nok\n"never closed\nmore\n');
  await assert.rejects(all(unclosed), /unclosed\.csv:3 \(record 1\): invalid CSV \(Quote Not Closed/);
  await assert.rejects(all(write('dup.csv', 'text,text\na,b\n')), /dup\.csv:1 field "text": the header row names this column twice/);
  await assert.rejects(all(write('noname.csv', 'text,,x\na,b,c\n')), /noname\.csv:1: column 2 of the header row has no name/);
  // A value the format cannot use names the CSV line and column too.
  await assert.rejects(loadExamples(write('fmt.csv', 'instruction,output\n"two\nlines",ok\n,\n'), { format: 'chat' }), /fmt\.csv:2 \(record 0\) field "messages": missing/);
});

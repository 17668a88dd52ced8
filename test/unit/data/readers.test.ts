// Streaming JSON-array and JSONL readers: records, line numbers, errors, bounded memory on 100k records.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { openDataset, loadExamples } from '../../../src/data/load-examples.ts';
import { readRecords } from '../../../src/data/read-records.ts';
import type { RawRecord } from '../../../src/data/types.ts';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'data');
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const tmp = mkdtempSync(join(tmpdir(), 'sftkit-readers-'));

async function all(path: string, hwm?: number): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  for await (const r of readRecords(path, hwm !== undefined ? { highWaterMark: hwm } : {})) out.push(r);
  return out;
}

function write(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

test('a JSON array streams record by record, across tiny chunks, with the line each record starts on', async () => {
  const path = join(fixtures, 'instruction-data.json');
  const text = readFileSync(path, 'utf8');
  const expected = JSON.parse(text) as unknown[];
  for (const hwm of [7, 4096]) {
    const recs = await all(path, hwm);
    assert.equal(recs.length, 1100);
    assert.deepEqual(recs.map((r) => r.value), expected);
    assert.deepEqual(recs.slice(0, 3).map((r) => r.where.line), [2, 7, 12]);
    assert.equal(recs[1099]?.where.record, 1099);
  }
});

test('a JSON array of scalars, strings with brackets and escapes, nested arrays', async () => {
  const p = write('mixed.json', '[\n 1, "a]\\"b", {"x": [1, {"y": "}"}]},\n null ,[2,[3]], true\n]\n');
  const recs = await all(p, 3);
  assert.deepEqual(recs.map((r) => r.value), [1, 'a]"b', { x: [1, { y: '}' }] }, null, [2, [3]], true]);
  assert.deepEqual(recs.map((r) => r.where.line), [2, 2, 2, 3, 3, 3]);
});

test('JSONL: blank lines and CRLF are fine, line numbers count every line', async () => {
  const p = write('a.jsonl', '{"text":"a"}\r\n\r\n{"text":"b"}\n\n\n{"text":"c"}');
  const recs = await all(p, 5);
  assert.deepEqual(recs.map((r) => (r.value as { text: string }).text), ['a', 'b', 'c']);
  assert.deepEqual(recs.map((r) => r.where.line), [1, 3, 6]);
  assert.deepEqual(recs.map((r) => r.where.record), [0, 1, 2]);
});

test('errors name the file, the line and the record', async () => {
  const bad = write('bad.jsonl', '{"text":"a"}\n{"text": oops}\n');
  await assert.rejects(all(bad), /bad\.jsonl:2 \(record 1\): invalid JSON/);
  const badArr = write('bad.json', '[\n {"a": 1},\n {"a": tru}\n]');
  await assert.rejects(all(badArr), /bad\.json:3 \(record 1\): invalid JSON/);
  const truncated = write('trunc.json', '[\n {"a": 1},\n {"a": "x');
  await assert.rejects(all(truncated), /trunc\.json:3 \(record 1\): unterminated record/);
  const noComma = write('nocomma.json', '[{"a": 1}\n {"a": 2}]');
  await assert.rejects(all(noComma), /nocomma\.json:2 \(record 1\): expected "," or "\]"/);
  const unclosed = write('unclosed.json', '[{"a": 1},\n');
  await assert.rejects(all(unclosed), /not closed/);
  const trailing = write('trailing.json', '[{"a": 1}] x');
  await assert.rejects(all(trailing), /after the closing/);
  await assert.rejects(all(join(tmp, 'missing.json')), /cannot read data file/);
});

test('an empty file (or only blank lines) is a clear error', async () => {
  await assert.rejects(openDataset(write('empty.jsonl', '')), /holds no records/);
  await assert.rejects(openDataset(write('blank.jsonl', '\n\n  \n')), /holds no records/);
  await assert.rejects(openDataset(write('emptyarr.json', ' [ ] ')), /holds no records/);
});

test('limit reads only the first records', async () => {
  const { examples } = await loadExamples(join(fixtures, 'instruction-data.json'), { limit: 5 });
  assert.equal(examples.length, 5);
});

async function generate(path: string, n: number, layout: 'jsonl' | 'json'): Promise<number> {
  const out = createWriteStream(path);
  const filler = 'lorem ipsum dolor sit amet '.repeat(14);
  if (layout === 'json') out.write('[\n');
  for (let i = 0; i < n; i++) {
    const rec = JSON.stringify({ instruction: `task ${i}`, input: filler, output: `answer ${i}` });
    const line = layout === 'json' ? `${rec}${i < n - 1 ? ',' : ''}\n` : `${rec}\n`;
    if (!out.write(line)) await once(out, 'drain');
  }
  if (layout === 'json') out.write(']\n');
  out.end();
  await once(out, 'finish');
  return readFileSync(path).length;
}

for (const layout of ['jsonl', 'json'] as const) {
  test(`100k records (${layout}) stream with bounded memory`, async () => {
    const path = join(tmp, `big.${layout}`);
    const size = await generate(path, 100_000, layout);
    assert.ok(size > 40e6, `file is ${size} bytes`);
    gc();
    const base = process.memoryUsage().heapUsed;
    let peak = 0;
    let n = 0;
    let lastLine = 0;
    const opened = await openDataset(path);
    for await (const e of opened.examples) {
      if (n % 10_000 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed - base);
      }
      assert.equal(e.messages[1]?.content, `answer ${n}`);
      lastLine = e.where.line;
      n++;
    }
    assert.equal(n, 100_000);
    assert.equal(lastLine, layout === 'json' ? 100_001 : 100_000);
    // Holding every record would retain more than the file size; streaming retains about one chunk.
    assert.ok(peak < 8e6, `heap grew by ${Math.round(peak / 1e6)} MB for a ${Math.round(size / 1e6)} MB file`);
  });
}

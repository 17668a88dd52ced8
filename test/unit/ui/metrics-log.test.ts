// MetricsLog: only complete lines are read, a half-written tail waits, a cut tail or a replaced file is handled,
// bad lines are reported with their number; watching notifies subscribers as the file grows.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MetricsLog, type MetricsChange } from '../../../src/ui/metrics-log.ts';
import { jsonl, trainRecords } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'sftkit-metrics-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('reads appended lines incrementally and holds a partial last line until its newline', () => {
  const file = join(dir, 'a.jsonl');
  writeFileSync(file, jsonl(trainRecords(2)));
  const log = new MetricsLog(file);
  assert.deepEqual(log.refresh().added.map((r) => r.step), [1, 2]);
  assert.deepEqual(log.refresh(), { added: [], reset: false });
  const line = JSON.stringify(trainRecords(1, 3)[0]);
  appendFileSync(file, line.slice(0, 10));
  assert.deepEqual(log.refresh().added, []);
  appendFileSync(file, `${line.slice(10)}\n`);
  assert.deepEqual(log.refresh().added.map((r) => r.step), [3]);
  assert.equal(log.records.length, 3);
  // A multi-byte character split between two writes is not broken.
  const uni = JSON.stringify({ type: 'event', step: 3, message: 'fin — 終' });
  const bytes = Buffer.from(`${uni}\n`);
  appendFileSync(file, bytes.subarray(0, bytes.length - 6));
  log.refresh();
  appendFileSync(file, bytes.subarray(bytes.length - 6));
  assert.equal(log.refresh().added[0]?.message, 'fin — 终'.replace('终', '終'));
});

test('a cut unfinished tail is dropped quietly; a cut into read lines or a replaced file resets', () => {
  const file = join(dir, 'b.jsonl');
  writeFileSync(file, `${jsonl(trainRecords(3))}{"type":"train","st`);
  const log = new MetricsLog(file);
  assert.equal(log.refresh().added.length, 3);
  truncateSync(file, Buffer.byteLength(jsonl(trainRecords(3))));
  assert.deepEqual(log.refresh(), { added: [], reset: false });
  appendFileSync(file, jsonl(trainRecords(1, 4)));
  assert.deepEqual(log.refresh().added.map((r) => r.step), [4]);
  truncateSync(file, Buffer.byteLength(jsonl(trainRecords(2))));
  const cut = log.refresh();
  assert.equal(cut.reset, true);
  assert.deepEqual(cut.added.map((r) => r.step), [1, 2]);
  writeFileSync(`${file}.tmp`, jsonl(trainRecords(5, 10)));
  renameSync(`${file}.tmp`, file);
  const replaced = log.refresh();
  assert.equal(replaced.reset, true);
  assert.deepEqual(replaced.added.map((r) => r.step), [10, 11, 12, 13, 14]);
});

test('bad complete lines are skipped and reported with their line number', () => {
  const file = join(dir, 'c.jsonl');
  writeFileSync(file, `${jsonl(trainRecords(1))}not json\n{"type":"nope","step":1}\n\n${jsonl(trainRecords(1, 2))}`);
  const log = new MetricsLog(file);
  assert.deepEqual(log.refresh().added.map((r) => r.step), [1, 2]);
  assert.deepEqual(log.problems, [
    { line: 2, error: 'not a JSON object' },
    { line: 3, error: 'a metrics record needs "type" and "step"' },
  ]);
});

test('subscribers hear about appended records (fs.watch or polling) until they unsubscribe', async () => {
  const file = join(dir, 'd.jsonl');
  writeFileSync(file, jsonl(trainRecords(1)));
  const log = new MetricsLog(file, { pollMs: 30 });
  log.refresh();
  const seen: MetricsChange[] = [];
  const off = log.subscribe((c) => seen.push(c));
  assert.equal(log.records.length, 1);
  appendFileSync(file, jsonl(trainRecords(2, 2)));
  const deadline = Date.now() + 3000;
  while (seen.flatMap((c) => c.added).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen.flatMap((c) => c.added.map((r) => r.step)), [2, 3]);
  off();
  appendFileSync(file, jsonl(trainRecords(1, 4)));
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(seen.flatMap((c) => c.added).length, 2);
});

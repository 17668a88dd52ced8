// metrics.jsonl: one object per line, crash-tolerant reading, repair on reopen, cut back on resume.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openMetricsWriter, parseMetrics, readMetrics } from '../../../src/report/metrics.ts';

const dir = mkdtempSync(join(tmpdir(), 'sftkit-metrics-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('writes one JSON object per line, visible on disk immediately, time filled in', () => {
  const file = join(dir, 'a.jsonl');
  const w = openMetricsWriter(file, { now: () => 1000.5 });
  w.write({ type: 'train', step: 1, epoch: 0, tokensSeen: 64, loss: 2.5, lr: 1e-4, gradNorm: 0.9, tokensPerSec: 300 });
  // before close: the line is already in the file (no buffering in the process)
  assert.equal(readFileSync(file, 'utf8'), '{"type":"train","step":1,"epoch":0,"tokensSeen":64,"loss":2.5,"lr":0.0001,"gradNorm":0.9,"tokensPerSec":300,"time":1000.5}\n');
  w.write({ type: 'val', step: 1, loss: Number.NaN, time: 5 });
  w.write({ type: 'event', step: 1, message: 'stopped: loss is NaN' });
  w.close();
  const recs = readMetrics(file);
  assert.equal(recs.length, 3);
  assert.equal(recs[1]!.loss, null, 'NaN is stored as null');
  assert.equal(recs[1]!.time, 5);
  assert.equal(recs[2]!.message, 'stopped: loss is NaN');
  assert.throws(() => w.write({ type: 'train', step: 2 }), /closed/);
});

test('rejects malformed records at write time', () => {
  const w = openMetricsWriter(join(dir, 'b.jsonl'));
  assert.throws(() => w.write({ type: 'bogus' as 'train', step: 1 }), /record.type/);
  assert.throws(() => w.write({ type: 'train', step: -1 }), /record.step/);
  w.close();
});

test('the reader skips a truncated last line but not a bad line in the middle', () => {
  const good = '{"type":"train","step":1,"loss":3}\n{"type":"train","step":2,"loss":2.9}\n';
  assert.equal(parseMetrics(good + '{"type":"train","st').length, 2);
  assert.equal(parseMetrics(good + '{"type":"train","step":3,"loss":2.8}').length, 3, 'only the newline missing');
  assert.equal(parseMetrics('').length, 0);
  assert.throws(() => parseMetrics('{"type":"train","step":1}\n{oops\n{"type":"train","step":2}\n', 'm.jsonl'), /m\.jsonl:2: not a JSON object/);
  assert.throws(() => parseMetrics('{"step":1}\n'), /needs "type" and "step"/);
});

test('reopening after a crash drops the half-written line so new lines stay parseable', () => {
  const file = join(dir, 'c.jsonl');
  writeFileSync(file, '{"type":"train","step":1,"loss":3}\n');
  appendFileSync(file, '{"type":"train","step":2,"lo'); // the crash
  assert.equal(readMetrics(file).length, 1);
  const w = openMetricsWriter(file, { now: () => 0 });
  w.write({ type: 'train', step: 2, loss: 2.5 });
  w.close();
  assert.deepEqual(readMetrics(file).map((r) => [r.step, r.loss]), [[1, 3], [2, 2.5]]);
  // a file that is only a partial line
  const only = join(dir, 'd.jsonl');
  writeFileSync(only, '{"type":"tr');
  openMetricsWriter(only).close();
  assert.equal(readFileSync(only, 'utf8'), '');
});

test('resume keeps the records up to the checkpoint step and appends after them', () => {
  const file = join(dir, 'e.jsonl');
  const w = openMetricsWriter(file, { now: () => 0 });
  for (let s = 1; s <= 6; s++) w.write({ type: 'train', step: s, loss: 10 - s });
  w.close();
  const r = openMetricsWriter(file, { keepUpToStep: 4, now: () => 0 });
  r.write({ type: 'event', step: 4, message: 'resumed' });
  r.write({ type: 'train', step: 5, loss: 5 });
  r.close();
  assert.deepEqual(readMetrics(file).map((x) => `${x.type}:${x.step}`), ['train:1', 'train:2', 'train:3', 'train:4', 'event:4', 'train:5']);
});

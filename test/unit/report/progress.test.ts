// Progress formatting (durations, ETA, bar width, lines) and the reporter's TTY / non-TTY behaviour.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ProgressReporter,
  etaSeconds,
  formatBarLine,
  formatCount,
  formatDuration,
  formatLogLine,
  renderBar,
} from '../../../src/report/progress.ts';

test('durations', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(59.4), '59s');
  assert.equal(formatDuration(59.6), '1m00s');
  assert.equal(formatDuration(245), '4m05s');
  assert.equal(formatDuration(3600 * 2 + 180), '2h03m');
  assert.equal(formatDuration(86400 * 3 + 3600 * 4 + 5), '3d04h');
  assert.equal(formatDuration(Number.NaN), '--');
  assert.equal(formatDuration(Number.POSITIVE_INFINITY), '--');
  assert.equal(formatDuration(-1), '--');
});

test('ETA from the rate since start', () => {
  assert.equal(etaSeconds(10, 100, 10, 20), 180);
  assert.equal(etaSeconds(60, 100, 10, 20), 80, 'resumed at 50: 10 steps in 20 s');
  assert.equal(etaSeconds(100, 100, 100, 5), 0);
  assert.ok(Number.isNaN(etaSeconds(0, 100, 0, 0)));
});

test('bar width is exact and clamped', () => {
  assert.equal(renderBar(0.5, 10), '█████░░░░░');
  assert.equal(renderBar(0, 4), '░░░░');
  assert.equal(renderBar(1, 4), '████');
  assert.equal(renderBar(1.7, 4), '████');
  assert.equal(renderBar(Number.NaN, 3), '░░░');
  assert.equal(renderBar(0.3, 0), '');
  assert.equal(renderBar(0.999, 10).length, 10);
});

test('counts', () => {
  assert.deepEqual([950, 1234, 12345, 2.5e6, 3e9].map(formatCount), ['950', '1.23k', '12.3k', '2.50M', '3.00G']);
});

test('log and bar lines', () => {
  const s = { step: 12, total: 100, epoch: 0, loss: 2.345, lr: 5e-5, tokensPerSec: 1200, eta: 65 };
  assert.equal(formatLogLine(s), 'step 12/100 (12%) | epoch 1 | loss 2.3450 | lr 5.00e-5 | 1.20k tok/s | ETA 1m05s');
  const line = formatBarLine(s, 100);
  assert.match(line, /^12\/100 \[█+░+\] 12% epoch 1 loss 2.3450 lr 5.00e-5 1.20k tok\/s ETA 1m05s$/);
  assert.ok(line.length <= 100);
  for (const cols of [120, 80, 60, 40, 20, 5]) {
    const l = formatBarLine(s, cols);
    assert.ok(l.length <= cols, `${cols}: ${l}`);
  }
  assert.match(formatBarLine(s, 40), /^12\/100 \[[█░]{8,}\] 12%/);
  assert.match(formatLogLine({ step: 3, total: 10, loss: Number.NaN }), /loss NaN/);
});

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, columns: 80, write: (c: string) => chunks.push(c) } };
}

test('non-TTY: a plain line every N steps and at the end', () => {
  const { chunks, stream } = sink(false);
  let t = 0;
  const r = new ProgressReporter({ stream, total: 25, logEvery: 10, now: () => t });
  for (let s = 1; s <= 25; s++) {
    t += 1000;
    r.update({ step: s, loss: 1, lr: 1e-4 });
  }
  r.log('val loss 0.9');
  r.finish();
  assert.deepEqual(chunks.map((c) => c.split(' ')[1]), ['10/25', '20/25', '25/25', 'loss']);
  assert.ok(chunks.every((c) => c.endsWith('\n') && !c.includes('\r')));
  assert.match(chunks[0]!, /ETA 15s/);
});

test('TTY: redraws one line with \\r, throttled, messages above the bar, newline at finish', () => {
  const { chunks, stream } = sink(true);
  let t = 0;
  const r = new ProgressReporter({ stream, total: 5, minIntervalMs: 100, now: () => t });
  r.update({ step: 1, loss: 2 });
  t += 10;
  r.update({ step: 2, loss: 2 }); // throttled
  t += 200;
  r.update({ step: 3, loss: 2 });
  r.log('checkpoint saved');
  t += 1;
  r.update({ step: 5, loss: 1 }); // last: always drawn
  r.finish();
  assert.equal(chunks.length, 5);
  assert.ok(chunks[0]!.startsWith('\r1/5 ['));
  assert.ok(chunks[1]!.startsWith('\r3/5 ['));
  assert.match(chunks[2]!, /^\r\x1b\[Kcheckpoint saved\n3\/5 \[/);
  assert.ok(chunks[3]!.startsWith('\r5/5 [') && chunks[3]!.includes('100%'));
  assert.equal(chunks[4], '\n');
  for (const c of chunks.slice(0, 2)) assert.ok(c.replace(/\x1b\[K/, '').length - 1 <= 79);
});

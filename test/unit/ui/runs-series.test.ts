// Run status and summary from metrics + sftkit_run.json (the stale-pid rule), the chart columns of overlaid runs,
// and the smoothing of the curves.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MetricRecord } from '../../../src/report/metrics.ts';
import { emptyStats, foldMetrics, summarizeRun } from '../../../src/ui/runs.ts';
import { chartData } from '../../../src/ui/web/series.ts';
import { smoothEma } from '../../../src/ui/web/smooth.ts';
import { trainRecords } from './helpers.ts';

const records = (): MetricRecord[] => [
  ...(trainRecords(3) as MetricRecord[]),
  { type: 'val', step: 2, tokensSeen: 200, loss: 2 },
  { type: 'val', step: 3, tokensSeen: 300, loss: 1.75 },
  { type: 'train', step: 4, tokensSeen: 400, loss: null, gradNorm: null, lr: 0.001 },
];

test('status: sftkit_run.json decides; running with a dead pid is failed and stale; metrics alone tell only by their last event', () => {
  const rf = (value: object | null, problem: string | null = null) => ({ value, problem });
  const alive = (pid: number) => pid === 42;
  const s = (run: ReturnType<typeof rf>, recs = records()) => summarizeRun('r', '/r', foldMetrics(emptyStats(), recs), run, 0, alive);
  assert.equal(s(rf({ status: 'running', pid: 42 })).status, 'running');
  const stale = s(rf({ status: 'running', pid: 7 }));
  assert.deepEqual([stale.status, stale.stale], ['failed', true]);
  assert.match(stale.statusDetail ?? '', /process 7 is not alive/);
  assert.equal(s(rf({ status: 'running' })).status, 'failed');
  assert.equal(s(rf({ status: 'finished', pid: 7 })).status, 'finished');
  assert.equal(s(rf({ status: 'interrupted', pid: 7 })).status, 'interrupted');
  const failed = s(rf({ status: 'failed', pid: 7, error: 'training diverged' }));
  assert.deepEqual([failed.status, failed.stale, failed.statusDetail, failed.error], ['failed', false, 'training diverged', 'training diverged']);
  assert.equal(s(rf({ status: 'weird' })).status, 'unknown');
  assert.equal(s(rf(null, 'sftkit_run.json is not valid JSON')).statusDetail, 'sftkit_run.json is not valid JSON');
  assert.equal(s(rf(null), [...records(), { type: 'event', step: 4, message: 'finished' }]).status, 'finished');
  assert.equal(s(rf(null)).status, 'unknown');
});

test('summary numbers: steps, tokens, best and last val loss, last train loss (null when not finite), tokens/s; folding in parts is folding at once', () => {
  const parts = foldMetrics(foldMetrics(emptyStats(), records().slice(0, 2)), records().slice(2));
  assert.deepEqual(parts, foldMetrics(emptyStats(), records()));
  const r = summarizeRun('r', '/r', foldMetrics(emptyStats(), records()), { value: null, problem: null }, 0, () => true);
  assert.deepEqual([r.steps, r.tokens, r.bestValLoss, r.lastValLoss, r.lastTrainLoss, r.tokensPerSec, r.records], [4, 400, 1.75, 1.75, null, 1003, 6]);
});

test('chart columns: the union of the runs x values, null where a run has none, point counts per series', () => {
  const a = { name: 'a', records: records() };
  const b = { name: 'b', records: trainRecords(2, 3) as MetricRecord[] };
  const loss = chartData([a, b], 'loss', 'step', 0);
  assert.deepEqual(loss.xs, [1, 2, 3, 4]);
  assert.deepEqual(loss.series.map((s) => [s.label, s.points]), [['a train', 3], ['a val', 2], ['b train', 2], ['b val', 0]]);
  assert.deepEqual(loss.series[0]!.values, [3, 1.5, 1, null]);
  assert.deepEqual(loss.series[2]!.values, [null, null, 1, 0.75]);
  const byTokens = chartData([a], 'loss', 'tokens', 0.5);
  assert.deepEqual(byTokens.xs, [100, 200, 300]);
  assert.deepEqual(byTokens.series.map((s) => s.kind), ['train', 'smoothed', 'val']);
  const lr = chartData([a], 'lr', 'step', 0.9);
  assert.deepEqual(lr.series.map((s) => [s.label, s.points]), [['a train', 4]], 'no smoothing of the schedule');
});

test('smoothing: debiased EMA (first value kept), 0 = raw, gaps kept', () => {
  assert.deepEqual(smoothEma([1, 2, 3], 0), [1, 2, 3]);
  const s = smoothEma([4, null, 2, 2], 0.5);
  assert.equal(s[0], 4);
  assert.equal(s[1], null);
  assert.ok(Math.abs((s[2] as number) - (0.5 * 4 * 0.5 + 0.5 * 2) / 0.75) < 1e-12);
  assert.ok((s[3] as number) < (s[2] as number) && (s[3] as number) > 2);
});

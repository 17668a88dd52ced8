// bench/device: the comparison helpers of the CPU-vs-device parity (NaN never passes) and the results' summary and
// markdown (skipped sides keep their reason; ratios against the first PyTorch side that ran).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maxAbsDiff, relError, relNormError } from '../../../bench/device/parity.ts';
import { type DeviceCheckResults, renderMarkdown, summarize } from '../../../bench/device/results.ts';

test('maxAbsDiff / relNormError / relError: masks, zeros, length mismatches and NaN', () => {
  assert.equal(maxAbsDiff([1, 2, 3], [1, 2.5, 2]), 1);
  assert.equal(maxAbsDiff([1, 2, 3], [1, 2.5, 9], (i) => i < 2), 0.5);
  assert.equal(maxAbsDiff([1, NaN], [1, 2]), NaN);
  assert.equal(maxAbsDiff([1], [1, 2]), Infinity);
  assert.ok(Math.abs(relNormError([3, 4], [3, 4.5]) - 0.5 / Math.hypot(3, 4.5)) < 1e-15);
  assert.equal(relNormError([0, 3], [0, 0]), 3);
  assert.ok(!(relNormError([NaN], [1]) <= 1), 'NaN fails every tolerance');
  assert.equal(relError(1.5, 1), 0.5);
});

test('summary and markdown: step table, throughput ratios and memory against the first PyTorch side that ran', () => {
  const r: DeviceCheckResults = {
    schema: 1, mode: 'cuda', quick: false, started: '2026-12-06T12:00:00.000Z', finished: null, wallSeconds: 300,
    machine: { cpu: 'Xeon', cores: 16, node: 'v20.20.2', python: 'python3: torch 2.11.0', gpu: { name: 'NVIDIA H100 80GB HBM3', computeCapability: '9.0' } },
    build: { torchVersion: '2.11.0', versionCheckBypassed: true },
    tolerances: {},
    steps: [
      { id: 'a', group: 'correctness', title: 'parity', status: 'passed', seconds: 1, details: { note: 'worst 1e-6' } },
      { id: 'b', group: 'training', title: 'nccl', status: 'skipped', seconds: 0, reason: 'not wired | yet' },
      { id: 'c', group: 'throughput', title: 'row', status: 'failed', seconds: 9, reason: 'sftkit crashed' },
    ],
    throughput: {
      ceilings: [{ via: 'pytorch', dtype: 'bfloat16', size: 8192, gflops: 700_000 }],
      ceilingGflops: 700_000,
      rows: [{
        name: 'GPT-2', shape: 'gpt2-124m', batch: 16, seqLen: 1024, steps: 10, warmup: 3, flopsPerToken: 1e9, realTokens: 15000,
        sides: [
          { side: 'sftkit', status: 'passed', tokensPerS: 300_000, msPerStep: 50, mfu: 0.43, peakMemMiB: 7000, peakMemKind: 'gpu-allocated' },
          { side: 'pytorch-eager', status: 'passed', tokensPerS: 200_000, msPerStep: 80, mfu: 0.29, peakMemMiB: 10000, peakMemKind: 'gpu-allocated' },
          { side: 'pytorch-compile', status: 'skipped', reason: 'time budget' },
        ],
      }],
    },
    summary: { passed: 0, failed: 0, skipped: 0, ok: true },
  };
  r.summary = summarize(r.steps);
  assert.deepEqual(r.summary, { passed: 1, failed: 1, skipped: 1, ok: false });
  const md = renderMarkdown(r);
  assert.match(md, /1 passed, 1 failed, 1 skipped/);
  assert.match(md, /NVIDIA H100 80GB HBM3 \(compute capability 9\.0\)/);
  assert.match(md, /libtorch 2\.11\.0 \(version check bypassed/);
  assert.match(md, /\| training: nccl \| skipped \| 0\.0 \| not wired \\\| yet \|/);
  assert.match(md, /\| GPT-2 \| sftkit \| 300000 \| 50\.0 \| 43\.0% \| 7000 \| 1\.50x \/ 0\.70x \|/);
  assert.match(md, /\| GPT-2 \| pytorch-compile \| — .* skipped: time budget \|/);
  assert.match(md, /700\.0 TFLOP\/s/);
});

// `sftkit bench train --json` prints exactly the keys other tools read (no timing assertions).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { randomBatch } from '../../src/bench/train-bench.ts';

const root = join(import.meta.dirname, '..', '..');

test('bench train --json: the fixed keys, all numbers', () => {
  const r = spawnSync(process.execPath, ['bin/sftkit.js', 'bench', 'train', '--model', 'test/fixtures/models/tinystories-656k', '--batch-size', '2', '--seq-len', '32', '--steps', '1', '--warmup', '0', '--threads', '1', '--json'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out).sort(), ['ms_backward', 'ms_forward', 'ms_optimizer', 'ms_per_step', 'peak_rss_mib', 'threads', 'tokens_per_s']);
  for (const v of Object.values(out)) assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0);
  assert.equal(out.threads, 1);
});

test('the bench batches: 10% padding on average, row 0 full, 40% of the real tokens masked as prompt', () => {
  const b = randomBatch(3, 100, 50, 1);
  const real = [0, 1, 2].map((r) => Array.from(b.attentionMask.subarray(r * 100, (r + 1) * 100)).filter((m) => m === 1).length);
  assert.deepEqual(real, [100, 90, 80]);
  for (const [r, n] of real.entries()) {
    const row = Array.from(b.labels.subarray(r * 100, (r + 1) * 100));
    const prompt = Math.floor(n * 0.4);
    assert.equal(row.filter((l) => l !== -100).length, n - prompt);
    assert.ok(row.slice(0, prompt).every((l) => l === -100));
  }
  // A single row keeps 10% trailing padding.
  assert.equal(Array.from(randomBatch(1, 100, 50, 1).attentionMask).filter((m) => m === 1).length, 90);
});

test('bench train --device cpu --autocast adds "device"; bench matmul --dtype bfloat16 reports device and dtype', () => {
  const run = (args: string[]) => spawnSync(process.execPath, ['bin/sftkit.js', 'bench', ...args], { cwd: root, encoding: 'utf8' });
  const t = run(['train', '--model', 'test/fixtures/models/tiny-gpt2', '--batch-size', '2', '--seq-len', '16', '--steps', '1', '--warmup', '0', '--threads', '1', '--device', 'cpu', '--autocast', '--json']);
  assert.equal(t.status, 0, t.stderr);
  const out = JSON.parse(t.stdout);
  assert.equal(out.device, 'cpu');
  assert.equal(out.peak_gpu_mib, undefined, 'no GPU counters off CUDA');
  const m = run(['matmul', '--size', '64', '--reps', '2', '--threads', '1', '--dtype', 'bfloat16', '--json']);
  assert.equal(m.status, 0, m.stderr);
  const mm = JSON.parse(m.stdout);
  assert.deepEqual([mm.device, mm.dtype, mm.size], ['cpu', 'bfloat16', 64]);
  assert.ok(mm.gflops > 0);
  const bad = run(['matmul', '--size', '64', '--dtype', 'float16']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--dtype/);
});

test('cudaMemoryStats without a GPU: zeros, available false, the reason; resetCudaPeakMemory is harmless', async () => {
  const { binding } = await import('../../src/native/binding.ts');
  const b = binding();
  const s = b.cudaMemoryStats!();
  assert.equal(s.available, false);
  assert.equal(s.initialized, false);
  assert.deepEqual([s.allocatedBytes, s.peakAllocatedBytes, s.reservedBytes, s.peakReservedBytes], [0, 0, 0, 0]);
  assert.match(s.reason!, /no CUDA|no GPU/);
  b.resetCudaPeakMemory!();
});

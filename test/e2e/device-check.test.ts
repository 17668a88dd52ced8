// scripts/device-check.sh --cpu: the GPU check's steps on the CPU with tiny shapes, against the addon `npm install`
// built (--no-build), so that the prepared GPU command cannot rot. Every step must pass or be skipped with a reason
// (the PyTorch sides are skipped where no Python torch + transformers is installed).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { DeviceCheckResults } from '../../bench/device/results.ts';

const root = join(import.meta.dirname, '..', '..');
const out = mkdtempSync(join(tmpdir(), 'sftkit-device-check-test-'));
after(() => rmSync(out, { recursive: true, force: true }));

test('device-check.sh --cpu: every step passes or is skipped with a reason; results.json and results.md', { timeout: 300_000 }, () => {
  const r = spawnSync('bash', [join(root, 'scripts', 'device-check.sh'), '--cpu', '--no-build', '--budget', '200'], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, OUT: out },
    timeout: 290_000,
  });
  const file = join(out, 'results.json');
  assert.ok(existsSync(file), `no results.json; exit ${r.status}\n${r.stderr.slice(-3000)}`);
  const res = JSON.parse(readFileSync(file, 'utf8')) as DeviceCheckResults;
  const bad = res.steps.filter((s) => s.status === 'failed').map((s) => `${s.id}: ${s.reason}`);
  assert.deepEqual(bad, [], `failed steps:\n${bad.join('\n')}`);
  assert.equal(r.status, 0, r.stderr.slice(-3000));

  assert.equal(res.schema, 1);
  assert.equal(res.mode, 'cpu');
  assert.ok(res.finished, 'the run finished');
  assert.equal(res.build.built, false);
  assert.match(String(res.build.note), /--no-build/);
  assert.deepEqual(
    res.steps.map((s) => s.id),
    ['runtime', 'native-suite', 'parity-fp32', 'parity-bf16', 'frozen-base', 'train-shipped', 'train-shipped-bf16', 'lora-step', 'dpo-step', 'nccl-nproc1', 'matmul-ceiling', 'throughput-tiny-gpt2', 'throughput-tiny-qwen2'],
  );
  for (const s of res.steps) {
    assert.ok(['passed', 'skipped'].includes(s.status), `${s.id}: ${s.status}`);
    if (s.status === 'skipped') assert.ok(typeof s.reason === 'string' && s.reason.length > 10, `${s.id} is skipped without a reason`);
    assert.equal(typeof s.seconds, 'number');
  }
  // NCCL has nothing to run on the CPU: skipped, saying so.
  assert.match(String(res.steps.find((s) => s.id === 'nccl-nproc1')!.reason), /NCCL needs CUDA/);
  // The correctness and training steps really ran on the CPU (only NCCL has nothing to run here).
  for (const s of res.steps.filter((x) => x.group === 'correctness' || (x.group === 'training' && x.id !== 'nccl-nproc1'))) {
    assert.equal(s.status, 'passed', s.id);
  }
  const shipped = res.steps.find((s) => s.id === 'train-shipped')!.details as { head: number; tail: number; reloadedLogitsMaxAbs: number };
  assert.ok(shipped.tail < shipped.head - 0.5, `${shipped.head} -> ${shipped.tail}`);
  assert.equal(shipped.reloadedLogitsMaxAbs, 0, 'CPU -> CPU reload is exact');
  const bf16 = res.steps.find((s) => s.id === 'parity-bf16')!.details as { worst: { logitsRelMax: number; gradRelNorm: number } };
  assert.ok(bf16.worst.logitsRelMax > 0 && bf16.worst.gradRelNorm > 0, 'bf16 autocast really rounded');

  // Throughput: both tiny rows, sftkit's sides measured, the PyTorch ones measured or skipped with a reason.
  assert.ok((res.throughput.ceilingGflops ?? 0) > 0);
  assert.deepEqual(res.throughput.rows.map((x) => x.shape), ['tiny-gpt2', 'tiny-qwen2']);
  for (const row of res.throughput.rows) {
    assert.deepEqual(row.sides.map((s) => s.side), ['sftkit', 'pytorch-eager', 'pytorch-compile', 'sftkit-bf16-weights']);
    for (const s of row.sides) {
      if (s.side.startsWith('sftkit')) assert.equal(s.status, 'passed', `${row.shape} ${s.side}: ${s.reason}`);
      if (s.status === 'passed') {
        assert.ok(s.tokensPerS! > 0 && s.mfu! > 0 && s.peakMemMiB! > 0, `${row.shape} ${s.side}`);
        assert.equal(s.peakMemKind, 'rss');
      } else {
        assert.ok(s.reason, `${row.shape} ${s.side} ${s.status} without a reason`);
      }
    }
  }
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  assert.match(md, /^Device check .* \(cpu\)/);
  assert.match(md, /\| workload \| side \| tokens\/s \|/);
  assert.ok(existsSync(join(out, 'check.log')) && existsSync(join(out, 'native-suite.log')));
});

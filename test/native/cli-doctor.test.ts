// `sftkit doctor` (and `doctor --model DIR`) through the real bin script.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');

test('`sftkit doctor --json` prints one JSON object with torch 2.13 and the CPU capability', () => {
  const r = spawnSync(process.execPath, ['bin/sftkit.js', 'doctor', '--json'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.ok, true);
  assert.match(report.addon.info.torchVersion, /^2\.13\./);
  assert.equal(typeof report.addon.info.cpu.avx2, 'boolean');
  assert.equal(typeof report.addon.info.cpu.avx512, 'boolean');
  assert.ok(report.addon.info.numThreads >= 1);
  assert.equal(report.addon.info.cudaAvailable, false);
  assert.deepEqual(report.addon.info.distributed, { gloo: true, nccl: false, ncclHeaders: null });
  assert.equal(report.libtorch.recorded, true);
  assert.match(report.libtorch.version, /^2\.13\./);
  assert.ok(report.addon.info.build.cxxFlags.length > 0);
});

test('`sftkit doctor` prints a readable report; unknown flags exit 2 with the help', () => {
  const r = spawnSync(process.execPath, ['bin/sftkit.js', 'doctor'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /libtorch 2\.13\.\d+ \(cpu\) from (env|python|cache|download|pip|wheel): \//);
  assert.match(r.stdout, /CPU: AVX2 (yes|no), AVX512 (yes|no)/);
  assert.match(r.stdout, /threads: \d+ intra-op/);
  assert.match(r.stdout, /CUDA: not available/);
  assert.match(r.stdout, /data parallel \(--nproc\): Gloo; no NCCL in this addon/);
  const bad = spawnSync(process.execPath, ['bin/sftkit.js', 'doctor', '--nope'], { cwd: root, encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /Unknown option '--nope'/);
  const unknown = spawnSync(process.execPath, ['bin/sftkit.js', 'frobnicate'], { cwd: root, encoding: 'utf8' });
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
});

test('`sftkit doctor --model DIR` says whether a model directory is supported, what is implemented, or why not', () => {
  const models = join(root, 'test', 'fixtures', 'models');
  const ok = spawnSync(process.execPath, ['bin/sftkit.js', 'doctor', '--model', join(models, 'tiny-gemma3-text')], { cwd: root, encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /supported \(model_type gemma3_text\)/);
  assert.match(ok.stdout, /RoPE linear \(theta 1000000\) on 1 layer/);
  assert.match(ok.stdout, /sliding window 4 on 2 of 3 layers/);
  const phi = spawnSync(process.execPath, ['bin/sftkit.js', 'doctor', '--json', '--model', join(models, 'tiny-phi3')], { cwd: root, encoding: 'utf8' });
  const report = JSON.parse(phi.stdout);
  assert.equal(report.supported, true);
  assert.ok(report.features.some((f: string) => /longrope .*8 of 16 dims/.test(f)));
  // a config that is not supported: exit 1 naming the key and its value
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-doctor-'));
  try {
    const cfg = JSON.parse(readFileSync(join(models, 'tiny-llama', 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, rope_parameters: { rope_type: 'mrope', rope_theta: 1e4 } }));
    const bad = spawnSync(process.execPath, ['bin/sftkit.js', 'doctor', '--json', '--model', dir], { cwd: root, encoding: 'utf8' });
    assert.equal(bad.status, 1);
    const r = JSON.parse(bad.stdout);
    assert.deepEqual([r.supported, r.code, r.modelType], [false, 'SFTKIT_UNSUPPORTED', 'llama']);
    assert.match(r.reason, /rope_parameters\.rope_type = "mrope"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

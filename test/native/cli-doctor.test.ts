// `sftkit doctor` through the real bin script.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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

// MKL dispatch by instruction set (native/preload/mkl_dispatch.cc): loaded by default on x86-64 Linux, off with
// SFTKIT_MKL_DISPATCH=vendor, a bad value refused naming the variable, and training numbers that agree between the
// two code paths (they sum in different orders, so within float tolerance, not bit for bit).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');
const linuxX64 = process.platform === 'linux' && process.arch === 'x64';

// Three AdamW steps of tiny-gpt2 on a fixed batch, and what runtimeInfo says about MKL.
const script = `
import { binding } from './src/native/binding.ts';
import { loadModel } from './src/native/model.ts';
import { randomBatch } from './test/native/helpers/batches.ts';
const model = await loadModel('test/fixtures/models/tiny-gpt2', { threads: 2 });
const losses = [];
for (let i = 0; i < 3; i++) {
  const r = await model.step(randomBatch(4, 64, 5, 128));
  losses.push(r.lossSum / r.tokens);
  await model.optimizerStep({ lr: 1e-3, maxGradNorm: 1 });
  await model.zeroGrad();
}
await model.dispose();
console.log(JSON.stringify({ mkl: binding().info().mkl, losses }));
`;

function run(value: string | undefined) {
  const env = { ...process.env };
  if (value === undefined) delete env.SFTKIT_MKL_DISPATCH;
  else env.SFTKIT_MKL_DISPATCH = value;
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', env });
}

/** MKL's AVX-512 path needs F, CD, BW, DQ and VL; the vendor check only changes anything on a non-Intel CPU. */
function nonIntelWithAvx512(): boolean {
  if (!linuxX64) return false;
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  const flags = new Set((/^flags\s*:(.*)$/m.exec(info)?.[1] ?? '').trim().split(/\s+/));
  const vendor = /^vendor_id\s*:\s*(\S+)/m.exec(info)?.[1];
  return vendor !== 'GenuineIntel' && ['avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f));
}

test('SFTKIT_MKL_DISPATCH: isa by default, vendor on request; both code paths train to the same losses', { timeout: 120_000 }, () => {
  const isa = run(undefined), vendor = run('vendor');
  assert.equal(isa.status, 0, isa.stderr);
  assert.equal(vendor.status, 0, vendor.stderr);
  const a = JSON.parse(isa.stdout) as { mkl: { dispatch: string; codePath: number }; losses: number[] };
  const b = JSON.parse(vendor.stdout) as typeof a;
  assert.equal(a.mkl.dispatch, linuxX64 ? 'isa' : 'vendor');
  assert.equal(b.mkl.dispatch, 'vendor');
  // On a non-Intel CPU with AVX-512 (this CI's AMD EPYC) MKL's own answer is its generic path; ours is AVX-512.
  if (nonIntelWithAvx512()) assert.ok(a.mkl.codePath > b.mkl.codePath, `code paths ${a.mkl.codePath} vs ${b.mkl.codePath}`);
  assert.ok(a.losses[2]! < a.losses[0]!, `losses fall: ${a.losses}`);
  a.losses.forEach((l, i) => assert.ok(Math.abs(l - b.losses[i]!) <= 1e-5 * Math.abs(b.losses[i]!), `step ${i}: ${l} vs ${b.losses[i]}`));
});

test('SFTKIT_MKL_DISPATCH: anything but isa/vendor is refused naming the variable', () => {
  const bad = run('avx512');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /SFTKIT_MKL_DISPATCH/);
  assert.match(bad.stderr, /"isa" or "vendor"/);
});

test('mklDispatchLibrary: the library beside the addon, and LD_PRELOADed it takes effect without sftkit loading it', { timeout: 60_000 }, async () => {
  const { mklDispatchLibrary } = await import('../../src/native/binding.ts');
  const lib = mklDispatchLibrary();
  if (!linuxX64) return assert.equal(lib, null);
  assert.ok(lib && existsSync(lib), `library: ${lib}`);
  // bench/compare preloads it this way into PyTorch; here into a process that asked sftkit for MKL's own dispatch.
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { binding } from './src/native/binding.ts'; console.log(JSON.stringify(binding().info().mkl));`], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, SFTKIT_MKL_DISPATCH: 'vendor', LD_PRELOAD: lib },
  });
  assert.equal(r.status, 0, r.stderr);
  const mkl = JSON.parse(r.stdout.trim().split('\n').pop()!) as { dispatch: string; codePath: number };
  assert.equal(mkl.dispatch, 'isa');
  if (nonIntelWithAvx512()) assert.equal(mkl.codePath, 7);
});

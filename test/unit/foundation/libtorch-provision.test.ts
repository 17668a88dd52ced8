// The provisioning script (scripts/libtorch.mjs): detection order, validation, cache reuse and the failure text.
// (The download itself is test/e2e/libtorch-download.test.ts.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const root = join(import.meta.dirname, '..', '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-provision-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function fakeLibtorch(dir: string, version: [number, number, number], cuda = false): string {
  mkdirSync(join(dir, 'lib'), { recursive: true });
  mkdirSync(join(dir, 'include', 'torch', 'headeronly'), { recursive: true });
  mkdirSync(join(dir, 'share', 'cmake', 'Torch'), { recursive: true });
  for (const f of ['libtorch.so', 'libtorch_cpu.so', 'libc10.so', ...(cuda ? ['libtorch_cuda.so'] : [])]) writeFileSync(join(dir, 'lib', f), '');
  writeFileSync(join(dir, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'), '');
  writeFileSync(
    join(dir, 'include', 'torch', 'headeronly', 'version.h'),
    `#define TORCH_VERSION_MAJOR ${version[0]}\n#define TORCH_VERSION_MINOR ${version[1]}\n#define TORCH_VERSION_PATCH ${version[2]}\n`,
  );
  return dir;
}

/** Runs resolveLibtorch() in a child with a controlled environment; returns its record or error. */
function resolveWith(env: Record<string, string>): { ok: boolean; record?: Record<string, unknown>; error?: string } {
  const code = `import('./scripts/libtorch.mjs').then((m) => m.resolveLibtorch({ log: () => {}, onProgress: () => {} })).then(
    (record) => console.log(JSON.stringify({ ok: true, record })),
    (e) => console.log(JSON.stringify({ ok: false, error: e.message })),
  )`;
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('SFTKIT_') && k !== 'LIBTORCH') clean[k] = v;
  // The cpu variant whatever nvidia-smi says, and a download site that refuses connections (port 1 on loopback), so
  // that no test here downloads anything.
  const offline = { SFTKIT_TORCH_VARIANT: 'cpu', SFTKIT_TORCH_INDEX_URL: 'http://127.0.0.1:1/whl/cpu' };
  const r = spawnSync(process.execPath, ['-e', code], { cwd: root, env: { ...clean, ...offline, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
}

const noPython = join(scratch, 'no-python');
writeFileSync(noPython, '#!/bin/sh\nexit 1\n', { mode: 0o755 });

test('LIBTORCH wins and is validated: a good directory is recorded with version and variant', () => {
  const dir = fakeLibtorch(join(scratch, 'good'), [2, 13, 1], true);
  const r = resolveWith({ LIBTORCH: dir, PYTHON: noPython });
  assert.ok(r.ok, r.error);
  assert.equal(r.record?.source, 'env');
  assert.equal(r.record?.version, '2.13.1');
  assert.equal(r.record?.variant, 'cuda');
});

test('LIBTORCH pointing nowhere fails with the ways to provide libtorch', () => {
  const r = resolveWith({ LIBTORCH: '/nonexistent', PYTHON: noPython });
  assert.equal(r.ok, false);
  assert.match(r.error ?? '', /\/nonexistent does not exist/);
  assert.match(r.error ?? '', /1\. LIBTORCH=/);
  assert.match(r.error ?? '', /2\. SFTKIT_LIBTORCH_USE_PYTORCH=1/);
  assert.match(r.error ?? '', /3\. let sftkit download it/);
  assert.match(r.error ?? '', /4\. make `python3 -m pip download torch==2\.13\.0\+cpu --no-deps` work/);
});

test('a libtorch of another major.minor is refused unless the bypass is set', () => {
  const dir = fakeLibtorch(join(scratch, 'old'), [2, 5, 0]);
  const refused = resolveWith({ LIBTORCH: dir, PYTHON: noPython });
  assert.equal(refused.ok, false);
  assert.match(refused.error ?? '', /is torch 2\.5\.0, sftkit is built against 2\.13\.x/);
  const bypassed = resolveWith({ LIBTORCH: dir, PYTHON: noPython, SFTKIT_SKIP_LIBTORCH_VERSION_CHECK: '1' });
  assert.ok(bypassed.ok, bypassed.error);
});

test('a directory missing parts is named precisely', () => {
  const dir = fakeLibtorch(join(scratch, 'partial'), [2, 13, 0]);
  rmSync(join(dir, 'lib', 'libc10.so'));
  const r = resolveWith({ LIBTORCH: dir, PYTHON: noPython });
  assert.match(r.error ?? '', /has no libc10\.so/);
});

test('SFTKIT_LIBTORCH_USE_PYTORCH=1 without an importable torch is a clear error', () => {
  const r = resolveWith({ SFTKIT_LIBTORCH_USE_PYTORCH: '1', PYTHON: noPython });
  assert.equal(r.ok, false);
  assert.match(r.error ?? '', /SFTKIT_LIBTORCH_USE_PYTORCH=1 but `python3 -c "import torch"` fails/);
});

test('a complete entry in the cache is reused without downloading or calling pip', () => {
  const cache = join(scratch, 'cache');
  const dir = fakeLibtorch(join(cache, 'libtorch-2.13.0-cpu'), [2, 13, 0]);
  writeFileSync(join(dir, '.sftkit-complete'), 'torch==2.13.0+cpu\n');
  // PYTHON fails and the download site refuses, so success proves the cache was used.
  const r = resolveWith({ SFTKIT_CACHE_DIR: cache, PYTHON: noPython });
  assert.ok(r.ok, r.error);
  assert.equal(r.record?.source, 'cache');
  assert.equal(r.record?.path, dir);
});

test('with nothing available the failure says why each source failed and lists the ways', () => {
  const r = resolveWith({ SFTKIT_CACHE_DIR: join(scratch, 'empty-cache'), PYTHON: noPython });
  assert.equal(r.ok, false);
  assert.match(r.error ?? '', /- the sftkit cache: no complete .*empty-cache\/libtorch-2\.13\.0-cpu/);
  assert.match(r.error ?? '', /- download: .*http:\/\/127\.0\.0\.1:1\/whl\/cpu\/torch\/: cannot reach the host/);
  assert.match(r.error ?? '', /- pip: .*pip download torch==2\.13\.0\+cpu --no-deps` failed/);
  assert.match(r.error ?? '', /Provide it in one of these ways/);
});

test('`LIBTORCH=/nonexistent npm install` (the install script) exits non-zero with the ways', () => {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('SFTKIT_')) clean[k] = v;
  const r = spawnSync(process.execPath, ['scripts/install.mjs'], {
    cwd: root,
    env: { ...clean, LIBTORCH: '/nonexistent' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /could not find a usable libtorch: LIBTORCH=\/nonexistent/);
  assert.match(r.stderr, /1\. LIBTORCH=.*\n.*\n\s+2\. SFTKIT_LIBTORCH_USE_PYTORCH=1.*\n.*\n\s+3\./);
});

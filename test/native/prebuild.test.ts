// `npm run prebuild` output loads where build/ does not exist (node-gyp-build falls back to prebuilds/).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');

test('a prebuild made by `npm run prebuild` loads with build/ absent', { timeout: 600_000 }, () => {
  const made = spawnSync('npm', ['run', 'prebuild', '--silent'], { cwd: root, encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr + made.stdout);
  const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  assert.ok(readdirSync(dir).some((f) => f.endsWith('.node')));
  const linuxX64 = process.platform === 'linux' && process.arch === 'x64';
  if (linuxX64) assert.ok(readdirSync(dir).includes('libsftkit_mkl_dispatch.so'), 'the MKL dispatch library is beside the prebuild');
  // A copy of the package without build/: package.json, scripts, libtorch.json, prebuilds, node_modules.
  const pkg = mkdtempSync(join(tmpdir(), 'sftkit-prebuild-'));
  try {
    for (const entry of ['package.json', 'libtorch.json', 'scripts', 'prebuilds']) cpSync(join(root, entry), join(pkg, entry), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
    mkdirSync(join(pkg, 'src'));
    const r = spawnSync(process.execPath, ['scripts/load-check.mjs'], { cwd: pkg, encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: '' } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /sftkit addon loads: torch 2\.13\./);
    if (linuxX64) assert.match(r.stdout, /MKL dispatch isa/);
  } finally {
    rmSync(pkg, { recursive: true, force: true });
  }
});

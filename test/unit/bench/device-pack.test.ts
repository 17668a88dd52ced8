// scripts/device-pack.mjs: which packages of node_modules travel to the GPU machine (the runtime dependencies,
// resolved as Node resolves them, nested versions included, missing optional ones and dev dependencies left out),
// and what .device/ holds afterwards (on a small fake tree and a fake node binary, so it stays fast).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { pack, productionPackages } from '../../../scripts/device-pack.mjs';

const root = mkdtempSync(join(tmpdir(), 'sftkit-device-pack-'));
after(() => rmSync(root, { recursive: true, force: true }));

function pkg(dir: string, json: object, extra: Record<string, string> = {}): void {
  mkdirSync(join(root, dir), { recursive: true });
  writeFileSync(join(root, dir, 'package.json'), JSON.stringify(json));
  for (const [f, text] of Object.entries(extra)) {
    mkdirSync(dirname(join(root, dir, f)), { recursive: true });
    writeFileSync(join(root, dir, f), text);
  }
}
pkg('.', { name: 'app', dependencies: { a: '1', '@s/b': '1' }, devDependencies: { dev: '1' } });
pkg('node_modules/a', { name: 'a', dependencies: { c: '1' }, optionalDependencies: { '@plat/other-os': '1', '@plat/this-os': '1' } }, { 'index.js': 'a', 'README.md': 'docs' });
pkg('node_modules/c', { name: 'c', version: '1.0.0' }, { 'index.js': 'c1', 'index.js.map': '{}' });
pkg('node_modules/@plat/this-os', { name: '@plat/this-os' }, { 'bin/tool': 'binary' });
pkg('node_modules/@s/b', { name: '@s/b', dependencies: { c: '2' }, peerDependencies: { a: '1', absent: '1' } });
pkg('node_modules/@s/b/node_modules/c', { name: 'c', version: '2.0.0' }, { 'index.js': 'c2' });
pkg('node_modules/dev', { name: 'dev', dependencies: { 'dev-only': '1' } });
pkg('node_modules/dev-only', { name: 'dev-only' });

test('productionPackages: the dependency closure as Node resolves it, nested versions apart, no dev or missing optional ones', () => {
  assert.deepEqual(productionPackages(root), [
    'node_modules/@plat/this-os',
    'node_modules/@s/b',
    'node_modules/@s/b/node_modules/c',
    'node_modules/a',
    'node_modules/c',
  ]);
});

test('productionPackages: a missing required dependency is an error naming who needs it', () => {
  const broken = mkdtempSync(join(tmpdir(), 'sftkit-device-pack-broken-'));
  try {
    writeFileSync(join(broken, 'package.json'), JSON.stringify({ dependencies: { gone: '1' } }));
    assert.throws(() => productionPackages(broken), /gone \(needed by package\.json\) is not installed/);
  } finally {
    rmSync(broken, { recursive: true, force: true });
  }
});

test('pack: node.xz, node_modules.tar.xz (without docs and source maps) and a manifest with the sizes; the size limit', () => {
  const node = join(root, 'fake-node');
  writeFileSync(node, '#!/bin/sh\necho v20.0.0-fake\n', { mode: 0o755 });
  const out = join(root, '.device');
  const lines: string[] = [];
  const m = pack({ root, out, node, log: (s: string) => lines.push(s) });
  assert.equal(m.node?.version, 'v20.0.0-fake');
  assert.deepEqual(Object.keys(m.files).sort(), ['node.xz', 'node_modules.tar.xz']);
  assert.equal(m.totalBytes, m.files['node.xz']! + m.files['node_modules.tar.xz']!);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).packages, productionPackages(root));
  assert.equal(execFileSync('xz', ['-dc', join(out, 'node.xz')], { encoding: 'utf8' }), readFileSync(node, 'utf8'));
  const listed = execFileSync('tar', ['-tJf', join(out, 'node_modules.tar.xz')], { encoding: 'utf8' }).split('\n').filter((l) => l && !l.endsWith('/'));
  assert.ok(listed.includes('node_modules/@s/b/node_modules/c/index.js'));
  assert.ok(listed.includes('node_modules/@plat/this-os/bin/tool'));
  assert.ok(!listed.some((l) => l.startsWith('node_modules/dev')), 'no dev dependencies');
  assert.ok(!listed.some((l) => l.endsWith('.md') || l.endsWith('.map')), 'no docs, no source maps');
  assert.ok(lines.some((l) => /total .* MiB/.test(l)), 'prints the sizes');
  assert.throws(() => pack({ root, out, node, maxMiB: 1e-6, log: () => {} }), /is over the .* MiB limit/);
});

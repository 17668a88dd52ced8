// The one cache root (src/shared/cache-root.ts) and its install-time copy in scripts/libtorch.mjs give the same
// answer for the same environment: SFTKIT_CACHE_DIR, else XDG_CACHE_HOME/sftkit, else ~/.cache/sftkit.
import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { cacheRoot } from '../../../src/shared/cache-root.ts';
import { cacheRoot as dataCacheRoot } from '../../../src/data/index.ts';
import { cacheRoot as installCacheRoot } from '../../../scripts/libtorch.mjs';

const cases: [string, NodeJS.ProcessEnv, string][] = [
  ['SFTKIT_CACHE_DIR wins', { SFTKIT_CACHE_DIR: '/x/y', XDG_CACHE_HOME: '/xdg' }, '/x/y'],
  ['SFTKIT_CACHE_DIR relative is resolved', { SFTKIT_CACHE_DIR: 'rel/cache' }, resolve('rel/cache')],
  ['XDG_CACHE_HOME/sftkit', { XDG_CACHE_HOME: '/xdg' }, '/xdg/sftkit'],
  ['empty SFTKIT_CACHE_DIR falls through to XDG', { SFTKIT_CACHE_DIR: '', XDG_CACHE_HOME: '/xdg' }, '/xdg/sftkit'],
  ['~/.cache/sftkit by default', {}, join(homedir(), '.cache', 'sftkit')],
  ['empty XDG_CACHE_HOME is the default', { XDG_CACHE_HOME: '' }, join(homedir(), '.cache', 'sftkit')],
];

for (const [name, env, expected] of cases) {
  test(`cache root: ${name}`, () => {
    assert.equal(cacheRoot(env), expected);
    assert.equal(installCacheRoot(env), expected, 'scripts/libtorch.mjs agrees');
    assert.equal(dataCacheRoot(env), expected, 'the data room re-exports the same function');
  });
}

test('the cache root reads process.env by default', () => {
  assert.equal(cacheRoot(), installCacheRoot());
});

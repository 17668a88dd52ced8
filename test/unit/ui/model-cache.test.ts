// The playground's model cache: one holder at a time per model, least recently used evicted beyond the limit but
// only disposed once its holder is done, failed loads not kept, everything disposed on close.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Model } from '../../../src/native/model.ts';
import type { TextTokenizer } from '../../../src/tokenize/tokenizer.ts';
import { ModelCache } from '../../../src/ui/model-cache.ts';

function counting() {
  const loads: string[] = [];
  const disposed: string[] = [];
  const loader = async (dir: string) => {
    loads.push(dir);
    if (dir === 'bad') throw new Error('no config.json');
    return { dir, tokenizer: {} as TextTokenizer, model: { dispose: async () => void disposed.push(dir) } as unknown as Model };
  };
  return { loads, disposed, loader };
}

test('one holder at a time per model; a second request waits for release', async () => {
  const c = counting();
  const cache = new ModelCache(c.loader, { max: 2 });
  const first = await cache.acquire('a');
  let second = false;
  const pending = cache.acquire('a').then((l) => ((second = true), l));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(second, false);
  first.release();
  (await pending).release();
  assert.equal(second, true);
  assert.deepEqual(c.loads, ['a']);
  await cache.close();
  assert.deepEqual(c.disposed, ['a']);
});

test('beyond the limit the least recently used model is disposed, after its holder is done', async () => {
  const c = counting();
  const cache = new ModelCache(c.loader, { max: 2 });
  (await cache.acquire('a')).release();
  const b = await cache.acquire('b');
  (await cache.acquire('c')).release();
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(c.disposed, ['a']);
  assert.deepEqual(cache.loaded.sort(), ['b', 'c']);
  (await cache.acquire('d')).release(); // evicts b, which is still held
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(c.disposed, ['a']);
  b.release();
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(c.disposed, ['a', 'b']);
  await cache.close();
  assert.deepEqual(c.disposed.sort(), ['a', 'b', 'c', 'd']);
  await assert.rejects(cache.acquire('a'), /closed/);
});

test('a failed load is an error for its request and is not kept', async () => {
  const c = counting();
  const cache = new ModelCache(c.loader);
  await assert.rejects(cache.acquire('bad'), /no config\.json/);
  await assert.rejects(cache.acquire('bad'), /no config\.json/);
  assert.deepEqual(c.loads, ['bad', 'bad']);
  assert.deepEqual(cache.loaded, []);
  await cache.close();
});

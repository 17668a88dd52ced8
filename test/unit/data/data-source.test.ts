// --data as an http(s) URL: fetched once into the cache (SFTKIT_CACHE_DIR honoured), then reused.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { cacheRoot, resolveDataSource } from '../../../src/data/data-source.ts';
import { loadExamples } from '../../../src/data/load-examples.ts';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'data');
const body = readFileSync(join(fixtures, 'instruction-data.json'));
let hits: Record<string, number> = {};
let base = '';
const server = createServer((req, res) => {
  hits[req.url ?? ''] = (hits[req.url ?? ''] ?? 0) + 1;
  if (req.url === '/instruction-data.json') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  } else if (req.url === '/cut.json') {
    res.writeHead(200, { 'content-length': String(body.length) });
    res.write(body.subarray(0, 1000));
    res.destroy();
  } else {
    res.writeHead(404);
    res.end('no');
  }
});

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

test('a URL is downloaded once into the cache and reused', async () => {
  hits = {};
  const cacheDir = mkdtempSync(join(tmpdir(), 'sftkit-url-'));
  const url = `${base}/instruction-data.json`;
  const first = await loadExamples(url, { cacheDir });
  assert.equal(first.examples.length, 1100);
  assert.equal(first.displayName, url);
  const second = await loadExamples(url, { cacheDir, limit: 2 });
  assert.equal(second.examples.length, 2);
  assert.equal(hits['/instruction-data.json'], 1, 'fetched once');
  const r = await resolveDataSource(url, { cacheDir });
  assert.equal(r.downloaded, false);
  assert.deepEqual(readFileSync(r.path), body);
});

test('errors in a downloaded file are reported under the URL', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'sftkit-url-'));
  await assert.rejects(loadExamples(`${base}/instruction-data.json`, { cacheDir, format: 'text', limit: 1 }), (e: Error) =>
    e.message.startsWith(`${base}/instruction-data.json:2 (record 0) field "text"`),
  );
});

test('HTTP errors and interrupted downloads fail and leave no cache entry', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'sftkit-url-'));
  await assert.rejects(resolveDataSource(`${base}/missing.json`, { cacheDir }), /HTTP 404/);
  await assert.rejects(resolveDataSource(`${base}/cut.json`, { cacheDir }), /download failed/);
  hits = {};
  await assert.rejects(resolveDataSource(`${base}/cut.json`, { cacheDir }), /download failed/);
  assert.equal(hits['/cut.json'], 1, 'a failed download is retried, not served from a partial file');
});

test('the cache root honours SFTKIT_CACHE_DIR', () => {
  assert.equal(cacheRoot({ SFTKIT_CACHE_DIR: '/x/y' }), '/x/y');
  assert.match(cacheRoot({}), /\.cache[\\/]sftkit$/);
});

test('the default data cache lives under SFTKIT_CACHE_DIR/data', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sftkit-root-'));
  const saved = process.env.SFTKIT_CACHE_DIR;
  process.env.SFTKIT_CACHE_DIR = root;
  try {
    const r = await resolveDataSource(`${base}/instruction-data.json`);
    assert.ok(r.path.startsWith(join(root, 'data')), r.path);
  } finally {
    if (saved === undefined) delete process.env.SFTKIT_CACHE_DIR;
    else process.env.SFTKIT_CACHE_DIR = saved;
  }
});

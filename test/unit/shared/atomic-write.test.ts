// The one atomic write (src/shared/atomic-write.ts): complete content after success, the previous content (or no
// file) after a failure, and no temp file left behind either way.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempPathFor, writeFileAtomic, writeFileAtomicSync, writeStreamAtomic } from '../../../src/shared/atomic-write.ts';

const scratch = () => mkdtempSync(join(tmpdir(), 'sftkit-atomic-'));

test('the temp file sits beside the target, hidden, named per process', () => {
  const t = tempPathFor('/a/b/file.json');
  assert.match(t, new RegExp(`^/a/b/\\.file\\.json\\.tmp-${process.pid}-[0-9a-f]{8}$`));
  assert.notEqual(tempPathFor('/a/b/file.json'), t);
});

test('writeFileAtomic: the whole content, replacing an earlier file, no temp left', async () => {
  const dir = scratch();
  const file = join(dir, 'state.json');
  writeFileSync(file, 'old');
  const big = 'x'.repeat(3 << 20);
  await writeFileAtomic(file, big);
  assert.equal(readFileSync(file, 'utf8'), big);
  await writeFileAtomic(file, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...readFileSync(file)], [1, 2, 3]);
  assert.deepEqual(readdirSync(dir), ['state.json']);
});

test('writeFileAtomicSync: the whole content, no temp left', () => {
  const dir = scratch();
  const file = join(dir, 'config.json');
  writeFileAtomicSync(file, '{"a":1}\n');
  writeFileAtomicSync(file, '{"a":2}\n');
  assert.equal(readFileSync(file, 'utf8'), '{"a":2}\n');
  assert.deepEqual(readdirSync(dir), ['config.json']);
});

test('writeStreamAtomic: chunks from an iterable and an async iterable', async () => {
  const dir = scratch();
  const file = join(dir, 'data.jsonl');
  await writeStreamAtomic(file, ['a\n', 'b\n']);
  assert.equal(readFileSync(file, 'utf8'), 'a\nb\n');
  await writeStreamAtomic(file, (async function* () {
    for (let i = 0; i < 1000; i++) yield `${i}\n`;
  })());
  assert.equal(readFileSync(file, 'utf8').split('\n').length, 1001);
  assert.deepEqual(readdirSync(dir), ['data.jsonl']);
});

test('a source failing mid-stream leaves the earlier file untouched (or none) and removes the temp', async () => {
  const dir = scratch();
  const file = join(dir, 'download.json');
  const broken = async function* () {
    yield 'partial content';
    throw new Error('connection reset');
  };
  await assert.rejects(writeStreamAtomic(file, broken()), /connection reset/);
  assert.deepEqual(readdirSync(dir), [], 'no partial target, no temp');
  writeFileSync(file, 'complete');
  await assert.rejects(writeStreamAtomic(file, broken()), /connection reset/);
  assert.equal(readFileSync(file, 'utf8'), 'complete');
  assert.deepEqual(readdirSync(dir), ['download.json']);
});

test('a failing rename (the target is a directory) removes the temp, async and sync', async () => {
  const dir = scratch();
  const target = join(dir, 'taken');
  mkdirSync(target);
  writeFileSync(join(target, 'inside'), 'kept');
  await assert.rejects(writeFileAtomic(target, 'new'), (e: NodeJS.ErrnoException) => typeof e.code === 'string');
  assert.throws(() => writeFileAtomicSync(target, 'new'), (e: NodeJS.ErrnoException) => typeof e.code === 'string');
  await assert.rejects(writeStreamAtomic(target, ['new']), (e: NodeJS.ErrnoException) => typeof e.code === 'string');
  assert.deepEqual(readdirSync(dir), ['taken']);
  assert.equal(readFileSync(join(target, 'inside'), 'utf8'), 'kept');
});

test('a missing directory fails without creating anything', async () => {
  const dir = scratch();
  await assert.rejects(writeFileAtomic(join(dir, 'no', 'such.json'), '{}'), { code: 'ENOENT' });
  assert.throws(() => writeFileAtomicSync(join(dir, 'no', 'such.json'), '{}'), { code: 'ENOENT' });
  assert.deepEqual(readdirSync(dir), []);
});

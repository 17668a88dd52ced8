// PRNG, split, padding, batch plans, packing and the tokenized-dataset cache.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { collate, collateForLoss, collatePacked, lossForm, paddingFreePays, realTokens } from '../../../src/collate/batch.ts';
import { planBatches } from '../../../src/collate/batch-plan.ts';
import { datasetCacheKey, readCachedDataset, writeCachedDataset } from '../../../src/pipeline/dataset-cache.ts';
import { packBestFitDecreasing } from '../../../src/collate/pack.ts';
import { Rng, deriveSeed, permutation } from '../../../src/shared/prng.ts';
import { splitIndices } from '../../../src/pipeline/split.ts';
import { batches, prepareDataset } from '../../../src/index.ts';
import type { TokenizedExample } from '../../../src/mask/tokenize-with-mask.ts';
import { loadTokenizer } from '../../../src/tokenize/tokenizer.ts';

const M = -100;
const ex = (ids: number[], labels?: number[]): TokenizedExample => ({
  inputIds: Int32Array.from(ids),
  labels: Int32Array.from(labels ?? ids),
});
const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');

test('the PRNG is deterministic, seed-sensitive and resumable from its state', () => {
  const a = Rng.fromSeed(123);
  const b = Rng.fromSeed(123);
  const seqA = Array.from({ length: 5 }, () => a.nextU32());
  assert.deepEqual(Array.from({ length: 5 }, () => b.nextU32()), seqA);
  assert.notDeepEqual(Array.from({ length: 5 }, () => Rng.fromSeed(124).nextU32()), seqA);
  const state = a.state();
  const resumed = Rng.fromState(JSON.parse(JSON.stringify(state)));
  assert.deepEqual(Array.from({ length: 5 }, () => resumed.nextU32()), Array.from({ length: 5 }, () => a.nextU32()));
  const counts = new Array(4).fill(0);
  const r = Rng.fromSeed(1);
  for (let i = 0; i < 4000; i++) counts[r.int(4)]++;
  assert.ok(counts.every((c) => c > 850 && c < 1150), String(counts));
  assert.deepEqual([...permutation(10, Rng.fromSeed(7))].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.notEqual(deriveSeed(1, 0), deriveSeed(1, 1));
  assert.throws(() => Rng.fromSeed(-1), /Expected a non-negative integer for seed/);
  assert.throws(() => Rng.fromState([1, 2]), /four unsigned 32-bit integers/);
});

test('split: ch7 sizes (85% train, 10% test, 5% val), test sliced before val, deterministic by seed', () => {
  const book = splitIndices(1100, { shuffle: false });
  assert.equal(book.train.length, 935);
  assert.equal(book.test.length, 110);
  assert.equal(book.val.length, 55);
  assert.deepEqual(book.test.slice(0, 2), [935, 936]);
  assert.deepEqual(book.val.slice(0, 1), [1045]);
  const s1 = splitIndices(1100, { seed: 5 });
  assert.deepEqual(splitIndices(1100, { seed: 5 }), s1);
  assert.notDeepEqual(splitIndices(1100, { seed: 6 }).train, s1.train);
  assert.deepEqual([...s1.train, ...s1.test, ...s1.val].sort((a, b) => a - b), book.train.concat(book.test, book.val));
  const custom = splitIndices(100, { train: 0.5, test: 0.2, val: 0.1 });
  assert.deepEqual([custom.train.length, custom.test.length, custom.val.length], [50, 20, 10]);
  assert.throws(() => splitIndices(10, { train: 0.9, test: 0.2 }), /fractions adding up to at most 1/);
  assert.throws(() => splitIndices(10, { train: 2 }), /Expected a fraction in \[0, 1\] for split.train/);
});

test('collate: dynamic right padding, attention mask, -100 on padding; pad == eos keeps the trained EOS', () => {
  const eos = 50256;
  const b = collate([ex([1, 2, eos], [M, 2, eos]), ex([3, eos], [M, eos])], { padId: eos });
  assert.deepEqual(b.shape, [2, 3]);
  assert.deepEqual(Array.from(b.inputIds), [1, 2, eos, 3, eos, eos]);
  assert.deepEqual(Array.from(b.labels), [M, 2, eos, M, eos, M], 'first EOS trained, padding EOS masked');
  assert.deepEqual(Array.from(b.attentionMask ?? []), [1, 1, 1, 1, 1, 0]);
  assert.equal(b.labelTokens, 3);
  const m8 = collate([ex([1, 2, 3])], { padId: 0, padToMultiple: 8 });
  assert.deepEqual(m8.shape, [1, 8]);
  assert.throws(() => collate([], { padId: 0 }), /at least one example/);
  assert.throws(() => collate([ex([1])], { padId: -1 }), /Expected a non-negative integer for padId/);
  assert.throws(() => collate([ex([1])], { padId: 0, padToMultiple: 0 }), /Expected a positive integer for padToMultiple/);
});

test('batch plans: shuffle by (seed, epoch), drop_last, length grouping', () => {
  const lengths = Array.from({ length: 103 }, (_, i) => (i * 37) % 50 + 1);
  const e0 = planBatches(lengths, { batchSize: 10, seed: 1, epoch: 0 });
  assert.equal(e0.length, 11);
  assert.deepEqual(planBatches(lengths, { batchSize: 10, seed: 1, epoch: 0 }), e0);
  assert.notDeepEqual(planBatches(lengths, { batchSize: 10, seed: 1, epoch: 1 }), e0);
  assert.deepEqual(e0.flat().sort((a, b) => a - b), lengths.map((_, i) => i));
  assert.equal(planBatches(lengths, { batchSize: 10, dropLast: true }).length, 10);
  assert.deepEqual(planBatches(lengths, { batchSize: 50, shuffle: false })[0], Array.from({ length: 50 }, (_, i) => i));
  const padding = (plan: number[][]) =>
    plan.reduce((s, b) => s + Math.max(...b.map((i) => lengths[i] as number)) * b.length - b.reduce((t, i) => t + (lengths[i] as number), 0), 0);
  const grouped = planBatches(lengths, { batchSize: 10, groupByLength: true, seed: 1 });
  assert.deepEqual(grouped.flat().sort((a, b) => a - b), lengths.map((_, i) => i));
  assert.ok(padding(grouped) < padding(e0) / 3, `grouped padding ${padding(grouped)} vs ${padding(e0)}`);
  assert.throws(() => planBatches(lengths, { batchSize: 0 }), /Expected a positive integer for batchSize/);
});

test('best-fit-decreasing packing fills rows, never overflows, ties go to the lowest row', () => {
  assert.deepEqual(packBestFitDecreasing([5, 5, 3, 3, 2, 2], 10), [[0, 1], [2, 3, 4, 5]]);
  assert.deepEqual(packBestFitDecreasing([6, 4, 6, 4], 10), [[0, 1], [2, 3]]);
  const r = Rng.fromSeed(3);
  const lengths = Array.from({ length: 2000 }, () => 1 + r.int(500));
  const bins = packBestFitDecreasing(lengths, 512);
  assert.deepEqual(bins.flat().sort((a, b) => a - b), lengths.map((_, i) => i));
  for (const b of bins) assert.ok(b.reduce((s, i) => s + (lengths[i] as number), 0) <= 512);
  const total = lengths.reduce((a, b) => a + b, 0);
  assert.ok(bins.length <= Math.ceil(total / 512) * 1.1 + 1, `${bins.length} rows for ${total} tokens`);
  assert.throws(() => packBestFitDecreasing([600], 512), /truncate or drop longer examples first/);
});

test('packed rows: positions restart per document, the first label of each document is masked, doc lengths', () => {
  const b = collatePacked([[ex([1, 2, 3]), ex([4, 5])], [ex([6, 7, 8, 9])]], { padId: 0 });
  assert.deepEqual(b.shape, [2, 5]);
  assert.deepEqual(Array.from(b.inputIds), [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]);
  assert.deepEqual(Array.from(b.labels), [M, 2, 3, M, 5, M, 7, 8, 9, M]);
  assert.deepEqual(Array.from(b.positionIds as Int32Array), [0, 1, 2, 0, 1, 0, 1, 2, 3, 0]);
  assert.equal(b.attentionMask, undefined, 'documents, not padded rows: no attention mask');
  assert.equal(realTokens(b), 9);
  assert.deepEqual(b.docLengths?.map((d) => Array.from(d)), [[3, 2], [4]]);
  assert.equal(b.labelTokens, 6);
  const fixed = collatePacked([[ex([1, 2])]], { padId: 0, rowLength: 4 });
  assert.deepEqual(Array.from(fixed.positionIds as Int32Array), [0, 1, 0, 1]);
  assert.throws(() => collatePacked([[ex([1, 2, 3])]], { padId: 0, rowLength: 2 }), /longest packed row/);
});

test('collateForLoss: the examples end to end in one row when padding pays, else padded rows; lossForm agrees', () => {
  const a = ex([1, 2, 3, 4, 5, 6, 7, 8], [M, M, 3, 4, 5, 6, 7, 8]);
  const b = ex([9, 10, 11], [M, 10, 11]);
  const c = ex([12, 13], [12, 13]);
  // 3 rows x 8 positions, 11 padding: the padding-free form, one document per example.
  const free = collateForLoss([a, b, c], { padId: 0 });
  assert.deepEqual(free.shape, [1, 13]);
  assert.deepEqual(Array.from(free.inputIds), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  assert.deepEqual(Array.from(free.labels), [M, M, 3, 4, 5, 6, 7, 8, M, 10, 11, M, 13], 'each example starts a document');
  assert.deepEqual(Array.from(free.positionIds ?? []), [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 0, 1]);
  assert.deepEqual(free.docLengths?.map((d) => Array.from(d)), [[8, 3, 2]]);
  assert.equal(free.attentionMask, undefined);
  const padded = collate([a, b, c], { padId: 0 });
  assert.equal(free.labelTokens, padded.labelTokens, 'the same targets as padded rows');
  assert.equal(realTokens(free), realTokens(padded));
  assert.deepEqual(lossForm(padded), free);
  // Under 1/20 of the positions padding (20 x 20 positions, one token short), or a single row: padded rows.
  const full = Array.from({ length: 20 }, (_, i) => ex(Array.from({ length: i === 0 ? 19 : 20 }, (_, t) => t + 1)));
  assert.equal(paddingFreePays(full.map((e) => e.inputIds.length)), false);
  assert.deepEqual(collateForLoss(full, { padId: 0 }).shape, [20, 20]);
  assert.deepEqual(collateForLoss([b], { padId: 0 }).shape, [1, 3]);
  assert.equal(paddingFreePays([20, 19]), false);
  assert.equal(paddingFreePays([20, 18]), true, 'exactly 1/20: worth it, as the engine decided before');
  assert.throws(() => collateForLoss([], { padId: 0 }), /at least one example/);
});

test('batches(): an epoch of padded or packed batches from prepared data', async () => {
  const tok = await loadTokenizer(join(fixtures, 'tokenizers', 'gpt2'));
  const d = await prepareDataset({ data: join(fixtures, 'data', 'instruction-data.json'), tokenizer: tok });
  assert.deepEqual([d.train.length, d.test.length, d.val.length], [935, 110, 55]);
  const plain = [...batches(d.train, { batchSize: 8, padId: tok.padId, seed: 1, dropLast: true })];
  assert.equal(plain.length, 116);
  assert.ok(plain.every((b) => (b.docLengths ? b.docLengths[0]?.length : b.shape[0]) === 8), 'eight examples per batch, padded or padding-free');
  const tokens = d.train.reduce((s, e) => s + e.inputIds.length, 0);
  const packed = [...batches(d.train, { batchSize: 4, padId: tok.padId, packing: true, maxLength: 512, seed: 1 })];
  const rows = packed.reduce((s, b) => s + b.shape[0], 0);
  assert.ok(rows <= Math.ceil((tokens / 512) * 1.05), `${rows} packed rows for ${tokens} tokens`);
  assert.equal(packed.reduce((s, b) => s + (b.docLengths ?? []).reduce((t, r) => t + r.length, 0), 0), 935);
  assert.equal(packed.reduce((s, b) => s + realTokens(b), 0), tokens);
  // Loss batches: the padding-free form wherever padding pays, padded rows elsewhere; every token exactly once.
  const forLoss = [...batches(d.train, { batchSize: 8, padId: tok.padId, seed: 1 })];
  assert.equal(forLoss.reduce((s, b) => s + realTokens(b), 0), tokens);
  assert.ok(forLoss.some((b) => b.shape[0] === 1 && b.docLengths?.[0]?.length === 8), 'padding-free batches');
  assert.equal(forLoss.reduce((s, b) => s + b.labelTokens, 0), d.train.reduce((s, e) => s + e.labels.subarray(1).filter((l) => l !== M).length, 0));
  assert.throws(() => [...batches(d.train, { batchSize: 4, padId: 0, packing: true })], /packed row length/);
});

test('tokenized-dataset cache: round trip, keyed by data, tokenizer, template and options', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-cache-'));
  const examples = [ex([1, 2, 3], [M, 2, 3]), ex([4], [4])];
  const key = datasetCacheKey({ dataHash: 'd', tokenizerFingerprint: 't', templateId: 'alpaca', options: { maxLength: 8 } });
  assert.equal(await readCachedDataset(dir, key), undefined);
  await writeCachedDataset(dir, key, { examples, meta: { note: 'x' } });
  const back = await readCachedDataset<{ note: string }>(dir, key);
  assert.deepEqual(back?.examples.map((e) => [Array.from(e.inputIds), Array.from(e.labels)]), [[[1, 2, 3], [M, 2, 3]], [[4], [4]]]);
  assert.equal(back?.meta.note, 'x');
  for (const change of [
    { dataHash: 'd2' },
    { tokenizerFingerprint: 't2' },
    { templateId: 'chatml' },
    { options: { maxLength: 9 } },
  ]) {
    assert.notEqual(datasetCacheKey({ dataHash: 'd', tokenizerFingerprint: 't', templateId: 'alpaca', options: { maxLength: 8 }, ...change }), key);
  }
  assert.equal(datasetCacheKey({ dataHash: 'd', tokenizerFingerprint: 't', templateId: 'alpaca', options: { maxLength: 8, x: undefined } }), key);
  writeFileSync(join(dir, `${key}.sftktok`), 'garbage');
  assert.equal(await readCachedDataset(dir, key), undefined, 'a corrupt entry is a miss');
});

test('prepareDataset uses the cache on the second run and gives the same data', async () => {
  const cache = mkdtempSync(join(tmpdir(), 'sftkit-cache-'));
  const opts = { data: join(fixtures, 'data', 'instruction-data.json'), tokenizer: join(fixtures, 'tokenizers', 'gpt2'), cache, limit: 50 };
  const first = await prepareDataset(opts);
  const second = await prepareDataset(opts);
  assert.equal(first.fromCache, false);
  assert.equal(second.fromCache, true);
  assert.deepEqual(second.summary, first.summary);
  assert.deepEqual(second.train.map((e) => Array.from(e.labels)), first.train.map((e) => Array.from(e.labels)));
  const third = await prepareDataset({ ...opts, maxLength: 40 });
  assert.equal(third.fromCache, false);
  assert.equal(readdirSync(cache).length, 2);
});

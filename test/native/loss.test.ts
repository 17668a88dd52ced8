// The fused masked cross-entropy against the naive full-logits one: values, gradients, chunking, edge cases.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { binding } from '../../src/native/binding.ts';

const native = binding();

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function relClose(a: ArrayLike<number>, b: ArrayLike<number>, rel: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += ((a[i] as number) - (b[i] as number)) ** 2;
    den += (b[i] as number) ** 2;
  }
  const err = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-12);
  assert.ok(err <= rel, `${what}: relative error ${err} > ${rel}`);
}

function problem(B: number, T: number, C: number, V: number, seed: number, ignore = 0.3) {
  const r = rng(seed);
  const hidden = Float32Array.from({ length: B * T * C }, () => r() * 2);
  const weight = Float32Array.from({ length: V * C }, () => r());
  const labels = Int32Array.from({ length: B * T }, () => (r() + 0.5 < ignore ? -100 : Math.floor((r() + 0.5) * V) % V));
  return { hidden, weight, labels, hs: [B, T, C], ws: [V, C], ls: [B, T] };
}

test('fused equals naive: loss rel 1e-5, gradients rel 1e-4, for several chunk sizes', async () => {
  const p = problem(3, 17, 24, 301, 5);
  const naive = await native.crossEntropy(p.hidden, p.hs, p.weight, p.ws, p.labels, p.ls, { naive: true });
  assert.ok(naive.count > 10);
  for (const chunkRows of [0, 1, 7, 1000]) {
    const fused = await native.crossEntropy(p.hidden, p.hs, p.weight, p.ws, p.labels, p.ls, { chunkRows });
    assert.equal(fused.count, naive.count);
    assert.ok(Math.abs(fused.lossSum - naive.lossSum) <= 1e-5 * Math.abs(naive.lossSum), `chunk ${chunkRows}: ${fused.lossSum} vs ${naive.lossSum}`);
    relClose(fused.gradHidden, naive.gradHidden, 1e-4, `grad hidden (chunk ${chunkRows})`);
    relClose(fused.gradWeight, naive.gradWeight, 1e-4, `grad weight (chunk ${chunkRows})`);
  }
});

test('no label token: sum 0, count 0, zero gradients, never NaN', async () => {
  const p = problem(2, 5, 8, 13, 9);
  p.labels.fill(-100);
  const r = await native.crossEntropy(p.hidden, p.hs, p.weight, p.ws, p.labels, p.ls);
  assert.equal(r.lossSum, 0);
  assert.equal(r.count, 0);
  assert.ok(r.gradHidden.every((x) => x === 0));
  assert.ok(r.gradWeight.every((x) => x === 0));
  // Only the first position labelled: it predicts nothing after the shift.
  p.labels[0] = 3;
  const first = await native.crossEntropy(p.hidden, p.hs, p.weight, p.ws, p.labels, p.ls);
  assert.equal(first.count, 0);
});

test('a single label token gives -log softmax of its logit', async () => {
  const p = problem(1, 2, 4, 6, 2);
  p.labels.set([-100, 4]);
  const r = await native.crossEntropy(p.hidden, p.hs, p.weight, p.ws, p.labels, p.ls);
  const h = p.hidden.subarray(0, 4);
  const logits = Array.from({ length: 6 }, (_, v) => h.reduce((s, x, c) => s + x * (p.weight[v * 4 + c] as number), 0));
  const lse = Math.log(logits.reduce((s, z) => s + Math.exp(z), 0));
  assert.equal(r.count, 1);
  assert.ok(Math.abs(r.lossSum - (lse - (logits[4] as number))) < 1e-5);
});

test('labels outside the vocabulary and mismatched shapes are SFTKIT_BAD_ARGUMENT errors', async () => {
  const p = problem(1, 4, 4, 6, 3);
  p.labels.set([-100, 2, 6, 1]);
  await assert.rejects(native.crossEntropy(p.hidden, p.hs, p.weight, p.ws, p.labels, p.ls), { code: 'SFTKIT_BAD_ARGUMENT', message: /label id 6 is outside the vocabulary \[0, 6\)/ });
  p.labels.set([-100, 2, -7, 1]);
  await assert.rejects(native.crossEntropy(p.hidden, p.hs, p.weight, p.ws, p.labels, p.ls), { code: 'SFTKIT_BAD_ARGUMENT' });
  await assert.rejects(native.crossEntropy(p.hidden, p.hs, p.weight, [4, 6], p.labels, p.ls), { code: 'SFTKIT_BAD_ARGUMENT' });
  assert.throws(() => native.crossEntropy(p.hidden, [1, 4, 5], p.weight, p.ws, p.labels, p.ls), { code: 'SFTKIT_BAD_ARGUMENT' });
});

// Logit-level distillation: the fused, chunked CE + T^2 KL(teacher || student) against full logits (values and
// gradients), and Model.distillStep against the plain step (alpha 1) and against a teacher identical to the student.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { binding } from '../../src/native/binding.ts';
import { loadModel } from '../../src/native/model.ts';
import { batchOf } from './helpers/batches.ts';

const native = binding();
const root = join(import.meta.dirname, '..', '..');
const MODEL = join(root, 'test', 'fixtures', 'models', 'tinystories-656k');

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += ((a[i] as number) - (b[i] as number)) ** 2;
    den += (b[i] as number) ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-12);
}

function problem(B: number, T: number, C: number, Ct: number, V: number, seed: number) {
  const r = rng(seed);
  const f = (n: number, scale: number) => Float32Array.from({ length: n }, () => r() * scale);
  return {
    h: f(B * T * C, 2), hs: [B, T, C],
    w: f(V * C, 1), ws: [V, C],
    ht: f(B * T * Ct, 2), hts: [B, T, Ct],
    wt: f(V * Ct, 1.5), wts: [V, Ct],
    y: Int32Array.from({ length: B * T }, () => (r() < -0.2 ? -100 : Math.floor((r() + 0.5) * V) % V)),
    ys: [B, T],
  };
}

const run = (p: ReturnType<typeof problem>, options: Parameters<typeof native.distillLoss>[10]) =>
  native.distillLoss(p.h, p.hs, p.w, p.ws, p.ht, p.hts, p.wt, p.wts, p.y, p.ys, options);

test('fused distillation loss equals full-logit CE + T^2 KL: values rel 1e-5, gradients rel 1e-5, any chunking', async () => {
  const p = problem(3, 13, 16, 24, 257, 11);
  for (const [alpha, temperature] of [[0.5, 1], [0.2, 2.5], [1, 1], [0, 0.7]] as const) {
    const naive = await run(p, { alpha, temperature, naive: true });
    assert.ok(naive.count > 10);
    for (const chunkRows of [0, 1, 5, 1000]) {
      const fused = await run(p, { alpha, temperature, chunkRows });
      const what = `alpha ${alpha}, T ${temperature}, chunk ${chunkRows}`;
      assert.equal(fused.count, naive.count);
      for (const k of ['lossSum', 'ceSum', 'klSum'] as const) {
        assert.ok(Math.abs(fused[k] - naive[k]) <= 1e-5 * Math.abs(naive[k]) + 1e-6, `${what}: ${k} ${fused[k]} vs ${naive[k]}`);
      }
      assert.ok(relErr(fused.gradHidden, naive.gradHidden) <= 1e-5, `${what}: grad hidden ${relErr(fused.gradHidden, naive.gradHidden)}`);
      assert.ok(relErr(fused.gradWeight, naive.gradWeight) <= 1e-5, `${what}: grad weight ${relErr(fused.gradWeight, naive.gradWeight)}`);
    }
  }
});

test('KL is computed by hand for one position; no label gives zeros; a vocabulary mismatch is SFTKIT_BAD_ARGUMENT', async () => {
  const p = problem(1, 2, 3, 2, 5, 4);
  p.y.set([-100, 3]);
  const r = await run(p, { alpha: 0.3, temperature: 2 });
  const logits = (h: Float32Array, w: Float32Array, c: number) => Array.from({ length: 5 }, (_, v) => h.subarray(0, c).reduce((s, x, i) => s + x * (w[v * c + i] as number), 0));
  const logSoftmax = (z: number[]) => {
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((s, x) => s + Math.exp(x - m), 0));
    return z.map((x) => x - lse);
  };
  const zs = logits(p.h, p.w, 3);
  const zt = logits(p.ht, p.wt, 2);
  const ce = -(logSoftmax(zs)[3] as number);
  const lq = logSoftmax(zs.map((z) => z / 2));
  const lp = logSoftmax(zt.map((z) => z / 2));
  const kl = lp.reduce((s, l, v) => s + Math.exp(l) * (l - (lq[v] as number)), 0);
  assert.equal(r.count, 1);
  assert.ok(Math.abs(r.ceSum - ce) < 1e-5 && Math.abs(r.klSum - kl) < 1e-5, `${r.ceSum} ${ce} / ${r.klSum} ${kl}`);
  assert.ok(Math.abs(r.lossSum - (0.3 * ce + 0.7 * 4 * kl)) < 1e-5);
  p.y.fill(-100);
  const none = await run(p, {});
  assert.deepEqual([none.lossSum, none.count], [0, 0]);
  assert.ok(none.gradHidden.every((x) => x === 0));
  await assert.rejects(native.distillLoss(p.h, p.hs, p.w, p.ws, p.ht, p.hts, p.wt.subarray(0, 8), [4, 2], p.y, p.ys), { code: 'SFTKIT_BAD_ARGUMENT', message: /vocabulary \(4\) differs from the student's \(5\)/ });
});

test('Model.distillStep: alpha 1 is the plain step; a teacher equal to the student adds KL 0 and no gradient', async () => {
  const student = await loadModel(MODEL, { threads: 1 });
  const teacher = await loadModel(MODEL, { threads: 1 });
  try {
    const b = batchOf([[1, 80, 147, 201, 282, 215, 286, 1890], [1, 80, 147, 9, 33]], [2, 2]);
    const plain = await student.step(b);
    const ce = await student.gradNorms();
    await student.zeroGrad();
    const kd = await student.distillStep(b, teacher, { alpha: 1, temperature: 2 });
    assert.equal(kd.tokens, plain.tokens);
    assert.ok(Math.abs(kd.lossSum - plain.lossSum) < 1e-4 * plain.lossSum && Math.abs(kd.ceSum - plain.lossSum) < 1e-4 * plain.lossSum);
    assert.ok(Math.abs(kd.klSum) < 1e-5, `identical models: KL ${kd.klSum}`);
    const g = await student.gradNorms();
    for (const [name, x] of Object.entries(ce)) assert.ok(Math.abs((g[name] as number) - x) <= 1e-4 * Math.max(x, 1e-8), `${name}: ${g[name]} vs ${x}`);
    await student.zeroGrad();
    const pure = await student.distillStep(b, teacher, { alpha: 0, temperature: 1.5, lossScale: 0.5 });
    assert.ok(Math.abs(pure.lossSum) < 1e-4, `KL only, same model: ${pure.lossSum}`);
    const zero = await student.gradNorms();
    assert.ok(Object.values(zero).every((x) => x < 1e-4), JSON.stringify(zero));
    await student.zeroGrad();
    await assert.rejects(async () => student.distillStep(b, student), { code: 'SFTKIT_BAD_ARGUMENT' });
  } finally {
    await student.dispose();
    await teacher.dispose();
  }
});

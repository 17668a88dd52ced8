// The fused loss and the fused AdamW against PyTorch (fixtures from scripts/gen-fixtures/loss_optim.py):
// loss rel 1e-5, gradients rel 1e-4, AdamW parameters and moments rel 1e-6 after 3 clipped steps.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { binding } from '../../src/native/binding.ts';

const dir = join(import.meta.dirname, '..', 'fixtures', 'loss-optim');
const native = binding();

/**
 * Worst relative difference, each element's error taken against max(|b_i|, 1e-3 * max|b|): summed gradients of
 * rarely seen vocabulary rows cancel to values ~1e-5 of the tensor's scale, where float32 summation order alone moves
 * the last digits (measured: PyTorch's own log-softmax formula in another chunk order differs from the fixture by
 * 1.2e-4 under a plain 1e-6 floor, an absolute error of 1e-8 on a gradient whose largest entry is 2.7).
 */
function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i] as number));
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number)) / Math.max(Math.abs(b[i] as number), 1e-3 * scale, 1e-12);
    worst = Math.max(worst, d);
  }
  return worst;
}

test('fused cross-entropy equals torch cross_entropy(ignore_index=-100, sum) with its gradients', async () => {
  const f = JSON.parse(readFileSync(join(dir, 'loss.json'), 'utf8'));
  const r = await native.crossEntropy(Float32Array.from(f.hidden), f.hiddenShape, Float32Array.from(f.weight), f.weightShape, Int32Array.from(f.labels), f.labelsShape, { chunkRows: 4 });
  assert.equal(r.count, f.count);
  assert.ok(Math.abs(r.lossSum - f.lossSum) <= 1e-5 * Math.abs(f.lossSum), `${r.lossSum} vs ${f.lossSum}`);
  assert.ok(maxRel(r.gradHidden, f.gradHidden) <= 1e-4, `grad hidden ${maxRel(r.gradHidden, f.gradHidden)}`);
  assert.ok(maxRel(r.gradWeight, f.gradWeight) <= 1e-4, `grad weight ${maxRel(r.gradWeight, f.gradWeight)}`);
});

test('AdamW (decoupled decay, no decay group, clipping) equals torch.optim.AdamW over 3 steps', async () => {
  const f = JSON.parse(readFileSync(join(dir, 'adamw.json'), 'utf8'));
  const r = await native.adamwSteps({
    params: f.params.map((p: number[]) => Float32Array.from(p)),
    shapes: f.shapes,
    grads: f.grads.map((step: number[][]) => step.map((g) => Float32Array.from(g))),
    decay: f.decay,
    lr: f.lr,
    beta1: f.beta1,
    beta2: f.beta2,
    eps: f.eps,
    weightDecay: f.weightDecay,
    maxGradNorm: f.maxGradNorm,
  });
  r.gradNorms.forEach((n, i) => assert.ok(Math.abs(n - f.gradNorms[i]) <= 1e-5 * f.gradNorms[i], `grad norm ${i}: ${n} vs ${f.gradNorms[i]}`));
  r.params.forEach((p, i) => assert.ok(maxRel(p, f.after[i]) <= 1e-6, `param ${i}: ${maxRel(p, f.after[i])}`));
  r.expAvg.forEach((m, i) => assert.ok(maxRel(m, f.expAvg[i]) <= 1e-5, `exp_avg ${i}: ${maxRel(m, f.expAvg[i])}`));
  r.expAvgSq.forEach((v, i) => assert.ok(maxRel(v, f.expAvgSq[i]) <= 1e-5, `exp_avg_sq ${i}: ${maxRel(v, f.expAvgSq[i])}`));
});

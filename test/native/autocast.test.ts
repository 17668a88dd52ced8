// bf16 autocast over fp32 weights in full fine-tuning steps (CPU here; CUDA runs the same code): the fused
// projection ops (LayerNorm + linear, activation + down projection) re-enter the forward's autocast state in their
// backward, so their matmuls see bf16 on both sides (before, mm(bf16 dy, fp32 w) failed every such step), and the
// gradients stay within bf16 rounding of the fp32 ones.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModel } from '../../src/native/model.ts';
import { randomBatch } from './helpers/batches.ts';

const relNormError = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0) / b.reduce((s, x) => s + x * x, 0));
const tiny = (n: string) => join(import.meta.dirname, '..', 'fixtures', 'models', `tiny-${n}`);

// phi3 (fused projections, partial rotary, longrope), gemma2 (eager softcapped attention, final softcap in the loss) and
// gemma3-text ((1+w) norms in fp32, q/k norms, local/global RoPE, sliding windows) take their own paths under autocast.
for (const arch of ['gpt2', 'llama', 'phi3', 'gemma2', 'gemma3-text']) {
  for (const gradientCheckpointing of [false, true]) {
    test(`tiny-${arch}${gradientCheckpointing ? ' with checkpointing' : ''}: an autocast step's loss and every gradient within bf16 tolerance of fp32`, async () => {
      const b = randomBatch(2, 12, 3);
      const fp32 = await loadModel(tiny(arch), { threads: 1 });
      const bf16 = await loadModel(tiny(arch), { threads: 1, autocast: true, gradientCheckpointing });
      try {
        const ref = await fp32.step(b);
        const got = await bf16.step(b);
        assert.notEqual(got.lossSum, ref.lossSum, 'autocast changes the arithmetic');
        assert.ok(Math.abs(got.lossSum - ref.lossSum) <= 1e-2 * ref.lossSum, `${got.lossSum} vs ${ref.lossSum}`);
        const names = Object.keys(await fp32.gradNorms());
        assert.deepEqual(Object.keys(await bf16.gradNorms()), names);
        for (const n of names) {
          const e = relNormError((await bf16.getGradient(n))!.data, (await fp32.getGradient(n))!.data);
          assert.ok(e <= 0.1, `${n}: ||bf16 - fp32|| / ||fp32|| = ${e}`);
        }
        const { gradNorm } = await bf16.optimizerStep({ lr: 1e-3 });
        assert.ok(Number.isFinite(gradNorm) && gradNorm > 0);
      } finally {
        await fp32.dispose();
        await bf16.dispose();
      }
    });
  }
}

// A frozen low-precision base (baseDtype) on every architecture: a model loaded with baseDtype X computes exactly
// what a float32 model holding the dequantised weights computes (the same weights written out by save(), which
// dequantises the frozen store) — logits, LoRA training steps (every projection adapted, gradient checkpointing,
// padded and packed batches), adapter gradients and the loss after an optimizer step — at fp32 tolerances.
// Under bf16 autocast the base's matmuls run in bf16 on both sides: the same bf16 operands, so the same numbers.
// The Python reference of the formats themselves is test/parity/base-dtype.test.ts (tiny-llama, -gpt2, -qwen2).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { UncountedBatch } from '../../src/collate/index.ts';
import { binding, loadModel, parseModelConfig, type BaseDtype, type Model } from '../../src/native/index.ts';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'models');
const work = mkdtempSync(join(tmpdir(), 'sftkit-base-dtype-archs-'));
after(() => rmSync(work, { recursive: true, force: true }));

const ARCHS = ['llama', 'gpt2', 'qwen2', 'qwen3', 'mistral', 'phi3', 'gemma2', 'gemma3-text', 'smollm3', 'llama3-rope', 'qwen2-sliding'];

function batches(vocab: number): { padded: UncountedBatch; packed: UncountedBatch } {
  const ids = (n: number, k: number) => Int32Array.from({ length: n }, (_, i) => (7 + i * 13 + k * 31) % vocab);
  const a = ids(12, 1), b = ids(9, 2);
  const padded: UncountedBatch = {
    inputIds: new Int32Array(24),
    labels: new Int32Array(24).fill(-100),
    attentionMask: new Uint8Array(24),
    shape: [2, 12],
  };
  for (const [row, seq] of [a, b].entries()) {
    for (let t = 0; t < seq.length; t++) {
      padded.inputIds[row * 12 + t] = seq[t]!;
      padded.attentionMask![row * 12 + t] = 1;
      if (t >= 3) padded.labels[row * 12 + t] = seq[t]!;
    }
  }
  const packedIds = Int32Array.from([...a, ...b]);
  const packed: UncountedBatch = {
    inputIds: packedIds,
    labels: Int32Array.from(packedIds, (v, i) => (i % 12 < 2 ? -100 : v)),
    positionIds: Int32Array.from([...a.keys(), ...b.keys()]),
    docLengths: [Int32Array.from([a.length, b.length])],
    shape: [1, a.length + b.length],
  };
  return { padded, packed };
}

async function maxLogitsError(x: Model, y: Model, batch: UncountedBatch): Promise<number> {
  const [lx, ly] = [await x.forward(batch), await y.forward(batch)];
  let worst = 0;
  for (let i = 0; i < lx.logits.length; i++) worst = Math.max(worst, Math.abs(lx.logits[i]! - ly.logits[i]!));
  return worst;
}

async function worstGradError(x: Model, y: Model): Promise<{ worst: number; count: number }> {
  let worst = 0, count = 0;
  for (const name of await x.parameterNames()) {
    const gx = await x.getGradient(name);
    const gy = await y.getGradient(name);
    assert.equal(gx === null, gy === null, `${name}: a gradient on one side only`);
    if (!gx || !gy) continue;
    let scale = 0, err = 0;
    for (let i = 0; i < gy.data.length; i++) {
      scale = Math.max(scale, Math.abs(gy.data[i]!));
      err = Math.max(err, Math.abs(gx.data[i]! - gy.data[i]!));
    }
    worst = Math.max(worst, err / Math.max(scale, 1e-12));
    count++;
  }
  return { worst, count };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

for (const arch of ARCHS) {
  const dtypes: BaseDtype[] = arch === 'llama' || arch === 'gemma2' ? ['bfloat16', 'int8', 'nf4'] : ['nf4'];
  describe(`tiny-${arch}: frozen base vs float32 over the same dequantised weights`, () => {
    for (const baseDtype of dtypes) {
      test(`${baseDtype}: logits, LoRA steps (padded, packed), adapter gradients, a step after AdamW`, async () => {
        const dir = join(fixtures, `tiny-${arch}`);
        const dense = join(work, `${arch}-${baseDtype}`);
        const frozen = await loadModel(dir, { baseDtype });
        assert.equal(frozen.baseStats().dtype, baseDtype);
        assert.ok(frozen.baseStats().bytes > 0);
        await frozen.save(dense); // dequantised weights in float32
        await frozen.dispose();

        const lora = { r: 4, alpha: 8, targets: 'all-linear', seed: 3 } as const;
        const x = await loadModel(dir, { baseDtype, lora, gradientCheckpointing: true });
        const y = await loadModel(dense, { lora, gradientCheckpointing: true });
        try {
          const { padded, packed } = batches(x.spec.vocabSize);
          const logits = await maxLogitsError(x, y, padded);
          assert.ok(logits <= 1e-5, `max |logits - float32| = ${logits}`);
          for (const [what, batch] of [['padded', padded], ['packed', packed]] as const) {
            const [sx, sy] = [await x.step(batch), await y.step(batch)];
            assert.equal(sx.tokens, sy.tokens);
            assert.ok(rel(sx.lossSum, sy.lossSum) <= 1e-5, `${what} loss ${sx.lossSum} vs ${sy.lossSum}`);
          }
          const g = await worstGradError(x, y);
          assert.ok(g.count > 0 && g.worst <= 1e-4, `adapter gradients: worst ${g.worst} over ${g.count} tensors`);
          for (const m of [x, y]) await m.optimizerStep({ lr: 1e-2 });
          for (const m of [x, y]) await m.zeroGrad();
          const [sx, sy] = [await x.step(padded), await y.step(padded)];
          assert.ok(rel(sx.lossSum, sy.lossSum) <= 1e-5, `after AdamW: loss ${sx.lossSum} vs ${sy.lossSum}`);
          const stats = x.baseStats(true);
          assert.ok(stats.dequantMs > 0, 'dequantisation time is counted');
        } finally {
          await x.dispose();
          await y.dispose();
        }
      });
    }
  });
}

describe('bf16 autocast over a frozen base: the matmuls in bf16, as autocast runs them over float32 weights', () => {
  for (const baseDtype of ['bfloat16', 'nf4'] as const) {
    test(`tiny-llama ${baseDtype}: logits, a LoRA step and its adapter gradients equal the float32 model's under autocast`, async () => {
      const dir = join(fixtures, 'tiny-llama');
      const dense = join(work, `llama-${baseDtype}-autocast`);
      const frozen = await loadModel(dir, { baseDtype });
      await frozen.save(dense);
      await frozen.dispose();
      const lora = { r: 4, alpha: 8, targets: 'all-linear', seed: 3 } as const;
      const x = await loadModel(dir, { baseDtype, lora, autocast: true });
      const y = await loadModel(dense, { lora, autocast: true });
      try {
        const { padded } = batches(x.spec.vocabSize);
        const logits = await maxLogitsError(x, y, padded);
        assert.ok(logits <= 1e-5, `max |logits - float32 under autocast| = ${logits}`);
        const [sx, sy] = [await x.step(padded), await y.step(padded)];
        assert.ok(rel(sx.lossSum, sy.lossSum) <= 1e-5, `loss ${sx.lossSum} vs ${sy.lossSum}`);
        const g = await worstGradError(x, y);
        assert.ok(g.count > 0 && g.worst <= 1e-4, `adapter gradients: worst ${g.worst} over ${g.count} tensors`);
      } finally {
        await x.dispose();
        await y.dispose();
      }
    });
  }
});

test('the engine itself refuses what a frozen base cannot do (the raw addon, past the TypeScript checks)', async () => {
  const dir = join(fixtures, 'tiny-llama');
  const spec = parseModelConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).spec;
  const refused = async (options: Record<string, unknown>, pattern: RegExp) => {
    const raw = new (binding().NativeModel)();
    await assert.rejects(raw.load(dir, spec, options), (e: Error & { code?: string }) => e.code === 'SFTKIT_BAD_ARGUMENT' && pattern.test(e.message));
    raw.dispose();
  };
  await refused({ baseDtype: 'int8', doubleQuant: true }, /doubleQuant needs baseDtype nf4/);
  await refused({ baseDtype: 'nf4', dtype: 'bfloat16' }, /computes in float32/);
  const raw = new (binding().NativeModel)();
  await raw.load(dir, spec, { baseDtype: 'nf4' });
  const { padded } = batches(spec.vocabSize);
  await assert.rejects(Promise.resolve().then(() => raw.step(padded)), /frozen in baseDtype nf4; training it needs LoRA adapters/);
  raw.dispose();
});

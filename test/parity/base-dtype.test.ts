// Frozen base formats of LoRA training (issue 24: loadModel's `baseDtype` / `doubleQuant`) against a Python reference
// (fixtures written by scripts/gen-fixtures/base_dtype.py; the formats in test/fixtures/base-dtype/SOURCE.md):
// transformers + peft in fp32 whose 2-D base weights are dequant(quant(W)) in bfloat16, int8, nf4 and nf4 with double
// quantisation, with the PEFT adapters and batches of the LoRA parity fixtures (tiny-llama, tiny-gpt2's Conv1D
// quantised in the [out, in] layout, tiny-qwen2 with biases and an untied head). The quantised values are bit-exact
// between the engine and the reference (same fp32 ops), so the tolerances are LoRA's over an fp32 base: logits abs
// 1e-5, loss rel 1e-5, the gradient of every lora_A / lora_B rel 1e-4 of the tensor's largest entry, no gradient on
// any base weight, the same greedy generation (its smallest top-1 margin in the reference is 4.4e-4, gpt2 bfloat16);
// and baseStats() reports the dtype and the bytes of the small form. Measured (CPU): logits 3.3e-6, loss 1.1e-7 rel,
// gradients 5.1e-6 of the largest entry.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadModel, type Batch, type LoadModelOptions, type Model } from '../../src/native/model.ts';

const models = join(import.meta.dirname, '..', 'fixtures', 'models');
const fixtures = join(import.meta.dirname, '..', 'fixtures', 'base-dtype');

interface BaseDtypeParity {
  baseDtype: 'bfloat16' | 'int8' | 'nf4';
  doubleQuant: boolean;
  shape: [number, number];
  inputIds: number[];
  attentionMask: number[];
  labels: number[];
  logits: (number[] | null)[][];
  lossSum: number;
  tokens: number;
  grads: Record<string, { shape: number[]; data: number[] }>;
  generate: { prompt: number[]; maxNewTokens: number; output: number[] };
  /** The bytes of the quantised weights' small form (codes + scales; the double-quantisation offset not counted). */
  baseBytes: number;
  float32Bytes: number;
}

function batchOf(c: BaseDtypeParity): Batch {
  return { inputIds: Int32Array.from(c.inputIds), labels: Int32Array.from(c.labels), attentionMask: Uint8Array.from(c.attentionMask), shape: c.shape };
}

async function worstLogitsError(model: Model, c: BaseDtypeParity, ref: (number[] | null)[][]): Promise<number> {
  const { logits, shape } = await model.forward(batchOf(c));
  const [B, T, V] = shape;
  let worst = 0;
  for (let b = 0; b < B; ++b) {
    for (let t = 0; t < T; ++t) {
      const row = ref[b]![t];
      if (!row) continue;
      for (let v = 0; v < V; ++v) worst = Math.max(worst, Math.abs(logits[(b * T + t) * V + v]! - row[v]!));
    }
  }
  return worst;
}

const DTYPES: Record<string, Pick<LoadModelOptions, 'baseDtype' | 'doubleQuant'>> = {
  bfloat16: { baseDtype: 'bfloat16' },
  int8: { baseDtype: 'int8' },
  nf4: { baseDtype: 'nf4' },
  'nf4-dq': { baseDtype: 'nf4', doubleQuant: true },
};

for (const name of ['llama', 'gpt2', 'qwen2']) {
  const base = join(models, `tiny-${name}`);
  const adapter = join(models, `tiny-${name}-lora`);

  test(`tiny-${name}: baseDtype 'float32' is the fp32 base (the LoRA parity fixture, atol 1e-5)`, async () => {
    const lora = JSON.parse(readFileSync(join(adapter, 'parity.json'), 'utf8')) as BaseDtypeParity;
    const model = await loadModel(base, { adapter, baseDtype: 'float32' });
    assert.equal(model.baseDtype, 'float32');
    const worst = await worstLogitsError(model, lora, lora.logits);
    assert.ok(worst <= 1e-5, `max |logits - peft| = ${worst}`);
    await model.dispose();
  });

  for (const [dtype, options] of Object.entries(DTYPES)) {
    describe(`tiny-${name} + PEFT LoRA adapter over a ${dtype} base vs transformers + peft on dequant(quant(W))`, () => {
      const ref = JSON.parse(readFileSync(join(fixtures, name, `${dtype}.json`), 'utf8')) as BaseDtypeParity;
      const load = () => loadModel(base, { adapter, ...options });

      test('the fixture is the case', () => {
        assert.equal(ref.baseDtype, options.baseDtype);
        assert.equal(ref.doubleQuant, options.doubleQuant ?? false);
      });

      test('logits with the adapter (atol 1e-5); the store holds the small form', async () => {
        const model = await load();
        assert.equal(model.baseDtype, options.baseDtype);
        const stats = model.baseStats();
        assert.equal(stats.dtype, options.baseDtype);
        assert.equal(stats.bytes, ref.baseBytes, `the frozen store holds ${stats.bytes} bytes (fp32: ${ref.float32Bytes})`);
        const worst = await worstLogitsError(model, ref, ref.logits);
        assert.ok(worst <= 1e-5, `max |logits - reference| = ${worst}`);
        assert.equal(model.adapter?.modules.length, Object.keys(ref.grads).length / 2);
        await model.dispose();
      });

      test('loss (rel 1e-5) and adapter gradients (rel 1e-4); base weights get no gradient', async () => {
        const model = await load();
        const r = await model.step(batchOf(ref));
        assert.equal(r.tokens, ref.tokens);
        assert.ok(Math.abs(r.lossSum - ref.lossSum) <= 1e-5 * Math.abs(ref.lossSum), `loss ${r.lossSum} vs ${ref.lossSum}`);
        const norms = await model.gradNorms();
        assert.deepEqual(Object.keys(norms).sort(), Object.keys(ref.grads).sort(), 'gradients exist for the adapters only');
        let worstRel = 0;
        for (const [n, g] of Object.entries(ref.grads)) {
          const got = await model.getGradient(n);
          assert.ok(got, `${n} has a gradient`);
          assert.deepEqual(got.shape, g.shape, n);
          const scale = Math.max(...g.data.map(Math.abs), 1e-12);
          let worst = 0;
          for (let i = 0; i < g.data.length; ++i) worst = Math.max(worst, Math.abs(got.data[i]! - g.data[i]!));
          worstRel = Math.max(worstRel, worst / scale);
          assert.ok(worst <= 1e-4 * scale, `${n}: max |grad - reference| = ${worst} (largest entry ${scale})`);
        }
        for (const n of await model.parameterNames()) {
          if (!n.includes('.lora_')) assert.equal(await model.getGradient(n), null, `frozen ${n} has no gradient`);
        }
        assert.ok(worstRel <= 1e-4);
        await model.dispose();
      });

      test('greedy generation with the adapter', async () => {
        const model = await load();
        const [out] = await model.generate([ref.generate.prompt], { maxNewTokens: ref.generate.maxNewTokens, stopIds: [] });
        assert.deepEqual(Array.from(out!), ref.generate.output);
        await model.dispose();
      });
    });
  }
}

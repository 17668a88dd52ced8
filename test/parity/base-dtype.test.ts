// Frozen base formats of LoRA training (issue 24: loadModel's `baseDtype` / `doubleQuant`) against a Python reference
// (fixtures written by scripts/gen-fixtures/base_dtype.py; the formats in test/fixtures/base-dtype/SOURCE.md):
// transformers + peft in fp32 whose 2-D base weights are dequant(quant(W)) in bfloat16, int8, nf4 and nf4 with double
// quantisation, with the PEFT adapters and batches of the LoRA parity fixtures (tiny-llama, tiny-gpt2's Conv1D
// quantised in the [out, in] layout, tiny-qwen2 with biases and an untied head). The quantised values are bit-exact
// between the engine and the reference (same fp32 ops), so the tolerances are LoRA's over an fp32 base: logits abs
// 1e-5, loss rel 1e-5, the gradient of every lora_A / lora_B rel 1e-4 of the tensor's largest entry, no gradient on
// any base weight, the same greedy generation (its smallest top-1 margin in the reference is 4.4e-4, gpt2 bfloat16);
// and baseStats() reports the dtype and the bytes of the small form; getParameter reads a frozen weight back
// dequantised, bit for bit the reference's (quantized.safetensors, tiny-llama and tiny-gpt2). Measured (CPU): logits 3.3e-6, loss 1.1e-7 rel,
// gradients 5.1e-6 of the largest entry.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadModel, type LoadModelOptions } from '../../src/native/model.ts';
import { loadSafetensors, loadSafetensorsDir, type LoadedTensor } from '../../src/native/safetensors.ts';
import { checkAdapterStep, worstLogitsError, type LoraParityCase } from './lora-fixture.ts';

const models = join(import.meta.dirname, '..', 'fixtures', 'models');
const fixtures = join(import.meta.dirname, '..', 'fixtures', 'base-dtype');

interface BaseDtypeParity extends LoraParityCase {
  baseDtype: 'bfloat16' | 'int8' | 'nf4';
  doubleQuant: boolean;
  /** The bytes of the quantised weights' small form (codes + scales; the double-quantisation offset not counted). */
  baseBytes: number;
  float32Bytes: number;
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
        await checkAdapterStep(model, ref, 'reference');
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

/** fp32 -> bfloat16 (round to nearest even) -> fp32, as torch's .to(torch.bfloat16).float() for finite values. */
function bf16(x: Float32Array): Float32Array {
  const u = new Uint32Array(Float32Array.from(x).buffer);
  for (let i = 0; i < u.length; ++i) u[i] = ((u[i]! + 0x7fff + ((u[i]! >>> 16) & 1)) & 0xffff0000) >>> 0;
  return new Float32Array(u.buffer);
}

/** The dequantised weight [out, in] of the stored form in quantized.safetensors (fp32 products, as the contract). */
function dequantised(ref: Record<string, LoadedTensor>, key: string, dtype: string): { data: Float32Array; shape: number[] } {
  const [out, inn] = ref[`${key}.int8.q`]!.shape as [number, number];
  const data = new Float32Array(out * inn);
  if (dtype === 'int8') {
    const q = ref[`${key}.int8.q`]!.data as Int8Array;
    const scale = ref[`${key}.int8.scale`]!.data as Float32Array;
    for (let i = 0; i < data.length; ++i) data[i] = Math.fround(q[i]! * scale[Math.floor(i / inn)]!);
  } else if (dtype === 'nf4') {
    const code = ref.nf4_codebook!.data as Float32Array;
    const q = ref[`${key}.nf4.q`]!.data as Uint8Array;
    const absmax = ref[`${key}.nf4.absmax`]!.data as Float32Array;
    for (let i = 0; i < data.length; ++i) {
      const nibble = i % 2 === 0 ? q[i >> 1]! >> 4 : q[i >> 1]! & 15;
      data[i] = Math.fround(code[nibble]! * absmax[i >> 6]!);
    }
  } else {
    data.set(ref[`${key}.nf4dq.dequant`]!.data as Float32Array);
  }
  return { data, shape: [out, inn] };
}

function transposed(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(x.length);
  for (let r = 0; r < rows; ++r) for (let c = 0; c < cols; ++c) t[c * rows + r] = x[r * cols + c]!;
  return t;
}

describe('frozen weights read back dequantised (getParameter) bit for bit the reference', () => {
  for (const name of ['llama', 'gpt2']) {
    for (const [dtype, options] of Object.entries(DTYPES)) {
      test(`tiny-${name} ${dtype}`, async () => {
        const ref = await loadSafetensors(join(fixtures, 'quantized.safetensors'));
        const { tensors: source } = await loadSafetensorsDir(join(models, `tiny-${name}`));
        const keys = Object.keys(ref)
          .filter((k) => k.startsWith(`${name}/`) && k.endsWith('.int8.q'))
          .map((k) => k.slice(name.length + 1, -'.int8.q'.length));
        assert.ok(keys.length >= 10, `${keys.length} weights`);
        const model = await loadModel(join(models, `tiny-${name}`), { adapter: join(models, `tiny-${name}-lora`), ...options });
        let same = 0;
        for (const k of keys) {
          const got = await model.getParameter(k);  // HF layout: GPT-2's Conv1D weights are [in, out]
          let want: Float32Array;
          if (dtype === 'bfloat16') {
            want = bf16(source[k]!.data as Float32Array);
          } else {
            const d = dequantised(ref, `${name}/${k}`, dtype);
            want = name === 'gpt2' && k.includes('.h.') ? transposed(d.data, d.shape[0]!, d.shape[1]!) : d.data;
          }
          assert.deepEqual(got.shape, source[k]!.shape, k);
          let diff = 0;
          for (let i = 0; i < want.length; ++i) if (!Object.is(got.data[i], want[i])) ++diff;
          assert.equal(diff, 0, `${k}: ${diff} of ${want.length} values differ from the reference`);
          ++same;
        }
        assert.equal(same, keys.length);
        await model.dispose();
      });
    }
  }
});

// LoRA parity with Python peft (fixtures written by scripts/gen-fixtures/lora.py): a PEFT adapter with random
// non-zero A and B on tiny-llama (every projection, rank_pattern / alpha_pattern), tiny-gpt2 (Conv1D, fan_in_fan_out)
// tiny-qwen2 (default targets, rsLoRA) and tiny-phi3 (fused qkv_proj / gate_up_proj, longrope). Logits (abs 1e-5), loss (rel 1e-5), the gradient of every lora_A/lora_B
// (rel 1e-4 of the tensor's largest entry), no gradient on any base weight, the merged model's logits, greedy
// generation; and the recorded check that adapters and merged models SAVED by sftkit load in peft/transformers with
// the logits sftkit computes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadModel } from '../../src/native/model.ts';
import { checkAdapterStep, worstLogitsError, type LoraParityCase } from './lora-fixture.ts';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'models');

interface LoraParity extends LoraParityCase {
  mergedLogits: (number[] | null)[][];
}

for (const name of ['llama', 'gpt2', 'qwen2', 'phi3']) {
  describe(`tiny-${name} + PEFT LoRA adapter vs peft`, () => {
    const base = join(fixtures, `tiny-${name}`);
    const adapter = join(fixtures, `tiny-${name}-lora`);
    const ref = JSON.parse(readFileSync(join(adapter, 'parity.json'), 'utf8')) as LoraParity;

    test('logits with the adapter (atol 1e-5); the adapter directory alone finds its base', async () => {
      const model = await loadModel(base, { adapter });
      const worst = await worstLogitsError(model, ref, ref.logits);
      assert.ok(worst <= 1e-5, `max |logits - peft| = ${worst}`);
      assert.equal(model.adapter?.modules.length, Object.keys(ref.grads).length / 2);
      await model.dispose();
      // base_model_name_or_path is "../tiny-<name>", relative to the adapter directory.
      const alone = await loadModel(adapter);
      assert.equal(alone.dir, join(adapter, `../tiny-${name}`));
      assert.ok((await worstLogitsError(alone, ref, ref.logits)) <= 1e-5);
      await alone.dispose();
    });

    test('loss (rel 1e-5) and adapter gradients (rel 1e-4); base weights get no gradient', async () => {
      const model = await loadModel(base, { adapter });
      await checkAdapterStep(model, ref, 'peft');
      await model.dispose();
    });

    test('merged weights give the logits of peft merge_and_unload (atol 1e-5); greedy generation with the adapter', async () => {
      const model = await loadModel(base, { adapter });
      const [out] = await model.generate([ref.generate.prompt], { maxNewTokens: ref.generate.maxNewTokens, stopIds: [] });
      assert.deepEqual(Array.from(out!), ref.generate.output);
      await model.mergeAdapter();
      assert.equal(model.adapter, null);
      const worst = await worstLogitsError(model, ref, ref.mergedLogits);
      assert.ok(worst <= 1e-5, `max |merged logits - peft merged| = ${worst}`);
      await model.dispose();
    });
  });
}

test('adapters and merged models saved by sftkit load in peft / transformers with sftkit logits (recorded by lora.py)', () => {
  const rec = JSON.parse(readFileSync(join(fixtures, 'lora-saved-by-sftkit.json'), 'utf8')) as {
    adapters: Record<string, { maxAbsLogitsDiff: number; loraBNorm: number; modules: number }>;
    merged: Record<string, { maxAbsLogitsDiff: number }>;
    allMatch: boolean;
  };
  assert.equal(rec.allMatch, true);
  assert.deepEqual(Object.keys(rec.adapters).sort(), ['gpt2-fresh', 'gpt2-trained', 'llama-fresh', 'llama-trained', 'qwen2-fresh', 'qwen2-trained']);
  for (const [n, a] of Object.entries(rec.adapters)) {
    assert.ok(a.maxAbsLogitsDiff <= 1e-5 && a.loraBNorm > 0 && a.modules > 0, n);
  }
  for (const [n, m] of Object.entries(rec.merged)) assert.ok(m.maxAbsLogitsDiff <= 1e-5, n);
});

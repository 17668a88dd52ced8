// LoRA behaviour on the tiny fixtures (parity with peft is test/parity/lora.test.ts): new adapters leave the model's
// output unchanged (B = 0) and only they train; target names resolve as PEFT does and bad ones list the valid names;
// dropout acts in training steps only, reproducibly, and identically under activation checkpointing; the optimizer
// holds adapter state only; sequenceLogps without the adapter is the base model; save -> reload is exact; bf16
// autocast keeps the loss close to fp32.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { safetensorsInfo } from '../../src/native/safetensors.ts';
import { resolveLoraTargets } from '../../src/native/lora.ts';
import { loadModel, type Model } from '../../src/native/model.ts';
import { randomBatch as batch } from './helpers/batches.ts';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'models');
const tiny = (name: string) => join(fixtures, `tiny-${name}`);
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-lora-'));
after(() => rmSync(scratch, { recursive: true, force: true }));


async function gradsOf(model: Model): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const n of Object.keys(await model.gradNorms())) out.set(n, (await model.getGradient(n))!.data);
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

test('target names resolve as PEFT matches them; unknown ones list the architecture\'s valid names', async () => {
  const llama = ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.0.mlp.down_proj', 'model.layers.1.self_attn.q_proj'];
  assert.deepEqual(resolveLoraTargets(['q_proj'], llama, 'llama'), ['model.layers.0.self_attn.q_proj', 'model.layers.1.self_attn.q_proj']);
  assert.deepEqual(resolveLoraTargets(['layers.1.self_attn.q_proj'], llama, 'llama'), ['model.layers.1.self_attn.q_proj']);
  assert.deepEqual(resolveLoraTargets('.*\\.0\\..*_proj', llama, 'llama'), llama.slice(0, 3));
  assert.deepEqual(resolveLoraTargets(['all-linear'], llama, 'llama'), llama);
  assert.throws(() => resolveLoraTargets(['q_proj', 'c_attn', 'proj'], llama, 'llama'), /"c_attn", "proj" are not a module .*q_proj, v_proj, down_proj/);
  assert.throws(() => resolveLoraTargets('nothing', llama, 'llama'), /matches no module/);

  const gpt2 = await loadModel(tiny('gpt2'), { lora: { r: 2, targets: ['c_proj'] } });
  // PEFT's suffix rule: c_proj is both the attention output and the MLP output projection.
  assert.deepEqual(gpt2.adapter?.modules, ['transformer.h.0.attn.c_proj', 'transformer.h.0.mlp.c_proj', 'transformer.h.1.attn.c_proj', 'transformer.h.1.mlp.c_proj']);
  await gpt2.dispose();
  await assert.rejects(loadModel(tiny('gpt2'), { lora: { r: 2, targets: ['q_proj'] } }), /"q_proj" is not a module .* gpt2 model: c_attn, c_proj, c_fc/);
  await assert.rejects(loadModel(tiny('llama'), { lora: { r: 0 } }), /lora\.r/);
  await assert.rejects(loadModel(tiny('llama'), { lora: { r: 2 }, adapter: tiny('llama-lora') }), /not both/);
  const defaults = await loadModel(tiny('qwen2'), { lora: { r: 2 } });
  assert.deepEqual(defaults.adapter?.modules.map((m) => m.split('.').at(-1)), ['q_proj', 'v_proj', 'q_proj', 'v_proj']);
  await defaults.dispose();
});

test('new adapters: output unchanged, base frozen, the optimizer holds adapter state only, save -> reload exact', async () => {
  const b = batch(2, 12);
  const base = await loadModel(tiny('llama'));
  const ref = await base.evalLoss(b);
  await base.dispose();
  const model = await loadModel(tiny('llama'), { lora: { r: 4, alpha: 8, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], seed: 3 } });
  assert.equal((await model.evalLoss(b)).lossSum, ref.lossSum, 'B = 0: the model is the base model');
  // A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform with a = sqrt(5)), B = 0
  const a = await model.getParameter('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
  assert.deepEqual(a.shape, [4, 32]);
  assert.ok(a.data.every((x) => Math.abs(x) <= 1 / Math.sqrt(32)) && a.data.some((x) => x !== 0));
  assert.ok((await model.getParameter('base_model.model.model.layers.0.mlp.down_proj.lora_B.weight')).data.every((x) => x === 0));
  assert.equal(model.numTrainableParameters(), 2 * 7 * 4 * (32 + 32) + 2 * 2 * 4 * (64 - 32));
  const before = await model.getParameter('model.layers.0.self_attn.q_proj.weight');
  for (let i = 0; i < 3; i++) {
    await model.step(b);
    await model.optimizerStep({ lr: 1e-2, weightDecay: 0.1 });
    await model.zeroGrad();
  }
  assert.ok((await model.evalLoss(b)).lossSum < ref.lossSum, 'the adapters learn');
  assert.deepEqual((await model.getParameter('model.layers.0.self_attn.q_proj.weight')).data, before.data, 'base weight untouched (no decay, no update)');
  const opt = join(scratch, 'opt.safetensors');
  await model.saveOptimizerState(opt);
  const names = safetensorsInfo(opt).tensors.map((t) => t.name);
  assert.ok(names.every((n) => n === 'step' || n === 'lora.dropout_calls' || n.includes('.lora_')), names.join(' '));
  assert.equal(names.length, 2 + 2 * 28);
  const dir = join(scratch, 'saved');
  await model.save(dir);
  const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.fan_in_fan_out, false);
  assert.equal(cfg.base_model_name_or_path, tiny('llama'));
  const again = await loadModel(dir);
  assert.deepEqual((await again.forward(b)).logits, (await model.forward(b)).logits);
  await again.dispose();
  await model.dispose();
});

test('dropout: training steps only, reproducible by seed, and identical under activation checkpointing', async () => {
  const b = batch(2, 16, 5);
  const lora = { r: 4, alpha: 16, dropout: 0.3, targets: ['c_attn', 'c_proj', 'c_fc'], seed: 11 };
  const trained = async (gradientCheckpointing: boolean, seed = 11) => {
    const m = await loadModel(tiny('gpt2'), { lora: { ...lora, seed }, gradientCheckpointing });
    // One update so that B != 0 and A gets gradients (B = 0 makes A's gradient zero).
    await m.step(b);
    await m.optimizerStep({ lr: 0.05 });
    await m.zeroGrad();
    const s = await m.step(b);
    return { m, loss: s.lossSum, grads: await gradsOf(m) };
  };
  const plain = await trained(false);
  const ckpt = await trained(true);
  const other = await trained(false, 12);
  assert.equal(ckpt.loss, plain.loss, 'same masks with checkpointing');
  for (const [n, g] of plain.grads) assert.ok(maxAbsDiff(ckpt.grads.get(n)!, g) <= 1e-6, `checkpointed gradient ${n}`);
  assert.notEqual(other.loss, plain.loss, 'another seed draws other masks');
  // Dropout is off outside training steps: evalLoss is deterministic and equals sequenceLogps' total.
  const e1 = await plain.m.evalLoss(b);
  const e2 = await plain.m.evalLoss(b);
  assert.equal(e1.lossSum, e2.lossSum);
  const lp = await plain.m.sequenceLogps(b);
  assert.ok(Math.abs(-(lp.logps[0]! + lp.logps[1]!) - e1.lossSum) <= 1e-4 * e1.lossSum);
  // Consecutive training steps draw new masks.
  const s2 = await plain.m.step(b);
  assert.notEqual(s2.lossSum, plain.loss);
  for (const x of [plain, ckpt, other]) await x.m.dispose();
});

test('sequenceLogps({ adapter: false }) is the base model (DPO reference without a second model)', async () => {
  const b = batch(2, 10, 9);
  const base = await loadModel(tiny('llama'));
  const ref = await base.sequenceLogps(b);
  await base.dispose();
  const model = await loadModel(tiny('llama'), { adapter: tiny('llama-lora') });
  const off = await model.sequenceLogps(b, { adapter: false });
  const on = await model.sequenceLogps(b);
  assert.deepEqual(Array.from(off.logps), Array.from(ref.logps));
  assert.ok(maxAbsDiff(on.logps, ref.logps) > 1e-3, 'the adapter changes the log-probs');
  // preferenceStep trains the adapters only.
  const pair = await model.preferenceStep(b, { refLogps: off.logps, beta: 0.1 });
  assert.equal(pair.pairs, 1);
  const norms = await model.gradNorms();
  assert.ok(Object.keys(norms).length > 0 && Object.keys(norms).every((n) => n.includes('.lora_')));
  await model.dispose();
});

test('merge: full weights give the adapter model\'s logits; adapter files are refused where they do not fit', async () => {
  const b = batch(2, 10, 4);
  const model = await loadModel(tiny('gpt2'), { adapter: tiny('gpt2-lora') });
  const want = (await model.forward(b)).logits;
  await model.mergeAdapter();
  const dir = join(scratch, 'merged');
  await model.save(dir);
  await model.dispose();
  const merged = await loadModel(dir);
  assert.equal(merged.adapter, null);
  assert.ok(maxAbsDiff((await merged.forward(b)).logits, want) <= 1e-5);
  await merged.dispose();

  const bad = join(scratch, 'bad-adapter');
  const cfg = JSON.parse(readFileSync(join(tiny('llama-lora'), 'adapter_config.json'), 'utf8'));
  const write = (patch: Record<string, unknown>) => {
    rmSync(bad, { recursive: true, force: true });
    mkdirSync(bad);
    copyFileSync(join(tiny('llama-lora'), 'adapter_model.safetensors'), join(bad, 'adapter_model.safetensors'));
    writeFileSync(join(bad, 'adapter_config.json'), JSON.stringify({ ...cfg, ...patch }));
  };
  write({ use_dora: true });
  await assert.rejects(loadModel(tiny('llama'), { adapter: bad }), /adapter_config\.json: "use_dora" = true is not supported/);
  write({ r: 8, rank_pattern: {} });
  await assert.rejects(loadModel(tiny('llama'), { adapter: bad }), /lora_A\.weight' has shape \[4, 32\], expected \[8, 32\]/);
  write({ target_modules: ['q_proj'] });
  await assert.rejects(loadModel(tiny('llama'), { adapter: bad }), /lora_A\.weight' belongs to no adapter of adapter_config\.json's target_modules/);
  await assert.rejects(loadModel(tiny('gpt2'), { adapter: tiny('llama-lora') }), /not a module .* gpt2 model/);
  await assert.rejects(loadModel(bad.replace('bad-adapter', 'nowhere')), /config\.json|no such file|ENOENT|missing/i);
});

test('bf16 autocast (CPU here; the CUDA path is the same code): loss within bf16 tolerance of fp32, training works', async () => {
  const b = batch(2, 16, 2);
  const fp32 = await loadModel(tiny('llama'), { adapter: tiny('llama-lora') });
  const ref = await fp32.evalLoss(b);
  await fp32.dispose();
  const m = await loadModel(tiny('llama'), { adapter: tiny('llama-lora'), autocast: true, gradientCheckpointing: true, device: 'auto' });
  assert.equal(m.device(), 'cpu');
  const e = await m.evalLoss(b);
  assert.notEqual(e.lossSum, ref.lossSum, 'autocast changes the arithmetic');
  assert.ok(Math.abs(e.lossSum - ref.lossSum) <= 2e-2 * ref.lossSum, `${e.lossSum} vs ${ref.lossSum}`);
  const s = await m.step(b);
  assert.ok(Number.isFinite(s.lossSum));
  const norms = await m.gradNorms();
  assert.ok(Object.values(norms).every((n) => Number.isFinite(n) && n > 0));
  await m.dispose();
});

test('the native adapter operations refuse a model without adapters, naming the method', async () => {
  const model = await loadModel(tiny('llama'), { threads: 1 });
  try {
    // Past Model's own guards: the addon's check is the last line of defence for other callers of the binding.
    const native = (model as unknown as { native: Record<'saveAdapter' | 'loadAdapter' | 'mergeAdapter', (path?: string) => Promise<void>> }).native;
    for (const method of ['saveAdapter', 'loadAdapter', 'mergeAdapter'] as const) {
      await assert.rejects(async () => native[method](join(scratch, 'none.safetensors')), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'SFTKIT_BAD_ARGUMENT');
        assert.match(e.message, new RegExp(`^${method}: the model has no LoRA adapters`));
        return true;
      });
    }
  } finally {
    await model.dispose();
  }
});

test('issue 22 families: PEFT-named default targets (phi3: the fused qkv_proj), a step trains the adapters only, and checkpointing gives the same gradients', async () => {
  const want: Record<string, string[]> = {
    phi3: ['qkv_proj'], mistral: ['q_proj', 'v_proj'], smollm3: ['q_proj', 'v_proj'], 'gemma3-text': ['q_proj', 'v_proj'], gemma2: ['q_proj', 'v_proj'],
  };
  for (const [name, targets] of Object.entries(want)) {
    const b = batch(2, 12, 5);
    const plain = await loadModel(tiny(name), { lora: { r: 2, seed: 1 } });
    assert.deepEqual([...new Set(plain.adapter?.modules.map((m) => m.split('.').at(-1)))], targets, name);
    assert.equal(plain.adapter?.modules.length, 3 * targets.length);
    const ckpt = await loadModel(tiny(name), { lora: { r: 2, seed: 1 }, gradientCheckpointing: true });
    const r1 = await plain.step(b);
    const r2 = await ckpt.step(b);
    assert.ok(Math.abs(r1.lossSum - r2.lossSum) <= 1e-6 * Math.abs(r1.lossSum), name);
    const g1 = await gradsOf(plain);
    const g2 = await gradsOf(ckpt);
    assert.deepEqual([...g2.keys()].sort(), [...g1.keys()].sort());
    assert.ok([...g1.keys()].every((k) => k.includes('lora_')), `${name}: only adapters have gradients`);
    for (const [k, g] of g1) assert.ok(maxAbsDiff(g, g2.get(k)!) <= 1e-6, `${name} ${k}`);
    await plain.dispose();
    await ckpt.dispose();
  }
});

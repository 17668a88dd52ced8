// LoRA without the addon: train options -> model options, the resume rule, per-module rank/scaling (rank_pattern,
// alpha_pattern, rsLoRA), adapter_config.json reading (errors name the file and field) and writing.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { adapterConfigFromOptions, adapterConfigJson, loraModuleSpecs, readAdapterConfig } from '../../../src/native/lora.ts';
import { checkLoraResume, loraFromTrainOptions } from '../../../src/training/lora.ts';

const scratch = mkdtempSync(join(tmpdir(), 'sftkit-lora-unit-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

test('train options -> lora load options; resume refuses changed LoRA options', () => {
  const o = { loraR: 0, loraAlpha: 8, loraDropout: 0, seed: 1 };
  assert.equal(loraFromTrainOptions(o), undefined);
  assert.deepEqual(loraFromTrainOptions({ ...o, loraR: 4, loraTargets: ' q_proj, o_proj ,' }), { r: 4, alpha: 8, dropout: 0, seed: 1, targets: ['q_proj', 'o_proj'] });
  assert.deepEqual(loraFromTrainOptions({ ...o, loraR: 2 }), { r: 2, alpha: 8, dropout: 0, seed: 1 });
  checkLoraResume({}, o, 'cp');  // a checkpoint from before LoRA options existed, full fine-tuning both times
  checkLoraResume({ ...o, loraR: 4 }, { ...o, loraR: 4 }, 'cp');
  assert.throws(() => checkLoraResume({ ...o, loraR: 4 }, o, 'cp'), /cp was trained with loraR 4, now 0/);
  assert.throws(() => checkLoraResume({ ...o, loraR: 4 }, { ...o, loraR: 4, loraTargets: 'q_proj' }, 'cp'), /loraTargets null, now "q_proj"/);
  assert.throws(() => checkLoraResume({}, { ...o, loraR: 4 }, 'cp'), /loraR 0, now 4/);
});

test('per-module rank and scaling: alpha / r, rank_pattern and alpha_pattern (PEFT key matching), rsLoRA', () => {
  const mods = ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.o_proj', 'model.layers.0.mlp.down_proj', 'model.layers.10.mlp.down_proj'];
  const c = { r: 4, alpha: 8, rslora: false, rankPattern: { o_proj: 2, 'layers.10.mlp.down_proj': 6 }, alphaPattern: { down_proj: 16 } };
  assert.deepEqual(loraModuleSpecs(mods, c), [
    { module: mods[0], r: 4, scaling: 2 },
    { module: mods[1], r: 2, scaling: 4 },
    { module: mods[2], r: 4, scaling: 4 },
    { module: mods[3], r: 6, scaling: 16 / 6 },
  ]);
  // "proj" alone is no key of o_proj (a pattern matches whole dot-separated tails).
  assert.equal(loraModuleSpecs([mods[1]!], { ...c, rankPattern: { proj: 3 } })[0]!.r, 4);
  assert.equal(loraModuleSpecs([mods[0]!], { ...c, rslora: true })[0]!.scaling, 8 / 2);
});

test('adapter_config.json: written as peft writes it; read strictly, errors name the file and field', () => {
  const cfg = adapterConfigFromOptions({ r: 8 }, 'gpt2', '/models/gpt2');
  assert.deepEqual([cfg.alpha, cfg.dropout, cfg.targets], [8, 0, ['c_attn']]);
  const json = adapterConfigJson(cfg, 'gpt2');
  assert.deepEqual([json.peft_type, json.task_type, json.fan_in_fan_out, json.bias, json.inference_mode], ['LORA', 'CAUSAL_LM', true, 'none', true]);
  assert.equal(adapterConfigJson(adapterConfigFromOptions({ r: 2 }, 'llama', null), 'llama').fan_in_fan_out, false);
  assert.throws(() => adapterConfigFromOptions({ r: 1.5 }, 'llama', null), /lora\.r/);
  assert.throws(() => adapterConfigFromOptions({ r: 2, dropout: 1 }, 'llama', null), /lora\.dropout/);

  const dir = join(scratch, 'a');
  const write = (v: unknown, weights = true) => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    writeFileSync(join(dir, 'adapter_config.json'), typeof v === 'string' ? v : JSON.stringify(v));
    if (weights) writeFileSync(join(dir, 'adapter_model.safetensors'), '');
  };
  const ok = { ...json, base_model_name_or_path: '../base' };
  write(ok);
  assert.deepEqual(readAdapterConfig(dir), { ...cfg, baseModel: '../base' });
  write(ok, false);
  assert.throws(() => readAdapterConfig(dir), /adapter_model\.safetensors is missing/);
  write('{ nope');
  assert.throws(() => readAdapterConfig(dir), /adapter_config\.json: not valid JSON/);
  for (const [patch, re] of [
    [{ peft_type: 'IA3' }, /"peft_type" = "IA3" is not supported/],
    [{ r: 0 }, /adapter_config\.json: expected an integer >= 1 for "r" but found 0/],
    [{ target_modules: [] }, /"target_modules"/],
    [{ bias: 'all' }, /"bias" = "all" is not supported/],
    [{ lora_bias: true }, /"lora_bias" = true is not supported/],
    [{ modules_to_save: ['lm_head'] }, /"modules_to_save" = \["lm_head"\] is not supported/],
    [{ rank_pattern: { q_proj: 2.5 } }, /"rank_pattern"/],
  ] as const) {
    write({ ...ok, ...patch });
    assert.throws(() => readAdapterConfig(dir), re as RegExp);
  }
  assert.throws(() => readAdapterConfig(join(scratch, 'none')), /not a LoRA adapter directory: adapter_config\.json is missing/);
});

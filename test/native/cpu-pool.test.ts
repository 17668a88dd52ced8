// The CPU memory pool (native/engine/cpu_pool.h): installed by default, the same training numbers as glibc's allocator
// (also after its pages were given back and re-grown), blocks re-used across steps, and SFTKIT_CPU_POOL validated.
// The model is a random Llama large enough (2 MiB embeddings, 2 MiB activations) for its tensors to go through the
// pool; the tiny fixtures stay below its 1 MiB threshold.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { randomFill } from '../../src/bench/random-models.ts';
import { binding, type TensorToSave } from '../../src/native/binding.ts';
import { loadModel } from '../../src/native/model.ts';
import { saveSafetensors } from '../../src/native/safetensors.ts';
import { randomBatch } from './helpers/batches.ts';

const V = 2048, C = 256, F = 1024, L = 2, H = 4, KV = 2;
let dir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sftkit-pool-'));
  const rand = randomFill(7);
  const t: TensorToSave[] = [{ name: 'model.embed_tokens.weight', data: rand(V * C, 0.03), shape: [V, C] }];
  const D = C / H;
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    t.push(
      { name: `${p}input_layernorm.weight`, data: new Float32Array(C).fill(1), shape: [C] },
      { name: `${p}self_attn.q_proj.weight`, data: rand(C * C, 0.03), shape: [C, C] },
      { name: `${p}self_attn.k_proj.weight`, data: rand(KV * D * C, 0.03), shape: [KV * D, C] },
      { name: `${p}self_attn.v_proj.weight`, data: rand(KV * D * C, 0.03), shape: [KV * D, C] },
      { name: `${p}self_attn.o_proj.weight`, data: rand(C * C, 0.03), shape: [C, C] },
      { name: `${p}post_attention_layernorm.weight`, data: new Float32Array(C).fill(1), shape: [C] },
      { name: `${p}mlp.gate_proj.weight`, data: rand(F * C, 0.03), shape: [F, C] },
      { name: `${p}mlp.up_proj.weight`, data: rand(F * C, 0.03), shape: [F, C] },
      { name: `${p}mlp.down_proj.weight`, data: rand(C * F, 0.02), shape: [C, F] },
    );
  }
  t.push(
    { name: 'model.norm.weight', data: new Float32Array(C).fill(1), shape: [C] },
    { name: 'lm_head.weight', data: rand(V * C, 0.03), shape: [V, C] },
  );
  await saveSafetensors(join(dir, 'model.safetensors'), t, { format: 'pt' });
  const config = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: C, intermediate_size: F, num_hidden_layers: L,
    num_attention_heads: H, num_key_value_heads: KV, head_dim: D, hidden_act: 'silu', max_position_embeddings: 256,
    rms_norm_eps: 1e-6, rope_parameters: { rope_theta: 10000, rope_type: 'default' }, tie_word_embeddings: false,
    attention_bias: false, mlp_bias: false, vocab_size: V, bos_token_id: 1, eos_token_id: 2, dtype: 'float32',
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
});

after(() => {
  binding().setCpuPool(true);
  rmSync(dir, { recursive: true, force: true });
});

/** Four optimizer steps on one B4 T128 batch (activations of 2 MiB); the losses per step. */
async function train(): Promise<number[]> {
  const model = await loadModel(dir, { threads: 1 });
  const losses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await model.step(randomBatch(4, 128, 11, V));
    losses.push(r.lossSum / r.tokens);
    await model.optimizerStep({ lr: 1e-3, maxGradNorm: 1 });
    await model.zeroGrad();
  }
  await model.dispose();
  return losses;
}

test('the pool is libtorch CPU allocator by default; training re-uses its blocks and gives them back at dispose', async () => {
  const b = binding();
  assert.equal(b.cpuPoolStats().installed, true);
  const before = b.cpuPoolStats();
  const losses = await train();
  const s = b.cpuPoolStats();
  assert.ok(losses.every(Number.isFinite) && losses[3]! < losses[0]!, `losses ${losses}`);
  assert.ok(s.remaps > before.remaps, 'blocks were mapped');
  // Steps 2-4 allocate what step 1 did: most of those requests find a cached block of their size.
  assert.ok(s.reuses - before.reuses > s.remaps - before.remaps, `reuses ${s.reuses - before.reuses} vs remaps ${s.remaps - before.remaps}`);
  assert.ok(s.peakBytes >= 2 * V * C * 4, 'embeddings and LM head went through the pool');
  assert.equal(s.cachedBytes, 0, 'dispose released the cache');
});

test('the same losses with the pool, after its pages were released, and with glibc allocator', async () => {
  const b = binding();
  const pooled = await train();
  b.releaseCpuPool();
  const afterRelease = await train();
  b.setCpuPool(false);
  assert.equal(b.cpuPoolStats().installed, false);
  const glibc = await train();
  b.setCpuPool(true);
  assert.deepEqual(afterRelease, pooled);
  assert.deepEqual(glibc, pooled);
});

test('SFTKIT_CPU_POOL: off keeps the default allocator, anything but on/off is refused naming the variable', () => {
  const script = "import { binding } from './src/native/binding.ts'; console.log(JSON.stringify(binding().cpuPoolStats().installed));";
  const run = (value: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: join(import.meta.dirname, '..', '..'), encoding: 'utf8', env: { ...process.env, SFTKIT_CPU_POOL: value },
    });
  const off = run('off');
  assert.equal(off.status, 0, off.stderr);
  assert.equal(off.stdout.trim(), 'false');
  const bad = run('yes');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /SFTKIT_CPU_POOL/);
  assert.match(bad.stderr, /"on" or "off"/);
});

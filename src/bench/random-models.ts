// Random-weight Hugging Face model directories built locally from configs (no hub): the GPT-2-124M and
// Qwen2-0.5B shapes of the performance issue, for benches. Weights are uniform with GPT-2's init scale.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveSafetensors, type TensorToSave } from '../native/index.ts';

export type BenchShape = 'gpt2-124m' | 'qwen2-0.5b';
export const BENCH_SHAPES: readonly BenchShape[] = ['gpt2-124m', 'qwen2-0.5b'];

/** Uniform weights of standard deviation `std` from a fixed LCG seeded with `seed`. */
export function randomFill(seed: number): (n: number, std: number) => Float32Array {
  let s = seed >>> 0;
  return (n, std) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      a[i] = ((s / 4294967296) * 2 - 1) * std * 1.7320508;
    }
    return a;
  };
}
const constant = (n: number, v: number) => new Float32Array(n).fill(v);

function gpt2(rand: (n: number, std: number) => Float32Array): { config: object; tensors: TensorToSave[] } {
  const V = 50257, C = 768, L = 12, H = 12, P = 1024;
  const t: TensorToSave[] = [
    { name: 'transformer.wte.weight', data: rand(V * C, 0.02), shape: [V, C] },
    { name: 'transformer.wpe.weight', data: rand(P * C, 0.01), shape: [P, C] },
  ];
  for (let l = 0; l < L; l++) {
    const p = `transformer.h.${l}.`;
    t.push(
      { name: `${p}ln_1.weight`, data: constant(C, 1), shape: [C] },
      { name: `${p}ln_1.bias`, data: constant(C, 0), shape: [C] },
      { name: `${p}attn.c_attn.weight`, data: rand(C * 3 * C, 0.02), shape: [C, 3 * C] },
      { name: `${p}attn.c_attn.bias`, data: constant(3 * C, 0), shape: [3 * C] },
      { name: `${p}attn.c_proj.weight`, data: rand(C * C, 0.02), shape: [C, C] },
      { name: `${p}attn.c_proj.bias`, data: constant(C, 0), shape: [C] },
      { name: `${p}ln_2.weight`, data: constant(C, 1), shape: [C] },
      { name: `${p}ln_2.bias`, data: constant(C, 0), shape: [C] },
      { name: `${p}mlp.c_fc.weight`, data: rand(C * 4 * C, 0.02), shape: [C, 4 * C] },
      { name: `${p}mlp.c_fc.bias`, data: constant(4 * C, 0), shape: [4 * C] },
      { name: `${p}mlp.c_proj.weight`, data: rand(4 * C * C, 0.02), shape: [4 * C, C] },
      { name: `${p}mlp.c_proj.bias`, data: constant(C, 0), shape: [C] },
    );
  }
  t.push({ name: 'transformer.ln_f.weight', data: constant(C, 1), shape: [C] }, { name: 'transformer.ln_f.bias', data: constant(C, 0), shape: [C] });
  const config = {
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: V, n_embd: C, n_layer: L, n_head: H, n_positions: P,
    n_inner: null, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, tie_word_embeddings: true, bos_token_id: 50256, eos_token_id: 50256,
  };
  return { config, tensors: t };
}

function qwen2(rand: (n: number, std: number) => Float32Array): { config: object; tensors: TensorToSave[] } {
  const V = 151936, C = 896, I = 4864, L = 24, H = 14, KV = 2, D = C / H;
  const t: TensorToSave[] = [{ name: 'model.embed_tokens.weight', data: rand(V * C, 0.02), shape: [V, C] }];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    t.push(
      { name: `${p}input_layernorm.weight`, data: constant(C, 1), shape: [C] },
      { name: `${p}self_attn.q_proj.weight`, data: rand(C * C, 0.02), shape: [C, C] },
      { name: `${p}self_attn.q_proj.bias`, data: constant(C, 0), shape: [C] },
      { name: `${p}self_attn.k_proj.weight`, data: rand(KV * D * C, 0.02), shape: [KV * D, C] },
      { name: `${p}self_attn.k_proj.bias`, data: constant(KV * D, 0), shape: [KV * D] },
      { name: `${p}self_attn.v_proj.weight`, data: rand(KV * D * C, 0.02), shape: [KV * D, C] },
      { name: `${p}self_attn.v_proj.bias`, data: constant(KV * D, 0), shape: [KV * D] },
      { name: `${p}self_attn.o_proj.weight`, data: rand(C * C, 0.02), shape: [C, C] },
      { name: `${p}post_attention_layernorm.weight`, data: constant(C, 1), shape: [C] },
      { name: `${p}mlp.gate_proj.weight`, data: rand(I * C, 0.02), shape: [I, C] },
      { name: `${p}mlp.up_proj.weight`, data: rand(I * C, 0.02), shape: [I, C] },
      { name: `${p}mlp.down_proj.weight`, data: rand(C * I, 0.02), shape: [C, I] },
    );
  }
  t.push({ name: 'model.norm.weight', data: constant(C, 1), shape: [C] });
  const config = {
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: V, hidden_size: C, intermediate_size: I,
    num_hidden_layers: L, num_attention_heads: H, num_key_value_heads: KV, max_position_embeddings: 32768,
    rms_norm_eps: 1e-6, rope_theta: 1000000.0, hidden_act: 'silu', tie_word_embeddings: true, use_sliding_window: false,
    bos_token_id: 151643, eos_token_id: 151643, torch_dtype: 'float32',
  };
  return { config, tensors: t };
}

/** Writes config.json + model.safetensors of a random model of `shape` into `dir`. */
export async function buildRandomModel(dir: string, shape: BenchShape, seed = 42): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const { config, tensors } = (shape === 'gpt2-124m' ? gpt2 : qwen2)(randomFill(seed));
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await saveSafetensors(join(dir, 'model.safetensors'), tensors);
}

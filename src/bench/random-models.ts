// Random-weight Hugging Face model directories built locally from configs (no hub): the GPT-2-124M and
// Qwen2-0.5B shapes of the performance issue and the Llama-3.2-1B and Gemma-3-1B shapes of issue 22, for benches.
// Weights are uniform with GPT-2's init scale.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveSafetensors, type TensorToSave } from '../native/index.ts';

export type BenchShape = 'gpt2-124m' | 'qwen2-0.5b' | 'llama3.2-1b' | 'gemma3-1b';
export const BENCH_SHAPES: readonly BenchShape[] = ['gpt2-124m', 'qwen2-0.5b', 'llama3.2-1b', 'gemma3-1b'];

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

/**
 * The decoder blocks of the Llama family without biases (Llama, Gemma 3): q/k/v/o and gate/up/down projections,
 * the norms at `norm` (1 for Llama's RMSNorm, 0 for Gemma's (1 + w) one, the identity either way).
 */
function llamaBlocks(
  rand: (n: number, std: number) => Float32Array,
  d: { V: number; C: number; I: number; L: number; H: number; KV: number; D: number; gemma: boolean },
): TensorToSave[] {
  const { V, C, I, L, H, KV, D, gemma } = d;
  const norm = gemma ? 0 : 1;
  const t: TensorToSave[] = [{ name: 'model.embed_tokens.weight', data: rand(V * C, 0.02), shape: [V, C] }];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    t.push(
      { name: `${p}input_layernorm.weight`, data: constant(C, norm), shape: [C] },
      { name: `${p}self_attn.q_proj.weight`, data: rand(H * D * C, 0.02), shape: [H * D, C] },
      { name: `${p}self_attn.k_proj.weight`, data: rand(KV * D * C, 0.02), shape: [KV * D, C] },
      { name: `${p}self_attn.v_proj.weight`, data: rand(KV * D * C, 0.02), shape: [KV * D, C] },
      { name: `${p}self_attn.o_proj.weight`, data: rand(C * H * D, 0.02), shape: [C, H * D] },
      { name: `${p}post_attention_layernorm.weight`, data: constant(C, norm), shape: [C] },
      { name: `${p}mlp.gate_proj.weight`, data: rand(I * C, 0.02), shape: [I, C] },
      { name: `${p}mlp.up_proj.weight`, data: rand(I * C, 0.02), shape: [I, C] },
      { name: `${p}mlp.down_proj.weight`, data: rand(C * I, 0.02), shape: [C, I] },
    );
    if (gemma) {
      t.push(
        { name: `${p}self_attn.q_norm.weight`, data: constant(D, 0), shape: [D] },
        { name: `${p}self_attn.k_norm.weight`, data: constant(D, 0), shape: [D] },
        { name: `${p}pre_feedforward_layernorm.weight`, data: constant(C, 0), shape: [C] },
        { name: `${p}post_feedforward_layernorm.weight`, data: constant(C, 0), shape: [C] },
      );
    }
  }
  t.push({ name: 'model.norm.weight', data: constant(C, norm), shape: [C] });
  return t;
}

/** Llama-3.2-1B's config.json (meta-llama/Llama-3.2-1B): Llama 3 RoPE scaling, GQA 32/8, tied, vocab 128256. */
export function llama32Config(): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192,
    num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, hidden_act: 'silu',
    max_position_embeddings: 131072, rms_norm_eps: 1e-5, rope_theta: 500000.0,
    rope_scaling: { rope_type: 'llama3', factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 },
    attention_bias: false, attention_dropout: 0.0, mlp_bias: false, pretraining_tp: 1, tie_word_embeddings: true,
    bos_token_id: 128000, eos_token_id: 128001, torch_dtype: 'float32',
  };
}

/**
 * Gemma-3-1B's config.json (google/gemma-3-1b-pt, gemma3_text). Every key is written: transformers' Gemma3TextConfig
 * defaults are another model's (vocab 262208, hidden 2304, 8 heads, 4 KV heads, sliding_window 4096, 131072
 * positions). Layers 5, 11, 17, 23 are full attention, the rest slide over 512 keys.
 */
export function gemma3Config(): Record<string, unknown> {
  const L = 26;
  return {
    architectures: ['Gemma3ForCausalLM'], model_type: 'gemma3_text', vocab_size: 262144, hidden_size: 1152, intermediate_size: 6912,
    num_hidden_layers: L, num_attention_heads: 4, num_key_value_heads: 1, head_dim: 256, hidden_activation: 'gelu_pytorch_tanh',
    max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000.0, rope_local_base_freq: 10000.0, rope_scaling: null,
    query_pre_attn_scalar: 256, sliding_window: 512, sliding_window_pattern: 6,
    layer_types: Array.from({ length: L }, (_, i) => ((i + 1) % 6 === 0 ? 'full_attention' : 'sliding_attention')),
    attn_logit_softcapping: null, final_logit_softcapping: null, attention_bias: false, attention_dropout: 0.0,
    tie_word_embeddings: true, pad_token_id: 0, bos_token_id: 2, eos_token_id: 1, torch_dtype: 'float32',
  };
}

function llama32(rand: (n: number, std: number) => Float32Array): { config: object; tensors: TensorToSave[] } {
  return { config: llama32Config(), tensors: llamaBlocks(rand, { V: 128256, C: 2048, I: 8192, L: 16, H: 32, KV: 8, D: 64, gemma: false }) };
}

function gemma3(rand: (n: number, std: number) => Float32Array): { config: object; tensors: TensorToSave[] } {
  return { config: gemma3Config(), tensors: llamaBlocks(rand, { V: 262144, C: 1152, I: 6912, L: 26, H: 4, KV: 1, D: 256, gemma: true }) };
}

const BUILDERS: Record<BenchShape, (rand: (n: number, std: number) => Float32Array) => { config: object; tensors: TensorToSave[] }> = {
  'gpt2-124m': gpt2,
  'qwen2-0.5b': qwen2,
  'llama3.2-1b': llama32,
  'gemma3-1b': gemma3,
};

/** Writes config.json + model.safetensors of a random model of `shape` into `dir`. */
export async function buildRandomModel(dir: string, shape: BenchShape, seed = 42): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const { config, tensors } = BUILDERS[shape](randomFill(seed));
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await saveSafetensors(join(dir, 'model.safetensors'), tensors);
}

// Random-weight Hugging Face model directories built locally from configs (no hub): the GPT-2-124M and
// Qwen2-0.5B shapes of the performance issue, the Llama-3.2-1B and Gemma-3-1B shapes of issue 22 (fp32, one
// model.safetensors) and the Qwen2.5-3B and Qwen2.5-7B shapes of issue 24, stored as Hugging Face ships them: BF16,
// sharded (model-0000k-of-0000n.safetensors + model.safetensors.index.json), written as a stream (a few tens of MiB
// resident however big the model: the 7B shape is 15 GB). Weights are uniform with GPT-2's init scale.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { saveSafetensors, type TensorToSave } from '../native/index.ts';

export type BenchShape = 'gpt2-124m' | 'qwen2-0.5b' | 'llama3.2-1b' | 'gemma3-1b' | 'qwen2.5-3b-bf16' | 'qwen2.5-7b-bf16';
export const BENCH_SHAPES: readonly BenchShape[] = ['gpt2-124m', 'qwen2-0.5b', 'llama3.2-1b', 'gemma3-1b', 'qwen2.5-3b-bf16', 'qwen2.5-7b-bf16'];

/** Uniform weights of standard deviation `std` from a fixed LCG seeded with `seed`. */
export function randomFill(seed: number): (n: number, std: number, into?: Float32Array) => Float32Array {
  let s = seed >>> 0;
  return (n, std, into) => {
    const a = into ? into.subarray(0, n) : new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      a[i] = ((s / 4294967296) * 2 - 1) * std * 1.7320508;
    }
    return a;
  };
}

/** A tensor of a random model, not yet generated: uniform of standard deviation `std`, or filled with `value`. */
export interface RandomTensor {
  name: string;
  shape: number[];
  std?: number;
  value?: number;
}
/** A random model: its config.json and its tensors in the order their values are drawn from the LCG. */
export interface RandomModel {
  config: Record<string, unknown>;
  tensors: RandomTensor[];
}
const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function gpt2(): RandomModel {
  const V = 50257, C = 768, L = 12, H = 12, P = 1024;
  const t: RandomTensor[] = [
    { name: 'transformer.wte.weight', std: 0.02, shape: [V, C] },
    { name: 'transformer.wpe.weight', std: 0.01, shape: [P, C] },
  ];
  for (let l = 0; l < L; l++) {
    const p = `transformer.h.${l}.`;
    t.push(
      { name: `${p}ln_1.weight`, value: 1, shape: [C] },
      { name: `${p}ln_1.bias`, value: 0, shape: [C] },
      { name: `${p}attn.c_attn.weight`, std: 0.02, shape: [C, 3 * C] },
      { name: `${p}attn.c_attn.bias`, value: 0, shape: [3 * C] },
      { name: `${p}attn.c_proj.weight`, std: 0.02, shape: [C, C] },
      { name: `${p}attn.c_proj.bias`, value: 0, shape: [C] },
      { name: `${p}ln_2.weight`, value: 1, shape: [C] },
      { name: `${p}ln_2.bias`, value: 0, shape: [C] },
      { name: `${p}mlp.c_fc.weight`, std: 0.02, shape: [C, 4 * C] },
      { name: `${p}mlp.c_fc.bias`, value: 0, shape: [4 * C] },
      { name: `${p}mlp.c_proj.weight`, std: 0.02, shape: [4 * C, C] },
      { name: `${p}mlp.c_proj.bias`, value: 0, shape: [C] },
    );
  }
  t.push({ name: 'transformer.ln_f.weight', value: 1, shape: [C] }, { name: 'transformer.ln_f.bias', value: 0, shape: [C] });
  const config = {
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: V, n_embd: C, n_layer: L, n_head: H, n_positions: P,
    n_inner: null, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, tie_word_embeddings: true, bos_token_id: 50256, eos_token_id: 50256,
  };
  return { config, tensors: t };
}

/** Qwen2's decoder (q/k/v with biases, no others), the untied head last when `tied` is false. */
function qwen2Tensors(d: { V: number; C: number; I: number; L: number; H: number; KV: number; tied: boolean }): RandomTensor[] {
  const { V, C, I, L, H, KV, tied } = d;
  const D = C / H;
  const t: RandomTensor[] = [{ name: 'model.embed_tokens.weight', std: 0.02, shape: [V, C] }];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    t.push(
      { name: `${p}input_layernorm.weight`, value: 1, shape: [C] },
      { name: `${p}self_attn.q_proj.weight`, std: 0.02, shape: [H * D, C] },
      { name: `${p}self_attn.q_proj.bias`, value: 0, shape: [H * D] },
      { name: `${p}self_attn.k_proj.weight`, std: 0.02, shape: [KV * D, C] },
      { name: `${p}self_attn.k_proj.bias`, value: 0, shape: [KV * D] },
      { name: `${p}self_attn.v_proj.weight`, std: 0.02, shape: [KV * D, C] },
      { name: `${p}self_attn.v_proj.bias`, value: 0, shape: [KV * D] },
      { name: `${p}self_attn.o_proj.weight`, std: 0.02, shape: [C, H * D] },
      { name: `${p}post_attention_layernorm.weight`, value: 1, shape: [C] },
      { name: `${p}mlp.gate_proj.weight`, std: 0.02, shape: [I, C] },
      { name: `${p}mlp.up_proj.weight`, std: 0.02, shape: [I, C] },
      { name: `${p}mlp.down_proj.weight`, std: 0.02, shape: [C, I] },
    );
  }
  t.push({ name: 'model.norm.weight', value: 1, shape: [C] });
  if (!tied) t.push({ name: 'lm_head.weight', std: 0.02, shape: [V, C] });
  return t;
}

function qwen2(): RandomModel {
  const V = 151936, C = 896, I = 4864, L = 24, H = 14, KV = 2;
  const config = {
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: V, hidden_size: C, intermediate_size: I,
    num_hidden_layers: L, num_attention_heads: H, num_key_value_heads: KV, max_position_embeddings: 32768,
    rms_norm_eps: 1e-6, rope_theta: 1000000.0, hidden_act: 'silu', tie_word_embeddings: true, use_sliding_window: false,
    bos_token_id: 151643, eos_token_id: 151643, torch_dtype: 'float32',
  };
  return { config, tensors: qwen2Tensors({ V, C, I, L, H, KV, tied: true }) };
}

/**
 * The config.json of Qwen/Qwen2.5-3B and Qwen/Qwen2.5-7B (the base models; bf16 on the hub, as here): 3B hidden
 * 2048, intermediate 11008, 36 layers, 16 heads, 2 KV heads, vocab 151936, tied; 7B hidden 3584, intermediate
 * 18944, 28 layers, 28 heads, 4 KV heads, vocab 152064, untied; both q/k/v biases, rope_theta 1e6, eps 1e-6.
 */
export function qwen25Config(size: '3b' | '7b'): Record<string, unknown> {
  const d = QWEN25[size];
  return {
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: d.V, hidden_size: d.C, intermediate_size: d.I,
    num_hidden_layers: d.L, num_attention_heads: d.H, num_key_value_heads: d.KV, hidden_act: 'silu',
    max_position_embeddings: 32768, max_window_layers: d.L, sliding_window: 32768, use_sliding_window: false, use_mrope: false,
    rms_norm_eps: 1e-6, rope_theta: 1000000.0, attention_dropout: 0.0, initializer_range: 0.02, tie_word_embeddings: d.tied,
    use_cache: true, bos_token_id: 151643, eos_token_id: 151643, torch_dtype: 'bfloat16',
  };
}
const QWEN25 = {
  '3b': { V: 151936, C: 2048, I: 11008, L: 36, H: 16, KV: 2, tied: true },
  '7b': { V: 152064, C: 3584, I: 18944, L: 28, H: 28, KV: 4, tied: false },
} as const;

function qwen25(size: '3b' | '7b'): RandomModel {
  return { config: qwen25Config(size), tensors: qwen2Tensors(QWEN25[size]) };
}

/** A Qwen2.5-shaped model of any size (config as qwen25Config's, these dimensions): small stand-ins for the benches. */
export function randomQwen2(d: { V: number; C: number; I: number; L: number; H: number; KV: number; tied: boolean }): RandomModel {
  const config = { ...qwen25Config('3b'), vocab_size: d.V, hidden_size: d.C, intermediate_size: d.I, num_hidden_layers: d.L, max_window_layers: d.L };
  const eos = Math.min(151643, d.V - 1);
  return {
    config: { ...config, num_attention_heads: d.H, num_key_value_heads: d.KV, tie_word_embeddings: d.tied, bos_token_id: eos, eos_token_id: eos },
    tensors: qwen2Tensors(d),
  };
}

/**
 * The decoder blocks of the Llama family without biases (Llama, Gemma 3): q/k/v/o and gate/up/down projections,
 * the norms at `norm` (1 for Llama's RMSNorm, 0 for Gemma's (1 + w) one, the identity either way).
 */
function llamaBlocks(
  d: { V: number; C: number; I: number; L: number; H: number; KV: number; D: number; gemma: boolean },
): RandomTensor[] {
  const { V, C, I, L, H, KV, D, gemma } = d;
  const norm = gemma ? 0 : 1;
  const t: RandomTensor[] = [{ name: 'model.embed_tokens.weight', std: 0.02, shape: [V, C] }];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    t.push(
      { name: `${p}input_layernorm.weight`, value: norm, shape: [C] },
      { name: `${p}self_attn.q_proj.weight`, std: 0.02, shape: [H * D, C] },
      { name: `${p}self_attn.k_proj.weight`, std: 0.02, shape: [KV * D, C] },
      { name: `${p}self_attn.v_proj.weight`, std: 0.02, shape: [KV * D, C] },
      { name: `${p}self_attn.o_proj.weight`, std: 0.02, shape: [C, H * D] },
      { name: `${p}post_attention_layernorm.weight`, value: norm, shape: [C] },
      { name: `${p}mlp.gate_proj.weight`, std: 0.02, shape: [I, C] },
      { name: `${p}mlp.up_proj.weight`, std: 0.02, shape: [I, C] },
      { name: `${p}mlp.down_proj.weight`, std: 0.02, shape: [C, I] },
    );
    if (gemma) {
      t.push(
        { name: `${p}self_attn.q_norm.weight`, value: 0, shape: [D] },
        { name: `${p}self_attn.k_norm.weight`, value: 0, shape: [D] },
        { name: `${p}pre_feedforward_layernorm.weight`, value: 0, shape: [C] },
        { name: `${p}post_feedforward_layernorm.weight`, value: 0, shape: [C] },
      );
    }
  }
  t.push({ name: 'model.norm.weight', value: norm, shape: [C] });
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

function llama32(): RandomModel {
  return { config: llama32Config(), tensors: llamaBlocks({ V: 128256, C: 2048, I: 8192, L: 16, H: 32, KV: 8, D: 64, gemma: false }) };
}

function gemma3(): RandomModel {
  return { config: gemma3Config(), tensors: llamaBlocks({ V: 262144, C: 1152, I: 6912, L: 26, H: 4, KV: 1, D: 256, gemma: true }) };
}

/**
 * A Llama-shaped model of any size (tests: small models in BF16 to load): the config of Llama-3.2-1B's family with
 * these dimensions, plain RoPE (theta 5e5), tied unless `tied` is false.
 */
export function randomLlama(d: { V: number; C: number; I: number; L: number; H: number; KV: number; tied?: boolean }): RandomModel {
  const D = d.C / d.H;
  const tied = d.tied ?? true;
  const tensors = llamaBlocks({ ...d, D, gemma: false });
  if (!tied) tensors.push({ name: 'lm_head.weight', std: 0.02, shape: [d.V, d.C] });
  const config = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: d.V, hidden_size: d.C, intermediate_size: d.I,
    num_hidden_layers: d.L, num_attention_heads: d.H, num_key_value_heads: d.KV, head_dim: D, hidden_act: 'silu',
    max_position_embeddings: 4096, rms_norm_eps: 1e-5, rope_theta: 500000.0, attention_bias: false, mlp_bias: false,
    tie_word_embeddings: tied, bos_token_id: 1, eos_token_id: 2, torch_dtype: 'bfloat16',
  };
  return { config, tensors };
}

/** How each shape is stored: fp32 in one file (the older rows), or BF16 in shards as on the hub. */
const BUILDERS: Record<BenchShape, { build: () => RandomModel; dtype: 'F32' | 'BF16' }> = {
  'gpt2-124m': { build: gpt2, dtype: 'F32' },
  'qwen2-0.5b': { build: qwen2, dtype: 'F32' },
  'llama3.2-1b': { build: llama32, dtype: 'F32' },
  'gemma3-1b': { build: gemma3, dtype: 'F32' },
  'qwen2.5-3b-bf16': { build: () => qwen25('3b'), dtype: 'BF16' },
  'qwen2.5-7b-bf16': { build: () => qwen25('7b'), dtype: 'BF16' },
};

/** The file a finished build of `shape` leaves last (bench/bench-models.ts checks it). */
export function builtMarker(shape: BenchShape): string {
  return BUILDERS[shape].dtype === 'F32' ? 'model.safetensors' : 'model.safetensors.index.json';
}

/**
 * Writes config.json and the weights of a random model of `shape` into `dir`: model.safetensors (fp32 shapes, built
 * in memory and written by the native writer), or BF16 shards + model.safetensors.index.json (writeRandomModel).
 */
export async function buildRandomModel(dir: string, shape: BenchShape, seed = 42): Promise<void> {
  const { build, dtype } = BUILDERS[shape];
  const model = build();
  if (dtype === 'BF16') {
    writeRandomModel(dir, model, { seed });
    return;
  }
  mkdirSync(dir, { recursive: true });
  const rand = randomFill(seed);
  const tensors: TensorToSave[] = model.tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    data: t.std !== undefined ? rand(numel(t.shape), t.std) : new Float32Array(numel(t.shape)).fill(t.value ?? 0),
  }));
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(model.config, null, 2)}\n`);
  await saveSafetensors(join(dir, 'model.safetensors'), tensors);
}

/** fp32 -> bf16, rounding to nearest even (as torch's .to(torch.bfloat16)); `out[i]` gets `src[i]`'s upper half. */
function toBf16(src: Float32Array, out: Uint16Array): void {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i] as number;
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}

export interface WriteRandomModelOptions {
  /** LCG seed (default 42, as buildRandomModel). */
  seed?: number;
  /** The largest shard in bytes before a new one starts (default 4e9, the hub's Qwen2.5 shards). */
  maxShardBytes?: number;
  /** Values generated and written per chunk (default 8M: 32 MiB fp32 + 16 MiB bf16 resident). */
  chunk?: number;
}

/**
 * Writes `model` into `dir` in BF16 as transformers' save_pretrained shards it: model-0000k-of-0000n.safetensors (a
 * new shard when the next tensor would pass `maxShardBytes`), model.safetensors.index.json ({metadata: {total_size},
 * weight_map}), config.json. The values are those of the fp32 build rounded to bf16 (the same LCG stream, tensor by
 * tensor), generated and written chunk by chunk: memory stays at one chunk whatever the model's size. Each shard is
 * written to a temporary name and renamed once synced; the index, written last, marks a finished build.
 */
export function writeRandomModel(dir: string, model: RandomModel, options: WriteRandomModelOptions = {}): { files: string[]; totalBytes: number } {
  const maxShard = options.maxShardBytes ?? 4e9;
  const chunk = options.chunk ?? 8 << 20;
  const rand = randomFill(options.seed ?? 42);
  mkdirSync(dir, { recursive: true });
  rmSync(join(dir, 'model.safetensors.index.json'), { force: true });
  const shards: RandomTensor[][] = [];
  let size = Infinity;
  for (const t of model.tensors) {
    const bytes = numel(t.shape) * 2;
    if (size > 0 && size + bytes > maxShard) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1]!.push(t);
    size += bytes;
  }
  const n = shards.length;
  const files = shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`);
  const weightMap: Record<string, string> = {};
  let totalBytes = 0;
  const f32 = new Float32Array(chunk);
  const b16 = new Uint16Array(chunk);
  shards.forEach((tensors, i) => {
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let offset = 0;
    for (const t of tensors) {
      const bytes = numel(t.shape) * 2;
      header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
      weightMap[t.name] = files[i]!;
    }
    totalBytes += offset;
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const padded = Buffer.alloc(json.length + ((8 - (json.length % 8)) % 8), ' '); // the data starts 8-byte aligned, as the Rust writer pads it
    json.copy(padded);
    const head = Buffer.alloc(8 + padded.length);
    head.writeBigUInt64LE(BigInt(padded.length), 0);
    padded.copy(head, 8);
    const path = join(dir, files[i]!);
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, head);
      for (const t of tensors) {
        let left = numel(t.shape);
        while (left > 0) {
          const m = Math.min(left, chunk);
          const src = t.std !== undefined ? rand(m, t.std, f32) : f32.subarray(0, m).fill(t.value ?? 0);
          const out = b16.subarray(0, m);
          toBf16(src, out);
          writeSync(fd, out);
          left -= m;
        }
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  });
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(model.config, null, 2)}\n`);
  writeFileSync(join(dir, 'model.safetensors.index.json'), `${JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: weightMap }, null, 2)}\n`);
  return { files, totalBytes };
}

// Per architecture: llama.cpp's metadata keys (gguf-py's Keys.LLM / Keys.Attention / Keys.Rope) and its tensor names
// (gguf-py's TENSOR_NAMES / MODEL_TENSORS), with the changes of layout llama.cpp needs (convert_hf_to_gguf.py):
// - llama: q/k rows permuted from Hugging Face's rotate-half RoPE layout to llama.cpp's interleaved pairs
//   (LLAMA_ROPE_TYPE_NORM); qwen2/qwen3 use NEOX RoPE in llama.cpp, which is the Hugging Face layout already;
// - gpt2: Conv1D weights stored [in, out] are transposed to [out, in]; the head is written as `output.weight`
//   (a copy of the embedding when tied, as convert_hf_to_gguf.py does);
// - llama family, tied: no `output.weight` (llama.cpp falls back to `token_embd.weight`);
// - Llama 3 RoPE scaling: the per-frequency factors as the `rope_freqs.weight` tensor.
import { SftkitError } from '../errors.ts';
import type { ModelSpec } from '../native/index.ts';
import { f32, str, u32, type GgufMetadata } from './gguf-format.ts';

/** One GGUF tensor as a function of source tensors (Hugging Face names). */
export interface PlannedTensor {
  name: string;
  /** numpy order, outermost first. */
  shape: number[];
  /** Source names read for it (none for computed tensors such as rope_freqs). */
  sources: string[];
  /** The GGUF values from the sources' fp32 values (row-major). */
  build: (sources: Float32Array[]) => Float32Array;
}

const identity = (s: Float32Array[]) => s[0]!;

/** [rows, cols] -> [cols, rows]. */
export function transpose2d(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c]!;
  return out;
}

/**
 * convert_hf_to_gguf.py's LlamaModel.permute: rows grouped per head as (2, headDim/2) -> (headDim/2, 2), i.e. row
 * h*hd + i*2 + j of the result is row h*hd + j*hd/2 + i of the source. `cols` is 1 for a bias.
 */
export function permuteRope(values: Float32Array, heads: number, cols: number): Float32Array {
  const rows = values.length / cols;
  const hd = rows / heads;
  if (!Number.isInteger(hd) || hd % 2 !== 0) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `cannot permute ${rows} rows into ${heads} heads of even size`);
  const half = hd / 2;
  const out = new Float32Array(values.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const dst = (h * hd + i * 2 + j) * cols;
        const src = (h * hd + j * half + i) * cols;
        out.set(values.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/** Llama 3 RoPE scaling factors (convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors), or null. */
export function llama3RopeFactors(raw: Record<string, unknown>, headDim: number, theta: number): number[] | null {
  const scaling = (raw['rope_scaling'] ?? raw['rope_parameters']) as Record<string, unknown> | null | undefined;
  if (scaling === null || typeof scaling !== 'object') return null;
  if (String(scaling['rope_type'] ?? scaling['type'] ?? '').toLowerCase() !== 'llama3') return null;
  const factor = Number(scaling['factor'] ?? 8);
  const low = Number(scaling['low_freq_factor'] ?? 1);
  const high = Number(scaling['high_freq_factor'] ?? 4);
  const oldContext = Number(scaling['original_max_position_embeddings'] ?? 8192);
  const lowWavelen = oldContext / low;
  const highWavelen = oldContext / high;
  const out: number[] = [];
  for (let i = 0; i < headDim; i += 2) {
    const freq = Math.fround(1 / Math.fround(theta ** Math.fround(i / headDim)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out.push(1);
    else if (wavelen > lowWavelen) out.push(factor);
    else {
      const smooth = (oldContext / wavelen - low) / (high - low);
      out.push(1 / ((1 - smooth) / factor + smooth));
    }
  }
  return out;
}

export type GgufArch = 'llama' | 'qwen2' | 'qwen3' | 'gpt2' | 'smollm3' | 'phi3' | 'gemma2' | 'gemma3';

/** llama.cpp's architecture name for a sftkit model type (convert_hf_to_gguf.py: Mistral is written as llama). */
export function ggufArchOf(arch: ModelSpec['arch']): GgufArch {
  if (arch === 'mistral') return 'llama';
  if (arch === 'gemma3_text') return 'gemma3';
  return arch;
}

/** Gemma's RMSNorm multiplies by (1 + weight); llama.cpp multiplies by the weight, so convert_hf_to_gguf.py adds 1. */
function isGemma(spec: ModelSpec): boolean {
  return spec.arch === 'gemma2' || spec.arch === 'gemma3_text';
}

/**
 * Gemma's attention scale is query_pre_attn_scalar ** -0.5; llama.cpp's is 1/sqrt(head_dim) (1/sqrt(hidden/heads) for
 * the 27B's layer count) whatever the file says. The queries are linear in q_proj (gemma2) or in q_norm's weight
 * (gemma3, before RoPE, which is linear), so multiplying those by sqrt(llama.cpp's scalar / query_pre_attn_scalar)
 * gives llama.cpp the attention scores of the model. 1 for other models.
 */
export function gemmaQueryFactor(spec: ModelSpec): number {
  if (!isGemma(spec) || spec.queryPreAttnScalar <= 0) return 1;
  const scalar = spec.numLayers === (spec.arch === 'gemma2' ? 46 : 62) ? spec.hiddenSize / spec.numHeads : spec.headDim;
  return scalar === spec.queryPreAttnScalar ? 1 : Math.sqrt(scalar / spec.queryPreAttnScalar);
}

/**
 * llama.cpp's sliding-window pattern of a Gemma model: the period n of `{arch}.attention.sliding_window_pattern` (layer
 * l slides when l % n < n - 1), or null when the layers that slide follow no such period.
 */
export function gemmaSwaPeriod(spec: ModelSpec): number | null {
  const L = spec.numLayers;
  for (let n = 2; n <= L + 1; n++) {
    if (spec.slidingLayers.length === L && spec.slidingLayers.every((v, l) => v === l % n < n - 1)) return n;
  }
  return null;
}

/** The RoPE dims of each head (partial_rotary_factor) of the first RoPE kind. */
function rotaryDims(spec: ModelSpec): number {
  const d = spec.ropes[0]?.rotaryDim ?? 0;
  return d > 0 ? d : spec.headDim;
}

/** The RoPE scaling of a config (transformers 5's rope_parameters or the older rope_scaling), or null for none. */
export function ropeScalingOf(raw: Record<string, unknown>): Record<string, unknown> | null {
  for (const key of ['rope_parameters', 'rope_scaling']) {
    const v = raw[key];
    if (v === null || typeof v !== 'object' || Array.isArray(v)) continue;
    const o = v as Record<string, unknown>;
    const type = String(o['rope_type'] ?? o['type'] ?? 'default').toLowerCase();
    if (type !== 'default') return { ...o, rope_type: type };
  }
  return null;
}

/** The RoPE scaling types llama.cpp reproduces from static metadata (dynamic NTK rescales at run time: it has none). */
export const GGUF_ROPE_SCALINGS = ['llama3', 'linear', 'yarn'] as const;

/**
 * `{arch}.rope.scaling.*` keys (convert_hf_to_gguf.py): linear -> type + factor; yarn -> type + factor + the original
 * context length (llama.cpp's defaults beta_fast 32, beta_slow 1 and attention factor 0.1 ln(factor) + 1 are
 * transformers' defaults too, so they are written only when the config sets them). Llama 3 scaling is the
 * `rope_freqs` tensor instead.
 */
export function ropeScalingMetadata(arch: string, raw: Record<string, unknown>): GgufMetadata {
  // phi3 (longrope) and gemma3 (per layer type) write theirs in archMetadata.
  if (arch === 'phi3' || arch === 'gemma3') return [];
  const s = ropeScalingOf(raw);
  if (s === null || s['rope_type'] === 'llama3') return [];
  const factor = Number(s['factor']);
  if (s['rope_type'] === 'linear') return [[`${arch}.rope.scaling.type`, str('linear')], [`${arch}.rope.scaling.factor`, f32(factor)]];
  if (s['rope_type'] === 'yarn') {
    const md: GgufMetadata = [
      [`${arch}.rope.scaling.type`, str('yarn')],
      [`${arch}.rope.scaling.factor`, f32(factor)],
      [`${arch}.rope.scaling.original_context_length`, u32(Number(s['original_max_position_embeddings'] ?? raw['max_position_embeddings']))],
    ];
    if (typeof s['beta_fast'] === 'number') md.push([`${arch}.rope.scaling.yarn_beta_fast`, f32(s['beta_fast'])]);
    if (typeof s['beta_slow'] === 'number') md.push([`${arch}.rope.scaling.yarn_beta_slow`, f32(s['beta_slow'])]);
    return md;
  }
  throw new SftkitError('SFTKIT_UNSUPPORTED', `config.json: RoPE scaling ${JSON.stringify(s['rope_type'])} cannot be written to GGUF (${GGUF_ROPE_SCALINGS.join(', ')} can)`);
}

/** The `{arch}.*` hyperparameter keys. */
export function archMetadata(spec: ModelSpec): GgufMetadata {
  const a = ggufArchOf(spec.arch);
  const md: GgufMetadata = [
    [`${a}.vocab_size`, u32(spec.vocabSize)],
    [`${a}.context_length`, u32(spec.maxPositions)],
    [`${a}.embedding_length`, u32(spec.hiddenSize)],
    [`${a}.block_count`, u32(spec.numLayers)],
    [`${a}.feed_forward_length`, u32(spec.intermediateSize)],
    [`${a}.attention.head_count`, u32(spec.numHeads)],
  ];
  if (a === 'gpt2') {
    md.push([`${a}.attention.layer_norm_epsilon`, f32(spec.normEps)]);
    return md;
  }
  md.push(
    [`${a}.attention.head_count_kv`, u32(spec.numKvHeads)],
    [`${a}.rope.freq_base`, f32(spec.ropeTheta)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32(spec.normEps)],
    [`${a}.rope.dimension_count`, u32(rotaryDims(spec))],
    [`${a}.attention.key_length`, u32(spec.headDim)],
    [`${a}.attention.value_length`, u32(spec.headDim)],
  );
  if (spec.arch === 'phi3') {
    // Phi3MiniModel: sliding_window 0 tells llama.cpp there is none; longrope's original context and cos/sin factor.
    md.push([`${a}.attention.sliding_window`, u32(spec.slidingWindow)]);
    const r = spec.ropes[0];
    if (r?.type === 'longrope') {
      md.push([`${a}.rope.scaling.original_context_length`, u32(r.originalMaxPositions)], [`${a}.rope.scaling.attn_factor`, f32(r.attentionFactor)]);
    }
  }
  if (isGemma(spec)) {
    md.push([`${a}.attention.sliding_window`, u32(spec.slidingWindow)]);
    const period = gemmaSwaPeriod(spec);
    if (period !== null) md.push([`${a}.attention.sliding_window_pattern`, u32(period)]);
    if (spec.attnSoftcap > 0) md.push([`${a}.attn_logit_softcapping`, f32(spec.attnSoftcap)]);
    if (spec.finalSoftcap > 0) md.push([`${a}.final_logit_softcapping`, f32(spec.finalSoftcap)]);
  }
  if (spec.arch === 'gemma3_text') {
    // ropes[0]: the full-attention layers (rope.freq_base, linear scaling), ropes[1]: the sliding ones.
    const [full, local] = spec.ropes;
    if (local !== undefined) md.push([`${a}.rope.freq_base_swa`, f32(local.theta)]);
    if (full?.type === 'linear') md.push([`${a}.rope.scaling.type`, str('linear')], [`${a}.rope.scaling.factor`, f32(full.factor)]);
  }
  return md;
}

function shapeOf(sources: Map<string, { shape: number[] }>, name: string): number[] {
  const t = sources.get(name);
  if (t === undefined) throw new SftkitError('SFTKIT_IO', `model.safetensors: tensor ${name} is missing`);
  return t.shape;
}

/** Strips the wrapper prefix of the Hugging Face names (`model.`, `transformer.`). */
function localName(name: string): string {
  return name.replace(/^(model|transformer)\./, '');
}

/** Source tensors that carry no weights (buffers some checkpoints store). */
const IGNORED = [/\.attn\.bias$/, /\.attn\.masked_bias$/, /rotary_emb\.inv_freq$/];

const LLAMA_LAYER: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.o_proj.bias': 'attn_output.bias',
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'self_attn.qkv_proj.weight': 'attn_qkv.weight',
  'mlp.gate_up_proj.weight': 'ffn_up.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.gate_proj.bias': 'ffn_gate.bias',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.up_proj.bias': 'ffn_up.bias',
  'mlp.down_proj.weight': 'ffn_down.weight',
  'mlp.down_proj.bias': 'ffn_down.bias',
};

/** Gemma 2/3: four norms per layer (llama.cpp's attn_post_norm and ffn_post_norm after attention and MLP). */
const GEMMA_LAYER: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
  'post_attention_layernorm.weight': 'post_attention_norm.weight',
  'pre_feedforward_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
  'post_feedforward_layernorm.weight': 'post_ffw_norm.weight',
};

const plusOne = (s: Float32Array[]) => s[0]!.map((x) => x + 1);
const scaled = (c: number, build: (s: Float32Array[]) => Float32Array) => (c === 1 ? build : (s: Float32Array[]) => build(s).map((x) => x * c));

const GPT2_LAYER: Record<string, string> = {
  'ln_1.weight': 'attn_norm.weight',
  'ln_1.bias': 'attn_norm.bias',
  'attn.c_attn.weight': 'attn_qkv.weight',
  'attn.c_attn.bias': 'attn_qkv.bias',
  'attn.c_proj.weight': 'attn_output.weight',
  'attn.c_proj.bias': 'attn_output.bias',
  'ln_2.weight': 'ffn_norm.weight',
  'ln_2.bias': 'ffn_norm.bias',
  'mlp.c_fc.weight': 'ffn_up.weight',
  'mlp.c_fc.bias': 'ffn_up.bias',
  'mlp.c_proj.weight': 'ffn_down.weight',
  'mlp.c_proj.bias': 'ffn_down.bias',
};

/**
 * The GGUF tensors of a model, in llama.cpp's order (embeddings, blocks, output norm, head), each with its sources
 * and layout change. An unknown source tensor is an error naming it (nothing is dropped silently).
 */
export function planTensors(spec: ModelSpec, raw: Record<string, unknown>, sources: Map<string, { shape: number[] }>): PlannedTensor[] {
  const byLocal = new Map<string, string>();
  for (const name of sources.keys()) {
    if (IGNORED.some((re) => re.test(name))) continue;
    byLocal.set(localName(name), name);
  }
  const used = new Set<string>();
  const take = (local: string): string | undefined => {
    const full = byLocal.get(local);
    if (full !== undefined) used.add(full);
    return full;
  };
  const out: PlannedTensor[] = [];
  const plain = (name: string, src: string): PlannedTensor => ({ name, shape: shapeOf(sources, src), sources: [src], build: identity });
  const gpt2 = spec.arch === 'gpt2';

  const embed = take(gpt2 ? 'wte.weight' : 'embed_tokens.weight');
  const head = take('lm_head.weight');
  const embedSource = embed ?? (spec.tieWordEmbeddings ? head : undefined);
  if (embedSource === undefined) throw new SftkitError('SFTKIT_IO', `model.safetensors: no token embedding (${gpt2 ? 'wte.weight' : 'model.embed_tokens.weight'})`);
  out.push(plain('token_embd.weight', embedSource));
  if (gpt2) {
    const wpe = take('wpe.weight');
    if (wpe === undefined) throw new SftkitError('SFTKIT_IO', 'model.safetensors: no position embedding (transformer.wpe.weight)');
    out.push(plain('position_embd.weight', wpe));
  }
  const factors = gpt2 ? null : llama3RopeFactors(raw, spec.headDim, spec.ropeTheta);
  if (factors !== null) out.push({ name: 'rope_freqs.weight', shape: [factors.length], sources: [], build: () => Float32Array.from(factors) });
  const longrope = spec.arch === 'phi3' && spec.ropes[0]?.type === 'longrope' ? spec.ropes[0] : undefined;
  if (longrope !== undefined) {
    // Phi3MiniModel.generate_extra_tensors: one factor per rotary pair, long and short.
    for (const [name, f] of [['rope_factors_long.weight', longrope.longFactor], ['rope_factors_short.weight', longrope.shortFactor]] as const) {
      out.push({ name, shape: [f.length], sources: [], build: () => Float32Array.from(f) });
    }
  }

  const gemma = isGemma(spec);
  const qFactor = gemmaQueryFactor(spec);
  const table = gpt2 ? GPT2_LAYER : gemma ? GEMMA_LAYER : LLAMA_LAYER;
  const permuted = spec.arch === 'llama' || spec.arch === 'mistral' || spec.arch === 'smollm3';
  const prefix = gpt2 ? 'h' : 'layers';
  for (let l = 0; l < spec.numLayers; l++) {
    for (const [suffix, target] of Object.entries(table)) {
      const src = take(`${prefix}.${l}.${suffix}`);
      if (src === undefined) continue;
      const shape = shapeOf(sources, src);
      const name = `blk.${l}.${target}`;
      if (gpt2 && suffix.endsWith('.weight') && shape.length === 2) {
        const [rows, cols] = shape as [number, number];
        out.push({ name, shape: [cols, rows], sources: [src], build: (s) => transpose2d(s[0]!, rows, cols) });
      } else if (permuted && (target.startsWith('attn_q.') || target.startsWith('attn_k.'))) {
        const heads = target.startsWith('attn_q.') ? spec.numHeads : spec.numKvHeads;
        const cols = shape.length === 2 ? shape[1]! : 1;
        out.push({ name, shape, sources: [src], build: (s) => permuteRope(s[0]!, heads, cols) });
      } else if (gemma && target.endsWith('norm.weight')) {
        out.push({ name, shape, sources: [src], build: target === 'attn_q_norm.weight' ? scaled(qFactor, plusOne) : plusOne });
      } else if (gemma && target === 'attn_q.weight' && !spec.qkNorm) out.push({ name, shape, sources: [src], build: scaled(qFactor, identity) });
      else out.push(plain(name, src));
    }
  }
  const normW = take(gpt2 ? 'ln_f.weight' : 'norm.weight');
  if (normW === undefined) throw new SftkitError('SFTKIT_IO', 'model.safetensors: no final norm');
  out.push(gemma ? { name: 'output_norm.weight', shape: shapeOf(sources, normW), sources: [normW], build: plusOne } : plain('output_norm.weight', normW));
  const normB = gpt2 ? take('ln_f.bias') : undefined;
  if (normB !== undefined) out.push(plain('output_norm.bias', normB));
  if (!spec.tieWordEmbeddings) {
    if (head === undefined) throw new SftkitError('SFTKIT_IO', 'model.safetensors: tie_word_embeddings is false but lm_head.weight is missing');
    out.push(plain('output.weight', head));
  } else if (gpt2) out.push(plain('output.weight', embedSource));

  const unused = [...byLocal.values()].filter((n) => !used.has(n));
  if (unused.length > 0) {
    throw new SftkitError('SFTKIT_UNSUPPORTED', `model.safetensors: tensor ${unused[0]} has no GGUF counterpart for ${ggufArchOf(spec.arch)}${unused.length > 1 ? ` (and ${unused.length - 1} more)` : ''}`);
  }
  return out;
}

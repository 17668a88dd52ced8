// Hugging Face config.json -> validated ModelSpec (the plain object the native engine is built from).
// Anything in the config that would change the math and is not implemented is an SFTKIT_UNSUPPORTED error naming the
// field: never silently different math. The raw config is kept so that save() writes it back (vocab_size updated).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SftkitError } from '../errors.ts';

export type ModelArch = 'gpt2' | 'llama' | 'qwen2' | 'qwen3';
export type Activation = 'gelu_new' | 'silu';

/** Everything the native forward needs; names follow the engine, not the HF config. */
export interface ModelSpec {
  arch: ModelArch;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  maxPositions: number;
  normEps: number;
  /** RoPE base (llama family); 0 for gpt2 (learned positions). */
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  /** Bias on q/k/v projections (gpt2: c_attn bias). */
  qkvBias: boolean;
  /** Bias on the attention output projection. */
  oBias: boolean;
  mlpBias: boolean;
  /** Per-head RMSNorm of q and k before RoPE (qwen3). */
  qkNorm: boolean;
  activation: Activation;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
}

export interface LoadedConfig {
  spec: ModelSpec;
  /** config.json as read (written back on save with vocab_size updated). */
  raw: Record<string, unknown>;
}

const ARCHES: readonly ModelArch[] = ['gpt2', 'llama', 'qwen2', 'qwen3'];

function unsupported(field: string, value: unknown, why: string): SftkitError {
  return new SftkitError(
    'SFTKIT_UNSUPPORTED',
    `config.json: ${field} = ${JSON.stringify(value)} is not supported (${why})`,
  );
}

function bad(field: string, expected: string, value: unknown): SftkitError {
  return new SftkitError('SFTKIT_BAD_ARGUMENT', `config.json: expected ${expected} for ${field} but found ${JSON.stringify(value)}`);
}

class Reader {
  constructor(private readonly raw: Record<string, unknown>) {}
  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }
  get(key: string): unknown {
    return this.raw[key];
  }
  int(key: string, fallback?: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw bad(key, 'a positive integer', v);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw bad(key, 'a positive integer', v);
    return v;
  }
  num(key: string, fallback: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw bad(key, 'a positive number', v);
    return v;
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw bad(key, 'a boolean', v);
    return v;
  }
  tokenId(key: string): number | null {
    const v = this.raw[key];
    if (v === undefined || v === null) return null;
    if (Array.isArray(v)) return typeof v[0] === 'number' ? v[0] : null;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(key, 'an integer token id', v);
    return v;
  }
  tokenIds(key: string): number[] {
    const v = this.raw[key];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    for (const x of list) if (typeof x !== 'number' || !Number.isInteger(x)) throw bad(key, 'integer token ids', v);
    return list as number[];
  }
}

/** Non-null fields that change the math and that no supported architecture implements. */
const NEVER_SUPPORTED = ['attn_logit_softcapping', 'final_logit_softcapping', 'logits_scaling', 'embedding_multiplier', 'residual_multiplier', 'attention_multiplier'];

function ropeTheta(r: Reader): number {
  // transformers >= 5 writes rope_parameters {rope_type, rope_theta}; older configs rope_theta + rope_scaling.
  const params = r.get('rope_parameters');
  if (params !== undefined && params !== null) {
    if (typeof params !== 'object' || Array.isArray(params)) throw bad('rope_parameters', 'an object', params);
    const p = params as Record<string, unknown>;
    const type = p['rope_type'] ?? p['type'] ?? 'default';
    if (type !== 'default') throw unsupported('rope_parameters.rope_type', type, 'only the default RoPE is implemented');
    if (p['partial_rotary_factor'] !== undefined && p['partial_rotary_factor'] !== 1) {
      throw unsupported('rope_parameters.partial_rotary_factor', p['partial_rotary_factor'], 'partial rotary embeddings are not implemented');
    }
    const theta = p['rope_theta'] ?? r.get('rope_theta') ?? 10000;
    if (typeof theta !== 'number' || !(theta > 0)) throw bad('rope_parameters.rope_theta', 'a positive number', theta);
    return theta;
  }
  const scaling = r.get('rope_scaling');
  if (scaling !== undefined && scaling !== null) {
    const s = scaling as Record<string, unknown>;
    const type = s['rope_type'] ?? s['type'];
    if (type !== 'default') throw unsupported('rope_scaling', scaling, `RoPE scaling type ${JSON.stringify(type)} is not implemented`);
  }
  return r.num('rope_theta', 10000);
}

function specFromConfig(raw: Record<string, unknown>): ModelSpec {
  const r = new Reader(raw);
  const modelType = raw['model_type'];
  if (typeof modelType !== 'string' || !ARCHES.includes(modelType as ModelArch)) {
    throw new SftkitError(
      'SFTKIT_UNSUPPORTED',
      `config.json: model_type ${JSON.stringify(modelType)} is not supported (supported: ${ARCHES.join(', ')})`,
    );
  }
  const arch = modelType as ModelArch;
  for (const f of NEVER_SUPPORTED) if (r.has(f)) throw unsupported(f, r.get(f), 'not implemented');
  if (r.has('partial_rotary_factor') && r.get('partial_rotary_factor') !== 1) {
    throw unsupported('partial_rotary_factor', r.get('partial_rotary_factor'), 'partial rotary embeddings are not implemented');
  }
  const common = {
    bosTokenId: r.tokenId('bos_token_id'),
    eosTokenIds: r.tokenIds('eos_token_id'),
    padTokenId: r.tokenId('pad_token_id'),
  };

  if (arch === 'gpt2') {
    const act = raw['activation_function'] ?? 'gelu_new';
    if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
      throw unsupported('activation_function', act, 'gpt2 supports gelu_new (tanh approximation)');
    }
    if (r.bool('scale_attn_by_inverse_layer_idx', false)) throw unsupported('scale_attn_by_inverse_layer_idx', true, 'not implemented');
    if (!r.bool('scale_attn_weights', true)) throw unsupported('scale_attn_weights', false, 'unscaled attention is not implemented');
    if (r.bool('add_cross_attention', false)) throw unsupported('add_cross_attention', true, 'not a causal LM');
    const hidden = r.int('n_embd');
    const heads = r.int('n_head');
    if (hidden % heads !== 0) throw bad('n_embd', `a multiple of n_head (${heads})`, hidden);
    return {
      arch,
      vocabSize: r.int('vocab_size'),
      hiddenSize: hidden,
      intermediateSize: r.int('n_inner', 4 * hidden),
      numLayers: r.int('n_layer'),
      numHeads: heads,
      numKvHeads: heads,
      headDim: hidden / heads,
      maxPositions: r.int('n_positions'),
      normEps: r.num('layer_norm_epsilon', 1e-5),
      ropeTheta: 0,
      tieWordEmbeddings: r.bool('tie_word_embeddings', true),
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      qkNorm: false,
      activation: 'gelu_new',
      ...common,
    };
  }

  // llama family
  const act = raw['hidden_act'] ?? 'silu';
  if (act !== 'silu') throw unsupported('hidden_act', act, `${arch} is implemented with silu (SwiGLU)`);
  if (r.has('pretraining_tp') && r.get('pretraining_tp') !== 1) throw unsupported('pretraining_tp', r.get('pretraining_tp'), 'only 1');
  if (arch !== 'llama') {
    if (r.bool('use_sliding_window', false)) throw unsupported('use_sliding_window', true, 'sliding-window attention is not implemented');
    const types = raw['layer_types'];
    if (Array.isArray(types) && types.some((t) => t !== 'full_attention')) {
      throw unsupported('layer_types', types, 'only full_attention layers are implemented');
    }
  }
  const hidden = r.int('hidden_size');
  const heads = r.int('num_attention_heads');
  const kvHeads = r.int('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) throw bad('num_key_value_heads', `a divisor of num_attention_heads (${heads})`, kvHeads);
  const headDim = r.has('head_dim') ? r.int('head_dim') : hidden / heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw bad('head_dim', 'an even integer', headDim);
  const attentionBias = r.bool('attention_bias', false);
  return {
    arch,
    vocabSize: r.int('vocab_size'),
    hiddenSize: hidden,
    intermediateSize: r.int('intermediate_size'),
    numLayers: r.int('num_hidden_layers'),
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    maxPositions: r.int('max_position_embeddings', 2048),
    normEps: r.num('rms_norm_eps', 1e-6),
    ropeTheta: ropeTheta(r),
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    // qwen2: q/k/v always carry a bias, o_proj never; llama and qwen3: attention_bias on q, k, v and o.
    qkvBias: arch === 'qwen2' ? true : attentionBias,
    oBias: arch === 'qwen2' ? false : attentionBias,
    mlpBias: arch === 'llama' ? r.bool('mlp_bias', false) : false,
    qkNorm: arch === 'qwen3',
    activation: 'silu',
    ...common,
  };
}

/** Parses a config object (as found in config.json). */
export function parseModelConfig(raw: unknown): LoadedConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SftkitError('SFTKIT_BAD_ARGUMENT', 'config.json must hold a JSON object');
  }
  const obj = raw as Record<string, unknown>;
  return { spec: specFromConfig(obj), raw: obj };
}

/** Reads and validates `<dir>/config.json`. */
export function readModelConfig(dir: string): LoadedConfig {
  const file = join(dir, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SftkitError('SFTKIT_IO', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SftkitError('SFTKIT_IO', `${file} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return parseModelConfig(raw);
}

/** The config to write on save: the original one with vocab_size set to the model's current size. */
export function configForSave(raw: Record<string, unknown>, vocabSize: number): Record<string, unknown> {
  return { ...raw, vocab_size: vocabSize };
}

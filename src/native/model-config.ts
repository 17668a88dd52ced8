// Hugging Face config.json -> validated ModelSpec (the plain object the native engine is built from).
// Anything in the config that would change the math and is not implemented is an SFTKIT_UNSUPPORTED error naming the
// field: never silently different math. The raw config is kept so that save() writes it back (vocab_size updated).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SftkitError } from '../errors.ts';

export type ModelArch = 'gpt2' | 'llama' | 'qwen2' | 'qwen3' | 'mistral' | 'smollm3' | 'phi3' | 'gemma2' | 'gemma3_text';
export type Activation = 'gelu_new' | 'silu' | 'gelu_pytorch_tanh';
export type RopeType = 'default' | 'linear' | 'dynamic' | 'llama3' | 'yarn' | 'longrope';

/** One RoPE kind with its defaults resolved (transformers 5.x modeling_rope_utils; native/engine/rope.h). */
export interface RopeSpec {
  type: RopeType;
  theta: number;
  /** Rotary dims of each head (partial_rotary_factor); 0: the whole head. */
  rotaryDim: number;
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
  /** cos/sin multiplier (yarn, longrope). */
  attentionFactor: number;
  betaFast: number;
  betaSlow: number;
  truncate: boolean;
  shortFactor: number[];
  longFactor: number[];
}

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
  /** Per-head RMSNorm of q and k before RoPE (qwen3, gemma3_text). */
  qkNorm: boolean;
  /** RoPE kinds (empty: one default RoPE of ropeTheta) and the one each layer uses (-1: NoPE; empty: ropes[0]). */
  ropes: RopeSpec[];
  layerRope: number[];
  /** Sliding-window attention: window W (0: none) and the layers that slide (empty: none). */
  slidingWindow: number;
  slidingLayers: boolean[];
  /** Gemma: attention scale query_pre_attn_scalar ** -0.5 (0: head_dim ** -0.5); tanh softcaps (0: none). */
  queryPreAttnScalar: number;
  attnSoftcap: number;
  finalSoftcap: number;
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

const ARCHES: readonly ModelArch[] = ['gpt2', 'llama', 'qwen2', 'qwen3', 'mistral', 'smollm3', 'phi3', 'gemma2', 'gemma3_text'];

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
const NEVER_SUPPORTED = ['logits_scaling', 'embedding_multiplier', 'residual_multiplier', 'attention_multiplier'];
/** Fields only Gemma 2 implements. */
const GEMMA2_ONLY = ['attn_logit_softcapping', 'final_logit_softcapping'];

const ROPE_TYPES: readonly RopeType[] = ['default', 'linear', 'dynamic', 'llama3', 'yarn', 'longrope'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The RoPE parameters of a config as transformers 5.x reads them (NEW-ARCHITECTURES.md, "Where the RoPE parameters
 * are"): rope_parameters, else the legacy rope_scaling, else {}; rope_type, else type, else default; theta, partial
 * rotary factor and the original length from the dict, else the top-level keys. `field` names the dict in errors.
 */
function ropeFromDict(r: Reader, dict: Record<string, unknown>, field: string, headDim: number, maxPositions: number, arch: ModelArch, thetaFallback: number): RopeSpec {
  let type = dict['rope_type'] ?? dict['type'] ?? 'default';
  if (arch === 'phi3' && (type === 'su' || type === 'yarn')) type = 'longrope';
  if (typeof type !== 'string' || !(ROPE_TYPES as readonly string[]).includes(type)) {
    throw unsupported(`${field}.rope_type`, type, `RoPE scaling type ${JSON.stringify(type)} is not implemented (implemented: ${ROPE_TYPES.join(', ')})`);
  }
  const rt = type as RopeType;
  if (rt === 'longrope' && arch !== 'phi3') throw unsupported(`${field}.rope_type`, type, 'longrope is implemented for phi3 only');
  const num = (key: string, fallback: number | null): number => {
    const v = dict[key];
    if (v === undefined || v === null) {
      if (fallback === null) throw bad(`${field}.${key}`, 'a number', v);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${field}.${key}`, 'a number', v);
    return v;
  };
  const theta = num('rope_theta', thetaFallback);
  if (!(theta > 0)) throw bad(`${field}.rope_theta`, 'a positive number', theta);
  const topPrf = r.get('partial_rotary_factor');
  const prf = num('partial_rotary_factor', typeof topPrf === 'number' ? topPrf : 1);
  if (!(prf > 0 && prf <= 1)) throw bad(`${field}.partial_rotary_factor`, 'a number in (0, 1]', prf);
  const rotaryDim = Math.trunc(headDim * prf);
  if (rotaryDim % 2 !== 0 || rotaryDim < 2) throw unsupported(`${field}.partial_rotary_factor`, prf, `it gives ${rotaryDim} rotary dims (an even number >= 2 is needed)`);
  const out: RopeSpec = {
    type: rt, theta, rotaryDim: rotaryDim === headDim ? 0 : rotaryDim, factor: 1, lowFreqFactor: 1, highFreqFactor: 4,
    originalMaxPositions: 0, attentionFactor: 1, betaFast: 32, betaSlow: 1, truncate: true, shortFactor: [], longFactor: [],
  };
  let orig = 0;
  if (rt === 'llama3' || rt === 'yarn' || rt === 'longrope') {
    // Phi-3: a top-level original_max_position_embeddings overrides the dict's.
    const top = arch === 'phi3' ? r.get('original_max_position_embeddings') : undefined;
    orig = typeof top === 'number' ? top : num('original_max_position_embeddings', maxPositions);
    if (!Number.isInteger(orig) || orig <= 0) throw bad(`${field}.original_max_position_embeddings`, 'a positive integer', orig);
    out.originalMaxPositions = orig;
  }
  if (rt === 'linear' || rt === 'dynamic' || rt === 'llama3') {
    out.factor = num('factor', null);
    if (!(out.factor > 0)) throw bad(`${field}.factor`, 'a positive number', out.factor);
  }
  if (rt === 'llama3') {
    out.lowFreqFactor = num('low_freq_factor', null);
    out.highFreqFactor = num('high_freq_factor', null);
    if (!(out.highFreqFactor > out.lowFreqFactor)) throw bad(`${field}.high_freq_factor`, `a number above low_freq_factor (${out.lowFreqFactor})`, out.highFreqFactor);
  }
  if (rt === 'dynamic' && rotaryDim <= 2) throw unsupported(`${field}.rope_type`, type, 'dynamic RoPE needs more than 2 rotary dims');
  if (rt === 'yarn') {
    const factor = num('factor', maxPositions / orig);
    out.factor = factor;
    const mscale = (s: number, m = 1): number => (s <= 1 ? 1 : 0.1 * m * Math.log(s) + 1);
    const af = dict['attention_factor'];
    if (typeof af === 'number') out.attentionFactor = af;
    else {
      const ms = dict['mscale'];
      const msa = dict['mscale_all_dim'];
      out.attentionFactor = typeof ms === 'number' && typeof msa === 'number' && ms && msa ? mscale(factor, ms) / mscale(factor, msa) : mscale(factor);
    }
    out.betaFast = num('beta_fast', 32) || 32;
    out.betaSlow = num('beta_slow', 1) || 1;
    const tr = dict['truncate'];
    out.truncate = typeof tr === 'boolean' ? tr : true;
  }
  if (rt === 'longrope') {
    const list = (key: string): number[] => {
      const v = dict[key];
      if (!Array.isArray(v) || v.length !== rotaryDim / 2 || v.some((x) => typeof x !== 'number' || !(x > 0))) {
        throw bad(`${field}.${key}`, `${rotaryDim / 2} positive numbers (rotary dims / 2)`, v);
      }
      return v as number[];
    };
    out.shortFactor = list('short_factor');
    out.longFactor = list('long_factor');
    const factor = num('factor', maxPositions / orig);
    out.factor = factor;
    const af = dict['attention_factor'];
    out.attentionFactor = typeof af === 'number' ? af : factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(orig));
  }
  return out;
}

/** rope_parameters, else rope_scaling, else {} (with rope_theta from the top level when the dict has none). */
function ropeDict(r: Reader): { dict: Record<string, unknown>; field: string } {
  for (const field of ['rope_parameters', 'rope_scaling']) {
    const v = r.get(field);
    if (v === undefined || v === null) continue;
    if (!isObject(v)) throw bad(field, 'an object', v);
    return { dict: v, field };
  }
  return { dict: {}, field: 'rope_parameters' };
}

/** Per-layer kinds: layer_types when given, else the model type's default pattern. */
function layerTypes(r: Reader, arch: ModelArch, n: number): ('sliding_attention' | 'full_attention')[] {
  const given = r.get('layer_types');
  if (given !== undefined && given !== null) {
    if (!Array.isArray(given) || given.length !== n) throw bad('layer_types', `${n} layer kinds`, given);
    for (const t of given) {
      if (t !== 'sliding_attention' && t !== 'full_attention') throw unsupported('layer_types', given, `layer kind ${JSON.stringify(t)} is not implemented (sliding_attention, full_attention)`);
    }
    return given as ('sliding_attention' | 'full_attention')[];
  }
  const range = Array.from({ length: n }, (_, i) => i);
  if (arch === 'gemma2') return range.map((i) => ((i + 1) % 2 !== 0 ? 'sliding_attention' : 'full_attention'));
  if (arch === 'gemma3_text') {
    const p = r.int('sliding_window_pattern', r.has('_sliding_window_pattern') ? r.int('_sliding_window_pattern') : 6);
    return range.map((i) => ((i + 1) % p !== 0 ? 'sliding_attention' : 'full_attention'));
  }
  const window = r.get('sliding_window');
  if (arch === 'qwen2' || arch === 'qwen3') {
    const on = r.bool('use_sliding_window', false) && window !== undefined && window !== null;
    const from = r.has('max_window_layers') ? (r.get('max_window_layers') as number) : 28;
    return range.map((i) => (on && i >= from ? 'sliding_attention' : 'full_attention'));
  }
  if (arch === 'mistral' || arch === 'phi3') return range.map(() => (window !== undefined && window !== null ? 'sliding_attention' : 'full_attention'));
  if (arch === 'smollm3') {
    // transformers: sliding only with use_sliding_window and a window, then only on the NoPE layers.
    const on = r.bool('use_sliding_window', false) && window !== undefined && window !== null;
    const rope = noRopeLayers(r, n);
    return range.map((i) => (on && !rope[i] ? 'sliding_attention' : 'full_attention'));
  }
  return range.map(() => 'full_attention');
}

/** SmolLM3's no_rope_layers: 1 = the layer applies RoPE, 0 = NoPE; default every 4th layer (3, 7, ...) is NoPE. */
function noRopeLayers(r: Reader, n: number): boolean[] {
  const v = r.get('no_rope_layers');
  if (v !== undefined && v !== null) {
    if (!Array.isArray(v) || v.length !== n || v.some((x) => x !== 0 && x !== 1)) throw bad('no_rope_layers', `${n} entries of 0 or 1`, v);
    return v.map((x) => x === 1);
  }
  const interval = r.int('no_rope_layer_interval', 4);
  return Array.from({ length: n }, (_, i) => (i + 1) % interval !== 0);
}

/** The sliding window W of the config (0 when no layer slides): qwen2/qwen3 and smollm3 only with use_sliding_window. */
function slidingWindow(r: Reader, arch: ModelArch, types: readonly string[]): number {
  if (!types.includes('sliding_attention')) return 0;
  if ((arch === 'qwen2' || arch === 'qwen3' || arch === 'smollm3') && !r.bool('use_sliding_window', false)) return 0;
  return r.int('sliding_window', arch === 'gemma2' || arch === 'gemma3_text' ? 4096 : undefined);
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
  if (arch !== 'gemma2') for (const f of GEMMA2_ONLY) if (r.has(f)) throw unsupported(f, r.get(f), `softcapping is implemented for gemma2 only, not ${arch}`);
  if (arch !== 'phi3' && r.has('partial_rotary_factor') && r.get('partial_rotary_factor') !== 1) {
    throw unsupported('partial_rotary_factor', r.get('partial_rotary_factor'), `partial rotary embeddings are implemented for phi3 only, not ${arch}`);
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
      ropes: [],
      layerRope: [],
      slidingWindow: 0,
      slidingLayers: [],
      queryPreAttnScalar: 0,
      attnSoftcap: 0,
      finalSoftcap: 0,
      ...common,
    };
  }

  const gemma = arch === 'gemma2' || arch === 'gemma3_text';
  if (gemma) {
    const act = raw['hidden_activation'] ?? raw['hidden_act'] ?? 'gelu_pytorch_tanh';
    if (act !== 'gelu_pytorch_tanh') throw unsupported('hidden_activation', act, `${arch} is implemented with gelu_pytorch_tanh`);
    if (arch === 'gemma3_text' && r.bool('use_bidirectional_attention', false)) throw unsupported('use_bidirectional_attention', true, 'not a causal LM');
  } else {
    const act = raw['hidden_act'] ?? 'silu';
    if (act !== 'silu') throw unsupported('hidden_act', act, `${arch} is implemented with silu (SwiGLU)`);
  }
  if (r.has('pretraining_tp') && r.get('pretraining_tp') !== 1) throw unsupported('pretraining_tp', r.get('pretraining_tp'), 'only 1');
  const hidden = r.int('hidden_size');
  const heads = r.int('num_attention_heads');
  const kvHeads = r.int('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) throw bad('num_key_value_heads', `a divisor of num_attention_heads (${heads})`, kvHeads);
  // transformers' Gemma configs default head_dim (and query_pre_attn_scalar) to 256, the others to hidden / heads.
  const headDim = r.has('head_dim') ? r.int('head_dim') : gemma ? 256 : hidden / heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw bad('head_dim', 'an even integer', headDim);
  const numLayers = r.int('num_hidden_layers');
  const maxPositions = r.int('max_position_embeddings', 2048);
  const attentionBias = r.bool('attention_bias', false);

  // RoPE kinds per layer.
  let ropes: RopeSpec[];
  let layerRope: number[] = [];
  const types = layerTypes(r, arch, numLayers);
  if (arch === 'gemma3_text') {
    // 5.x: rope_parameters {sliding_attention, full_attention}; legacy: rope_theta (global, 1e6), rope_local_base_freq
    // (local, 1e4) and rope_scaling on the global (full) layers only.
    const p = r.get('rope_parameters');
    let full: Record<string, unknown>;
    let local: Record<string, unknown>;
    if (isObject(p) && (isObject(p['full_attention']) || isObject(p['sliding_attention']))) {
      full = isObject(p['full_attention']) ? p['full_attention'] : {};
      local = isObject(p['sliding_attention']) ? p['sliding_attention'] : {};
    } else {
      const { dict } = ropeDict(r);
      full = dict;
      local = {};
    }
    const localTheta = r.has('rope_local_base_freq') ? r.num('rope_local_base_freq', 10000) : 10000;
    ropes = [
      ropeFromDict(r, full, 'rope_parameters.full_attention', headDim, maxPositions, arch, r.num('rope_theta', 1e6)),
      ropeFromDict(r, local, 'rope_parameters.sliding_attention', headDim, maxPositions, arch, localTheta),
    ];
    layerRope = types.map((t) => (t === 'full_attention' ? 0 : 1));
  } else {
    const { dict, field } = ropeDict(r);
    ropes = [ropeFromDict(r, dict, field, headDim, maxPositions, arch, r.num('rope_theta', 10000))];
    if (arch === 'smollm3') layerRope = noRopeLayers(r, numLayers).map((use) => (use ? 0 : -1));
  }
  const window = slidingWindow(r, arch, types);
  const slidingLayers = window > 0 ? types.map((t) => t === 'sliding_attention') : [];
  if (arch === 'phi3' && attentionBias) throw unsupported('attention_bias', true, 'phi3 is implemented without biases');

  // Which projections carry biases.
  let qkvBias = attentionBias;
  let oBias = attentionBias;
  let mlpBias = false;
  if (arch === 'qwen2') {
    qkvBias = true; // qwen2: q/k/v always carry a bias, o_proj never
    oBias = false;
  } else if (arch === 'llama' || arch === 'smollm3') {
    mlpBias = r.bool('mlp_bias', false);
  }
  const spec: ModelSpec = {
    arch,
    vocabSize: r.int('vocab_size'),
    hiddenSize: hidden,
    intermediateSize: r.int('intermediate_size'),
    numLayers,
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    maxPositions,
    normEps: r.num('rms_norm_eps', 1e-6),
    ropeTheta: ropes[0]!.theta,
    tieWordEmbeddings: r.bool('tie_word_embeddings', gemma || arch === 'smollm3'),
    qkvBias,
    oBias,
    mlpBias,
    qkNorm: arch === 'qwen3' || arch === 'gemma3_text',
    activation: gemma ? 'gelu_pytorch_tanh' : 'silu',
    // The plain RoPE of older specs stays empty (the engine's default): nothing changes for those models.
    ropes: ropes.length === 1 && ropes[0]!.type === 'default' && ropes[0]!.rotaryDim === 0 && layerRope.length === 0 ? [] : ropes,
    layerRope,
    slidingWindow: window,
    slidingLayers,
    queryPreAttnScalar: gemma ? r.num('query_pre_attn_scalar', 256) : 0,
    // Gemma2Config's defaults (50, 30) when the key is absent; null turns softcapping off.
    attnSoftcap: arch === 'gemma2' ? (raw['attn_logit_softcapping'] === undefined ? 50 : r.num('attn_logit_softcapping', 0)) : 0,
    finalSoftcap: arch === 'gemma2' ? (raw['final_logit_softcapping'] === undefined ? 30 : r.num('final_logit_softcapping', 0)) : 0,
    ...common,
  };
  return spec;
}

/** Parses a config object (as found in config.json). */
export function parseModelConfig(raw: unknown): LoadedConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SftkitError('SFTKIT_BAD_ARGUMENT', 'config.json must hold a JSON object');
  }
  const obj = raw as Record<string, unknown>;
  return { spec: specFromConfig(obj), raw: obj };
}

/** Names of the keys written with a float literal (3.0, 1e-06) in a config.json text. */
const FLOAT_KEYS = Symbol('sftkit.floatKeys');

function floatKeys(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/"([^"\\]+)"\s*:\s*-?\d+(?:\.\d*(?:[eE][-+]?\d+)?|[eE][-+]?\d+)/g)) out.add(m[1]!);
  return out;
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
  const loaded = parseModelConfig(raw);
  Object.defineProperty(loaded.raw, FLOAT_KEYS, { value: floatKeys(text), enumerable: false });
  return loaded;
}

/** The config to write on save: the original one with vocab_size set to the model's current size. */
export function configForSave(raw: Record<string, unknown>, vocabSize: number): Record<string, unknown> {
  return { ...raw, vocab_size: vocabSize };
}

/** What `sftkit doctor --model DIR` says about a model directory. */
export interface ModelSupport {
  dir: string;
  supported: boolean;
  modelType: string | null;
  /** What sftkit implements for it (architecture, RoPE kinds, sliding windows, ...), when supported. */
  features: string[];
  /** Why not (the SFTKIT_UNSUPPORTED / SFTKIT_BAD_ARGUMENT / SFTKIT_IO message), when unsupported. */
  reason: string | null;
  code: string | null;
}

/** The features of a validated spec, in words. */
export function specFeatures(spec: ModelSpec): string[] {
  const f: string[] = [`${spec.arch}: ${spec.numLayers} layers, hidden ${spec.hiddenSize}, ${spec.numHeads} heads (${spec.numKvHeads} kv), head dim ${spec.headDim}`];
  if (spec.arch === 'gpt2') return [...f, 'learned positions'];
  const ropes = spec.ropes.length > 0 ? spec.ropes : [{ type: 'default', theta: spec.ropeTheta, rotaryDim: 0 } as RopeSpec];
  ropes.forEach((r, i) => {
    const used = spec.layerRope.length === 0 ? spec.numLayers : spec.layerRope.filter((x) => x === i).length;
    f.push(`RoPE ${r.type} (theta ${r.theta}${r.rotaryDim ? `, ${r.rotaryDim} of ${spec.headDim} dims` : ''}) on ${used} layer(s)`);
  });
  const nope = spec.layerRope.filter((x) => x < 0).length;
  if (nope > 0) f.push(`${nope} NoPE layer(s)`);
  if (spec.slidingWindow > 0) f.push(`sliding window ${spec.slidingWindow} on ${spec.slidingLayers.filter(Boolean).length} of ${spec.numLayers} layers`);
  if (spec.qkNorm) f.push('q/k norms');
  if (spec.attnSoftcap > 0) f.push(`attention softcapping ${spec.attnSoftcap}`);
  if (spec.finalSoftcap > 0) f.push(`final logit softcapping ${spec.finalSoftcap} (DPO and distillation refuse it)`);
  if (spec.arch === 'phi3') f.push('fused qkv_proj / gate_up_proj');
  f.push(spec.tieWordEmbeddings ? 'tied head' : 'untied head');
  return f;
}

/** Whether sftkit supports the model in `dir` (its config.json) and why not: the loader's own validation. */
export function modelSupport(dir: string): ModelSupport {
  let modelType: string | null = null;
  try {
    const raw = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    modelType = typeof raw?.['model_type'] === 'string' ? (raw['model_type'] as string) : null;
  } catch {
    // readModelConfig below says what is wrong
  }
  try {
    const { spec } = readModelConfig(dir);
    return { dir, supported: true, modelType, features: specFeatures(spec), reason: null, code: null };
  } catch (e) {
    const err = e as SftkitError;
    return { dir, supported: false, modelType, features: [], reason: err.message, code: err.code ?? null };
  }
}

/**
 * config.json's text for save (configForSave's object, two-space indent): keys that the source wrote as floats keep
 * a float literal when their value is integral (3.0, not 3). transformers 5's strict config classes refuse an int for
 * a float field (Gemma 2's final_logit_softcapping 3.0 -> 3 does not load).
 */
export function configTextForSave(raw: Record<string, unknown>, vocabSize: number): string {
  return configText(raw, { vocab_size: vocabSize });
}

/** The same for any top-level changes (`patch`) of a config read by readModelConfig. */
export function configText(raw: Record<string, unknown>, patch: Record<string, unknown>): string {
  const keys = (raw as { [FLOAT_KEYS]?: Set<string> })[FLOAT_KEYS] ?? new Set<string>();
  let text = JSON.stringify({ ...raw, ...patch }, null, 2);
  if (keys.size > 0) {
    text = text.replace(/^(\s*"([^"\\]+)": )(-?\d+)(,?)$/gm, (all, head: string, key: string, num: string, comma: string) =>
      keys.has(key) ? `${head}${num}.0${comma}` : all);
  }
  return `${text}\n`;
}

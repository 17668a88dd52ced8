// llama2.c import: a legacy ("version 0") llama2.c checkpoint (e.g. stories260K.bin) + its tokenizer (tok512.bin)
// become a Hugging Face llama directory: config.json, generation_config.json, model.safetensors (HF tensor names,
// q/k rows permuted from llama2.c's interleaved RoPE pairs to HF's rotate_half layout), tokenizer.json (HF
// tokenizers BPE with byte fallback, SentencePiece-style normalizer/decoder) and tokenizer_config.json.
//
// Checkpoint layout (little-endian): 7 x int32 header dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size
// (negative: untied classifier at the end), seq_len; then float32 arrays token_embedding [V, C]; rms_att [L, C];
// wq [L, C, C]; wk [L, KV, C]; wv [L, KV, C]; wo [L, C, C]; rms_ffn [L, C]; w1 [L, H, C]; w2 [L, C, H]; w3 [L, H, C];
// rms_final [C]; freq_cis_real, freq_cis_imag [S, hd/2] (skipped); wcls [V, C] when untied.
// (C = dim, H = hidden_dim, L = n_layers, KV = n_kv_heads * head_dim, V = vocab, S = seq_len, hd = dim / n_heads.)
// Tokenizer layout: int32 max_token_length, then per id: float32 score, int32 len, len bytes.
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SftkitError, invalidParameterError } from '../errors.ts';
import { saveSafetensors, type TensorToSave } from '../native/index.ts';

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  tied: boolean;
}

export interface ConvertLlama2cOptions {
  /** llama2.c checkpoint (legacy version-0 export), e.g. stories260K.bin. */
  checkpoint: string;
  /** llama2.c tokenizer, e.g. tok512.bin. */
  tokenizer: string;
  /** Output directory (created if missing; files in it are overwritten). */
  out: string;
}

export interface ConvertLlama2cResult {
  config: Llama2cConfig;
  /** Files written, relative to `out`. */
  files: string[];
  numParameters: number;
}

const SPIECE_SPACE = '\u2581'; // "▁"

function ioError(file: string, message: string): SftkitError {
  return new SftkitError('SFTKIT_IO', `${file}: ${message}`);
}

/** Reads and checks the 28-byte header and the float arrays of a llama2.c checkpoint. */
export function readLlama2cCheckpoint(file: string): { config: Llama2cConfig; weights: Map<string, Float32Array> } {
  const buf = readFileSync(file);
  if (buf.length < 28) throw ioError(file, `${buf.length} bytes is too short for a llama2.c checkpoint header (28 bytes)`);
  const h = Array.from({ length: 7 }, (_, i) => buf.readInt32LE(i * 4));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, signedVocab, seqLen] = h as [number, number, number, number, number, number, number];
  const vocabSize = Math.abs(signedVocab);
  const tied = signedVocab > 0;
  const bad = (what: string) => ioError(file, `not a llama2.c checkpoint: ${what} (header ${h.join(', ')})`);
  if (!(dim > 0 && hiddenDim > 0 && nLayers > 0 && nHeads > 0 && nKvHeads > 0 && vocabSize > 0 && seqLen > 0)) throw bad('non-positive size');
  if (dim % nHeads !== 0) throw bad('dim is not a multiple of n_heads');
  if (nHeads % nKvHeads !== 0) throw bad('n_heads is not a multiple of n_kv_heads');
  const headDim = dim / nHeads;
  if (headDim % 2 !== 0) throw bad('odd head size');
  const kvDim = nKvHeads * headDim;

  const layout: Array<[string, number]> = [
    ['token_embedding', vocabSize * dim],
    ['rms_att', nLayers * dim],
    ['wq', nLayers * dim * dim],
    ['wk', nLayers * kvDim * dim],
    ['wv', nLayers * kvDim * dim],
    ['wo', nLayers * dim * dim],
    ['rms_ffn', nLayers * dim],
    ['w1', nLayers * hiddenDim * dim],
    ['w2', nLayers * dim * hiddenDim],
    ['w3', nLayers * hiddenDim * dim],
    ['rms_final', dim],
    ['freq_cis_real', (seqLen * headDim) / 2],
    ['freq_cis_imag', (seqLen * headDim) / 2],
    ...(tied ? [] : ([['wcls', vocabSize * dim]] as Array<[string, number]>)),
  ];
  const floats = layout.reduce((a, [, n]) => a + n, 0);
  if (buf.length !== 28 + 4 * floats) {
    throw ioError(file, `${buf.length} bytes, but its header (${h.join(', ')}) describes ${28 + 4 * floats} bytes (legacy llama2.c export)`);
  }
  // Copy into an aligned buffer (readFileSync's buffer may start at any offset).
  const all = new Float32Array(floats);
  new Uint8Array(all.buffer).set(buf.subarray(28));
  const weights = new Map<string, Float32Array>();
  let at = 0;
  for (const [name, n] of layout) {
    weights.set(name, all.subarray(at, at + n));
    at += n;
  }
  return { config: { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, tied }, weights };
}

/**
 * Rows of a q/k projection [heads * hd, cols] from llama2.c's interleaved RoPE pairs (2i, 2i+1) to HF's rotate_half
 * halves (i, i + hd/2): out row h*hd + j*hd/2 + i = in row h*hd + 2i + j (HF convert_llama_weights_to_hf `permute`).
 */
export function permuteRope(w: Float32Array, heads: number, headDim: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * headDim + 2 * i + j) * cols;
        const dst = (h * headDim + j * half + i) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

export interface Llama2cTokenizer {
  maxTokenLength: number;
  pieces: string[]; // UTF-8 decoded, as stored (real spaces)
  scores: number[];
}

/** Reads a llama2.c tokenizer file with `vocabSize` entries. */
export function readLlama2cTokenizer(file: string, vocabSize: number): Llama2cTokenizer {
  const buf = readFileSync(file);
  const fail = (what: string) => ioError(file, `not a llama2.c tokenizer for ${vocabSize} tokens: ${what}`);
  if (buf.length < 4) throw fail('too short');
  const maxTokenLength = buf.readInt32LE(0);
  let at = 4;
  const pieces: string[] = [];
  const scores: number[] = [];
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let id = 0; id < vocabSize; id++) {
    if (at + 8 > buf.length) throw fail(`ends at token ${id}`);
    const score = buf.readFloatLE(at);
    const len = buf.readInt32LE(at + 4);
    at += 8;
    if (len < 0 || at + len > buf.length) throw fail(`token ${id} has a bad length ${len}`);
    let piece: string;
    try {
      piece = decoder.decode(buf.subarray(at, at + len));
    } catch {
      throw fail(`token ${id} is not valid UTF-8`);
    }
    at += len;
    pieces.push(piece);
    scores.push(score);
  }
  if (at !== buf.length) throw fail(`${buf.length - at} trailing bytes`);
  return { maxTokenLength, pieces, scores };
}

/** HF vocabulary pieces: specials renamed, byte-fallback pieces kept, spaces -> "▁". */
export function hfPieces(tok: Llama2cTokenizer, file = 'tokenizer'): string[] {
  const expectSpecial = ['<unk>', '\n<s>\n', '\n</s>\n'];
  expectSpecial.forEach((p, i) => {
    if (tok.pieces[i] !== p) throw ioError(file, `token ${i} is ${JSON.stringify(tok.pieces[i])}, expected ${JSON.stringify(p)}`);
  });
  for (let b = 0; b < 256; b++) {
    const want = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    if (tok.pieces[3 + b] !== want) throw ioError(file, `token ${3 + b} is ${JSON.stringify(tok.pieces[3 + b])}, expected the byte-fallback piece ${want}`);
  }
  const pieces = tok.pieces.map((p, id) => (id < 3 ? ['<unk>', '<s>', '</s>'][id]! : id < 259 ? p : p.replaceAll(' ', SPIECE_SPACE)));
  const seen = new Map<string, number>();
  pieces.forEach((p, id) => {
    if (seen.has(p)) throw ioError(file, `tokens ${seen.get(p)} and ${id} are the same piece ${JSON.stringify(p)}`);
    seen.set(p, id);
  });
  return pieces;
}

/**
 * BPE merges from piece scores, as transformers converts SentencePiece BPE models (generate_merges with
 * vocab_scores): every split of every piece into two pieces of the vocabulary, ordered by the merged piece's score
 * (descending), then by the lengths of the left and right parts (descending); stable otherwise.
 */
export function mergesFromScores(pieces: string[], scores: number[]): Array<[string, string]> {
  const vocab = new Map(pieces.map((p, i) => [p, i]));
  const all: Array<{ l: string; r: string; score: number; ll: number; rl: number }> = [];
  pieces.forEach((piece, id) => {
    const chars = Array.from(piece);
    const local: typeof all = [];
    for (let k = 1; k < chars.length; k++) {
      const l = chars.slice(0, k).join('');
      const r = chars.slice(k).join('');
      if (vocab.has(l) && vocab.has(r)) local.push({ l, r, score: scores[id]!, ll: k, rl: chars.length - k });
    }
    local.sort((a, b) => vocab.get(a.l)! - vocab.get(b.l)! || vocab.get(a.r)! - vocab.get(b.r)!);
    all.push(...local);
  });
  all.sort((a, b) => b.score - a.score || b.ll - a.ll || b.rl - a.rl);
  return all.map((m) => [m.l, m.r]);
}

const SPECIALS = ['<unk>', '<s>', '</s>'] as const;

export function tokenizerJson(pieces: string[], scores: number[]): object {
  const vocab: Record<string, number> = {};
  pieces.forEach((p, i) => {
    vocab[p] = i;
  });
  const added = SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPIECE_SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPIECE_SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPIECE_SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: mergesFromScores(pieces, scores).map(([l, r]) => `${l} ${r}`),
    },
  };
}

function tokenizerConfig(c: Llama2cConfig): object {
  const decoder: Record<string, object> = {};
  SPECIALS.forEach((content, id) => {
    decoder[String(id)] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  });
  return {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: decoder,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: c.seqLen,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
}

function hfConfig(c: Llama2cConfig): object {
  return {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: 2,
    head_dim: c.dim / c.nHeads,
    hidden_act: 'silu',
    hidden_size: c.dim,
    initializer_range: 0.02,
    intermediate_size: c.hiddenDim,
    max_position_embeddings: c.seqLen,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: c.nHeads,
    num_hidden_layers: c.nLayers,
    num_key_value_heads: c.nKvHeads,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 10000.0,
    tie_word_embeddings: c.tied,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: c.vocabSize,
  };
}

/** HF llama tensors (names, shapes, permuted q/k) from the llama2.c arrays. */
export function hfTensors(config: Llama2cConfig, w: Map<string, Float32Array>): TensorToSave[] {
  const { dim: C, hiddenDim: H, nLayers: L, nHeads, nKvHeads, vocabSize: V } = config;
  const hd = C / nHeads;
  const KV = nKvHeads * hd;
  const layer = (name: string, l: number, size: number) => w.get(name)!.subarray(l * size, (l + 1) * size);
  const out: TensorToSave[] = [{ name: 'model.embed_tokens.weight', data: w.get('token_embedding')!, shape: [V, C] }];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    out.push(
      { name: `${p}.input_layernorm.weight`, data: layer('rms_att', l, C), shape: [C] },
      { name: `${p}.self_attn.q_proj.weight`, data: permuteRope(layer('wq', l, C * C), nHeads, hd, C), shape: [C, C] },
      { name: `${p}.self_attn.k_proj.weight`, data: permuteRope(layer('wk', l, KV * C), nKvHeads, hd, C), shape: [KV, C] },
      { name: `${p}.self_attn.v_proj.weight`, data: layer('wv', l, KV * C), shape: [KV, C] },
      { name: `${p}.self_attn.o_proj.weight`, data: layer('wo', l, C * C), shape: [C, C] },
      { name: `${p}.post_attention_layernorm.weight`, data: layer('rms_ffn', l, C), shape: [C] },
      { name: `${p}.mlp.gate_proj.weight`, data: layer('w1', l, H * C), shape: [H, C] },
      { name: `${p}.mlp.down_proj.weight`, data: layer('w2', l, C * H), shape: [C, H] },
      { name: `${p}.mlp.up_proj.weight`, data: layer('w3', l, H * C), shape: [H, C] },
    );
  }
  out.push({ name: 'model.norm.weight', data: w.get('rms_final')!, shape: [C] });
  if (!config.tied) out.push({ name: 'lm_head.weight', data: w.get('wcls')!, shape: [V, C] });
  return out;
}

function writeJson(file: string, value: object): void {
  writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/** Converts a llama2.c checkpoint + tokenizer into a Hugging Face llama directory. */
export async function convertLlama2c(options: ConvertLlama2cOptions): Promise<ConvertLlama2cResult> {
  if (typeof options !== 'object' || options === null) throw invalidParameterError('options', 'an object { checkpoint, tokenizer, out }', options);
  for (const key of ['checkpoint', 'tokenizer', 'out'] as const) {
    const v = options[key];
    if (typeof v !== 'string' || v.length === 0) throw invalidParameterError(`options.${key}`, 'a non-empty path string', v);
  }
  for (const key of ['checkpoint', 'tokenizer'] as const) {
    let isFile = false;
    try {
      isFile = statSync(options[key]).isFile();
    } catch {
      // reported below
    }
    if (!isFile) throw new SftkitError('SFTKIT_IO', `${options[key]}: no such file (options.${key})`);
  }
  const { config, weights } = readLlama2cCheckpoint(options.checkpoint);
  const tok = readLlama2cTokenizer(options.tokenizer, config.vocabSize);
  const pieces = hfPieces(tok, options.tokenizer);
  const tensors = hfTensors(config, weights);

  mkdirSync(options.out, { recursive: true });
  await saveSafetensors(join(options.out, 'model.safetensors'), tensors, { format: 'pt' });
  writeJson(join(options.out, 'config.json'), hfConfig(config));
  writeJson(join(options.out, 'generation_config.json'), { _from_model_config: true, bos_token_id: 1, eos_token_id: 2 });
  writeJson(join(options.out, 'tokenizer.json'), tokenizerJson(pieces, tok.scores));
  writeJson(join(options.out, 'tokenizer_config.json'), tokenizerConfig(config));
  writeJson(join(options.out, 'special_tokens_map.json'), { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
  return {
    config,
    files: ['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'],
    numParameters: tensors.reduce((a, t) => a + t.data.length, 0),
  };
}

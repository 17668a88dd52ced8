// tokenizer.json + tokenizer_config.json -> the `tokenizer.ggml.*` keys and `tokenizer.chat_template`, as
// convert_hf_to_gguf.py derives them:
// - byte-level BPE (GPT-2, Qwen, Llama 3): model `gpt2`, tokens as stored (byte-level alphabet), merges "a b", and
//   `tokenizer.ggml.pre` naming llama.cpp's pre-tokenizer (its regex), found from the tokenizer's Split pattern;
// - BPE with byte fallback and SentencePiece-style normalisation (Llama 1/2, TinyStories, llama2.c imports): model
//   `llama`, tokens with `▁`, `<0xNN>` byte tokens, and scores that make llama.cpp's SentencePiece merge order the
//   BPE merge order (a token made by merge rank r scores -r; single characters 0);
// - token types: control for special added tokens (unknown for the unk token), user-defined for other added tokens,
//   byte for `<0xNN>` (llama), unused for ids the tokenizer lacks below the model's vocabulary size (`[PADn]`);
// - a byte-fallback vocabulary without all 256 `<0xNN>` tokens (TinyStories-656K has none: Hugging Face maps an
//   unknown character such as `#` to <unk>) gets the missing ones appended after the model's vocabulary, because
//   llama.cpp's tokenizer aborts the process on a character it can neither find nor spell in bytes; the exporter
//   gives their embedding (and head) rows the unknown token's row, so they read as <unk> and are never the greedy
//   pick over it (a tie goes to the lower id).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SftkitError } from '../errors.ts';
import type { ModelSpec } from '../native/index.ts';
import { bool, f32s, i32s, str, strings, TokenType, u32, type GgufMetadata } from './gguf-format.ts';

interface AddedToken {
  id: number;
  content: string;
  special?: boolean;
}

interface TokenizerJson {
  added_tokens?: AddedToken[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
  model: { type?: string; vocab?: Record<string, number>; merges?: Array<string | [string, string]>; byte_fallback?: boolean; unk_token?: string | null };
}

/** llama.cpp's pre-tokenizer names by the regex of the tokenizer's Split pre-tokenizer (convert_hf_to_gguf.py). */
const PRE_BY_REGEX: ReadonlyArray<[string, string]> = [
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", 'qwen2'],
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", 'llama-bpe'],
  ["'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", 'gpt-2'],
];

function collect(node: unknown, type: string, found: Array<Record<string, unknown>> = []): Array<Record<string, unknown>> {
  if (Array.isArray(node)) for (const n of node) collect(n, type, found);
  else if (node !== null && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o['type'] === type) found.push(o);
    for (const v of Object.values(o)) if (v !== null && typeof v === 'object') collect(v, type, found);
  }
  return found;
}

/** `tokenizer.ggml.pre` of a byte-level BPE tokenizer. */
export function preTokenizerName(tj: Pick<TokenizerJson, 'pre_tokenizer'>, arch: string): string {
  for (const split of collect(tj.pre_tokenizer, 'Split')) {
    const pattern = (split['pattern'] as { Regex?: string } | undefined)?.Regex;
    const hit = PRE_BY_REGEX.find(([re]) => re === pattern);
    if (hit !== undefined) return hit[1];
  }
  const byteLevel = collect(tj.pre_tokenizer, 'ByteLevel');
  if (byteLevel.length > 0 && byteLevel.every((b) => b['use_regex'] !== false) && collect(tj.pre_tokenizer, 'Split').length === 0) return 'gpt-2';
  return arch === 'qwen2' || arch === 'qwen3' ? 'qwen2' : 'default';
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SftkitError('SFTKIT_IO', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
}

function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** The chat template of a tokenizer directory: tokenizer_config.json's `chat_template` or chat_template.jinja. */
export function chatTemplateOf(dir: string, config: Record<string, unknown>): string | undefined {
  const t = config['chat_template'];
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t as Array<{ name?: string; template?: string }>;
    return (named.find((x) => x.name === 'default') ?? named[0])?.template;
  }
  const file = join(dir, 'chat_template.jinja');
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

export interface GgufVocab {
  model: 'gpt2' | 'llama';
  tokens: string[];
  types: number[];
  scores?: number[];
  merges?: string[];
  /** Byte tokens appended after the model's vocabulary (rows the exporter adds, copies of `unkId`'s). */
  addedBytes: number;
  unkId: number;
  pre?: string;
}

/** The vocabulary of tokenizer.json laid out over `vocabSize` ids (the model's embedding rows). */
export function ggufVocab(tj: TokenizerJson, vocabSize: number, arch: string): GgufVocab {
  if (tj.model?.type !== 'BPE' || tj.model.vocab === undefined) {
    throw new SftkitError('SFTKIT_UNSUPPORTED', `tokenizer.json: model type ${JSON.stringify(tj.model?.type)} cannot be exported to GGUF (BPE only)`);
  }
  const llama = tj.model.byte_fallback === true;
  const tokens: Array<string | undefined> = new Array(vocabSize).fill(undefined);
  const types: number[] = new Array(vocabSize).fill(TokenType.UNUSED);
  const place = (text: string, id: number, type: number) => {
    if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) {
      throw new SftkitError('SFTKIT_BAD_ARGUMENT', `tokenizer.json: token ${JSON.stringify(text)} has id ${id}, outside the model's vocabulary of ${vocabSize}`);
    }
    tokens[id] = text;
    types[id] = type;
  };
  for (const [text, id] of Object.entries(tj.model.vocab)) place(text, id, llama && /^<0x[0-9A-Fa-f]{2}>$/.test(text) ? TokenType.BYTE : TokenType.NORMAL);
  for (const t of tj.added_tokens ?? []) {
    const type = t.special ? (t.content === tj.model.unk_token ? TokenType.UNKNOWN : TokenType.CONTROL) : TokenType.USER_DEFINED;
    place(t.content, t.id, type);
  }
  const merges = (tj.model.merges ?? []).map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : m));
  const filled = tokens.map((t, i) => t ?? `[PAD${i}]`);
  const unkId = tj.model.unk_token != null ? (tj.model.vocab[tj.model.unk_token] ?? 0) : 0;
  if (!llama) return { model: 'gpt2', tokens: filled, types, merges, pre: preTokenizerName(tj, arch), addedBytes: 0, unkId };
  const scores = new Array<number>(vocabSize).fill(0);
  const ids = new Map(filled.map((t, i) => [t, i] as const));
  const scored = new Set<number>();
  merges.forEach((m, rank) => {
    const space = m.indexOf(' ', 1);
    const id = ids.get(m.slice(0, space) + m.slice(space + 1));
    if (id !== undefined && !scored.has(id)) {
      scored.add(id);
      scores[id] = -(rank + 1);
    }
  });
  const present = new Set(filled);
  let addedBytes = 0;
  for (let b = 0; b < 256; b++) {
    const byte = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    if (present.has(byte)) continue;
    filled.push(byte);
    types.push(TokenType.BYTE);
    scores.push(0);
    addedBytes++;
  }
  return { model: 'llama', tokens: filled, types, scores, addedBytes, unkId };
}

function addsBos(tj: TokenizerJson, config: Record<string, unknown>, bos: string | undefined, which: 'first' | 'last'): boolean {
  const key = which === 'first' ? 'add_bos_token' : 'add_eos_token';
  if (typeof config[key] === 'boolean') return config[key] as boolean;
  for (const tp of collect(tj.post_processor, 'TemplateProcessing')) {
    const single = tp['single'] as Array<{ SpecialToken?: { id?: string } }> | undefined;
    const at = which === 'first' ? single?.[0] : single?.[single.length - 1];
    if (at?.SpecialToken?.id !== undefined && at.SpecialToken.id === bos) return true;
  }
  return false;
}

/**
 * Every `tokenizer.*` key for the tokenizer in `dir`, laid over the model's vocabulary; `addedBytes` byte tokens
 * follow the model's rows (see above), to be backed by copies of row `unkId`.
 */
export function tokenizerMetadata(dir: string, spec: ModelSpec): GgufMetadata & { addedBytes?: number; unkId?: number } {
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(file)) {
    throw new SftkitError('SFTKIT_IO', `${dir}: no tokenizer.json (GGUF runtimes need the tokenizer inside the file)`);
  }
  const tj = readJson(file) as TokenizerJson;
  const cfgFile = join(dir, 'tokenizer_config.json');
  const config = (existsSync(cfgFile) ? readJson(cfgFile) : {}) as Record<string, unknown>;
  const vocab = ggufVocab(tj, spec.vocabSize, spec.arch);
  const idOf = new Map(vocab.tokens.map((t, i) => [t, i] as const));
  const specialId = (name: string, fallback: number | null | undefined): number | undefined => {
    const text = tokenText(config[name]);
    const id = text !== undefined ? idOf.get(text) : undefined;
    return id ?? (fallback === null ? undefined : fallback);
  };
  const md: GgufMetadata = [['tokenizer.ggml.model', str(vocab.model)]];
  if (vocab.pre !== undefined) md.push(['tokenizer.ggml.pre', str(vocab.pre)]);
  md.push(['tokenizer.ggml.tokens', strings(vocab.tokens)]);
  if (vocab.scores !== undefined) md.push(['tokenizer.ggml.scores', f32s(vocab.scores)]);
  md.push(['tokenizer.ggml.token_type', i32s(vocab.types)]);
  if (vocab.merges !== undefined) md.push(['tokenizer.ggml.merges', strings(vocab.merges)]);
  const bos = specialId('bos_token', spec.bosTokenId);
  const eos = specialId('eos_token', spec.eosTokenIds[0]);
  const unk = specialId('unk_token', undefined);
  const pad = specialId('pad_token', spec.padTokenId);
  if (bos !== undefined) md.push(['tokenizer.ggml.bos_token_id', u32(bos)]);
  if (eos !== undefined) md.push(['tokenizer.ggml.eos_token_id', u32(eos)]);
  if (unk !== undefined) md.push(['tokenizer.ggml.unknown_token_id', u32(unk)]);
  if (pad !== undefined) md.push(['tokenizer.ggml.padding_token_id', u32(pad)]);
  const bosText = bos !== undefined ? vocab.tokens[bos] : undefined;
  md.push(['tokenizer.ggml.add_bos_token', bool(addsBos(tj, config, bosText, 'first'))]);
  md.push(['tokenizer.ggml.add_eos_token', bool(addsBos(tj, config, eos !== undefined ? vocab.tokens[eos] : undefined, 'last'))]);
  if (vocab.model === 'llama') {
    const prepends = collect(tj.normalizer, 'Prepend').length > 0 || collect(tj.pre_tokenizer, 'Metaspace').some((m) => m['prepend_scheme'] !== 'never' && m['add_prefix_space'] !== false);
    md.push(['tokenizer.ggml.add_space_prefix', bool(prepends)]);
  }
  const template = chatTemplateOf(dir, config);
  if (template !== undefined) md.push(['tokenizer.chat_template', str(template)]);
  return Object.assign(md, { addedBytes: vocab.addedBytes, unkId: vocab.unkId });
}

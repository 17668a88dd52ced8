// Hugging Face tokenizer.json + tokenizer_config.json: loading, special tokens, BOS rule, encode/decode, added tokens.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { SftkitError, invalidParameterError } from '../errors.ts';

type Json = Record<string, unknown>;

export interface AddedTokenInfo {
  id: number;
  content: string;
  special: boolean;
}

/** The parsed files a tokenizer is built from (kept so that a tokenizer with added tokens can be saved). */
export interface TokenizerFiles {
  tokenizerJson: Json;
  config: Json;
  specialTokensMap?: Json;
  /** A `chat_template.jinja` next to the config (newer HF layout) wins over `config.chat_template`. */
  chatTemplateFile?: string;
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

function isObj(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Token ids the tokenizer puts before a single sequence (its BOS rule): the leading special tokens of a
 * TemplateProcessing post-processor (also inside a Sequence); without one, `add_bos_token: true` in the config.
 */
function prefixTokens(json: Json, config: Json, idOf: (t: string) => number | undefined): number[] {
  const findTemplate = (pp: unknown): Json | undefined => {
    if (!isObj(pp)) return undefined;
    if (pp.type === 'TemplateProcessing') return pp;
    if (pp.type === 'Sequence' && Array.isArray(pp.processors)) {
      for (const p of pp.processors) {
        const t = findTemplate(p);
        if (t) return t;
      }
    }
    return undefined;
  };
  const tp = findTemplate(json.post_processor);
  if (tp && Array.isArray(tp.single)) {
    const ids: number[] = [];
    for (const piece of tp.single) {
      if (!isObj(piece)) break;
      if (isObj(piece.Sequence)) break;
      const st = piece.SpecialToken;
      if (!isObj(st) || typeof st.id !== 'string') break;
      const special = isObj(tp.special_tokens) ? tp.special_tokens[st.id] : undefined;
      const specialIds = isObj(special) && Array.isArray(special.ids) ? (special.ids as number[]) : undefined;
      if (specialIds) ids.push(...specialIds);
      else {
        const id = idOf(st.id);
        if (id === undefined) throw new SftkitError('SFTKIT_LOAD', `post-processor token ${st.id} is not in the vocabulary`);
        ids.push(id);
      }
    }
    return ids;
  }
  if (json.post_processor == null && config.add_bos_token === true) {
    const bos = tokenContent(config.bos_token);
    const id = bos !== undefined ? idOf(bos) : undefined;
    if (id !== undefined) return [id];
  }
  return [];
}

/**
 * A copy of tokenizer.json that does not add the SentencePiece dummy prefix ("▁" / a leading space) to the text it
 * encodes; used for every segment after the first of an example, which continues the text rather than starting it.
 * Undefined when the tokenizer adds no such prefix.
 */
function continuationJson(json: Json): Json | undefined {
  let changed = false;
  const copy = structuredClone(json);
  const stripNormalizer = (n: unknown): unknown => {
    if (!isObj(n)) return n;
    if (n.type === 'Prepend') {
      changed = true;
      return null;
    }
    if (n.type === 'Sequence' && Array.isArray(n.normalizers)) {
      const kept = n.normalizers.map(stripNormalizer).filter((x) => x !== null);
      return { ...n, normalizers: kept };
    }
    return n;
  };
  const stripPre = (p: unknown): unknown => {
    if (!isObj(p)) return p;
    if (p.type === 'Metaspace' && (p.prepend_scheme !== 'never' || p.add_prefix_space === true)) {
      changed = true;
      return { ...p, prepend_scheme: 'never', add_prefix_space: false };
    }
    if (p.type === 'ByteLevel' && p.add_prefix_space === true) {
      changed = true;
      return { ...p, add_prefix_space: false };
    }
    if (p.type === 'Sequence' && Array.isArray(p.pretokenizers)) return { ...p, pretokenizers: p.pretokenizers.map(stripPre) };
    return p;
  };
  copy.normalizer = stripNormalizer(copy.normalizer) ?? null;
  copy.pre_tokenizer = stripPre(copy.pre_tokenizer) ?? null;
  return changed ? copy : undefined;
}

function modelVocab(json: Json): Map<string, number> {
  const model = json.model;
  const map = new Map<string, number>();
  if (!isObj(model)) return map;
  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], ...], id = index
    vocab.forEach((entry, i) => {
      if (Array.isArray(entry) && typeof entry[0] === 'string') map.set(entry[0], i);
    });
  } else if (isObj(vocab)) {
    for (const [k, v] of Object.entries(vocab)) if (typeof v === 'number') map.set(k, v);
  }
  return map;
}

/** The unknown-token id of tokenizer.json's model: `unk_token` (BPE, WordPiece, WordLevel) or `unk_id` (Unigram). */
function modelUnkId(json: Json, ids: Map<string, number>): number | undefined {
  const model = json.model;
  if (!isObj(model)) return undefined;
  if (typeof model.unk_token === 'string') return ids.get(model.unk_token);
  if (typeof model.unk_id === 'number' && Number.isInteger(model.unk_id) && model.unk_id >= 0) return model.unk_id;
  return undefined;
}

export interface EncodeOptions {
  /**
   * The text continues an example (it is not its first segment): no SentencePiece dummy prefix is added. Special
   * and added tokens written in the text are always recognised; BOS/EOS are never added by `encode`.
   */
  continuation?: boolean;
}

/** A loaded tokenizer: exact Hugging Face `tokenizers` ids, special tokens resolved, pad falling back to EOS. */
export class TextTokenizer {
  readonly files: TokenizerFiles;
  readonly eosToken: string;
  readonly eosId: number;
  readonly bosToken: string | undefined;
  /** Ids put once at the start of an example (the tokenizer's BOS rule); empty when it adds none. */
  readonly prefixIds: readonly number[];
  readonly padToken: string;
  readonly padId: number;
  /** True when the config names no pad token and EOS is used for padding (masked by attention and labels). */
  readonly padIsEos: boolean;
  readonly unkToken: string | undefined;
  /**
   * The id the tokenizer model emits for text its vocabulary cannot represent (tokenizer.json `model.unk_token`, or
   * `model.unk_id` for Unigram); undefined when the model has none (byte-level BPE never produces one).
   */
  readonly unkId: number | undefined;
  readonly chatTemplate: string | undefined;
  /** One past the largest id (model vocabulary plus added tokens): the embedding rows a model needs. */
  readonly vocabSize: number;
  readonly addedTokens: readonly AddedTokenInfo[];
  /** A stable hash of the tokenizer files (cache keys). */
  readonly fingerprint: string;
  private readonly hf: HfTokenizer;
  private readonly hfContinuation: HfTokenizer;
  private readonly ids: Map<string, number>;
  private readonly tokens: Map<number, string>;
  private readonly specialIds: Set<number>;
  /** Matches any added token's content, longest first. */
  private readonly addedPattern: RegExp | undefined;

  constructor(files: TokenizerFiles) {
    this.files = files;
    const { tokenizerJson: json, config } = files;
    const stm = files.specialTokensMap ?? {};
    this.hf = new HfTokenizer(json, config);
    const cont = continuationJson(json);
    this.hfContinuation = cont ? new HfTokenizer(cont, config) : this.hf;

    this.ids = modelVocab(json);
    const added: AddedTokenInfo[] = [];
    for (const t of Array.isArray(json.added_tokens) ? json.added_tokens : []) {
      if (!isObj(t) || typeof t.content !== 'string' || typeof t.id !== 'number') continue;
      added.push({ id: t.id, content: t.content, special: t.special === true });
      this.ids.set(t.content, t.id);
    }
    this.addedTokens = added;
    this.tokens = new Map();
    let maxId = -1;
    for (const [tok, id] of this.ids) {
      if (!this.tokens.has(id)) this.tokens.set(id, tok);
      if (id > maxId) maxId = id;
    }
    for (const a of added) this.tokens.set(a.id, a.content);
    this.vocabSize = maxId + 1;
    this.specialIds = new Set(added.filter((a) => a.special).map((a) => a.id));
    const contents = [...new Set(added.map((a) => a.content))].sort((a, b) => b.length - a.length);
    this.addedPattern =
      contents.length > 0 ? new RegExp(contents.map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g') : undefined;

    const special = (name: string): string | undefined => tokenContent(config[name]) ?? tokenContent(stm[name]);
    const eos = special('eos_token');
    if (eos === undefined) throw new SftkitError('SFTKIT_LOAD', 'the tokenizer config names no eos_token');
    const eosId = this.ids.get(eos);
    if (eosId === undefined) throw new SftkitError('SFTKIT_LOAD', `eos_token ${JSON.stringify(eos)} is not in the vocabulary`);
    this.eosToken = eos;
    this.eosId = eosId;
    this.bosToken = special('bos_token');
    this.unkToken = special('unk_token');
    this.unkId = modelUnkId(json, this.ids);
    const pad = special('pad_token');
    const padId = pad !== undefined ? this.ids.get(pad) : undefined;
    if (pad !== undefined && padId !== undefined) {
      this.padToken = pad;
      this.padId = padId;
      this.padIsEos = padId === eosId;
    } else {
      this.padToken = eos;
      this.padId = eosId;
      this.padIsEos = true;
    }
    this.prefixIds = prefixTokens(json, config, (t) => this.ids.get(t));
    this.chatTemplate = files.chatTemplateFile ?? chatTemplateOf(config);
    this.fingerprint = createHash('sha256')
      .update(JSON.stringify(json))
      .update('\0')
      .update(JSON.stringify(config))
      .update('\0')
      .update(this.chatTemplate ?? '')
      .digest('hex');
  }

  /** Ids of `text` exactly as Hugging Face `tokenizers` gives them with `add_special_tokens=False`. */
  encodeHf(text: string): number[] {
    if (text.length === 0) return [];
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Ids of rendered text: added tokens written in the text (`<|im_end|>`, EOS, ...) are matched by exact string and
   * become their ids; the text between them is encoded with Hugging Face `tokenizers`. A SentencePiece dummy prefix
   * is added only at the very start of an example (not after a special token, not for a continuation), as with
   * `legacy: false`. For byte-level tokenizers this is identical to `encodeHf`; for SentencePiece-style ones whose
   * special tokens are `normalized` (TinyStories) it makes `<|end_story|>` in a template the EOS id, which plain
   * `tokenizers` does not.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (text.length === 0) return [];
    const out: number[] = [];
    let last = 0;
    const piece = (from: number, to: number) => {
      if (to <= from) return;
      const hf = from === 0 && !options.continuation ? this.hf : this.hfContinuation;
      for (const id of hf.encode(text.slice(from, to), { add_special_tokens: false }).ids) out.push(id);
    };
    if (this.addedPattern) {
      this.addedPattern.lastIndex = 0;
      for (let m = this.addedPattern.exec(text); m !== null; m = this.addedPattern.exec(text)) {
        piece(last, m.index);
        out.push(this.ids.get(m[0]) as number);
        last = m.index + m[0].length;
      }
    }
    piece(last, text.length);
    return out;
  }

  /** Text of ids; `skipSpecialTokens` drops special added tokens. */
  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const list = Array.from(ids).filter((id) => !(options.skipSpecialTokens && this.specialIds.has(id)));
    if (list.length === 0) return '';
    return this.hf.decode(list, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.ids.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokens.get(id);
  }

  /** True when `token` is one token of the vocabulary (e.g. `<|im_start|>`). */
  hasToken(token: string): boolean {
    return this.ids.has(token);
  }

  isSpecialId(id: number): boolean {
    return this.specialIds.has(id);
  }
}

function chatTemplateOf(config: Json): string | undefined {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  // A list of named templates: use "default".
  if (Array.isArray(t)) {
    const def = t.find((x) => isObj(x) && x.name === 'default');
    if (isObj(def) && typeof def.template === 'string') return def.template;
  }
  return undefined;
}

async function readJson(path: string, required: boolean): Promise<Json | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SftkitError('SFTKIT_LOAD', `cannot read ${path} (${(err as Error).message})`, { cause: err });
  }
  try {
    const v: unknown = JSON.parse(text);
    if (!isObj(v)) throw new Error('not a JSON object');
    return v;
  } catch (err) {
    throw new SftkitError('SFTKIT_LOAD', `${path} is not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

/** Loads `dir/tokenizer.json` with `tokenizer_config.json`, `special_tokens_map.json` and `chat_template.jinja`. */
export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  if (typeof dir !== 'string' || dir === '') throw invalidParameterError('model', 'a directory path', dir);
  const tj = join(dir, 'tokenizer.json');
  if (!existsSync(tj)) {
    throw new SftkitError('SFTKIT_LOAD', `${dir}: no tokenizer.json (sftkit reads Hugging Face tokenizer.json files)`);
  }
  const tokenizerJson = (await readJson(tj, true)) as Json;
  const config = (await readJson(join(dir, 'tokenizer_config.json'), false)) ?? {};
  const specialTokensMap = await readJson(join(dir, 'special_tokens_map.json'), false);
  let chatTemplateFile: string | undefined;
  try {
    chatTemplateFile = await readFile(join(dir, 'chat_template.jinja'), 'utf8');
  } catch {
    chatTemplateFile = undefined;
  }
  return new TextTokenizer({
    tokenizerJson,
    config,
    ...(specialTokensMap ? { specialTokensMap } : {}),
    ...(chatTemplateFile !== undefined ? { chatTemplateFile } : {}),
  });
}

export interface AddTokensResult {
  tokenizer: TextTokenizer;
  /** The tokens that were new, with their ids (ascending from the old vocabSize). */
  added: AddedTokenInfo[];
  /** The vocabulary size a model must be resized to (the new tokenizer's vocabSize). */
  vocabSize: number;
}

/**
 * A new tokenizer with `tokens` added as special tokens (those already in the vocabulary are left alone), numbered
 * from the current vocabSize like Hugging Face `add_special_tokens`. The caller resizes the model's embeddings to
 * `vocabSize`; `saveTokenizer` writes files that carry the new tokens.
 */
export function addSpecialTokens(tok: TextTokenizer, tokens: readonly string[]): AddTokensResult {
  const json = structuredClone(tok.files.tokenizerJson);
  const config = structuredClone(tok.files.config);
  const list = Array.isArray(json.added_tokens) ? (json.added_tokens as Json[]) : [];
  json.added_tokens = list;
  const added: AddedTokenInfo[] = [];
  let next = tok.vocabSize;
  for (const content of tokens) {
    if (typeof content !== 'string' || content === '') throw invalidParameterError('token', 'a non-empty string', content);
    if (tok.hasToken(content) || added.some((a) => a.content === content)) continue;
    const id = next++;
    list.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    added.push({ id, content, special: true });
  }
  if (added.length === 0) return { tokenizer: tok, added, vocabSize: tok.vocabSize };
  const decoder = isObj(config.added_tokens_decoder) ? config.added_tokens_decoder : {};
  for (const a of added) {
    decoder[String(a.id)] = { content: a.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  }
  config.added_tokens_decoder = decoder;
  const extra = Array.isArray(config.additional_special_tokens) ? [...(config.additional_special_tokens as unknown[])] : [];
  for (const a of added) if (!extra.includes(a.content)) extra.push(a.content);
  config.additional_special_tokens = extra;
  const files: TokenizerFiles = { ...tok.files, tokenizerJson: json, config };
  const tokenizer = new TextTokenizer(files);
  return { tokenizer, added, vocabSize: tokenizer.vocabSize };
}

/** Writes tokenizer.json and tokenizer_config.json (and special_tokens_map.json when loaded with one) to `dir`. */
export async function saveTokenizer(tok: TextTokenizer, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tok.files.tokenizerJson));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(tok.files.config, null, 2) + '\n');
  if (tok.files.specialTokensMap) {
    const stm = structuredClone(tok.files.specialTokensMap);
    const extra = tok.files.config.additional_special_tokens;
    if (Array.isArray(extra)) stm.additional_special_tokens = extra;
    await writeFile(join(dir, 'special_tokens_map.json'), JSON.stringify(stm, null, 2) + '\n');
  }
  if (tok.files.chatTemplateFile !== undefined) await writeFile(join(dir, 'chat_template.jinja'), tok.files.chatTemplateFile);
}

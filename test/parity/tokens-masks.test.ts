// Ids and label masks against the golden fixtures of scripts/gen-fixtures/tokens.py (Python tokenizers +
// transformers' Jinja2 chat templates, masks computed there independently of this code).

import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { collatePacked, createPipeline, packBestFitDecreasing, prepareExample, type TokenizedExample } from '../../src/index.ts';
import { toExample } from '../../src/data/formats.ts';
import { addSpecialTokens, loadTokenizer, type TextTokenizer } from '../../src/tokenize/tokenizer.ts';

import type { TokenCase, TokenFixture } from './token-fixture.ts';
const root = join(import.meta.dirname, '..', '..');
const dir = join(root, 'test', 'fixtures', 'tokens');

type Case = TokenCase;
type Fixture = TokenFixture;

const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
assert.ok(files.length >= 5, 'token fixtures present');

for (const file of files) {
  const fx = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Fixture;
  const tokDir = join(root, fx.tokenizer_dir);
  const skip = existsSync(join(tokDir, 'tokenizer.json')) ? false : `${fx.tokenizer_dir} not installed`;
  describe(`parity ${fx.tokenizer} (tokenizers ${fx.versions.tokenizers}, transformers ${fx.versions.transformers})`, { skip }, () => {
    let base: TextTokenizer;
    // Fixtures made with added tokens (ChatML on GPT-2) check the tokenizer after addSpecialTokens.
    const tok = async () =>
      (base ??= addSpecialTokens(await loadTokenizer(tokDir), fx.added_tokens.map((a) => a.content)).tokenizer);

    test('raw encoding equals Hugging Face tokenizers', async () => {
      const t = await tok();
      for (const e of fx.encode) {
        assert.deepEqual(t.encodeHf(e.text), e.hf_ids, `encodeHf ${JSON.stringify(e.text)}`);
        const withSpecial = [...(e.hf_ids.length ? t.prefixIds : fx.prefix_ids), ...e.hf_ids];
        if (e.hf_ids.length) assert.deepEqual(withSpecial, e.hf_ids_with_special_tokens, `BOS rule ${JSON.stringify(e.text)}`);
        assert.deepEqual(t.encode(e.text), e.ids, `encode ${JSON.stringify(e.text)}`);
        assert.deepEqual(t.encode(e.text, { continuation: true }), e.continuation_ids, `continuation ${JSON.stringify(e.text)}`);
      }
      assert.deepEqual([...t.prefixIds], fx.prefix_ids);
      assert.equal(t.eosId, fx.eos_id);
      assert.equal(t.padId, fx.pad_id);
    });

    const results = new Map<string, TokenizedExample>();
    for (const c of fx.cases) {
      test(`case: ${c.name} [${c.template}, ${c.mask}]`, async () => {
        const example = toExample({ value: c.record, where: { file: file, line: 1, record: 0 } }, c.format);
        const { pipeline, addedTokens } = await createPipeline(c.format, {
          tokenizer: await tok(),
          template: c.template,
          mask: c.mask,
          maxLength: c.max_length ?? undefined,
          truncation: c.truncation ?? undefined,
          addSpecialTokens: fx.added_tokens.length > 0,
        });
        assert.deepEqual(addedTokens, [], 'the fixture tokenizer already carries the added tokens');
        for (const a of fx.added_tokens) assert.equal(pipeline.tokenizer.tokenToId(a.content), a.id);
        const { segments, result } = prepareExample(example, pipeline);
        assert.equal(segments.map((s) => s.text).join(''), c.text, 'rendered text');
        if (c.dropped !== undefined) {
          assert.equal(result.kept, false, 'dropped');
          if (!result.kept) assert.equal(result.reason, c.dropped);
          return;
        }
        assert.ok(result.kept, `kept (${result.kept ? '' : result.reason})`);
        if (!result.kept) return;
        assert.deepEqual(Array.from(result.example.inputIds), c.input_ids, 'input ids');
        assert.deepEqual(Array.from(result.example.labels), c.labels, 'labels');
        results.set(c.name, result.example);
      });
    }

    test('packing boundaries equal the reference rows', async () => {
      const examples = fx.packing.case_names.map((n) => results.get(n));
      assert.ok(examples.every((e) => e !== undefined), 'every packed case ran');
      const ex = examples as TokenizedExample[];
      const bins = packBestFitDecreasing(ex.map((e) => e.inputIds.length), fx.packing.capacity);
      assert.deepEqual(bins, fx.packing.bins);
      const T = Math.max(...fx.packing.rows.map((r) => r.doc_lengths.reduce((a, b) => a + b, 0)));
      const batch = collatePacked(bins.map((b) => b.map((i) => ex[i] as TokenizedExample)), { padId: fx.pad_id });
      assert.deepEqual(batch.shape, [bins.length, T]);
      fx.packing.rows.forEach((row, b) => {
        const slice = <A extends Int32Array | Uint8Array>(a: A) => Array.from(a.subarray(b * T, (b + 1) * T));
        assert.deepEqual(slice(batch.inputIds), row.input_ids, `row ${b} ids`);
        assert.deepEqual(slice(batch.labels), row.labels, `row ${b} labels`);
        assert.deepEqual(slice(batch.positionIds as Int32Array), row.position_ids, `row ${b} positions`);
        // Packed rows carry no attention mask: the documents' lengths say where the real tokens end.
        const real = Array.from(batch.docLengths?.[b] ?? []).reduce((a, n) => a + n, 0);
        assert.deepEqual(Array.from({ length: T }, (_, t) => (t < real ? 1 : 0)), row.attention_mask, `row ${b} attention`);
        assert.deepEqual(Array.from(batch.docLengths?.[b] ?? []), row.doc_lengths, `row ${b} doc lengths`);
      });
    });

    const merge = fx.cases.find((c) => c.name === 'BPE merge across the boundary');
    if (merge) {
      test("seed 001's prompt-length bug: BPE merges across the boundary, per-segment ids do not", () => {
        const alone = merge.prompt_alone_ids as number[];
        const whole = merge.whole_text_ids as number[];
        // Tokenizing the whole text merges the prompt's last characters with the answer: the prompt's own ids
        // are not a prefix, so masking the first len(prompt) ids would be wrong.
        assert.notDeepEqual(whole.slice(0, alone.length), alone);
        assert.deepEqual(merge.input_ids?.slice(0, alone.length), alone);
        const labels = merge.labels as number[];
        assert.ok(labels.slice(0, alone.length).every((l) => l === -100), 'whole prompt masked');
        assert.ok(labels.slice(alone.length).every((l) => l !== -100), 'whole answer + EOS trained');
        assert.equal(labels[labels.length - 1], fx.eos_id, 'EOS trained');
      });
    }
  });
}

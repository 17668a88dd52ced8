// Segment[] -> ids + labels: per-segment encoding, BOS once, truncation, drops, modes, summary, dataset errors.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { prepareDataset } from '../../../src/index.ts';
import type { Example } from '../../../src/data/types.ts';
import { applyMaskMode, applySegmentMode, defaultMaskMode, validateMaskMode } from '../../../src/mask/mask-mode.ts';
import { addToSummary, emptySummary, formatSummary, formatUnkWarning } from '../../../src/mask/mask-summary.ts';
import { countTrained, tokenizeWithMask, type SegmentEncoder } from '../../../src/mask/tokenize-with-mask.ts';
import { loadTokenizer } from '../../../src/tokenize/tokenizer.ts';

const M = -100;
/** One id per character (its code point); records whether each call was a continuation. */
function charEncoder(prefixIds: number[] = []): SegmentEncoder & { calls: [string, boolean][] } {
  const calls: [string, boolean][] = [];
  return {
    prefixIds,
    calls,
    encode(text: string, options?: { continuation?: boolean }) {
      calls.push([text, options?.continuation === true]);
      return [...text].map((c) => c.codePointAt(0) as number);
    },
  };
}

test('segments are encoded one by one and concatenated; labels follow the trained flags', () => {
  const enc = charEncoder();
  const r = tokenizeWithMask([{ text: 'ab', trained: false }, { text: 'cd', trained: true }, { text: 'e', trained: false }], enc);
  assert.ok(r.kept);
  if (!r.kept) return;
  assert.deepEqual(Array.from(r.example.inputIds), [97, 98, 99, 100, 101]);
  assert.deepEqual(Array.from(r.example.labels), [M, M, 99, 100, M]);
  assert.deepEqual(enc.calls, [['ab', false], ['cd', true], ['e', true]], 'only the first segment is not a continuation');
  assert.equal(r.trainedTokens, 2);
});

test('BOS once at the start when the tokenizer adds one, never trained; not doubled', () => {
  const r = tokenizeWithMask([{ text: 'ab', trained: true }], charEncoder([1]));
  assert.ok(r.kept && Array.from(r.example.inputIds).join() === '1,97,98' && Array.from(r.example.labels).join() === `${M},97,98`);
  const already = tokenizeWithMask([{ text: '\u0001ab', trained: true }], charEncoder([1]));
  assert.ok(already.kept && Array.from(already.example.inputIds).join() === '1,97,98');
});

test('drops: empty, nothing trained, too long (drop), truncated away (cut)', () => {
  const enc = charEncoder();
  assert.deepEqual(tokenizeWithMask([], enc), { kept: false, reason: 'empty', tokens: 0 });
  assert.deepEqual(tokenizeWithMask([{ text: 'abc', trained: false }], enc), { kept: false, reason: 'no-trained-tokens', tokens: 3 });
  // labels[0] predicts nothing once the model shifts: a lone trained first token is not trainable.
  assert.equal(tokenizeWithMask([{ text: 'a', trained: true }, { text: 'b', trained: false }], enc).kept, false);
  const long = [{ text: 'abcdef', trained: false }, { text: 'gh', trained: true }];
  assert.deepEqual(tokenizeWithMask(long, enc, { maxLength: 4, truncation: 'drop' }), { kept: false, reason: 'too-long', tokens: 8 });
  assert.deepEqual(tokenizeWithMask(long, enc, { maxLength: 4 }), { kept: false, reason: 'truncated-away', tokens: 4 });
  const cut = tokenizeWithMask(long, enc, { maxLength: 7 });
  assert.ok(cut.kept && cut.truncated && cut.example.inputIds.length === 7 && cut.trainedTokens === 1);
  assert.throws(() => tokenizeWithMask(long, enc, { maxLength: 1 }), /Expected an integer >= 2 for maxLength/);
  assert.throws(() => tokenizeWithMask(long, enc, { truncation: 'left' as never }), /Expected one of cut, drop, split for truncation/);
});

test('countTrained skips labels[0]', () => {
  assert.equal(countTrained([5, M, 7, 8]), 2);
});

const chat: Example = {
  kind: 'chat',
  where: { file: 'f', line: 1, record: 0 },
  messages: [
    { role: 'user', content: 'q1', trained: false },
    { role: 'assistant', content: 'a1', trained: false },
    { role: 'user', content: 'q2', trained: false },
    { role: 'assistant', content: 'a2', trained: true },
  ],
};

test('mask modes set trained flags on messages (or on everything)', () => {
  assert.deepEqual(applyMaskMode(chat, 'completion').messages.map((m) => m.trained), [false, false, false, true]);
  assert.deepEqual(applyMaskMode(chat, 'assistant').messages.map((m) => m.trained), [false, true, false, true]);
  assert.deepEqual(applyMaskMode({ ...chat, messages: chat.messages.map((m) => ({ ...m, trained: m.role === 'assistant' })) }, 'last-assistant').messages.map((m) => m.trained), [false, false, false, true]);
  assert.deepEqual(applySegmentMode([{ text: 'a', trained: false }, { text: 'b', trained: true }], 'all'), [{ text: 'ab', trained: true }]);
  assert.deepEqual(applySegmentMode([{ text: 'a', trained: false }], 'pretrain'), [{ text: 'a', trained: true }]);
  assert.deepEqual(applySegmentMode([{ text: 'a', trained: false }], 'assistant'), [{ text: 'a', trained: false }]);
  assert.equal(defaultMaskMode('alpaca'), 'completion');
  assert.equal(defaultMaskMode('chat'), 'assistant');
  assert.equal(defaultMaskMode('text'), 'pretrain');
  assert.throws(() => validateMaskMode('prompt'), /Expected one of completion, assistant, last-assistant, all, pretrain for mask/);
});

test('the summary counts kept, dropped by reason, truncated, trained and masked tokens', () => {
  const s = emptySummary();
  const enc = charEncoder();
  addToSummary(s, tokenizeWithMask([{ text: 'abc', trained: false }, { text: 'de', trained: true }], enc));
  addToSummary(s, tokenizeWithMask([{ text: 'abc', trained: false }], enc));
  addToSummary(s, tokenizeWithMask([{ text: 'abcdef', trained: false }, { text: 'g', trained: true }], enc, { maxLength: 4 }));
  assert.equal(s.examples, 3);
  assert.equal(s.kept, 1);
  assert.equal(s.droppedTotal, 2);
  assert.equal(s.dropped['no-trained-tokens'], 1);
  assert.equal(s.dropped['truncated-away'], 1);
  assert.equal(s.trainedTokens, 2);
  assert.equal(s.maskedTokens, 3);
  assert.equal(formatSummary(s), 'kept 1/3, dropped 2 (no-trained-tokens 1, truncated-away 1), truncated 0, trained 2 / masked 3 tokens');
});

test('unknown tokens: counted per example and over the dataset, with the first piece of text that produced one', () => {
  // `#` has no token here: it becomes the unknown id 0 (one id per other character).
  const enc: SegmentEncoder = {
    prefixIds: [],
    unkId: 0,
    encode: (text) => [...text].map((c) => (c === '#' ? 0 : (c.codePointAt(0) as number))),
  };
  const r = tokenizeWithMask([{ text: 'Intro\n## Q: hi', trained: false }, { text: 'a#b', trained: true }], enc);
  assert.deepEqual(r.unk, { tokens: 3, segment: 0, text: '##' });
  const none = tokenizeWithMask([{ text: 'q', trained: false }, { text: 'a', trained: true }], enc);
  assert.equal(none.unk, undefined);
  // Dropped examples count too (the text produced them all the same).
  const dropped = tokenizeWithMask([{ text: '#', trained: false }], enc);
  assert.equal(dropped.kept, false);
  assert.equal(dropped.unk?.tokens, 1);
  const s = emptySummary();
  for (const x of [r, none, dropped]) addToSummary(s, x);
  assert.equal(s.unkTokens, 4);
  assert.equal(s.unkExamples, 2);
  assert.deepEqual(s.unkExample, r.unk);
  assert.match(formatUnkWarning(s, 'd.json', '<unk>') as string, /^warning: d\.json: 4 unknown tokens \(<unk>\) in 2 of 3 examples, e\.g\. "##"/);
  // No unknown id (byte-level tokenizers), or none produced: no warning.
  const plain = emptySummary();
  addToSummary(plain, tokenizeWithMask([{ text: '#', trained: false }, { text: 'a', trained: true }], charEncoder()));
  addToSummary(plain, none);
  assert.equal(plain.unkTokens, 0);
  assert.equal(formatUnkWarning(plain, 'd.json', '<unk>'), undefined);
});

const gpt2 = join(import.meta.dirname, '..', '..', 'fixtures', 'tokenizers', 'gpt2');
const tinystories = join(import.meta.dirname, '..', '..', 'fixtures', 'models', 'tinystories-656k');

test('prepareDataset: Alpaca on TinyStories-656K counts the <unk> that `###` becomes, from the template text', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-mask-'));
  const file = join(dir, 'two.json');
  writeFileSync(file, JSON.stringify([{ instruction: 'Say hi.', input: '', output: 'Hi.' }, { instruction: 'Add.', input: '1 and 2', output: '3' }]));
  const p = await prepareDataset({ data: file, tokenizer: tinystories, template: 'alpaca', split: false });
  assert.ok(p.summary.unkTokens > 0);
  assert.equal(p.summary.unkExamples, 2);
  assert.equal(p.summary.unkExample?.text, '###');
  assert.equal(p.summary.unkExample?.source, 'template');
  assert.deepEqual(p.summary.unkExample?.where, { file, line: 1, record: 0 });
  const plain = await prepareDataset({ data: file, tokenizer: tinystories, template: 'plain', split: false });
  assert.equal(plain.summary.unkTokens, 0);
  assert.equal(formatUnkWarning(plain.summary, file, '<unk>'), undefined);
});

test('prepareDataset: a file where nothing is trainable is a clear error; dropped examples are counted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-mask-'));
  const none = join(dir, 'none.jsonl');
  writeFileSync(none, '{"messages":[{"role":"user","content":"hi"}]}\n{"messages":[{"role":"system","content":"s"}]}\n');
  await assert.rejects(
    prepareDataset({ data: none, tokenizer: gpt2, template: 'alpaca' }),
    /none\.jsonl: no example has a trained token left \(kept 0\/2, dropped 2 \(no-trained-tokens 2\)/,
  );
  const some = join(dir, 'some.jsonl');
  const long = 'word '.repeat(200);
  writeFileSync(some, [{ instruction: 'a', output: 'b' }, { instruction: long, output: 'c' }, { instruction: 'd', output: 'e' }].map((r) => JSON.stringify(r)).join('\n'));
  const d = await prepareDataset({ data: some, tokenizer: gpt2, maxLength: 64, split: false });
  assert.equal(d.train.length, 2);
  assert.equal(d.summary.dropped['truncated-away'], 1);
  await assert.rejects(prepareDataset({ data: join(dir, 'empty.json'), tokenizer: gpt2 }), /cannot read data file/);
  writeFileSync(join(dir, 'empty.json'), '');
  await assert.rejects(prepareDataset({ data: join(dir, 'empty.json'), tokenizer: gpt2 }), /holds no records/);
});

test('pad == eos: the EOS after a response is a target (alpaca appends it), GPT-2 pads with the same id', async () => {
  const tok = await loadTokenizer(gpt2);
  const d = await prepareDataset({ data: join(import.meta.dirname, '..', '..', 'fixtures', 'data', 'instruction-data.json'), tokenizer: tok, limit: 4, split: false });
  for (const e of d.train) {
    const n = e.inputIds.length;
    assert.equal(e.inputIds[n - 1], tok.eosId);
    assert.equal(e.labels[n - 1], tok.eosId, 'the final EOS is trained');
    assert.equal(tok.padId, tok.eosId);
  }
});

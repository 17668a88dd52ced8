// Pretraining data: text records are trained on every token (BOS and EOS per the tokenizer), long texts are split
// into row-sized pieces overlapping by one token (every target trained exactly once), and packing is the default.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { collatePacked } from '../../../src/collate/batch.ts';
import { prepareDataset } from '../../../src/index.ts';
import { countTrained, splitLongExample } from '../../../src/mask/tokenize-with-mask.ts';
import { parseTrainArgs, resolvePacking } from '../../../src/training/options.ts';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');
const TOKENIZER = join(fixtures, 'tokenizers', 'tinystories-656k');
const dir = mkdtempSync(join(tmpdir(), 'sftkit-pretrain-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ex = (n: number) => ({ inputIds: Int32Array.from({ length: n }, (_, i) => 100 + i), labels: Int32Array.from({ length: n }, (_, i) => 100 + i) });

test('splitLongExample: pieces of maxLength overlapping by one token; every target in exactly one piece', () => {
  for (const [n, L] of [[10, 4], [7, 4], [4, 4], [11, 2], [3, 8]] as const) {
    const pieces = splitLongExample({ ...ex(n), record: 3 }, L);
    assert.ok(pieces.every((p) => p.inputIds.length <= L && p.record === 3));
    // Targets of a piece: its tokens after the first. Together: tokens 1..n-1 of the document, once each.
    const targets = pieces.flatMap((p) => Array.from(p.inputIds.subarray(1)));
    assert.deepEqual(targets, Array.from({ length: n - 1 }, (_, i) => 101 + i), `n ${n}, L ${L}`);
    assert.equal(pieces.reduce((s, p) => s + countTrained(p.labels), 0), n - 1);
  }
  // A piece with no trained target is dropped (prompt-only tail of a masked example).
  const masked = { inputIds: Int32Array.from([1, 2, 3, 4, 5]), labels: Int32Array.from([-100, 2, 3, -100, -100]) };
  assert.deepEqual(splitLongExample(masked, 3).map((p) => Array.from(p.inputIds)), [[1, 2, 3]]);
  assert.throws(() => splitLongExample(ex(5), 1), /an integer >= 2 for maxLength/);
});

test('text records: every token trained, BOS first and EOS after each document; long ones split, packing default on', async () => {
  const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
  const data = join(dir, 'text.jsonl');
  writeFileSync(data, [{ text: 'Once upon a time there was a cat.' }, { text: long }, { text: 'The end.' }].map((r) => JSON.stringify(r)).join('\n'));
  const d = await prepareDataset({ data, tokenizer: TOKENIZER, maxLength: 16, truncation: 'auto', split: false });
  assert.equal(d.format, 'text');
  assert.equal(d.mask, 'pretrain');
  const [bos, eos] = [d.tokenizer.prefixIds[0], d.tokenizer.eosId];
  assert.equal(bos, 1);
  const docs = d.train.filter((e) => e.record !== 1);
  for (const e of docs) {
    // Every token after BOS is a label (BOS itself is never a target: it predicts from nothing).
    assert.deepEqual(Array.from(e.labels.subarray(1)), Array.from(e.inputIds.subarray(1)), 'every token is a label');
    assert.equal(e.inputIds[0], bos);
    assert.equal(e.inputIds.at(-1), eos);
  }
  const pieces = d.train.filter((e) => e.record === 1);
  assert.ok(pieces.length >= 3, `the long text becomes pieces: ${pieces.length}`);
  assert.ok(pieces.every((p) => p.inputIds.length <= 16));
  assert.equal(pieces[0]?.inputIds[0], bos);
  assert.equal(pieces.at(-1)?.inputIds.at(-1), eos);
  for (let i = 1; i < pieces.length; i++) assert.equal(pieces[i]?.inputIds[0], pieces[i - 1]?.inputIds.at(-1), 'one token of overlap');
  // Without `auto` (e.g. --no-packing) the long text is cut at maxLength as before.
  const cut = await prepareDataset({ data, tokenizer: TOKENIZER, maxLength: 16, split: false });
  assert.equal(cut.train.length, 3);
  // Packed rows: documents end to end, each first label masked, attention kept per document (docLengths).
  const row = collatePacked([docs], { padId: d.tokenizer.padId });
  assert.deepEqual(Array.from(row.docLengths?.[0] ?? []), docs.map((e) => e.inputIds.length));
  assert.equal(row.labelTokens, docs.reduce((s, e) => s + e.inputIds.length - 1, 0));
  // The option: packing unset is on for pretraining masks, off otherwise; an explicit choice wins.
  const o = parseTrainArgs(['--model', 'm', '--data', data, '--out', 'o', '--format', 'text']);
  assert.equal(o.packing, undefined);
  assert.equal(resolvePacking(o.packing, 'pretrain'), true);
  assert.equal(resolvePacking(undefined, 'all'), true);
  assert.equal(resolvePacking(undefined, 'completion'), false);
  assert.equal(resolvePacking(false, 'pretrain'), false);
  assert.equal(resolvePacking(true, 'assistant'), true);
});

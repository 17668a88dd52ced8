// Parquet / CSV / TSV parity: the tokenized dataset (input ids and labels, exact) of every fixture written by pyarrow
// (snappy, zstd, gzip, brotli, a nested messages column, nulls, several row groups) and by Python's csv module
// (scripts/gen-fixtures/tabular.py) equals the one from the same records as JSONL, through prepareDataset (SFT) and
// preparePreferencePairs (DPO). No addon needed.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { prepareDataset, type PreparedDataset, type TokenizedExample } from '../../src/index.ts';
import { preparePreferencePairs } from '../../src/training/preference.ts';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const TAB = join(fixtures, 'data', 'tabular');
const GPT2 = join(fixtures, 'tokenizers', 'gpt2');
const MINIMIND = join(fixtures, 'tokenizers', 'minimind');

const tokens = (xs: readonly TokenizedExample[]) => xs.map((e) => ({ ids: Array.from(e.inputIds), labels: Array.from(e.labels), record: e.record }));

async function sft(data: string, tokenizer: string): Promise<PreparedDataset> {
  return prepareDataset({ data, tokenizer, split: false });
}

test('Alpaca records from Parquet (4 codecs), CSV and TSV tokenize exactly as from JSONL', async () => {
  const reference = await sft(join(TAB, 'alpaca.jsonl'), GPT2);
  assert.equal(reference.format, 'alpaca');
  assert.equal(reference.train.length, 24);
  assert.ok(reference.train.some((e) => e.labels.includes(-100)) && reference.train.every((e) => e.labels.some((l) => l !== -100)));
  for (const name of ['alpaca-snappy.parquet', 'alpaca-zstd.parquet', 'alpaca-gzip.parquet', 'alpaca-brotli.parquet', 'alpaca.csv', 'alpaca.tsv']) {
    const p = await sft(join(TAB, name), GPT2);
    assert.equal(p.format, 'alpaca', name);
    assert.equal(p.templateId, reference.templateId, name);
    assert.deepEqual(tokens(p.train), tokens(reference.train), name);
    assert.deepEqual(p.summary, reference.summary, name);
  }
});

test('a chat dataset with a list<struct<role, content>> messages column tokenizes exactly as its JSONL', async () => {
  const reference = await sft(join(TAB, 'chat.jsonl'), MINIMIND);
  const p = await sft(join(TAB, 'chat.parquet'), MINIMIND);
  assert.equal(p.format, 'chat');
  assert.equal(p.templateId, reference.templateId);
  assert.equal(p.train.length, 5);
  assert.deepEqual(tokens(p.train), tokens(reference.train));
});

test('a dataset directory (Parquet shards; CSV + TSV + JSONL) gives the splits of the same JSONL records', async () => {
  const reference = tokens((await sft(join(TAB, 'alpaca.jsonl'), GPT2)).train);
  const slice = (a: number, b: number) => reference.slice(a, b).map((e, i) => ({ ...e, record: i }));
  for (const dir of ['hf-dataset', 'csv-dataset']) {
    const p = await prepareDataset({ data: join(TAB, dir), tokenizer: GPT2 });
    const trainEnd = dir === 'hf-dataset' ? 20 : 16;
    assert.deepEqual(tokens(p.train), reference.slice(0, trainEnd), dir);
    assert.deepEqual(tokens(p.val), slice(trainEnd, dir === 'hf-dataset' ? 22 : 20), dir);
    assert.deepEqual(tokens(p.test), slice(dir === 'hf-dataset' ? 22 : 20, 24), dir);
  }
});

test('preference pairs from Parquet and CSV give DPO the chosen / rejected ids and labels of the JSONL', async () => {
  const read = (name: string) => preparePreferencePairs({ data: join(TAB, name), tokenizer: GPT2, template: 'alpaca' });
  const reference = await read('preference.jsonl');
  assert.equal(reference.pairs.length, 12);
  const pairs = (d: typeof reference) =>
    d.pairs.map((p) => [tokens([p.chosen])[0], tokens([p.rejected])[0], p.record]);
  for (const name of ['preference.parquet', 'preference.csv']) {
    const p = await read(name);
    assert.equal(p.templateId, reference.templateId, name);
    assert.deepEqual(pairs(p), pairs(reference), name);
  }
});

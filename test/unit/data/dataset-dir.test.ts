// Dataset directories (--data DIR): files sorted into train / validation / test by name as Hugging Face `datasets`
// names them, shards read in order as one dataset, the directory's val/test files as the val/test splits of
// prepareDataset unless --val-data / --test-data are given, the split files of a run; and .parquet / .csv URLs.

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { prepareDataset } from '../../../src/index.ts';
import {
  cachedPathFor,
  directorySplit,
  loadExamples,
  openDataset,
  readDatasetDirectory,
  readRecords,
  splitOfPath,
  type DataFiles,
  type RawRecord,
} from '../../../src/data/index.ts';
import { writeSplitFiles } from '../../../src/training/split-files.ts';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');
const TAB = join(fixtures, 'data', 'tabular');
const HF = join(TAB, 'hf-dataset');
const CSVDIR = join(TAB, 'csv-dataset');
const GPT2 = join(fixtures, 'tokenizers', 'gpt2');
const tmp = mkdtempSync(join(tmpdir(), 'sftkit-dataset-dir-'));
const ALPACA = readFileSync(join(TAB, 'alpaca.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const blankNull = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v ?? '']));

async function all(source: string | DataFiles, split?: 'train' | 'validation' | 'test'): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  for await (const r of readRecords(source, split ? { split } : {})) out.push(r);
  return out;
}

function dir(name: string, files: Record<string, string>): string {
  const d = join(tmp, name);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(d, f, '..'), { recursive: true });
    writeFileSync(join(d, f), text);
  }
  return d;
}

test('split names come from the first word of the path that names one, as `datasets` names them', () => {
  const cases: [string, string | undefined][] = [
    ['train.csv', 'train'],
    ['training.jsonl', 'train'],
    ['data/train-00000-of-00002.parquet', 'train'],
    ['validation.parquet', 'validation'],
    ['val.jsonl', 'validation'],
    ['valid.tsv', 'validation'],
    ['dev.json', 'validation'],
    ['data/validation-00000-of-00001.parquet', 'validation'],
    ['test.jsonl', 'test'],
    ['eval/part-0.parquet', 'test'],
    ['alpaca_test_v2.csv', 'test'],
    ['Train.CSV', 'train'],
    ['constraint.csv', undefined],
    ['data/part-00000.parquet', undefined],
    ['latest.jsonl', undefined],
  ];
  for (const [path, split] of cases) assert.equal(splitOfPath(path), split, path);
});

test('the hub layout: data/train-0000k-of-00002.parquet shards in order, validation and test, README ignored', async () => {
  const d = await readDatasetDirectory(HF);
  assert.equal(d.named, true);
  assert.deepEqual(
    Object.fromEntries(Object.entries(d.splits).map(([s, f]) => [s, f.files.map((p) => relative(HF, p))])),
    {
      train: ['data/train-00000-of-00002.parquet', 'data/train-00001-of-00002.parquet'],
      validation: ['data/validation-00000-of-00001.parquet'],
      test: ['data/test-00000-of-00001.parquet'],
    },
  );
  // The shards read as one dataset: records numbered on, rows counted per file.
  const train = await all(HF);
  assert.deepEqual(train.map((r) => r.value), ALPACA.slice(0, 20));
  assert.deepEqual(train.map((r) => r.where.record), [...Array(20).keys()]);
  assert.deepEqual(train.slice(11, 13).map((r) => [relative(HF, r.where.file), r.where.line]), [
    ['data/train-00000-of-00002.parquet', 12],
    ['data/train-00001-of-00002.parquet', 1],
  ]);
  assert.deepEqual((await all(HF, 'validation')).map((r) => r.value), ALPACA.slice(20, 22));
  assert.deepEqual((await all(HF, 'test')).map((r) => [r.value, r.where.record]), ALPACA.slice(22).map((v, i) => [v, i]));
});

test('mixed formats per split and `val` naming: train.csv, val.tsv, test.jsonl', async () => {
  const d = await readDatasetDirectory(CSVDIR);
  assert.deepEqual(Object.keys(d.splits), ['train', 'validation', 'test']);
  assert.deepEqual((await all(CSVDIR)).map((r) => r.value), ALPACA.slice(0, 16).map(blankNull));
  assert.deepEqual((await all(CSVDIR, 'validation')).map((r) => r.value), ALPACA.slice(16, 20).map(blankNull));
  assert.deepEqual((await all(CSVDIR, 'test')).map((r) => r.value), ALPACA.slice(20));
  const opened = await openDataset(CSVDIR);
  assert.equal(opened.displayName, `${CSVDIR} (train split)`);
  assert.deepEqual(opened.files, [join(CSVDIR, 'train.csv')]);
  assert.equal((await openDataset(CSVDIR, { split: ['test', 'validation', 'train'] })).displayName, `${CSVDIR} (test split)`);
});

test('a directory whose files name no split is all train (and any split asked of it); shards sort numerically', async () => {
  const d = dir('unnamed', {
    'part-10.jsonl': '{"text":"c"}\n',
    'part-2.jsonl': '{"text":"b"}\n',
    'part-1.jsonl': '{"text":"a"}\n',
    'dataset_info.json': '{"description":"not data"}',
    '.cache/x.jsonl': '{"text":"hidden"}\n',
  });
  const info = await readDatasetDirectory(d);
  assert.equal(info.named, false);
  assert.deepEqual(Object.keys(info.splits), ['train']);
  assert.deepEqual((await all(d)).map((r) => (r.value as { text: string }).text), ['a', 'b', 'c']);
  const val = await directorySplit(d, 'validation');
  assert.equal(val.files.length, 3);
  assert.equal(val.displayName, `${d} (validation split)`);
});

test('directory errors: no data files (with a hint for .arrow), several formats in a split, a missing split', async () => {
  await assert.rejects(openDataset(dir('empty', { 'README.md': '# x' })), /empty: no data files \(\.parquet, \.csv, \.tsv, \.json, \.jsonl\)/);
  await assert.rejects(openDataset(dir('arrow', { 'train/data-00000-of-00001.arrow': 'x', 'train/state.json': '{}' })), /save_to_disk\) are not read: write Parquet/);
  await assert.rejects(
    openDataset(dir('mixed', { 'train.jsonl': '{"text":"a"}\n', 'train.csv': 'text\nb\n' })),
    /mixed: the train split has files in several formats \(train\.csv, train\.jsonl\)/,
  );
  const onlyTest = dir('only-test', { 'test.jsonl': '{"text":"a"}\n' });
  await assert.rejects(openDataset(onlyTest), /only-test: no train split in this dataset directory \(found test: test\.jsonl\)/);
  assert.equal((await loadExamples(onlyTest, { split: ['test', 'validation', 'train'] })).examples.length, 1);
  await assert.rejects(openDataset(onlyTest, { split: 'nope' as never }), /Expected one of train, validation, test/);
});

test('prepareDataset on a directory: its validation/test files are the val/test splits, --val-data still wins', async () => {
  const base = { tokenizer: GPT2, split: { val: 0.5, test: 0.25, train: 0.25, seed: 1 } } as const;
  const p = await prepareDataset({ ...base, data: HF });
  assert.deepEqual([p.train.length, p.val.length, p.test.length], [20, 2, 2], 'the directory decides, not the split fractions');
  assert.equal(p.format, 'alpaca');
  assert.equal((p.sources.valData as DataFiles).split, 'validation');
  assert.deepEqual(p.train.map((e) => e.record), [...Array(20).keys()]);
  // --val-data replaces the directory's validation files; its test files stay.
  const valFile = join(tmp, 'val.jsonl');
  writeFileSync(valFile, ALPACA.slice(0, 5).map((r) => JSON.stringify(r)).join('\n'));
  const q = await prepareDataset({ ...base, data: HF, valData: valFile });
  assert.deepEqual([q.train.length, q.val.length, q.test.length], [20, 5, 2]);
  assert.equal(q.sources.valData, valFile);
  // --val-data can be a directory too (its validation split).
  const r = await prepareDataset({ ...base, data: CSVDIR, testData: HF });
  assert.deepEqual([r.train.length, r.val.length, r.test.length], [16, 4, 2]);
  // A directory of train files only is split as a file is.
  const trainOnly = join(tmp, 'train-only');
  mkdirSync(join(trainOnly, 'data'), { recursive: true });
  for (const f of ['train-00000-of-00002.parquet', 'train-00001-of-00002.parquet']) copyFileSync(join(HF, 'data', f), join(trainOnly, 'data', f));
  const s = await prepareDataset({ ...base, data: trainOnly });
  assert.equal(s.train.length + s.val.length + s.test.length, 20);
  assert.ok(s.val.length > 0 && s.test.length > 0);
  // The split files of a run hold the source records of each split, from every shard.
  const out = join(tmp, 'split-files');
  await writeSplitFiles(out, p);
  const lines = (name: string) => readFileSync(join(out, `${name}.jsonl`), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines('train'), ALPACA.slice(0, 20));
  assert.deepEqual(lines('val'), ALPACA.slice(20, 22));
  assert.deepEqual(lines('test'), ALPACA.slice(22));
});

let base = '';
const server = createServer((req, res) => {
  const file = { '/d/alpaca.csv': 'alpaca.csv', '/d/train.parquet?download=true': 'alpaca-zstd.parquet', '/d/data': 'alpaca-snappy.parquet' }[req.url ?? ''];
  if (file === undefined) {
    res.writeHead(404);
    res.end();
    return;
  }
  res.writeHead(200);
  res.end(readFileSync(join(TAB, file)));
});
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

test('.csv and .parquet URLs are read from the cached copy (a query string or no extension is fine)', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'sftkit-url-'));
  const csv = await loadExamples(`${base}/d/alpaca.csv`, { cacheDir });
  assert.equal(csv.examples.length, 24);
  assert.equal(csv.examples[1]?.where.file, `${base}/d/alpaca.csv`);
  assert.equal((await loadExamples(`${base}/d/train.parquet?download=true`, { cacheDir })).examples.length, 24);
  assert.equal((await loadExamples(`${base}/d/data`, { cacheDir })).examples.length, 24, 'sniffed by its PAR1 magic');
  // A long name keeps its extension in the cache.
  const long = cachedPathFor(`https://example.org/${'x'.repeat(200)}.parquet`, cacheDir);
  assert.match(long, /x{50,}\.parquet$/);
});

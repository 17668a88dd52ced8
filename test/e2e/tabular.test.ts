// The CLI on Parquet, CSV and dataset-directory inputs (the fixtures of scripts/gen-fixtures/tabular.py) with the
// shipped model: train a few steps (a directory's validation/test files are the val/test splits), eval --json (the
// same numbers as the JSONL), inspect --json (the same ids and labels), dpo on preference pairs from Parquet and
// dpo --eval-only on CSV.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');
const MODEL = join(root, 'test', 'fixtures', 'models', 'tinystories-656k');
const TAB = join(root, 'test', 'fixtures', 'data', 'tabular');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-tabular-e2e-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function sftkit(args: string[]) {
  return spawnSync(process.execPath, [join(root, 'bin', 'sftkit.js'), ...args], {
    cwd: scratch,
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, SFTKIT_CACHE_DIR: join(scratch, 'cache') },
  });
}

const lines = (path: string) => readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

test('sftkit train on a Parquet file, and on a dataset directory whose validation/test files are the splits', () => {
  const out = join(scratch, 'parquet-run');
  const r = sftkit(['train', '--model', MODEL, '--data', join(TAB, 'alpaca-snappy.parquet'), '--out', out, '--max-steps', '3', '--batch-size', '4', '--max-length', '128', '--threads', '2']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout.trim().split('\n').pop() as string).steps, 3);
  assert.match(r.stderr, /alpaca data, template alpaca, mask completion/);
  const split = ['train', 'val', 'test'].flatMap((s) => lines(join(out, 'data', `${s}.jsonl`)));
  assert.equal(split.length, 24, 'the split files hold the Parquet records as JSON');
  assert.ok(split.some((rec) => rec.input === null), 'a Parquet null stays null');

  const dirOut = join(scratch, 'dir-run');
  const d = sftkit(['train', '--model', MODEL, '--data', join(TAB, 'hf-dataset'), '--out', dirOut, '--max-steps', '2', '--batch-size', '4', '--max-length', '128', '--threads', '2']);
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stderr, /20 train \/ 2 val \/ 2 test examples/);
  const alpaca = lines(join(TAB, 'alpaca.jsonl'));
  assert.deepEqual(lines(join(dirOut, 'data', 'val.jsonl')), alpaca.slice(20, 22));
  assert.deepEqual(lines(join(dirOut, 'data', 'test.jsonl')), alpaca.slice(22));
  // A run's data/ folder is itself a dataset directory (train.jsonl, val.jsonl, test.jsonl).
  const again = sftkit(['train', '--model', MODEL, '--data', join(dirOut, 'data'), '--out', join(scratch, 'again'), '--max-steps', '1', '--batch-size', '4', '--max-length', '128', '--threads', '2']);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /20 train \/ 2 val \/ 2 test examples/);
});

test('sftkit eval --json and inspect --json give the numbers of the JSONL for CSV, TSV and Parquet', () => {
  const evalJson = (data: string) => {
    const r = sftkit(['eval', '--model', MODEL, '--data', data, '--json', '--threads', '2']);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { loss: number; examples: number; tokens: number };
  };
  const reference = evalJson(join(TAB, 'alpaca.jsonl'));
  assert.equal(reference.examples, 24);
  assert.deepEqual(evalJson(join(TAB, 'alpaca.csv')), reference);
  // A directory is evaluated on its test files.
  assert.equal(evalJson(join(TAB, 'csv-dataset')).examples, 4);
  const inspect = (data: string) => {
    const r = sftkit(['inspect', '--model', MODEL, '--data', data, '--json']);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const ids = inspect(join(TAB, 'alpaca.jsonl'));
  assert.equal(ids.trim().split('\n').length, 24);
  assert.equal(inspect(join(TAB, 'alpaca-zstd.parquet')), ids);
  assert.equal(inspect(join(TAB, 'alpaca.tsv')), ids);
});

test('sftkit dpo trains on preference pairs from Parquet; --eval-only on CSV equals the JSONL', () => {
  const out = join(scratch, 'dpo');
  const r = sftkit(['dpo', '--model', MODEL, '--data', join(TAB, 'preference.parquet'), '--out', out, '--template', 'alpaca', '--max-steps', '2', '--batch-size', '2', '--lr', '5e-4', '--max-length', '160', '--threads', '2', '--val-split', '0.25', '--test-split', '0']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout.trim().split('\n').pop() as string).steps, 2);
  assert.match(r.stderr, /sftkit dpo: 9 train \/ 3 val \/ 0 test pairs/);
  const evalOnly = (data: string) => {
    const e = sftkit(['dpo', '--model', MODEL, '--data', data, '--eval-only', '--json', '--template', 'alpaca', '--max-length', '160', '--threads', '2']);
    assert.equal(e.status, 0, e.stderr);
    return JSON.parse(e.stdout) as { loss: number; pairs: number };
  };
  const reference = evalOnly(join(TAB, 'preference.jsonl'));
  assert.equal(reference.pairs, 12);
  assert.deepEqual(evalOnly(join(TAB, 'preference.csv')), reference);
});

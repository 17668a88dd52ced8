// Times preparing ch7's instruction-data.json (1100 records) with the GPT-2 tokenizer: load -> alpaca template ->
// per-segment tokenize + mask -> split -> one epoch of padded and of packed batches. Prints one JSON object.
// Run: node --import tsx bench/prepare.ts [--runs N]

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { batches, loadTokenizer, prepareDataset } from '../src/index.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } }, strict: true });
const runs = Number(values.runs);
const root = join(import.meta.dirname, '..');
const data = join(root, 'test', 'fixtures', 'data', 'instruction-data.json');
const tokenizerDir = join(root, 'test', 'fixtures', 'tokenizers', 'gpt2');

const t0 = performance.now();
const tokenizer = await loadTokenizer(tokenizerDir);
const loadMs = performance.now() - t0;

const prepareMs: number[] = [];
const batchMs: number[] = [];
const packMs: number[] = [];
let summary;
for (let i = 0; i < runs; i++) {
  const a = performance.now();
  const d = await prepareDataset({ data, tokenizer });
  prepareMs.push(performance.now() - a);
  summary = { ...d.summary, train: d.train.length, val: d.val.length, test: d.test.length };
  const b = performance.now();
  let n = 0;
  for (const batch of batches(d.train, { batchSize: 8, padId: tokenizer.padId, seed: i })) n += batch.shape[0];
  batchMs.push(performance.now() - b);
  const c = performance.now();
  for (const batch of batches(d.train, { batchSize: 8, padId: tokenizer.padId, seed: i, packing: true, maxLength: 1024 })) n += batch.shape[0];
  packMs.push(performance.now() - c);
}
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)] as number;
const round = (x: number) => Math.round(x * 10) / 10;
console.log(
  JSON.stringify({
    bench: 'prepare',
    data: 'instruction-data.json',
    records: 1100,
    tokenizer: 'gpt2',
    runs,
    tokenizerLoadMs: round(loadMs),
    prepareMsMedian: round(median(prepareMs)),
    prepareMsFirst: round(prepareMs[0] as number),
    epochBatchesMsMedian: round(median(batchMs)),
    epochPackedBatchesMsMedian: round(median(packMs)),
    targetMs: 1000,
    pass: (prepareMs[0] as number) < 1000,
    summary,
    node: process.version,
  }),
);

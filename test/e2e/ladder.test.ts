// Beyond SFT on the shipped TinyStories-656K: pretraining on text (packed, loss falls), DPO training (reward accuracy
// rises, the reference log-probs are cached and reused on resume, resume continues exactly), logit-level distillation
// into a one-layer student (KL falls; a tokenizer mismatch is a clear error) and sequence-level distillation data
// (sftkit distill: batched, resumable).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { truncateLayers } from '../../src/convert/truncate-layers.ts';
import { distillDataset } from '../../src/generate/distill-data.ts';
import { loadModel, type Model } from '../../src/native/model.ts';
import { trainDpo } from '../../src/recipes/dpo.ts';
import { readMetrics, type MetricRecord } from '../../src/report/metrics.ts';
import { train } from '../../src/recipes/sft.ts';

const root = join(import.meta.dirname, '..', '..');
const MODEL = join(root, 'test', 'fixtures', 'models', 'tinystories-656k');
const PREFERENCE = join(root, 'test', 'fixtures', 'data', 'instruction-data-with-preference-24.json');
const INSTRUCTIONS = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'data', 'instruction-data.json'), 'utf8')) as { instruction: string; input: string; output: string }[];
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-ladder-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const quiet = { progress: { write: () => true }, log: () => {}, handleSignals: false };
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const trainRecords = (out: string): MetricRecord[] => readMetrics(join(out, 'metrics.jsonl')).filter((r) => r.type === 'train');

test('pretraining: --format text packs rows by default and the loss falls', async () => {
  const data = join(scratch, 'text.jsonl');
  writeFileSync(data, INSTRUCTIONS.slice(0, 150).map((r) => JSON.stringify({ text: r.output })).join('\n'));
  const lines: string[] = [];
  const out = join(scratch, 'pretrain');
  const r = await train({ model: MODEL, data, out, format: 'text', maxLength: 64, batchSize: 4, maxSteps: 16, lr: 3e-3, threads: 2, seed: 3 }, { ...quiet, log: (m) => lines.push(m) });
  assert.equal(r.stopped, 'completed');
  assert.ok(lines.some((l) => /mask pretrain, packed rows/.test(l)), lines.join('\n'));
  const recs = trainRecords(out);
  const losses = recs.map((x) => x.loss as number);
  assert.ok(mean(losses.slice(-4)) < mean(losses.slice(0, 4)) - 0.3, `loss did not fall: ${losses.map((x) => x.toFixed(2)).join(' ')}`);
  // Packed rows of 64 tokens: 4 rows of nearly full length per step.
  assert.ok(mean(recs.map((x) => x.labelTokens as number)) > 4 * 50, `rows are not full: ${recs.map((x) => x.labelTokens).join(' ')}`);
});

test('DPO: reward accuracy rises, the reference log-probs are cached, and resume continues exactly', async () => {
  const o = { model: MODEL, data: PREFERENCE, template: 'alpaca', batchSize: 4, lr: 5e-4, threads: 2, valSplit: 0.25, testSplit: 0, maxSteps: 8, saveEvery: 4, seed: 5 };
  const full = join(scratch, 'dpo-full');
  const r = await trainDpo({ ...o, out: full }, quiet);
  assert.equal(r.stopped, 'completed');
  assert.deepEqual(r.examples, { train: 18, val: 6, test: 0, dropped: 0 });
  const recs = readMetrics(join(full, 'metrics.jsonl'));
  const tr = recs.filter((x) => x.type === 'train');
  for (const k of ['loss', 'rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins', 'pairs']) assert.ok(k in (tr[0] as object), `${k} missing`);
  const val = recs.filter((x) => x.type === 'val');
  assert.ok(Math.abs((val[0]?.loss as number) - Math.log(2)) < 1e-6, 'before training the policy is the reference: loss ln 2');
  assert.equal(val[0]?.['rewards/accuracies'], 0);
  assert.ok(mean(tr.slice(-3).map((x) => x['rewards/accuracies'] as number)) >= 0.75, 'train reward accuracy');
  assert.ok(mean(tr.slice(-3).map((x) => x['rewards/margins'] as number)) > 0, 'margins grow');
  assert.ok((val.at(-1)?.loss as number) < Math.log(2), `val loss ${val.at(-1)?.loss}`);
  assert.ok(readdirSync(full).some((f) => /^ref_logps-[0-9a-f]+\.json$/.test(f)));
  for (const f of ['model.safetensors', 'tokenizer.json', 'loss.svg', 'rewards.svg', 'rewards.png', 'data/train.jsonl']) assert.ok(existsSync(join(full, f)), `${f} missing`);
  // Interrupted after 4 steps, then resumed: the cached reference log-probs are reused and the losses are the same.
  const part = join(scratch, 'dpo-resumed');
  const stop = new AbortController();
  const first = await trainDpo({ ...o, out: part }, { ...quiet, signal: stop.signal, onStep: (m) => m.step === 4 && stop.abort() });
  assert.equal(first.stopped, 'interrupted');
  const lines: string[] = [];
  await trainDpo({ ...o, out: part, resume: true }, { ...quiet, log: (m) => lines.push(m) });
  assert.ok(lines.some((l) => /reference log-probs from .*ref_logps-/.test(l)), lines.join('\n'));
  // Alpaca's `###` is <unk> to this tokenizer: said once for the data file, with the count and where.
  assert.equal(lines.filter((l) => /^sftkit dpo: warning: .*: \d+ unknown tokens? \(<unk>\) in \d+ of \d+ examples, e\.g\. "###" from the template text/.test(l)).length, 1, lines.join('\n'));
  const a = tr.map((x) => x.loss as number);
  const b = trainRecords(part).map((x) => x.loss as number);
  assert.equal(b.length, a.length);
  b.forEach((x, i) => assert.ok(Math.abs(x - (a[i] as number)) < 1e-5, `step ${i + 1}: ${x} vs ${a[i]}`));
});

test('sftkit dpo --nproc 2 (global batch of 4 pairs) gives the losses of one process', () => {
  const run = (out: string, extra: string[]) => {
    const args = ['bin/sftkit.js', 'dpo', '--model', MODEL, '--data', PREFERENCE, '--out', out, '--template', 'alpaca', '--max-steps', '3', '--batch-size', '4', '--lr', '5e-4', '--threads', '1', '--val-split', '0.25', '--test-split', '0', ...extra];
    const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return trainRecords(out).map((x) => x.loss as number);
  };
  const one = run(join(scratch, 'dpo-1'), []);
  const two = run(join(scratch, 'dpo-2'), ['--nproc', '2']);
  assert.equal(two.length, 3);
  two.forEach((x, i) => assert.ok(Math.abs(x - (one[i] as number)) < 1e-5, `step ${i + 1}: ${x} vs ${one[i]}`));
});

test('logit-level distillation into a 1-layer student: the KL to the teacher falls; another tokenizer is refused', async () => {
  const student = join(scratch, 'student');
  await truncateLayers(MODEL, student, 1);
  const data = join(scratch, 'sft.json');
  writeFileSync(data, JSON.stringify(INSTRUCTIONS.slice(0, 64)));
  const out = join(scratch, 'kd');
  const r = await train({ model: student, teacher: MODEL, kdAlpha: 0.2, kdTemperature: 2, data, out, template: 'alpaca', maxLength: 160, batchSize: 8, maxSteps: 12, lr: 3e-3, threads: 2 }, quiet);
  assert.equal(r.stopped, 'completed');
  const recs = trainRecords(out);
  const kl = recs.map((x) => x.kl as number);
  assert.ok(kl.every((x) => Number.isFinite(x) && x >= 0));
  assert.ok(mean(kl.slice(-3)) < 0.8 * mean(kl.slice(0, 3)), `KL did not fall: ${kl.map((x) => x.toFixed(3)).join(' ')}`);
  for (const x of recs) assert.ok(Math.abs((x.loss as number) - (0.2 * (x.ce as number) + 0.8 * 4 * (x.kl as number))) < 1e-4, 'loss = A CE + (1 - A) T^2 KL');
  await assert.rejects(
    train({ model: student, teacher: join(root, 'test', 'fixtures', 'models', 'tiny-llama'), data, out: join(scratch, 'kd-bad'), maxSteps: 1 }, quiet),
    (e: Error & { code?: string }) => e.code === 'SFTKIT_BAD_ARGUMENT' && e.message.includes('tiny-llama') && e.message.includes(student) && /do not share the tokenizer/.test(e.message),
  );
});

test('sftkit distill: the teacher answers every prompt into a chat dataset; a crashed run resumes to the same file', async () => {
  const prompts = join(scratch, 'prompts.json');
  writeFileSync(prompts, JSON.stringify(INSTRUCTIONS.slice(200, 210)));
  const out = join(scratch, 'distilled.jsonl');
  const args = ['bin/sftkit.js', 'distill', '--teacher', MODEL, '--prompts', prompts, '--out', out, '--template', 'alpaca', '--max-new-tokens', '12', '--batch-size', '4', '--threads', '2'];
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { prompts: number; written: number; empty: number };
  assert.equal(result.prompts, 10);
  assert.equal(result.written + result.empty, 10);
  const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { messages: { role: string; content: string }[] });
  assert.equal(lines.length, result.written);
  const first = INSTRUCTIONS[200] as { instruction: string; input: string };
  assert.equal(lines[0]?.messages[0]?.role, 'user');
  assert.equal(lines[0]?.messages[0]?.content, first.input ? `${first.instruction}\n\n${first.input}` : first.instruction);
  assert.equal(lines[0]?.messages[1]?.role, 'assistant');
  assert.ok(lines.every((l) => (l.messages.at(-1)?.content.length ?? 0) > 0));
  assert.ok(!existsSync(`${out}.partial`) && !existsSync(`${out}.partial.json`));
  // A crash in the second batch, with half a record written after the last progress record: the rerun continues
  // after the first batch and gives the same file as the uninterrupted run.
  const done = readFileSync(out, 'utf8');
  rmSync(out);
  const model = await loadModel(MODEL, { threads: 2 });
  try {
    let calls = 0;
    const crashing = {
      spec: model.spec,
      generate: (p: Int32Array[], g: object) => (calls++ === 1 ? Promise.reject(new Error('simulated crash')) : model.generate(p, g)),
    } as unknown as Model;
    const o = { teacherDir: MODEL, prompts, out, template: 'alpaca', maxNewTokens: 12, batchSize: 4 };
    await assert.rejects(distillDataset(crashing, o), /simulated crash/);
    assert.ok(!existsSync(out) && existsSync(`${out}.partial`));
    appendFileSync(`${out}.partial`, '{"messages": [{"role": "us');
    const logs: string[] = [];
    const again = await distillDataset(model, { ...o, log: (m) => logs.push(m) });
    assert.equal(again.resumed, 4);
    assert.ok(logs[0]?.includes('resuming'), logs.join('\n'));
    assert.equal(readFileSync(out, 'utf8'), done);
  } finally {
    await model.dispose();
  }
});

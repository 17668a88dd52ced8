// Seed 004's ladder on the shipped TinyStories-656K, every rung with the same machinery and its metric printed:
//   1. pretrain: `{text}` records (the answers of ch7's instruction data), packed rows, every token trained;
//   2. SFT: ch7's instruction data with the Alpaca prompt style;
//   3. DPO: ch7's preference pairs (polite chosen vs impolite rejected) against the SFT model as the reference;
//   4. distillation into a smaller student (the DPO model's first layer, same tokenizer): sequence level (the DPO
//      model answers held-out prompts, `sftkit distill`, the student is fine-tuned on them) and logit level
//      (alpha * CE + (1 - alpha) * T^2 * KL(teacher || student)).
// Run: npm run example:ladder [-- OUT]   (a few minutes on 2 CPU cores)
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { truncateLayers } from '../../src/convert/truncate-layers.ts';
import { evaluateLoss } from '../../src/eval/evaluate.ts';
import { distillDataset } from '../../src/generate/distill-data.ts';
import { loadModel } from '../../src/native/model.ts';
import { trainDpo } from '../../src/recipes/dpo.ts';
import { train } from '../../src/recipes/sft.ts';

const root = join(import.meta.dirname, '..', '..');
const out = process.argv[2] ?? join(root, 'runs', 'ladder');
const MODEL = join(root, 'test', 'fixtures', 'models', 'tinystories-656k');
const INSTRUCTIONS = join(root, 'test', 'fixtures', 'data', 'instruction-data.json');
const PREFERENCES = join(import.meta.dirname, 'instruction-data-with-preference.json');
const started = Date.now();
const quiet = { progress: { write: () => true }, log: () => {} };
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
const f = (x: number | null | undefined, d = 3) => (typeof x === 'number' ? x.toFixed(d) : '-');
await mkdir(out, { recursive: true });
const records = JSON.parse(readFileSync(INSTRUCTIONS, 'utf8')) as { instruction: string; input: string; output: string }[];
// Held out of every rung: the last 100 instructions (the prompts of the distillation rung and its evaluation).
const heldOut = join(out, 'held-out.json');
writeFileSync(heldOut, JSON.stringify(records.slice(-100)));
const sftData = join(out, 'sft.json');
writeFileSync(sftData, JSON.stringify(records.slice(0, -100)));
const recipe = { batchSize: 8, schedule: 'cosine', warmup: 0.05, weightDecay: 0.01, seed: 4, threads: 0 } as const;
/** The records of a run's metrics.jsonl of one type. */
const metrics = (dir: string, type: 'train' | 'val') =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>).filter((r) => (r.type as unknown) === type);
const heldOutLoss = async (dir: string) => {
  const m = await loadModel(dir);
  try {
    return (await evaluateLoss(m, dir, { data: heldOut, template: 'alpaca' })).loss;
  } finally {
    await m.dispose();
  }
};

// 1. Pretraining: documents separated by EOS, packed into full rows of 128 tokens, no attention across documents.
const text = join(out, 'pretrain.jsonl');
writeFileSync(text, records.slice(0, -100).map((r) => JSON.stringify({ text: r.output })).join('\n'));
const pre = await train({ ...recipe, model: MODEL, data: text, out: join(out, '1-pretrain'), format: 'text', maxLength: 128, epochs: 1, lr: 1e-3, testSplit: 0 }, quiet);
const preVal = metrics(pre.out, 'val');
console.log(`1. pretrain (${elapsed()}): ${pre.examples.train} documents in packed rows, ${pre.steps} steps; val loss ${f(preVal[0]?.loss)} -> ${f(pre.lastValLoss)} (perplexity ${f(Math.exp(pre.lastValLoss ?? NaN), 1)})`);

// 2. SFT on the instructions (Alpaca style) from the pretrained model.
const before = await heldOutLoss(pre.out);
const sft = await train({ ...recipe, model: pre.out, data: sftData, out: join(out, '2-sft'), template: 'alpaca', maxLength: 256, epochs: 2, lr: 2e-3, testSplit: 0 }, quiet);
console.log(`2. SFT (${elapsed()}): held-out answer loss ${f(before)} -> ${f(await heldOutLoss(sft.out))}`);

// 3. DPO on the preference pairs; the reference is the SFT model (the starting policy).
const dpo = await trainDpo({ ...recipe, model: sft.out, data: PREFERENCES, out: join(out, '3-dpo'), template: 'alpaca', maxLength: 256, epochs: 1, batchSize: 8, lr: 2e-4, beta: 0.1, valSplit: 0.1, testSplit: 0, evalEvery: 0 }, quiet);
const dpoVal = metrics(dpo.out, 'val');
const [v0, v1] = [dpoVal[0], dpoVal.at(-1)];
console.log(
  `3. DPO (${elapsed()}): held-out pairs: loss ${f(v0?.loss)} -> ${f(v1?.loss)}, reward accuracy ${f(v0?.['rewards/accuracies'], 2)} -> ` +
    `${f(v1?.['rewards/accuracies'], 2)}, margin ${f(v1?.['rewards/margins'])}`,
);

// 4. Distillation into a one-layer student that shares the tokenizer.
const student = join(out, '4-student-init');
const { parameters, sourceParameters } = await truncateLayers(dpo.out, student, 1);
const teacher = await loadModel(dpo.out);
const distilled = join(out, '4-distilled.jsonl');
const d = await distillDataset(teacher, { teacherDir: dpo.out, prompts: sftData, limit: 300, out: distilled, template: 'alpaca', maxNewTokens: 64, batchSize: 16 }).finally(() => teacher.dispose());
const seq = await train({ ...recipe, model: student, data: distilled, out: join(out, '4a-seq-distill'), template: 'alpaca', maxLength: 256, epochs: 2, lr: 2e-3, testSplit: 0 }, quiet);
const kd = await train({ ...recipe, model: student, teacher: dpo.out, kdAlpha: 0.5, kdTemperature: 2, data: sftData, out: join(out, '4b-logit-distill'), template: 'alpaca', maxLength: 256, epochs: 1, lr: 2e-3, testSplit: 0 }, quiet);
const kdTrain = metrics(kd.out, 'train');
console.log(
  `4. distill (${elapsed()}): student of ${parameters} parameters (teacher ${sourceParameters}); ` +
    `held-out answer loss: student ${f(await heldOutLoss(student))}, teacher ${f(await heldOutLoss(dpo.out))}`,
);
console.log(`   a. sequence level: ${d.written} teacher answers -> student held-out loss ${f(await heldOutLoss(seq.out))}`);
console.log(
  `   b. logit level: KL(teacher || student) ${f(kdTrain[0]?.kl)} -> ${f(kdTrain.at(-1)?.kl)} per token, ` +
    `student held-out loss ${f(await heldOutLoss(kd.out))}`,
);
console.log(`ladder done in ${elapsed()}; runs in ${out}`);

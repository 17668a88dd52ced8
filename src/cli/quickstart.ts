// `sftkit quickstart` (npm start): the main job on the shipped defaults — fine-tune the real TinyStories-656K model
// on ch7's instruction-data.json with the Alpaca prompt style, then answer a few held-out instructions.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createPipeline } from '../pipeline/index.ts';
import { promptIds, stopIdsFor, replyText } from '../generate/index.ts';
import { loadModel } from '../native/index.ts';
import { shippedDataFile, shippedModelDir } from '../shipped.ts';
import { train } from '../recipes/sft.ts';
import { validateTrainOptions } from '../training/index.ts';
import { commandOptions, opt } from '../options/index.ts';
import { optionsCommand } from './command.ts';

export const QUICKSTART_MODEL = shippedModelDir;
export const QUICKSTART_DATA = shippedDataFile;

/** The quick start's training recipe for the 656K model (also used by examples/ch7). */
export const TINY_MODEL_RECIPE = {
  batchSize: 8,
  lr: 2e-3,
  schedule: 'cosine',
  warmup: 0.05,
  weightDecay: 0.01,
  maxLength: 256,
  evalEvery: 40,
} as const;

const quickstartOptions = commandOptions({
  command: 'quickstart',
  shape: {
    out: opt.string('output directory', { placeholder: 'DIR' }).default('runs/quickstart'),
    epochs: opt.int('passes over the training split', { min: 1 }).default(3),
    answers: opt.int('held-out instructions to answer at the end', { min: 0 }).default(3),
  },
});

export const quickstartCommand = optionsCommand({
  options: quickstartOptions,
  summary: 'fine-tune the shipped tiny model on the shipped data, then answer a few instructions (npm start)',
  about: `Usage: sftkit quickstart [--out DIR] [--epochs N] [--answers N]

Fine-tunes the shipped TinyStories-656K (a real 656K-parameter Llama) on the shipped instruction-data.json
(1100 Alpaca records, LLMs-from-scratch ch. 7) with the Alpaca prompt style, writes the model, metrics.jsonl and
loss curves into --out (default runs/quickstart), then answers a few held-out instructions.

`,
  async run(values, io) {
    const out = resolve(values.out);
    const options = validateTrainOptions({
      model: QUICKSTART_MODEL,
      data: QUICKSTART_DATA,
      out,
      epochs: values.epochs,
      ...TINY_MODEL_RECIPE,
      logEvery: 10,
      seed: 42,
    });
    io.stderr.write(`sftkit quickstart: fine-tuning ${QUICKSTART_MODEL}\n  on ${QUICKSTART_DATA}\n  into ${out}\n`);
    const result = await train(options, { progress: io.stderr, log: (m) => io.stderr.write(`${m}\n`) });
    if (result.stopped !== 'completed') return 130;
    io.stdout.write(
      `\nTrained ${result.steps} steps on ${result.examples.train} examples: train loss ${result.lastTrainLoss?.toFixed(3)}, ` +
        `validation loss ${result.lastValLoss?.toFixed(3)} (best ${result.bestValLoss?.toFixed(3)}).\n` +
        `Model, metrics.jsonl and loss.svg/loss.png are in ${out}\n\n`,
    );
    // Answer a few held-out instructions with the fine-tuned model.
    const count = values.answers;
    const test = readFileSync(join(out, 'data', 'test.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, count);
    const { pipeline } = await createPipeline('alpaca', { tokenizer: out, template: 'alpaca' });
    const model = await loadModel(out);
    try {
      const stopIds = stopIdsFor(pipeline.tokenizer, model.spec.eosTokenIds);
      for (const line of test) {
        const r = JSON.parse(line) as { instruction: string; input?: string; output: string };
        const ids = promptIds([{ role: 'user', content: r.instruction, trained: false, ...(r.input ? { input: r.input } : {}) }], pipeline.tokenizer, pipeline.template);
        const [reply] = await model.generate([ids], { maxNewTokens: 64, temperature: 0, stopIds });
        io.stdout.write(
          `### Instruction: ${r.instruction}${r.input ? `\n### Input: ${r.input}` : ''}\n` +
            `### Model:      ${replyText(pipeline.tokenizer, reply ?? [], stopIds)}\n### Reference:  ${r.output}\n\n`,
        );
      }
    } finally {
      await model.dispose();
    }
    io.stdout.write(`Try it: npx sftkit generate --model ${values.out} --template alpaca --prompt "Name a color."\n`);
    return 0;
  },
});

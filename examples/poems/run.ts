// Seed 001's proof that masking works, on the real TinyStories-656K model: fine-tune on a few
// {instruct, input, label} records (plain template, loss on label + EOS only), then show that
//   instruct + input  -> the label, and
//   instruct alone    -> the label too, and never the input (the model never learned to write its prompt).
// Run: npm run example:poems   (about 20 s on 2 CPU cores)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPipeline } from '../../src/index.ts';
import { promptIds, stopIdsFor } from '../../src/generate/prompt.ts';
import { replyText } from '../../src/generate/stream-text.ts';
import { loadModel } from '../../src/native/model.ts';
import { train } from '../../src/recipes/sft.ts';

const here = import.meta.dirname;
const root = join(here, '..', '..');
const out = process.argv[2] ?? join(root, 'runs', 'poems');
const data = join(here, 'data.json');
const records = JSON.parse(readFileSync(data, 'utf8')) as { instruct: string; input: string; label: string }[];

const result = await train({
  model: join(root, 'test', 'fixtures', 'models', 'tinystories-656k'),
  data,
  out,
  format: 'instruct',
  template: 'plain',
  valSplit: 0,
  testSplit: 0,
  epochs: 300,
  batchSize: 6,
  lr: 0.001,
  schedule: 'constant',
  seed: 1,
  logEvery: 50,
});
console.log(`\nfine-tuned ${result.steps} steps, final train loss ${result.lastTrainLoss?.toFixed(4)}\n`);

const { pipeline } = await createPipeline('instruct', { tokenizer: out, template: 'plain' });
const model = await loadModel(out);
const stopIds = stopIdsFor(pipeline.tokenizer, model.spec.eosTokenIds);
const answer = async (instruct: string, input?: string) => {
  const ids = promptIds([{ role: 'user', content: instruct, trained: false, ...(input ? { input } : {}) }], pipeline.tokenizer, pipeline.template);
  const [reply] = await model.generate([ids], { maxNewTokens: 32, temperature: 0, stopIds });
  return replyText(pipeline.tokenizer, reply ?? [], stopIds);
};
let withInput = 0;
let alone = 0;
let echoed = 0;
for (const r of records) {
  const a = await answer(r.instruct, r.input);
  const b = await answer(r.instruct);
  withInput += Number(a === r.label);
  alone += Number(b === r.label);
  echoed += Number(b.includes(r.input) || a.includes(r.input));
  console.log(`${r.instruct}\n  + input  -> ${a}\n  alone    -> ${b}\n  label       ${r.label}\n`);
}
await model.dispose();
console.log(`instruct + input gave the label ${withInput}/${records.length}; instruct alone ${alone}/${records.length}; input echoed ${echoed} times`);
process.exitCode = withInput === records.length && echoed === 0 ? 0 : 1;

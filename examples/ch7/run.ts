// LLMs-from-scratch ch. 7 end to end on the shipped model and data: instruction-data.json with the Alpaca prompt
// style, the book's split (85% train, 10% test, 5% validation), fine-tuning with curves, responses for the test
// set saved as {instruction, input, output, model_response}, and judge scores when a judge is reachable.
// Run: npm run example:ch7 [-- OUT] ; set JUDGE_URL (e.g. a local Ollama at http://127.0.0.1:11434) and
// JUDGE_MODEL (e.g. llama3) to score the responses 0-100 as the book does.
import { join } from 'node:path';
import { evaluateLoss, generateResponses } from '../../src/eval/evaluate.ts';
import { OpenAiJudge, scoreResponses, type ResponseRecord } from '../../src/eval/judge.ts';
import { writeResponsesFile } from '../../src/eval/responses.ts';
import { loadModel } from '../../src/native/model.ts';
import { QUICKSTART_DATA, QUICKSTART_MODEL, TINY_MODEL_RECIPE } from '../../src/cli/quickstart.ts';
import { train } from '../../src/recipes/sft.ts';

const root = join(import.meta.dirname, '..', '..');
const out = process.argv[2] ?? join(root, 'runs', 'ch7');
const result = await train({
  model: QUICKSTART_MODEL,
  data: QUICKSTART_DATA,
  out,
  template: 'alpaca',
  valSplit: 0.05,
  testSplit: 0.1,
  epochs: 3,
  ...TINY_MODEL_RECIPE,
  seed: 123,
});
console.log(`train loss ${result.lastTrainLoss?.toFixed(3)}, val loss ${result.lastValLoss?.toFixed(3)}; curves in ${join(out, 'loss.png')}`);

const model = await loadModel(out);
const testFile = join(out, 'data', 'test.jsonl');
const testLoss = await evaluateLoss(model, out, { data: testFile });
console.log(`test loss ${testLoss.loss.toFixed(3)} (perplexity ${testLoss.perplexity.toFixed(2)}) over ${testLoss.examples} examples`);
const generated = await generateResponses(model, out, { data: testFile, batchSize: 8, generation: { maxNewTokens: 64 } });
await model.dispose();
const records: ResponseRecord[] = generated.map((g) => ({
  instruction: String(g.record.instruction ?? ''),
  input: String(g.record.input ?? ''),
  output: String(g.record.output ?? ''),
  model_response: g.model_response,
}));
const file = join(out, 'test-responses.json');
await writeResponsesFile(file, records);
console.log(`${records.length} responses in ${file}; first:\n  ${records[0]?.instruction}\n  -> ${records[0]?.model_response}`);
if (process.env.JUDGE_URL) {
  const summary = await scoreResponses(records, new OpenAiJudge({ url: process.env.JUDGE_URL, model: process.env.JUDGE_MODEL ?? 'llama3' }));
  console.log(`judge mean score ${summary.mean?.toFixed(2)} over ${summary.scored} responses (${summary.unparseable} unparseable)`);
} else {
  console.log('no JUDGE_URL set: skipping judge scores (set JUDGE_URL and JUDGE_MODEL to an OpenAI-compatible server)');
}

// The deploy path end to end: a model fine-tuned by `sftkit train` (the quick start's recipe: TinyStories-656K on
// ch7's Alpaca instructions, a few steps) exported by `sftkit export --format gguf --modelfile` answers an
// instruction in node-llama-cpp with the same tokens as `sftkit generate --template alpaca --json`; the Modelfile
// names the file and the Alpaca TEMPLATE. And `--adapter`: a LoRA adapter merged at export generates in
// node-llama-cpp as sftkit generates with the adapter applied.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportGguf, readGguf, readGgufTensor } from '../../src/export/index.ts';
import { promptIds } from '../../src/generate/index.ts';
import { loadModel } from '../../src/native/index.ts';
import { createPipeline } from '../../src/pipeline/index.ts';
import { ALPACA_PREAMBLE } from '../../src/template/index.ts';
import { train } from '../../src/recipes/sft.ts';
import { writeTinyTokenizer } from './helpers/tiny-tokenizer.ts';

const root = join(import.meta.dirname, '..', '..');
const models = join(root, 'test', 'fixtures', 'models');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-e2e-deploy-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function sftkit(args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'sftkit.js'), ...args], { cwd: scratch, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `sftkit ${args.join(' ')}:\n${r.stderr}`);
  return r.stdout;
}

function llamaCpp(models: object[]): Array<{ generated: number[]; top1: number[]; tokenized: number[][] }> {
  const job = join(scratch, `job-${Date.now()}.json`);
  writeFileSync(job, JSON.stringify({ threads: 1, models }));
  const r = spawnSync(process.execPath, [join(import.meta.dirname, 'helpers', 'llama-cpp-generate.mjs'), job], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `node-llama-cpp helper failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!).results;
}

test('sftkit train -> sftkit export --format gguf --modelfile -> node-llama-cpp answers as sftkit generate does', async () => {
  const data = join(scratch, 'data.json');
  writeFileSync(data, JSON.stringify(JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'data', 'instruction-data.json'), 'utf8')).slice(0, 64)));
  const run = join(scratch, 'run');
  const quiet = { progress: { write: () => true }, log: () => {}, handleSignals: false };
  await train({ model: join(models, 'tinystories-656k'), data, out: run, maxSteps: 6, batchSize: 8, lr: 5e-3, threads: 2, valSplit: 0, testSplit: 0 }, quiet);

  const out = sftkit(['export', '--format', 'gguf', '--model', run, '--out', join(run, 'model.gguf'), '--modelfile']);
  assert.match(out, /-> .*model\.gguf \(llama, f32, 20 tensors/);
  assert.equal((readGguf(join(run, 'model.gguf')).metadata['tokenizer.ggml.tokens'] as string[]).length, 2048 + 256);
  const modelfile = readFileSync(join(run, 'Modelfile'), 'utf8');
  assert.match(modelfile, /^FROM \.\/model\.gguf$/m);
  assert.match(modelfile, /^TEMPLATE """\{\{ if \.System \}\}\{\{ \.System \}\}\{\{ else \}\}Below is an instruction/m, 'the run trained with alpaca (template auto, alpaca records)');
  assert.match(modelfile, /^PARAMETER stop "<\|end_story\|>"$/m);
  assert.equal(readGguf(join(run, 'model.gguf')).metadata['general.name'], 'run');

  const instruction = 'Name three colors.';
  const answer = JSON.parse(sftkit(['generate', '--model', run, '--prompt', instruction, '--template', 'alpaca', '--json', '--max-new-tokens', '32'])) as { token_ids: number[] };
  const { pipeline } = await createPipeline('alpaca', { tokenizer: run, template: 'alpaca' });
  const ids = promptIds([{ role: 'user', content: instruction, trained: false }], pipeline.tokenizer, pipeline.template);
  const text = `${ALPACA_PREAMBLE}\n\n### Instruction:\n${instruction}\n\n### Response:\n`;
  const [r] = llamaCpp([{ path: join(run, 'model.gguf'), contextSize: 256, prompt: ids, maxTokens: 32, teacherForced: [], texts: [text] }]);
  // llama.cpp's own tokenization of the prompt text (what Ollama's TEMPLATE feeds it): sftkit's ids, except that a
  // run of characters outside TinyStories-656K's vocabulary ('###') is one <unk> in sftkit (Hugging Face fuses
  // unknowns) and one appended byte token per character in llama.cpp (which would abort without them).
  const fused = r!.tokenized[0]!.reduce<number[]>((acc, id) => (id >= 2048 ? (acc.at(-1) === 0 ? acc : [...acc, 0]) : [...acc, id]), []);
  assert.deepEqual([1, ...fused], ids);
  assert.ok(r!.tokenized[0]!.includes(2048 + 0x23), "'#' is the byte token <0x23>");
  // Both stop at the end-of-story token (2): sftkit's token_ids end with it, node-llama-cpp yields what comes before.
  const eos = answer.token_ids.at(-1) === 2;
  const want = eos ? answer.token_ids.slice(0, -1) : answer.token_ids;
  assert.deepEqual(eos ? r!.generated : r!.generated.slice(0, want.length), want);
});

test('--adapter: a LoRA adapter merged at export generates in node-llama-cpp as sftkit does with the adapter applied', async () => {
  const base = join(scratch, 'tiny-llama');
  cpSync(join(models, 'tiny-llama'), base, { recursive: true });
  writeTinyTokenizer(base, 'gpt-2');
  const adapter = join(models, 'tiny-llama-lora');
  const file = join(scratch, 'lora.gguf');
  const res = await exportGguf(base, file, { adapter });
  assert.equal(res.tensors, readGguf(file).tensors.length);
  const plain = join(scratch, 'plain.gguf');
  await exportGguf(base, plain);
  const prompt = [1, 40, 41, 42, 43, 44, 45, 46];
  const model = await loadModel(base, { adapter, threads: 2 });
  const [want] = await model.generate([prompt], { maxNewTokens: 24, temperature: 0 });
  await model.dispose();
  const baseModel = await loadModel(base, { threads: 2 });
  const [without] = await baseModel.generate([prompt], { maxNewTokens: 24, temperature: 0 });
  await baseModel.dispose();
  const [merged, unmerged] = llamaCpp([
    { path: file, contextSize: 64, prompt, maxTokens: 24, teacherForced: [], texts: [] },
    { path: plain, contextSize: 64, prompt, maxTokens: 24, teacherForced: [], texts: [] },
  ]);
  assert.deepEqual(merged!.generated, Array.from(want!));
  assert.deepEqual(unmerged!.generated, Array.from(without!));
  assert.notDeepEqual(Array.from(want!), Array.from(without!), 'the adapter changes the generation');
  assert.equal(existsSync(join(scratch, 'Modelfile')), false);
});

test('RoPE scaling: Llama 3 (rope_freqs.weight), linear and YaRN (metadata): node-llama-cpp generates what transformers 5.18 generated (parity.json of the fixtures)', async () => {
  // The fixtures' parity.json holds transformers' greedy generation (sftkit's own equals it: test/parity/models.test.ts).
  const dir = join(scratch, 'tiny-llama3-rope');
  cpSync(join(models, 'tiny-llama3-rope'), dir, { recursive: true });
  writeTinyTokenizer(dir, 'gpt-2');
  const file = join(scratch, 'llama3.gguf');
  await exportGguf(dir, file);
  const g = readGguf(file);
  // head_dim 16, theta 1e4, original context 32, factor 8, low/high frequency factors 1/4 (convert_hf_to_gguf.py)
  const f = Array.from(readGgufTensor(g, 'rope_freqs.weight'));
  const want = Array.from({ length: 8 }, (_, i) => {
    const wavelen = (2 * Math.PI) / Math.fround(1 / 10000 ** ((2 * i) / 16));
    if (wavelen < 32 / 4) return 1;
    if (wavelen > 32) return 8;
    const smooth = (32 / wavelen - 1) / 3;
    return 1 / ((1 - smooth) / 8 + smooth);
  });
  f.forEach((x, i) => assert.ok(Math.abs(x - want[i]!) < 1e-5, `factor ${i}: ${x} vs ${want[i]}`));
  assert.ok(f.some((x) => x === 1) && f.some((x) => x === 8) && f.some((x) => x > 1 && x < 8), 'all three regimes present');
  assert.ok(g.tensors.some((t) => t.name === 'output.weight'), 'untied head');
  // and the other RoPE scalings llama.cpp reads from metadata: linear (factor) and YaRN (factor, original context)
  const jobs: Array<{ path: string; contextSize: number; prompt: number[]; maxTokens: number; teacherForced: number[]; texts: string[] }> = [];
  const wants: number[][] = [];
  for (const name of ['tiny-llama3-rope', 'tiny-llama-linear', 'tiny-llama-yarn']) {
    let path = file;
    if (name !== 'tiny-llama3-rope') {
      const d = join(scratch, name);
      cpSync(join(models, name), d, { recursive: true });
      writeTinyTokenizer(d, 'gpt-2');
      path = join(scratch, `${name}.gguf`);
      await exportGguf(d, path);
      assert.equal(readGguf(path).metadata['llama.rope.scaling.type'], name.slice('tiny-llama-'.length));
    }
    const parity = JSON.parse(readFileSync(join(models, name, 'parity.json'), 'utf8')) as { generate: { single: { prompt: number[]; maxNewTokens: number; output: number[] } } };
    const { prompt, maxNewTokens, output } = parity.generate.single;
    jobs.push({ path, contextSize: 256, prompt, maxTokens: maxNewTokens, teacherForced: [], texts: [] });
    wants.push(output);
  }
  const results = llamaCpp(jobs);
  results.forEach((r, i) => assert.deepEqual(r.generated, wants[i], jobs[i]!.path));
});

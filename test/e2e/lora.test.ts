// LoRA end to end on the shipped real model (TinyStories-656K) and ch7 data: `sftkit train --lora-r` learns with the
// base frozen and writes a PEFT adapter (not merged weights) with the tokenizer; resume with dropout and
// checkpointing is exact; DPO trains adapters too; eval / generate take --adapter; `sftkit merge` writes full weights
// that evaluate the same.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadModel } from '../../src/native/model.ts';
import { safetensorsInfo } from '../../src/native/safetensors.ts';
import { readMetrics } from '../../src/report/metrics.ts';
import { trainDpo } from '../../src/recipes/dpo.ts';
import { parseTrainArgs } from '../../src/training/options.ts';
import { train } from '../../src/recipes/sft.ts';

const root = join(import.meta.dirname, '..', '..');
const MODEL = join(root, 'test', 'fixtures', 'models', 'tinystories-656k');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-e2e-lora-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const DATA = join(scratch, 'data.json');
writeFileSync(DATA, JSON.stringify(JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'data', 'instruction-data.json'), 'utf8')).slice(0, 80)));

const quiet = { progress: { write: () => true }, log: () => {}, handleSignals: false };
const base = {
  model: MODEL, data: DATA, batchSize: 8, lr: 1e-2, maxLength: 160, seed: 3, threads: 1, logEvery: 1, valSplit: 0.1, testSplit: 0.1,
  loraR: 8, loraAlpha: 16, loraDropout: 0.1, loraTargets: 'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj',
};

function sftkit(args: string[]) {
  return spawnSync(process.execPath, [join(root, 'bin', 'sftkit.js'), ...args], { cwd: scratch, encoding: 'utf8', timeout: 300_000 });
}

const OUT = join(scratch, 'run');

test('train --lora-r: the loss falls, OUT holds the PEFT adapter + tokenizer, checkpoints hold adapter and its optimizer state', async () => {
  const logs: string[] = [];
  const r = await train({ ...base, out: OUT, maxSteps: 12, saveEvery: 6, gradientCheckpointing: true }, { ...quiet, log: (m) => logs.push(m) });
  assert.equal(r.stopped, 'completed');
  assert.ok(logs.some((l) => /LoRA r=8 alpha=16 on 14 modules: \d+ trainable parameters/.test(l)), logs.join('\n'));
  const losses = readMetrics(join(OUT, 'metrics.jsonl')).filter((m) => m.type === 'train').map((m) => m.loss as number);
  assert.ok(losses.slice(-3).reduce((a, b) => a + b) < losses.slice(0, 3).reduce((a, b) => a + b) - 0.3, losses.join(' '));
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json']) assert.ok(existsSync(join(OUT, f)), f);
  assert.ok(!existsSync(join(OUT, 'model.safetensors')) && !existsSync(join(OUT, 'config.json')), 'no merged weights in OUT');
  const cfg = JSON.parse(readFileSync(join(OUT, 'adapter_config.json'), 'utf8'));
  assert.deepEqual([cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.task_type, cfg.bias], [8, 16, 0.1, 'CAUSAL_LM', 'none']);
  assert.equal(cfg.base_model_name_or_path, MODEL);
  const cp = join(OUT, 'checkpoint-6');
  assert.ok(existsSync(join(cp, 'adapter_model.safetensors')) && !existsSync(join(cp, 'model.safetensors')));
  const opt = safetensorsInfo(join(cp, 'optimizer.safetensors')).tensors.map((t) => t.name);
  assert.ok(opt.every((n) => n === 'step' || n === 'lora.dropout_calls' || n.includes('.lora_')), 'AdamW state for the adapters only');
  // The base weights are untouched: OUT (an adapter directory) loads its base, whose weights equal the original.
  const tuned = await loadModel(OUT);
  const orig = await loadModel(MODEL);
  const w = 'model.layers.1.mlp.down_proj.weight';
  assert.deepEqual((await tuned.getParameter(w)).data, (await orig.getParameter(w)).data);
  await tuned.dispose();
  await orig.dispose();
});

test('resume of a LoRA run (dropout, checkpointing) gives the losses of an uninterrupted run; changed LoRA options are refused', async () => {
  const opts = { ...base, maxSteps: 8, saveEvery: 0, evalEvery: 0, gradientCheckpointing: true };
  const full = join(scratch, 'full');
  await train({ ...opts, out: full }, quiet);
  const part = join(scratch, 'part');
  const stop = new AbortController();
  const first = await train({ ...opts, out: part }, { ...quiet, signal: stop.signal, onStep: (s) => s.step === 3 && stop.abort() });
  assert.equal(first.steps, 3);
  await assert.rejects(train({ ...opts, loraR: 4, out: part, resume: true }, quiet), /trained with loraR 8, now 4/);
  const resumed = await train({ ...opts, out: part, resume: true }, quiet);
  assert.equal(resumed.steps, 8);
  const losses = (dir: string) => readMetrics(join(dir, 'metrics.jsonl')).filter((m) => m.type === 'train').map((m) => m.loss as number);
  const a = losses(full);
  const b = losses(part);
  assert.equal(b.length, 8);
  a.forEach((x, i) => assert.ok(Math.abs((b[i] as number) - x) <= 1e-6 * x, `loss at step ${i + 1}: ${b[i]} vs ${x}`));
});

test('DPO with LoRA: the policy starts as the reference (val loss ln 2), the adapters learn, OUT holds the adapter', async () => {
  const out = join(scratch, 'dpo-lora');
  const data = join(root, 'test', 'fixtures', 'data', 'instruction-data-with-preference-24.json');
  const r = await trainDpo(
    { model: MODEL, data, out, template: 'alpaca', batchSize: 4, lr: 5e-3, threads: 1, valSplit: 0.25, testSplit: 0, maxSteps: 6, seed: 5, loraR: 8, loraAlpha: 16, loraTargets: 'all-linear' },
    quiet,
  );
  assert.equal(r.stopped, 'completed');
  const val = readMetrics(join(out, 'metrics.jsonl')).filter((m) => m.type === 'val');
  assert.ok(Math.abs((val[0]?.loss as number) - Math.log(2)) < 1e-6, 'B = 0: the policy is the reference');
  assert.ok((val.at(-1)?.loss as number) < Math.log(2), `val loss ${val.at(-1)?.loss}`);
  assert.ok(existsSync(join(out, 'adapter_model.safetensors')) && !existsSync(join(out, 'model.safetensors')));
  // all-linear is saved as the names it selected, as peft saves it.
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')).target_modules, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
});

test('LoRA option errors name the option and the valid module names', async () => {
  assert.throws(() => parseTrainArgs(['--model', MODEL, '--data', DATA, '--out', OUT, '--lora-alpha', '32']), /--lora-alpha\/loraAlpha needs --lora-r\/loraR >= 1/);
  assert.throws(() => parseTrainArgs(['--model', MODEL, '--data', DATA, '--out', OUT, '--lora-r', '4', '--lora-dropout', '1']), /--lora-dropout/);
  await assert.rejects(
    train({ ...base, out: join(scratch, 'bad'), maxSteps: 1, loraTargets: 'q_proj,c_attn' }, quiet),
    /"c_attn" is not a module that can take an adapter \(valid module names of this llama model: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj/,
  );
});

test('sftkit eval / generate --adapter, and sftkit merge writes full weights that evaluate the same', () => {
  const evalArgs = ['--data', DATA, '--limit', '16', '--threads', '1', '--json'];
  const withAdapter = sftkit(['eval', '--model', MODEL, '--adapter', OUT, ...evalArgs]);
  assert.equal(withAdapter.status, 0, withAdapter.stderr);
  const adapterDirAlone = sftkit(['eval', '--model', OUT, ...evalArgs]);
  assert.equal(adapterDirAlone.status, 0, adapterDirAlone.stderr);
  const baseOnly = sftkit(['eval', '--model', MODEL, ...evalArgs]);
  const [a, b, c] = [withAdapter, adapterDirAlone, baseOnly].map((r) => JSON.parse(r.stdout) as { loss: number });
  assert.equal(a!.loss, b!.loss);
  assert.ok(a!.loss < c!.loss - 0.1, `the adapter helps on its own data: ${a!.loss} vs base ${c!.loss}`);

  const merged = join(scratch, 'merged');
  const m = sftkit(['merge', '--model', MODEL, '--adapter', OUT, '--out', merged, '--threads', '1']);
  assert.equal(m.status, 0, m.stderr);
  assert.match(m.stdout, /14 modules\) merged into .* tokenizer from/);
  assert.ok(['config.json', 'model.safetensors', 'tokenizer.json'].every((f) => readdirSync(merged).includes(f)));
  const full = JSON.parse(sftkit(['eval', '--model', merged, ...evalArgs]).stdout) as { loss: number };
  assert.ok(Math.abs(full.loss - a!.loss) <= 1e-5 * a!.loss, `merged ${full.loss} vs adapter ${a!.loss}`);
  const refused = sftkit(['merge', '--model', MODEL, '--adapter', OUT, '--out', OUT]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /--out .* is the --adapter directory/);

  const g1 = sftkit(['generate', '--model', MODEL, '--adapter', OUT, '--prompt', 'Once upon a time', '--max-new-tokens', '12', '--threads', '1', '--json']);
  const g2 = sftkit(['generate', '--model', merged, '--prompt', 'Once upon a time', '--max-new-tokens', '12', '--threads', '1', '--json']);
  assert.equal(g1.status, 0, g1.stderr);
  assert.deepEqual(JSON.parse(g1.stdout).token_ids, JSON.parse(g2.stdout).token_ids, 'greedy: adapter == merged');
  const bad = sftkit(['generate', '--model', MODEL, '--adapter', join(scratch, 'nope'), '--prompt', 'x']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /not a LoRA adapter directory: adapter_config\.json is missing/);
});

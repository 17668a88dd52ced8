// A short training run of a tiny model of every architecture the models issue brought in (Llama 3 / linear /
// dynamic / YaRN RoPE, Mistral and Qwen2 sliding windows, SmolLM3 NoPE layers, Phi-3 longrope with fused
// projections, Gemma 3 and Gemma 2), through the library's `train()` as a user runs it: pretraining on packed rows
// longer than the sliding windows (4) and past the dynamic/longrope switch lengths, every other model with gradient
// checkpointing. The loss falls, the saved directory reloads, and its greedy generation is that of the trained
// weights. Exact numbers are the parity suite's business (test/parity/models.test.ts); this is the whole path.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadModel } from '../../src/native/model.ts';
import { train } from '../../src/recipes/sft.ts';
import { readMetrics } from '../../src/report/metrics.ts';
import { loadTokenizer } from '../../src/tokenize/tokenizer.ts';
import { writeTinyTokenizer } from './helpers/tiny-tokenizer.ts';

const root = join(import.meta.dirname, '..', '..');
const models = join(root, 'test', 'fixtures', 'models');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-new-archs-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const quiet = { progress: { write: () => true }, log: () => {}, handleSignals: false };

// Plain English in the tiny tokenizer's alphabet (printable ASCII, spaces, newlines).
const LINES = [
  'the cat sat in the sun and the dog ran to the hill',
  'a girl had a red ball and she threw it to her friend',
  'the bird sang in the tree when the rain stopped',
  'he found a shell on the beach and gave it to his mom',
  'they built a small boat and sailed on the quiet lake',
  'the fox hid in the grass and waited for the night',
];
const DATA = join(scratch, 'stories.jsonl');
writeFileSync(DATA, Array.from({ length: 48 }, (_, i) => JSON.stringify({ text: `${LINES[i % LINES.length]} ${LINES[(i * 5 + 1) % LINES.length]}` })).join('\n') + '\n');

/** The config keys that make each architecture what it is: the saved config.json must keep them as they were. */
const ARCH_KEYS = ['model_type', 'rope_scaling', 'rope_parameters', 'sliding_window', 'use_sliding_window', 'max_window_layers', 'layer_types', 'no_rope_layers', 'partial_rotary_factor', 'query_pre_attn_scalar', 'attn_logit_softcapping', 'final_logit_softcapping', 'rope_local_base_freq'];

const NAMES = ['llama3-rope', 'llama-linear', 'llama-dynamic', 'llama-yarn', 'mistral', 'qwen2-sliding', 'smollm3', 'phi3', 'gemma3-text', 'gemma2'];

for (const [i, name] of NAMES.entries()) {
  test(`${name}: a short pretraining run learns, saves, reloads and generates`, async () => {
    const model = join(scratch, `tiny-${name}`);
    cpSync(join(models, `tiny-${name}`), model, { recursive: true });
    writeTinyTokenizer(model, 'gpt-2');
    const out = join(scratch, `run-${name}`);
    const checkpointing = i % 2 === 1;
    const r = await train(
      { model, data: DATA, out, format: 'text', maxLength: 24, batchSize: 4, maxSteps: 12, lr: 3e-3, warmup: 0, threads: 2, seed: 5, valSplit: 0, testSplit: 0, gradientCheckpointing: checkpointing },
      quiet,
    );
    assert.equal(r.stopped, 'completed');
    const losses = readMetrics(join(out, 'metrics.jsonl')).filter((m) => m.type === 'train').map((m) => m.loss as number);
    assert.equal(losses.length, 12);
    assert.ok(losses.every(Number.isFinite), String(losses));
    const head = (losses[0]! + losses[1]!) / 2;
    const tail = (losses[10]! + losses[11]!) / 2;
    assert.ok(tail < head * 0.8, `${name}${checkpointing ? ' (checkpointing)' : ''}: loss ${head.toFixed(3)} -> ${tail.toFixed(3)}`);

    // The saved model is the trained one: it reloads, its config keeps the architecture's keys, and generation past
    // the sliding window runs with the KV cache.
    const config = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const [source, written] = [config(model), config(out)];
    for (const key of ARCH_KEYS) if (key in source) assert.deepEqual(written[key], source[key], `${name}: config.json ${key}`);
    const saved = await loadModel(out, { threads: 2 });
    const original = await loadModel(model, { threads: 2 });
    try {
      // Lower loss than the random weights it started from on a line of the data.
      const ids = (await loadTokenizer(model)).encode(LINES[0]!);
      const line = { inputIds: Int32Array.from(ids), labels: Int32Array.from(ids), shape: [1, ids.length] as [number, number] };
      const [after_, before] = [await saved.evalLoss(line), await original.evalLoss(line)];
      assert.ok(after_.lossSum < before.lossSum * 0.8, `${name}: saved ${after_.lossSum} vs initial ${before.lossSum}`);
      const prompt = Int32Array.from([1, 20, 30, 40]);
      const [a] = await saved.generate([prompt], { maxNewTokens: 12, temperature: 0 });
      const [b] = await saved.generate([prompt], { maxNewTokens: 12, temperature: 0 });
      assert.equal(a!.length, 12);
      assert.deepEqual(Array.from(a!), Array.from(b!), 'greedy is deterministic');
    } finally {
      await saved.dispose();
      await original.dispose();
    }
  });
}

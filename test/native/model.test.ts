// Model API behaviour on the tiny fixtures: argument and config validation, one operation in flight, gradient
// accumulation, optimizer state round trip, embedding resize, sampling reproducibility, streaming, memory.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { lossForm } from '../../src/collate/index.ts';
import { binding } from '../../src/native/binding.ts';
import { parseModelConfig } from '../../src/native/model-config.ts';
import { loadModel, type Batch } from '../../src/native/model.ts';
import { randomBatch as batch } from './helpers/batches.ts';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'models');
const tiny = (name: string) => join(fixtures, `tiny-${name}`);


function rel(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
}

test('config validation: unknown model_type and unsupported math are SFTKIT_UNSUPPORTED naming the field', () => {
  const base = JSON.parse(readFileSync(join(tiny('llama'), 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(parseModelConfig(base).spec.arch, 'llama');
  assert.equal(parseModelConfig(base).spec.numKvHeads, 2);
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ model_type: 'falcon' }, /model_type "falcon"/],
    [{ model_type: 'gemma3' }, /model_type "gemma3"/],
    [{ rope_parameters: { rope_type: 'mrope', rope_theta: 5e5, factor: 8 } }, /rope_parameters.rope_type = "mrope".*"mrope" is not implemented/],
    [{ rope_parameters: null, rope_scaling: { type: 'su', factor: 2 } }, /rope_scaling.rope_type = "su"/],
    [{ rope_parameters: { rope_type: 'longrope', short_factor: [1], long_factor: [1] } }, /longrope is implemented for phi3 only/],
    [{ hidden_act: 'gelu' }, /hidden_act/],
    [{ final_logit_softcapping: 30 }, /final_logit_softcapping/],
    [{ partial_rotary_factor: 0.5 }, /partial_rotary_factor/],
    [{ model_type: 'qwen2', layer_types: ['chunked_attention', 'full_attention'] }, /layer_types.*chunked_attention/],
  ];
  for (const [patch, re] of cases) {
    assert.throws(() => parseModelConfig({ ...base, ...patch }), (e: Error & { code?: string }) => e.code === 'SFTKIT_UNSUPPORTED' && re.test(e.message));
  }
  assert.throws(() => parseModelConfig({ ...base, hidden_size: 'x' }), { code: 'SFTKIT_BAD_ARGUMENT' });
  const q3 = parseModelConfig(JSON.parse(readFileSync(join(tiny('qwen3'), 'config.json'), 'utf8'))).spec;
  assert.equal(q3.headDim, 16);
  assert.equal(q3.qkNorm, true);
  const q2 = parseModelConfig(JSON.parse(readFileSync(join(tiny('qwen2'), 'config.json'), 'utf8'))).spec;
  assert.deepEqual([q2.qkvBias, q2.oBias], [true, false]);
  // the plain RoPE of the older families crosses as before (no per-layer lists: the engine's default path)
  assert.deepEqual([q2.ropes, q2.layerRope, q2.slidingWindow, q2.slidingLayers], [[], [], 0, []]);
  // qwen2: sliding_window is ignored unless use_sliding_window; then layers >= max_window_layers slide
  const q2raw = JSON.parse(readFileSync(join(tiny('qwen2'), 'config.json'), 'utf8')) as Record<string, unknown>;
  const q2s = parseModelConfig({ ...q2raw, layer_types: undefined, use_sliding_window: true, sliding_window: 64, max_window_layers: 1 }).spec;
  assert.equal(q2s.slidingWindow, 64);
  assert.deepEqual(q2s.slidingLayers, Array.from({ length: q2s.numLayers }, (_, i) => i >= 1));
  assert.equal(parseModelConfig({ ...q2raw, layer_types: undefined, use_sliding_window: false, sliding_window: 64 }).spec.slidingWindow, 0);
  const q3raw = JSON.parse(readFileSync(join(tiny('qwen3'), 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(parseModelConfig({ ...q3raw, layer_types: undefined, use_sliding_window: true, sliding_window: 8, max_window_layers: 1 }).spec.slidingLayers, [false, true]);
  // Llama 3.1 in the legacy layout
  const l31 = parseModelConfig({ ...base, rope_parameters: undefined, rope_theta: 5e5, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }).spec;
  assert.deepEqual([l31.ropes[0]!.type, l31.ropes[0]!.theta, l31.ropes[0]!.factor, l31.ropes[0]!.originalMaxPositions], ['llama3', 5e5, 8, 8192]);
});

test('bad inputs are SFTKIT_BAD_ARGUMENT before any kernel runs', async () => {
  const model = await loadModel(tiny('llama'));
  const b = batch(2, 8);
  b.inputIds[5] = 128;
  await assert.rejects(model.step(b), (e: Error & { code?: string }) => e.code === 'SFTKIT_BAD_ARGUMENT' && /inputIds\[0, 5\] = 128 is outside/.test(e.message));
  const c = batch(2, 8);
  c.labels[3] = 500;
  await assert.rejects(model.step(c), /labels\[0, 3\] = 500/);
  await assert.rejects(async () => model.step({ ...batch(2, 8), shape: [2, 9] }), { code: 'SFTKIT_BAD_ARGUMENT' });
  const m = batch(1, 6);
  m.labels.fill(-100);
  await assert.rejects(model.step({ ...m, attentionMask: Uint8Array.from([1, 0, 1, 0, 0, 0]) }), /right padding/);
  const p = batch(1, 6);
  p.labels.fill(-100);
  await assert.rejects(
    model.step({ ...p, positionIds: Int32Array.from([0, 1, 2, 0, 5, 1]), docLengths: [Int32Array.from([3, 3])] }),
    /positions restart at 0/,
  );
  await assert.rejects(model.generate([[1, 2, 999]]), /outside the model vocabulary/);
  await assert.rejects(loadModel(tiny('llama'), { device: 'cuda' }), (e: Error & { code?: string }) =>
    binding().info().cudaAvailable ? true : e.code === 'SFTKIT_UNSUPPORTED' && /CUDA/.test(e.message));
  assert.throws(() => model.step({ ...batch(1, 4), inputIds: new Float32Array(4) as unknown as Int32Array }), { code: 'SFTKIT_BAD_ARGUMENT' });
  // the model still works after the errors
  assert.equal((await model.evalLoss(batch(2, 8))).tokens, 14);
  await model.dispose();
});

test('one native operation in flight: the TS queue serialises, C++ rejects a concurrent call', async () => {
  const model = await loadModel(tiny('gpt2'));
  const results = await Promise.all([model.step(batch(2, 16, 1)), model.evalLoss(batch(2, 16, 2)), model.step(batch(2, 16, 3))]);
  assert.equal(results.length, 3);
  const Native = binding().NativeModel;
  const raw = new Native();
  const spec = parseModelConfig(JSON.parse(readFileSync(join(tiny('gpt2'), 'config.json'), 'utf8'))).spec;
  await raw.load(tiny('gpt2'), spec, {});
  const first = raw.step(batch(2, 32));
  assert.throws(() => raw.evalLoss(batch(2, 32)), (e: Error & { code?: string }) => e.code === 'SFTKIT_BAD_ARGUMENT' && /already running/.test(e.message));
  await first;
  raw.dispose();
  await model.dispose();
});

test('gradients accumulate across micro-batches; zeroGrad clears them', async () => {
  const model = await loadModel(tiny('qwen2'));
  const full = batch(4, 10, 7);
  await model.step(full);
  const once = await model.gradNorms();
  await model.zeroGrad();
  const half = (i: number): Batch => ({
    inputIds: full.inputIds.slice(i * 20, i * 20 + 20),
    labels: full.labels.slice(i * 20, i * 20 + 20),
    shape: [2, 10],
  });
  await model.step(half(0));
  await model.step(half(1));
  const twice = await model.gradNorms();
  for (const [n, g] of Object.entries(once)) assert.ok(rel(twice[n]!, g) < 1e-4, n);
  await model.zeroGrad();
  assert.deepEqual(await model.gradNorms(), {});
  await model.dispose();
});

test('batch without label tokens: loss 0, count 0, never NaN', async () => {
  const model = await loadModel(tiny('llama'));
  const b = batch(2, 6);
  b.labels.fill(-100);
  for (const r of [await model.step(b), await model.evalLoss(b)]) {
    assert.ok(Object.is(r.lossSum, 0), String(r.lossSum));
    assert.equal(r.tokens, 0);
  }
  await model.dispose();
});

test('optimizer state saves and restores exactly (resume == uninterrupted)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-opt-'));
  try {
    const opts = { lr: 1e-2, weightDecay: 0.1, maxGradNorm: 1 };
    const a = await loadModel(tiny('llama-untied'));
    for (let i = 0; i < 2; ++i) {
      await a.step(batch(2, 8, i + 1));
      await a.optimizerStep(opts);
      await a.zeroGrad();
    }
    await a.save(join(dir, 'ckpt'));
    await a.saveOptimizerState(join(dir, 'ckpt', 'optimizer.safetensors'));
    await a.step(batch(2, 8, 9));
    await a.optimizerStep(opts);
    const b = await loadModel(join(dir, 'ckpt'));
    await b.loadOptimizerState(join(dir, 'ckpt', 'optimizer.safetensors'));
    await b.step(batch(2, 8, 9));
    await b.optimizerStep(opts);
    for (const n of await a.parameterNames()) {
      assert.deepEqual((await b.getParameter(n)).data, (await a.getParameter(n)).data, n);
    }
    await a.dispose();
    await b.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resizeTokenEmbeddings: new rows are the mean, vocab_size written on save, reload works', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-resize-'));
  try {
    for (const name of ['gpt2', 'qwen2']) {
      const model = await loadModel(tiny(name));
      const emb = model.spec.arch === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight';
      const before = await model.getParameter(emb);
      const n0 = model.numParameters();
      await model.resizeTokenEmbeddings(130);
      assert.equal(model.spec.vocabSize, 130);
      const after = await model.getParameter(emb);
      assert.deepEqual(after.shape, [130, 32]);
      for (let c = 0; c < 32; ++c) {
        let mean = 0;
        for (let r = 0; r < 128; ++r) mean += before.data[r * 32 + c]!;
        mean /= 128;
        assert.ok(Math.abs(after.data[129 * 32 + c]! - mean) < 1e-6);
      }
      const tied = model.spec.tieWordEmbeddings;
      assert.equal(model.numParameters(), n0 + 2 * 32 * (tied ? 1 : 2));
      const out = join(dir, name);
      await model.save(out);
      assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).vocab_size, 130);
      const again = await loadModel(out);
      assert.equal(again.spec.vocabSize, 130);
      const r = await again.evalLoss({ ...batch(1, 4), inputIds: Int32Array.from([1, 128, 129, 5]) });
      assert.ok(Number.isFinite(r.lossSum));
      await again.dispose();
      await model.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tied alias file (only lm_head.weight stored) loads; bfloat16 option runs', async () => {
  const model = await loadModel(join(fixtures, 'tinystories-656k'), { dtype: 'bfloat16', threads: 1 });
  const [out] = await model.generate([[1, 80, 147, 201]], { maxNewTokens: 4, stopIds: [] });
  assert.equal(out!.length, 4);
  const r = await model.step({ ...batch(1, 8, 3, 2048) });
  assert.ok(Number.isFinite(r.lossSum) && r.tokens === 7);
  await model.dispose();
});

test('sampling is reproducible per seed; stop ids end a row; streaming matches generate', async () => {
  const model = await loadModel(tiny('llama'));
  const prompts = [[1, 17, 42], [1, 5]];
  const opts = { maxNewTokens: 12, temperature: 0.9, topK: 20, topP: 0.9, seed: 1234, stopIds: [] };
  const a = await model.generate(prompts, opts);
  const b = await model.generate(prompts, opts);
  assert.deepEqual(a, b);
  const c = await model.generate(prompts, { ...opts, seed: 99 });
  assert.notDeepEqual(c, a);
  // stop at the 3rd greedy token of row 0
  const [g0] = await model.generate([prompts[0]!], { maxNewTokens: 8, stopIds: [] });
  const stop = g0![2]!;
  const [s0] = await model.generate([prompts[0]!], { maxNewTokens: 8, stopIds: [stop] });
  assert.deepEqual(Array.from(s0!), Array.from(g0!.slice(0, g0!.indexOf(stop) + 1)));
  const steps: Int32Array[] = [];
  for await (const s of model.generateStream(prompts, opts)) steps.push(s.tokens);
  assert.deepEqual(steps.map((t) => t[0]), Array.from(a[0]!));
  assert.deepEqual(steps.map((t) => t[1]), Array.from(a[1]!));
  // early exit from the iterator releases the model
  for await (const s of model.generateStream(prompts, { ...opts, maxNewTokens: 50 })) if (s.step === 1) break;
  assert.equal((await model.generate(prompts, opts)).length, 2);
  await model.dispose();
});

test('RSS stays flat over 1000 training steps on a tiny model', async () => {
  const model = await loadModel(tiny('llama'), { threads: 1 });
  const b = batch(2, 16, 5);
  const run = async (n: number) => {
    for (let i = 0; i < n; ++i) {
      await model.step(b);
      await model.optimizerStep({ lr: 1e-4, maxGradNorm: 1 });
      await model.zeroGrad();
    }
  };
  await run(100);  // warm-up: allocator caches, optimizer state
  global.gc?.();
  const start = process.memoryUsage().rss;
  await run(1000);
  global.gc?.();
  const growth = process.memoryUsage().rss - start;
  assert.ok(growth < 24 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(1)} MiB over 1000 steps`);
  await model.dispose();
});

test('packed rows equal each document run alone (long documents: one SDPA per document; short: dense mask)', async () => {
  const model = await loadModel(tiny('qwen3'));
  for (const docs of [[64, 70], [5, 9, 50]]) {
    const T = 134;
    const total = docs.reduce((a, b) => a + b, 0);
    const inputIds = Int32Array.from({ length: T }, (_, i) => (i * 37 + 11) % 125 + 3);
    const positionIds = new Int32Array(T);
    let s = 0;
    for (const n of docs) {
      for (let i = 0; i < n; ++i) positionIds[s + i] = i;
      s += n;
    }
    for (let t = total; t < T; ++t) inputIds[t] = 0;
    const packed = await model.forward({ inputIds, shape: [1, T], positionIds, docLengths: [Int32Array.from(docs)] });
    s = 0;
    let worst = 0;
    for (const n of docs) {
      const alone = await model.forward({ inputIds: inputIds.slice(s, s + n), shape: [1, n] });
      for (let i = 0; i < n * 128; ++i) worst = Math.max(worst, Math.abs(alone.logits[i]! - packed.logits[s * 128 + i]!));
      s += n;
    }
    assert.ok(worst < 1e-4, `docs ${docs}: max diff ${worst}`);
  }
  await model.dispose();
});

test('gradient checkpointing: the same loss and gradients as keeping activations (padded and packed rows)', async () => {
  for (const name of ['gpt2', 'llama', 'qwen2', 'qwen3']) {
    const plain = await loadModel(tiny(name));
    const ckpt = await loadModel(tiny(name), { gradientCheckpointing: true });
    const padded = batch(3, 12, 7);
    const mask = new Uint8Array(3 * 12).fill(1);
    for (let t = 9; t < 12; t++) {
      mask[2 * 12 + t] = 0;
      padded.labels[2 * 12 + t] = -100;
    }
    padded.attentionMask = mask;
    // Packed: row 0 holds documents of 5 and 7 tokens.
    const packed = batch(1, 12, 9);
    packed.positionIds = Int32Array.from([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6]);
    packed.docLengths = [Int32Array.from([5, 7])];
    packed.labels[5] = -100;
    for (const b of [padded, packed]) {
      const r1 = await plain.step(b, { lossScale: 0.5 });
      const r2 = await ckpt.step(b, { lossScale: 0.5 });
      assert.equal(r1.tokens, r2.tokens);
      assert.ok(rel(r2.lossSum, r1.lossSum) < 1e-6, `${name} loss ${r2.lossSum} vs ${r1.lossSum}`);
    }
    const g1 = await plain.gradNorms();
    const g2 = await ckpt.gradNorms();
    assert.deepEqual(Object.keys(g2).sort(), Object.keys(g1).sort());
    for (const [k, v] of Object.entries(g1)) assert.ok(rel(g2[k]!, v) < 1e-5, `${name} ${k}: ${g2[k]} vs ${v}`);
    await plain.dispose();
    await ckpt.dispose();
  }
});

test('loss batches in the padding-free form (lossForm / collateForLoss) and as padded rows: the loss and gradients of row by row', async () => {
  // Short documents take the dense block-diagonal mask, long ones one SDPA call each.
  for (const [name, T, lengths] of [['gpt2', 20, [20, 13, 6, 17]], ['qwen3', 20, [20, 13, 6, 17]], ['llama', 90, [90, 70, 64]]] as const) {
    const padded = await loadModel(tiny(name));
    const single = await loadModel(tiny(name));
    const b = batch(lengths.length, T, 11);
    b.attentionMask = new Uint8Array(lengths.length * T);
    lengths.forEach((n, r) => {
      for (let t = 0; t < T; t++) {
        if (t < n) b.attentionMask![r * T + t] = 1;
        else b.labels[r * T + t] = -100;
      }
    });
    const free = lossForm(b);
    assert.deepEqual(free.shape, [1, lengths.reduce((s, n) => s + n, 0)], 'the examples end to end in one row');
    const all = await padded.step(free, { lossScale: 0.25 });
    let sum = 0;
    let tokens = 0;
    for (const [r, n] of lengths.entries()) {
      const one = await single.step(
        { inputIds: b.inputIds.slice(r * T, r * T + n), labels: b.labels.slice(r * T, r * T + n), shape: [1, n] },
        { lossScale: 0.25 },
      );
      sum += one.lossSum;
      tokens += one.tokens;
    }
    assert.equal(all.tokens, tokens);
    assert.ok(rel(all.lossSum, sum) < 1e-5, `${name}: ${all.lossSum} vs ${sum}`);
    const g1 = await padded.gradNorms();
    const g2 = await single.gradNorms();
    for (const [k, v] of Object.entries(g2)) assert.ok(rel(g1[k]!, v) < 1e-4, `${name} ${k}: ${g1[k]} vs ${v}`);
    const ev = await padded.evalLoss(free);
    assert.ok(rel(ev.lossSum, sum) < 1e-5);
    // The same rows sent padded: computed as they come, the same numbers.
    const rows = await padded.evalLoss(b);
    assert.equal(rows.tokens, tokens);
    assert.ok(rel(rows.lossSum, sum) < 1e-5, `${name} padded: ${rows.lossSum} vs ${sum}`);
    await padded.dispose();
    await single.dispose();
  }
});

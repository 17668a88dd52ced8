// One training step of a GPT-2-124M-shaped model (random weights, built locally: config.json + random
// model.safetensors, no hub) at B=4, T=256: forward (incl. fused loss) / backward / optimizer (clip + AdamW) split in
// ms, tokens/s and peak RSS, as JSON on stdout.
// Usage: node --import tsx bench/train-step.ts [--steps 3] [--threads N] [--batch 4] [--seq 256]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { binding, type TensorToSave } from '../src/native/binding.ts';
import { loadModel } from '../src/native/model.ts';
import { saveSafetensors } from '../src/native/safetensors.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const steps = arg('steps', 3);
const threads = arg('threads', 0);
const B = arg('batch', 4);
const T = arg('seq', 256);
const V = 50257, C = 768, L = 12, H = 12, P = 1024;

let seed = 42;
function rand(n: number, std: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; ++i) {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    a[i] = ((seed / 4294967296) * 2 - 1) * std * 1.7320508;  // uniform with the given std
  }
  return a;
}
const fill = (n: number, v: number) => new Float32Array(n).fill(v);

async function buildModelDir(dir: string): Promise<void> {
  const t: TensorToSave[] = [
    { name: 'transformer.wte.weight', data: rand(V * C, 0.02), shape: [V, C] },
    { name: 'transformer.wpe.weight', data: rand(P * C, 0.01), shape: [P, C] },
  ];
  for (let l = 0; l < L; ++l) {
    const p = `transformer.h.${l}.`;
    t.push(
      { name: `${p}ln_1.weight`, data: fill(C, 1), shape: [C] },
      { name: `${p}ln_1.bias`, data: fill(C, 0), shape: [C] },
      { name: `${p}attn.c_attn.weight`, data: rand(C * 3 * C, 0.02), shape: [C, 3 * C] },
      { name: `${p}attn.c_attn.bias`, data: fill(3 * C, 0), shape: [3 * C] },
      { name: `${p}attn.c_proj.weight`, data: rand(C * C, 0.02), shape: [C, C] },
      { name: `${p}attn.c_proj.bias`, data: fill(C, 0), shape: [C] },
      { name: `${p}ln_2.weight`, data: fill(C, 1), shape: [C] },
      { name: `${p}ln_2.bias`, data: fill(C, 0), shape: [C] },
      { name: `${p}mlp.c_fc.weight`, data: rand(C * 4 * C, 0.02), shape: [C, 4 * C] },
      { name: `${p}mlp.c_fc.bias`, data: fill(4 * C, 0), shape: [4 * C] },
      { name: `${p}mlp.c_proj.weight`, data: rand(4 * C * C, 0.02), shape: [4 * C, C] },
      { name: `${p}mlp.c_proj.bias`, data: fill(C, 0), shape: [C] },
    );
  }
  t.push({ name: 'transformer.ln_f.weight', data: fill(C, 1), shape: [C] }, { name: 'transformer.ln_f.bias', data: fill(C, 0), shape: [C] });
  const config = {
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: V, n_embd: C, n_layer: L, n_head: H,
    n_positions: P, n_inner: null, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, tie_word_embeddings: true,
    bos_token_id: 50256, eos_token_id: 50256,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await saveSafetensors(join(dir, 'model.safetensors'), t);
}

const dir = mkdtempSync(join(tmpdir(), 'sftkit-bench-gpt2-'));
try {
  await buildModelDir(join(dir));
  // Round trip through the model's own save path, as a trainer checkpoint would be written.
  const built = await loadModel(dir, { threads });
  await built.save(join(dir, 'saved'));
  await built.dispose();
  const model = await loadModel(join(dir, 'saved'), { threads });

  const inputIds = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % V);
  const labels = Int32Array.from(inputIds);
  for (let b = 0; b < B; ++b) labels[b * T] = -100;
  const batch = { inputIds, labels, shape: [B, T] as [number, number] };
  const runs: { forwardMs: number; backwardMs: number; optimizerMs: number; totalMs: number }[] = [];
  for (let i = 0; i < steps + 1; ++i) {
    const t0 = performance.now();
    const r = await model.step(batch);
    const t1 = performance.now();
    await model.optimizerStep({ lr: 1e-4, weightDecay: 0.1, maxGradNorm: 1 });
    const t2 = performance.now();
    await model.zeroGrad();
    if (i > 0) runs.push({ forwardMs: r.forwardMs!, backwardMs: r.backwardMs!, optimizerMs: t2 - t1, totalMs: t2 - t0 });
  }
  // Packed rows (4 documents of T/4 per row; block-diagonal causal attention via one SDPA per document).
  const docs = 4, len = T / docs;
  const positionIds = Int32Array.from({ length: B * T }, (_, i) => (i % T) % len);
  const plabels = Int32Array.from(labels);
  for (let i = 0; i < B * T; ++i) if ((i % T) % len === 0) plabels[i] = -100;
  const packed = { inputIds, labels: plabels, shape: [B, T] as [number, number], positionIds, docLengths: Array.from({ length: B }, () => Int32Array.from({ length: docs }, () => len)) };
  const packedRuns: { forwardMs: number; backwardMs: number }[] = [];
  for (let i = 0; i < 2; ++i) {
    const r = await model.step(packed);
    await model.zeroGrad();
    packedRuns.push({ forwardMs: r.forwardMs!, backwardMs: r.backwardMs! });
  }
  const mean = (k: keyof (typeof runs)[number]) => runs.reduce((s, r) => s + r[k], 0) / runs.length;
  const info = binding().info();
  const result = {
    bench: 'train-step',
    model: 'gpt2-124M-shaped (random)',
    parameters: model.numParameters(),
    batch: B,
    seq: T,
    tokensPerStep: B * T,
    threads: threads || info.numThreads,
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    torch: info.torchVersion,
    steps: runs.length,
    forwardMs: mean('forwardMs'),
    backwardMs: mean('backwardMs'),
    optimizerMs: mean('optimizerMs'),
    stepMs: mean('totalMs'),
    tokensPerSecond: (B * T) / (mean('totalMs') / 1000),
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    packed: { docsPerRow: docs, forwardMs: packedRuns[1]!.forwardMs, backwardMs: packedRuns[1]!.backwardMs },
    runs,
  };
  console.log(JSON.stringify(result, null, 2));
  await model.dispose();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

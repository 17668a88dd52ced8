// The training-step benchmark behind `sftkit bench train`: random token batches with 40% of each row masked as
// prompt and 10% padding, timed forward (incl. the fused loss) / backward / optimizer (clip + AdamW).
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { lossForm } from '../collate/index.ts';
import { invalidParameterError } from '../errors.ts';
import { binding, checkBaseDtypeOptions, loadModel, type BaseDtype, type BaseStats, type LoraOptions, type ModelDevice } from '../native/index.ts';

export interface TrainBenchOptions {
  model: string;
  batchSize: number;
  seqLen: number;
  steps: number;
  warmup: number;
  threads?: number;
  dtype?: 'float32' | 'bfloat16';
  gradientCheckpointing?: boolean;
  /** Train LoRA adapters on the frozen model instead of every weight. */
  lora?: LoraOptions;
  /** Where the model runs (default 'cpu'). */
  device?: ModelDevice;
  /** bf16 autocast of the forward passes over the `dtype` weights. */
  autocast?: boolean;
  /** How the frozen base is stored (default 'float32'; another needs `lora`). */
  baseDtype?: BaseDtype;
  /** nf4 only: double quantisation of the block scales. */
  doubleQuant?: boolean;
}

/** Exactly the keys other tools read (issue 6). */
export interface TrainBenchResult {
  tokens_per_s: number;
  ms_per_step: number;
  ms_forward: number;
  ms_backward: number;
  ms_optimizer: number;
  peak_rss_mib: number;
  threads: number;
  /** Where it ran ("cpu", "cuda:0"); present when a device was asked for. */
  device?: string;
  /** On CUDA: the caching allocator's peak of allocated memory over the process (torch.cuda.max_memory_allocated). */
  peak_gpu_mib?: number;
  /** On CUDA: the peak of memory reserved by the caching allocator (torch.cuda.max_memory_reserved). */
  peak_gpu_reserved_mib?: number;
  /** The frozen base's format as the addon reports it (addons with model.baseStats()). */
  baseDtype?: string;
  /** Memory of the frozen base store (bytes). */
  baseBytes?: number;
  /** Mean ms per timed step spent dequantising base weights (forward and backward; part of ms_per_step). */
  dequantMs?: number;
  /** Mean ms per timed step spent in the matmuls over the base weights (part of ms_per_step). */
  matmulMs?: number;
}

/**
 * A [B, T] batch: random ids; row b has a padding fraction spread evenly over 0..20% (mean 10%; row 0 is full, as in
 * any collated batch, so no column is all padding and nothing can be trimmed away), the first 40% of each row's real
 * tokens masked as prompt. bench/compare/torch_bench.py mirrors this generator exactly: keep the two in step.
 */
export function randomBatch(B: number, T: number, vocab: number, seed: number) {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const inputIds = new Int32Array(B * T);
  const labels = new Int32Array(B * T).fill(-100);
  const attentionMask = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) {
    const pad = B === 1 ? 0.1 : (0.2 * b) / (B - 1);
    const real = Math.max(2, T - Math.floor(T * pad));
    const prompt = Math.floor(real * 0.4);
    for (let t = 0; t < real; t++) {
      const i = b * T + t;
      inputIds[i] = next() % vocab;
      attentionMask[i] = 1;
      if (t >= prompt) labels[i] = inputIds[i] as number;
    }
  }
  return { inputIds, labels, attentionMask, shape: [B, T] as [number, number] };
}

/**
 * The process's peak resident set in MiB: VmHWM of /proc/self/status (the high-water mark of this process's own
 * memory map) where there is one. getrusage's maxrss survives exec: a child started by a parent of 600 MiB reports
 * at least those 600 MiB (the device check runs its benches from a process that has trained models).
 */
export function peakRssMiB(): number {
  try {
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kb) return Number(kb) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}

export async function benchTrain(o: TrainBenchOptions): Promise<TrainBenchResult> {
  for (const [k, v, min] of [['batchSize', o.batchSize, 1], ['seqLen', o.seqLen, 2], ['steps', o.steps, 1], ['warmup', o.warmup, 0]] as const) {
    if (!Number.isInteger(v) || v < min) throw invalidParameterError(k, `an integer >= ${min}`, v);
  }
  checkBaseDtypeOptions(o);
  const lowPrecision = o.baseDtype !== undefined && o.baseDtype !== 'float32';
  if (lowPrecision && !o.lora) throw invalidParameterError('lora', `LoRA options: baseDtype ${o.baseDtype} keeps the base frozen (only adapters train)`, o.lora);
  const threads = o.threads && o.threads > 0 ? o.threads : availableParallelism();
  const model = await loadModel(o.model, {
    threads,
    ...(o.dtype ? { dtype: o.dtype } : {}),
    ...(o.gradientCheckpointing ? { gradientCheckpointing: true } : {}),
    ...(o.lora ? { lora: o.lora } : {}),
    ...(o.device ? { device: o.device } : {}),
    ...(o.autocast ? { autocast: true } : {}),
    ...(o.baseDtype !== undefined ? { baseDtype: o.baseDtype } : {}),
    ...(o.doubleQuant ? { doubleQuant: true } : {}),
  });
  try {
    // With a base dtype given, the base store's counters are read and reset around each timed step.
    const baseStats = (): BaseStats | undefined => (o.baseDtype !== undefined ? model.baseStats(true) : undefined);
    const vocab = model.spec.vocabSize;
    const runs: { f: number; b: number; o: number; total: number; dq: number; mm: number }[] = [];
    let base: BaseStats | undefined;
    for (let i = 0; i < o.warmup + o.steps; i++) {
      if (i === o.warmup) base = baseStats();
      // The padding-free form the training loop sends (collateForLoss) for these padded rows.
      const batch = lossForm(randomBatch(o.batchSize, o.seqLen, vocab, 1000 + i));
      const t0 = performance.now();
      const r = await model.step(batch);
      const t1 = performance.now();
      await model.optimizerStep({ lr: 1e-5, weightDecay: 0.01, maxGradNorm: 1 });
      await model.zeroGrad();
      const t2 = performance.now();
      if (i >= o.warmup) {
        const s = base ? baseStats() : undefined;
        runs.push({ f: r.forwardMs ?? t1 - t0, b: r.backwardMs ?? 0, o: t2 - t1, total: t2 - t0, dq: s?.dequantMs ?? 0, mm: s?.matmulMs ?? 0 });
      }
    }
    const mean = (k: 'f' | 'b' | 'o' | 'total' | 'dq' | 'mm') => runs.reduce((a, r) => a + r[k], 0) / runs.length;
    const ms = mean('total');
    const device = model.device();
    // The optimizer step reads the gradient norm back, so each step's time includes its device work.
    const gpu = device.startsWith('cuda') ? binding().cudaMemoryStats?.() : undefined;
    return {
      tokens_per_s: (o.batchSize * o.seqLen) / (ms / 1000),
      ms_per_step: ms,
      ms_forward: mean('f'),
      ms_backward: mean('b'),
      ms_optimizer: mean('o'),
      peak_rss_mib: peakRssMiB(),
      threads,
      ...(o.device ? { device } : {}),
      ...(gpu?.available ? { peak_gpu_mib: gpu.peakAllocatedBytes / 2 ** 20, peak_gpu_reserved_mib: gpu.peakReservedBytes / 2 ** 20 } : {}),
      ...(base ? { baseDtype: base.dtype, baseBytes: base.bytes, dequantMs: mean('dq'), matmulMs: mean('mm') } : {}),
    };
  } finally {
    await model.dispose();
  }
}

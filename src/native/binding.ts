// The single loader of the native addon. node-gyp-build finds build/Release/sftkit.node or
// prebuilds/<platform>-<arch>/*.node; libtorch's shared libraries are preloaded from the directory recorded
// in libtorch.json so that a prebuild also loads when its RPATH does not point at this machine's libtorch.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { UncountedBatch } from '../collate/index.ts';
import { invalidParameterError, SftkitError } from '../errors.ts';
import type { LoraModuleSpec, LoraOptions } from './lora.ts';
import type { ModelSpec } from './model-config.ts';

const require = createRequire(import.meta.url);

/** Root of the sftkit package (holds package.json, build/, prebuilds/, libtorch.json). */
export const packageRoot: string = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'sftkit') return dir;
    const up = dirname(dir);
    if (up === dir) return resolve(start, '..', '..');
    dir = up;
  }
}

/**
 * What scripts/libtorch.mjs recorded at install time. `source`: LIBTORCH ('env'), a Python torch ('python'), the sftkit
 * cache ('cache'), a download by Node ('download'), `pip download` ('pip'); 'wheel' in records of older installs.
 */
export interface LibtorchRecord {
  source: 'env' | 'python' | 'cache' | 'download' | 'pip' | 'wheel';
  path: string;
  lib: string;
  include: string;
  cmakePrefix: string;
  version: string;
  variant: 'cpu' | 'cuda';
  cuda: boolean;
  recordedAt?: string;
}

export function readLibtorchRecord(): LibtorchRecord | null {
  const file = join(packageRoot, 'libtorch.json');
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as LibtorchRecord;
}

export interface RuntimeInfo {
  torchVersion: string;
  cpu: { avx2: boolean; avx512: boolean; fma: boolean; capability: string };
  /**
   * MKL (inside libtorch_cpu): `dispatch` 'isa' when native/preload/mkl_dispatch.cc answers MKL's vendor check,
   * 'vendor' when MKL's own answer stands; `codePath` is MKL's detected code path (mkl_serv_cpu_detect: 0 = its
   * generic/AMD path, 7 = AVX-512 here), -1 when libtorch has no MKL.
   */
  mkl: { dispatch: 'isa' | 'vendor'; codePath: number };
  numThreads: number;
  numInteropThreads: number;
  parallelInfo: string;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  /**
   * Data-parallel backends compiled in: Gloo always; NCCL when the addon was built against a CUDA libtorch with c10d
   * NCCL and nccl.h was found (CMakeLists.txt), with the nccl.h version it was compiled against.
   */
  distributed: { gloo: boolean; nccl: boolean; ncclHeaders: string | null };
  build: { buildType: string; compiler: string; cxxFlags: string; napiVersion: number; cxx11Abi: boolean; torchHeaders: string };
  torchConfig: string;
}

export type NumericArray = Float32Array | Float64Array | Int32Array | Uint8Array | Int8Array | Int16Array | BigInt64Array;

/** dtypes sftkit reads and writes in safetensors files (native/engine/safetensors.h). */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** One header entry; offsets are [begin, end) bytes within the data region (after the 8 + N header bytes). */
export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  offsets: [number, number];
}

export interface SafetensorsInfo {
  /** In data-offset order. */
  tensors: SafetensorsTensorInfo[];
  /** `__metadata__` ({} when absent). */
  metadata: Record<string, string>;
}

/** A loaded tensor: F16/BF16 are widened to Float32Array (the stored dtype stays in `dtype`), BOOL is a Uint8Array. */
export interface LoadedTensor {
  data: Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array;
  shape: number[];
  dtype: SafetensorsDtype;
}

/** A tensor to write; `dtype` defaults to the array's type (F16/BF16/F32/F64 from float arrays, BOOL from Uint8Array). */
export interface TensorToSave {
  name: string;
  data: NumericArray;
  shape: number[];
  dtype?: SafetensorsDtype;
}

export interface NativeProcessGroupHandle {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: 'gloo' | 'nccl';
  /** Where the collectives' tensors live: "cpu" (Gloo) or this rank's GPU, "cuda:N" (NCCL). */
  readonly device: string;
  allReduce(values: Float64Array): Promise<Float64Array>;
  barrier(): Promise<void>;
  close(): void;
}

/** Counters of the CPU memory pool: blocks of 1 MiB and more, re-mapped between tensor sizes instead of freed. */
export interface CpuPoolStats {
  installed: boolean;
  liveBytes: number;
  cachedBytes: number;
  unbackedBytes: number;
  peakBytes: number;
  peakLiveBytes: number;
  reuses: number;
  remaps: number;
  remappedBytes: number;
  grownBytes: number;
}

/** CUDA allocator counters of device 0 (bytes); see NativeBinding.cudaMemoryStats. */
export interface CudaMemoryStats {
  available: boolean;
  /** False until the first CUDA allocation of the process. */
  initialized: boolean;
  allocatedBytes: number;
  peakAllocatedBytes: number;
  reservedBytes: number;
  peakReservedBytes: number;
  reason?: string;
}

// ---- The model class: its options, batches and results (src/native/model.ts wraps it as `Model`).

export type ModelDtype = 'float32' | 'bfloat16';

/**
 * How the frozen base weights are stored (issue 24): 'float32' (as the parameters), or a small form that each
 * projection dequantises just in time into an fp32 workspace (compute stays in the model dtype): 'bfloat16', 'int8'
 * (symmetric, per output channel) or 'nf4' (QLoRA's NormalFloat-4, blocks of 64).
 */
export type BaseDtype = 'float32' | 'bfloat16' | 'int8' | 'nf4';

/** The list of base dtypes, in the order of the flag's help. */
export const BASE_DTYPES = ['float32', 'bfloat16', 'int8', 'nf4'] as const satisfies readonly BaseDtype[];

/** The frozen base store of a model: its format, its memory and the time spent in it since load or the last reset. */
export interface BaseStats {
  /** The base dtype the addon reports ('float32', 'bfloat16', 'int8', 'nf4'). */
  dtype: string;
  /** Memory held by the frozen base store (bytes). */
  bytes: number;
  /** Cumulative milliseconds spent dequantising base weights (forward and backward). */
  dequantMs: number;
  /** Cumulative milliseconds spent in the matmuls over the dequantised weights. */
  matmulMs: number;
}
/** 'cuda' is cuda:0; `cuda:N` one GPU of several (a data-parallel rank's, by LOCAL_RANK). */
export type ModelDevice = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

export interface LoadModelOptions {
  dtype?: ModelDtype;
  /** Intra-op threads for this model's operations (0/undefined: libtorch's current setting). */
  threads?: number;
  /** 'auto': CUDA when this libtorch has CUDA and a GPU is visible, else the CPU (default 'cpu'). */
  device?: ModelDevice;
  /**
   * bf16 autocast of the forward passes (matmuls in bfloat16 over the parameters in `dtype`, typically float32
   * master weights; the loss and the optimizer stay fp32). Meant for CUDA; works on the CPU too.
   */
  autocast?: boolean;
  /** New LoRA adapters on the base model (frozen): only they train, and save() writes them (PEFT layout). */
  lora?: LoraOptions;
  /** A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) applied to the model. */
  adapter?: string;
  /**
   * Activation checkpointing of every layer in training steps: only each layer's input is kept through the forward
   * pass and the layer is recomputed in backward (less memory, about one more forward of compute).
   */
  gradientCheckpointing?: boolean;
  /**
   * How the frozen base weights are kept (default 'float32'): another dtype needs `dtype` float32 (bf16 compute on
   * CUDA through `autocast`), and the model then only trains LoRA adapters (no full fine-tuning, no resize, no merge).
   */
  baseDtype?: BaseDtype;
  /** nf4 only: quantise the per-block absmax scales too (QLoRA's double quantisation, 8 bits in blocks of 256). */
  doubleQuant?: boolean;
}

/**
 * What the addon's batch calls read: the collate room's `Batch` (its one definition: padded rows with
 * `attentionMask`, or documents with `positionIds` + `docLengths`; labels unshifted, -100 = ignore), whose label
 * count may be left out (the engine's loss counts the labels itself).
 */
export type Batch = UncountedBatch;

/** A batch for forward(): labels optional. */
export type ForwardBatch = Omit<Batch, 'labels'> & { labels?: Int32Array };

export interface LossSum {
  /** Sum of the token losses (nats) over label tokens. */
  lossSum: number;
  /** Number of label tokens. */
  tokens: number;
  /** Wall time of the forward pass incl. the loss (ms). */
  forwardMs?: number;
  /** Wall time of the backward pass (ms; step only). */
  backwardMs?: number;
}

export type PreferenceLossType = 'sigmoid' | 'ipo';

export interface PreferenceStepOptions {
  /** Reference log-probability sums, one per row of the batch (rows are chosen_0, rejected_0, chosen_1, ...). */
  refLogps: Float64Array;
  beta?: number;
  labelSmoothing?: number;
  lossType?: PreferenceLossType;
  /** Backward runs on (sum of pair losses) * lossScale; 1 / pairs of the optimizer step gives TRL's mean. */
  lossScale?: number;
}

export interface PreferenceStepResult {
  lossSum: number;
  pairs: number;
  chosenRewards: Float64Array;
  rejectedRewards: Float64Array;
  policyLogps: Float64Array;
}

export interface DistillStepOptions {
  /** Weight of the cross-entropy: loss = alpha * CE + (1 - alpha) * T^2 * KL(teacher || student). Default 0.5. */
  alpha?: number;
  /** Softmax temperature of both distributions in the KL. Default 1. */
  temperature?: number;
  /** Backward runs on lossSum * lossScale (see StepOptions). */
  lossScale?: number;
}

export interface DistillStepResult {
  /** Sum over label tokens of alpha * CE + (1 - alpha) * T^2 * KL. */
  lossSum: number;
  /** Sum over label tokens of the cross-entropy (nats) and of KL(teacher || student) at temperature T (unweighted). */
  ceSum: number;
  klSum: number;
  tokens: number;
}

export interface StepOptions {
  /**
   * Backward runs on lossSum * lossScale (default 1). Gradient accumulation normalised by the label tokens of the
   * whole optimizer step passes 1 / (their count) to every micro-batch: sum of loss sums / sum of counts.
   */
  lossScale?: number;
}

export interface OptimizerStepOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Global-norm clipping threshold; 0/undefined: no clipping. */
  maxGradNorm?: number;
  /** Name substrings of the parameters without weight decay (first step only; default: biases, norms, embeddings). */
  noDecay?: string[];
}

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 (default): greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Generation of a row ends after one of these ids (included in the output). Default: the config's eos ids. */
  stopIds?: number[];
}

/** One generation step: the new token of every row, -1 for rows that have stopped. */
export interface GenerateStep {
  step: number;
  tokens: Int32Array;
}

export interface Logits {
  logits: Float32Array;
  shape: [number, number, number];
}

/** One native model instance (native/binding/model_js.cc); wrapped by `Model` in src/native/model.ts. */
export interface NativeModelHandle {
  load(dir: string, spec: ModelSpec, options: LoadModelOptions): Promise<void>;
  step(batch: Batch, options?: { lossScale?: number }): Promise<LossSum>;
  sequenceLogps(batch: Batch, options?: { adapter?: boolean }): Promise<{ logps: Float64Array; tokens: Float64Array }>;
  preferenceStep(batch: Batch, options: Required<PreferenceStepOptions> & { refLogps: Float64Array }): Promise<PreferenceStepResult>;
  evalLoss(batch: Batch): Promise<LossSum>;
  distillStep(batch: Batch, teacher: NativeModelHandle, options: Required<DistillStepOptions>): Promise<DistillStepResult>;
  forward(batch: ForwardBatch): Promise<Logits>;
  optimizerStep(options: OptimizerStepOptions): Promise<{ gradNorm: number }>;
  zeroGrad(): void;
  save(path: string): Promise<void>;
  saveOptimizerState(path: string): Promise<void>;
  loadOptimizerState(path: string): Promise<void>;
  numParameters(): number;
  vocabSize(): number;
  resizeTokenEmbeddings(n: number): void;
  gradNorms(): Record<string, number>;
  allReduceGrads(group: unknown, options: { bucketMb: number }): Promise<void>;
  parameterNames(): string[];
  getParameter(name: string): { data: Float32Array; shape: number[] };
  getGradient(name: string): { data: Float32Array; shape: number[] } | null;
  loraTargetModules(): string[];
  attachLora(options: { modules: LoraModuleSpec[]; dropout: number; seed: number }): Promise<void>;
  loadAdapter(path: string): Promise<void>;
  saveAdapter(path: string): Promise<void>;
  mergeAdapter(): Promise<void>;
  numTrainableParameters(): number;
  device(): string;
  /** The frozen base store: dtype, bytes, cumulative dequantisation and matmul times (reset: start them over). */
  baseStats(reset?: boolean): BaseStats;
  generate(
    prompts: Int32Array[],
    options: Required<Omit<GenerateOptions, 'stopIds'>> & { stopIds: number[] },
    onStep?: (tokens: Int32Array) => void,
  ): Promise<Int32Array[]>;
  cancelGeneration(): void;
  dispose(): void;
}

/** The native class as exported by the addon (typed here; registered in native/addon.cc). */
export type NativeModelClass = new () => NativeModelHandle;

/** Hand-written types of the addon's exports (native/addon.cc). Later issues extend it. */
export interface NativeBinding {
  info(): RuntimeInfo;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** Makes the CPU memory pool (native/engine/cpu_pool.h) libtorch's allocator for new tensors, or restores glibc's. */
  setCpuPool(enabled: boolean): void;
  cpuPoolStats(): CpuPoolStats;
  /** Unmaps the pool's cached blocks and gives their pages back to the kernel; returns the bytes released. */
  releaseCpuPool(): number;
  /**
   * The CUDA caching allocator's counters for device 0 (torch.cuda.memory_allocated / max_memory_allocated /
   * memory_reserved / max_memory_reserved); zeros and `available: false` (with the reason) in a CPU build or without
   * a GPU. Addons built before it existed lack the function.
   */
  cudaMemoryStats?(): CudaMemoryStats;
  /** Starts the CUDA peaks over from the current values (torch.cuda.reset_peak_memory_stats). */
  resetCudaPeakMemory?(): void;
  roundTrip<T extends NumericArray>(
    array: T,
    shape: number[],
    options?: { scale?: number; threads?: number },
  ): Promise<{ data: T; shape: number[]; sum: number }>;
  busyWork(ms: number, options?: { threads?: number; fail?: boolean }): Promise<{ iterations: number; ms: number }>;
  /** Best of `reps` n x n matmuls (fp32 on the CPU by default): the matmul ceiling benches quote MFU against. */
  matmulBench(
    n: number,
    options?: { reps?: number; threads?: number; device?: 'auto' | 'cpu' | 'cuda'; dtype?: 'float32' | 'bfloat16' },
  ): Promise<{ size: number; ms: number; gflops: number; threads: number; device?: string; dtype?: string; checksum: number }>;
  /** Forward + backward of the masked cross-entropy sum (fused, or `naive` through full logits); tests and benches. */
  crossEntropy(
    hidden: Float32Array,
    hiddenShape: number[],
    weight: Float32Array,
    weightShape: number[],
    labels: Int32Array,
    labelsShape: number[],
    options?: { chunkRows?: number; naive?: boolean; threads?: number },
  ): Promise<{ lossSum: number; count: number; gradHidden: Float32Array; gradWeight: Float32Array }>;
  /**
   * Forward + backward of the distillation loss sum alpha * CE + (1 - alpha) * T^2 * KL(teacher || student) over the
   * labelled positions (fused and chunked, or `naive` through full logits); tests and benches.
   */
  distillLoss(
    hidden: Float32Array,
    hiddenShape: number[],
    weight: Float32Array,
    weightShape: number[],
    teacherHidden: Float32Array,
    teacherHiddenShape: number[],
    teacherWeight: Float32Array,
    teacherWeightShape: number[],
    labels: Int32Array,
    labelsShape: number[],
    options?: { alpha?: number; temperature?: number; chunkRows?: number; naive?: boolean; threads?: number },
  ): Promise<{ lossSum: number; ceSum: number; klSum: number; count: number; gradHidden: Float32Array; gradWeight: Float32Array }>;
  /** Runs the AdamW optimizer (with clipping) for grads.length steps on copies of params; tests and benches. */
  adamwSteps(options: {
    params: Float32Array[];
    shapes: number[][];
    grads: Float32Array[][];
    decay: boolean[];
    lr: number[];
    beta1?: number;
    beta2?: number;
    eps?: number;
    weightDecay?: number;
    maxGradNorm?: number;
    threads?: number;
  }): Promise<{ params: Float32Array[]; gradNorms: number[]; expAvg: Float32Array[]; expAvgSq: Float32Array[] }>;
  /** c10d TCPStore + ProcessGroupGloo or ProcessGroupNCCL (native/distributed.cc); use connectProcessGroup() in src/native/distributed.ts. */
  NativeProcessGroup: {
    connect(options: {
      masterAddr: string;
      masterPort: number;
      rank: number;
      worldSize: number;
      timeoutMs?: number;
      /** 'gloo' (default) or 'nccl' (then `device` is this rank's CUDA index). */
      backend?: 'gloo' | 'nccl';
      device?: number;
    }): Promise<NativeProcessGroupHandle>;
  };
  /** One causal LM (native/binding/model_js.cc); use loadModel() in src/native/model.ts. */
  NativeModel: NativeModelClass;
  safetensorsInfo(path: string): SafetensorsInfo;
  loadSafetensors(path: string, options?: { threads?: number }): Promise<Record<string, LoadedTensor>>;
  loadSafetensorsDir(
    dir: string,
    options?: { threads?: number },
  ): Promise<{ tensors: Record<string, LoadedTensor>; metadata: Record<string, string> }>;
  saveSafetensors(
    path: string,
    tensors: TensorToSave[],
    metadata?: Record<string, string>,
    options?: { threads?: number },
  ): Promise<void>;
}

/** Loads libtorch's libraries with RTLD_GLOBAL so the addon's DT_NEEDED entries resolve to them. */
function preloadLibtorch(record: LibtorchRecord | null): void {
  if (!record || !existsSync(record.lib)) return;
  for (const name of ['libc10.so', 'libtorch_cpu.so', 'libtorch.so', ...(record.cuda ? ['libc10_cuda.so', 'libtorch_cuda.so'] : [])]) {
    preloadGlobal(join(record.lib, name));
  }
}

/** dlopen(file, RTLD_NOW | RTLD_GLOBAL) of a plain shared library, when it exists. */
function preloadGlobal(file: string): void {
  if (!existsSync(file)) return;
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, file, constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL);
  } catch {
    // Not an addon, so dlopen "fails" after loading the library: that is the point.
  }
}

let cached: NativeBinding | null = null;

/** The addon, loaded once. Throws SFTKIT_LOAD with the fixes when it cannot be loaded. */
export function binding(): NativeBinding {
  if (cached) return cached;
  const record = readLibtorchRecord() ?? setupOnFirstUse();
  const isaDispatch = mklIsaDispatchWanted();
  let loaded: NativeBinding;
  try {
    const load = require('node-gyp-build') as ((dir: string) => unknown) & { resolve(dir: string): string };
    if (isaDispatch) preloadMklDispatch(dirname(load.resolve(packageRoot)));
    preloadLibtorch(record);
    loaded = load(packageRoot) as NativeBinding;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new SftkitError(
      'SFTKIT_LOAD',
      [
        `sftkit: the native addon could not be loaded: ${reason.split('\n')[0]}`,
        record
          ? `libtorch recorded at install: ${record.version} (${record.source}) in ${record.path}`
          : 'no libtorch.json: the install step did not run or failed',
        'Fixes:',
        '  - run `npx sftkit setup` (or `npm rebuild sftkit`) to obtain libtorch and build the addon;',
        '  - LIBTORCH=/path/to/libtorch npm install, to build against a libtorch you have;',
        '  - `node scripts/build-native.mjs` in the package directory to rebuild build/Release/sftkit.node.',
      ].join('\n'),
      { cause: e },
    );
  }
  if (cpuPoolWanted()) loaded.setCpuPool(true);
  cached = loaded;
  return loaded;
}

/**
 * No libtorch.json means the install step never ran: npm >= 11, pnpm and bun skip a dependency's install script until
 * the project approves it. Runs it now, once (scripts/install.mjs: obtain libtorch, use the prebuild or build),
 * with its progress on stderr, and returns what it recorded. SFTKIT_AUTO_SETUP=0 turns this off (then the load error
 * below says what to run). Blocks while it runs, as loading libtorch does anyway; `sftkit setup` does it ahead of time.
 */
function setupOnFirstUse(): LibtorchRecord | null {
  const mode = process.env.SFTKIT_AUTO_SETUP;
  if (mode === '0') return null;
  if (mode !== undefined && mode !== '' && mode !== '1') throw invalidParameterError('SFTKIT_AUTO_SETUP', '"0" or "1"', mode);
  const script = join(packageRoot, 'scripts', 'install.mjs');
  if (!existsSync(script)) return null;
  process.stderr.write(
    'sftkit: first use: the install step has not run here (npm >= 11, pnpm and bun skip dependency install scripts ' +
      'until approved, e.g. `npm install-scripts approve sftkit`); running it now, once.\n',
  );
  const r = spawnSync(process.execPath, [script], { cwd: packageRoot, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) {
    throw new SftkitError(
      'SFTKIT_LOAD',
      `sftkit: the install step (node ${script}) failed with ${r.error ? r.error.message : `exit code ${r.status}`}; its output above says why`,
    );
  }
  return readLibtorchRecord();
}

/**
 * native/preload/mkl_dispatch.cc, built beside the addon: loaded RTLD_GLOBAL before libtorch_cpu so that MKL's vendor
 * check binds to it and MKL picks its kernels by instruction set (AVX-512 on AMD Zen 4). Nothing to load (another
 * platform, or a prebuild without it) leaves MKL's own dispatch; runtimeInfo().mkl says which one is in effect.
 */
function preloadMklDispatch(addonDir: string): void {
  preloadGlobal(join(addonDir, MKL_DISPATCH_LIBRARY));
}
const MKL_DISPATCH_LIBRARY = 'libsftkit_mkl_dispatch.so';

/**
 * The MKL dispatch library beside the addon in use, or null where there is none (not Linux x86-64, or a build
 * without it). bench/compare LD_PRELOADs it into PyTorch to show what the same MKL kernels do there.
 */
export function mklDispatchLibrary(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  try {
    const load = require('node-gyp-build') as { resolve(dir: string): string };
    const file = join(dirname(load.resolve(packageRoot)), MKL_DISPATCH_LIBRARY);
    return existsSync(file) ? file : null;
  } catch {
    return null;
  }
}

/**
 * SFTKIT_MKL_DISPATCH=vendor keeps MKL's own kernel choice (on AMD: its AVX2 kernels even where AVX-512 exists), for
 * A/B runs; the default 'isa' lets the CPU's instruction set decide. Read once, before libtorch is loaded.
 */
function mklIsaDispatchWanted(): boolean {
  const v = process.env.SFTKIT_MKL_DISPATCH;
  if (v === undefined || v === '' || v === 'isa') return process.platform === 'linux' && process.arch === 'x64';
  if (v === 'vendor') return false;
  throw invalidParameterError('SFTKIT_MKL_DISPATCH', '"isa" or "vendor"', v);
}

/**
 * SFTKIT_CPU_POOL=off keeps glibc's allocator for every tensor (A/B runs, or a kernel without memfd); the default is
 * the pool on Linux.
 */
function cpuPoolWanted(): boolean {
  const v = process.env.SFTKIT_CPU_POOL;
  if (v === undefined || v === '' || v === 'on') return process.platform === 'linux';
  if (v === 'off') return false;
  throw invalidParameterError('SFTKIT_CPU_POOL', '"on" or "off"', v);
}

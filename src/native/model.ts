// The Model API: a Hugging Face causal LM directory loaded into the native engine. Every call goes through one
// SerialQueue per model (one native operation in flight) and withCallerStack (errors point at the caller).
import { mkdirSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { invalidParameterError, SftkitError } from '../errors.ts';
import {
  BASE_DTYPES,
  type BaseDtype,
  type BaseStats,
  type Batch,
  binding,
  type DistillStepOptions,
  type DistillStepResult,
  type ForwardBatch,
  type GenerateOptions,
  type GenerateStep,
  type LoadModelOptions,
  type Logits,
  type LossSum,
  type ModelDevice,
  type ModelDtype,
  type NativeModelHandle,
  type OptimizerStepOptions,
  type PreferenceLossType,
  type PreferenceStepOptions,
  type PreferenceStepResult,
  type StepOptions,
} from './binding.ts';
import { writeFileAtomicSync } from '../shared/index.ts';
import { SerialQueue, withCallerStack } from './call.ts';
import type { ProcessGroup } from './distributed.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  adapterConfigFromOptions,
  adapterConfigJson,
  isAdapterDir,
  loraModuleSpecs,
  readAdapterConfig,
  resolveLoraTargets,
  savedTargets,
  type AdapterConfig,
  type LoraModuleSpec,
  type LoraOptions,
} from './lora.ts';
import { configTextForSave, readModelConfig, type ModelSpec } from './model-config.ts';

// The addon's argument and result types live in binding.ts (the one mirror of the addon); re-exported here for callers.
export type {
  BaseDtype,
  BaseStats,
  ModelDtype,
  ModelDevice,
  LoadModelOptions,
  Batch,
  ForwardBatch,
  LossSum,
  PreferenceLossType,
  PreferenceStepOptions,
  PreferenceStepResult,
  DistillStepOptions,
  DistillStepResult,
  StepOptions,
  OptimizerStepOptions,
  GenerateOptions,
  GenerateStep,
  Logits,
  NativeModelClass,
} from './binding.ts';

/** The LoRA adapters a model carries. */
export interface AdapterInfo {
  config: AdapterConfig;
  /** The adapted modules (full HF names). */
  modules: string[];
  /** Where the adapter was read from (undefined: new adapters). */
  dir?: string;
}


function checkInt(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidParameterError(name, `an integer in [${min}, ${max}]`, v);
  }
}

function checkNumber(name: string, v: unknown, ok: (x: number) => boolean, expected: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw invalidParameterError(name, expected, v);
}

function checkBatch(b: ForwardBatch, needLabels: boolean): void {
  if (typeof b !== 'object' || b === null) throw invalidParameterError('batch', 'an object', b);
  if (!Array.isArray(b.shape) || b.shape.length !== 2) throw invalidParameterError('batch.shape', '[B, T]', b.shape);
  const [B, T] = b.shape;
  checkInt('batch.shape[0]', B, 1);
  checkInt('batch.shape[1]', T, 1);
  const n = B * T;
  const arr = (name: string, v: unknown, type: 'Int32Array' | 'Uint8Array') => {
    const ok = type === 'Int32Array' ? v instanceof Int32Array : v instanceof Uint8Array;
    if (!ok || (v as Int32Array).length !== n) throw invalidParameterError(name, `an ${type} of length B*T = ${n}`, v);
  };
  arr('batch.inputIds', b.inputIds, 'Int32Array');
  if (needLabels || b.labels !== undefined) arr('batch.labels', b.labels, 'Int32Array');
  if (b.attentionMask !== undefined) arr('batch.attentionMask', b.attentionMask, 'Uint8Array');
  if (b.positionIds !== undefined) {
    arr('batch.positionIds', b.positionIds, 'Int32Array');
    if (!Array.isArray(b.docLengths) || b.docLengths.length !== B) {
      throw invalidParameterError('batch.docLengths', `an array of ${B} Int32Array (one per row)`, b.docLengths);
    }
    b.docLengths.forEach((d, i) => {
      if (!(d instanceof Int32Array)) throw invalidParameterError(`batch.docLengths[${i}]`, 'an Int32Array', d);
    });
  } else if (b.docLengths !== undefined) {
    throw invalidParameterError('batch.positionIds', 'an Int32Array when docLengths is given', b.positionIds);
  }
  if (b.attentionMask !== undefined && b.positionIds !== undefined) {
    throw invalidParameterError('batch', 'either attentionMask or positionIds + docLengths, not both', b);
  }
}

function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomicSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

export class Model {
  readonly dir: string;
  readonly options: Readonly<LoadModelOptions>;
  private readonly native: NativeModelHandle;
  private readonly queue = new SerialQueue();
  private specValue: ModelSpec;
  private readonly rawConfig: Record<string, unknown>;
  private adapterValue: AdapterInfo | null;
  private disposed = false;

  /** @internal use loadModel() */
  constructor(
    dir: string,
    spec: ModelSpec,
    raw: Record<string, unknown>,
    options: LoadModelOptions,
    native: NativeModelHandle,
    adapter: AdapterInfo | null = null,
  ) {
    this.dir = dir;
    this.specValue = spec;
    this.rawConfig = raw;
    this.options = options;
    this.native = native;
    this.adapterValue = adapter;
  }

  /** The LoRA adapters of this model (null: none; the whole model trains). */
  get adapter(): Readonly<AdapterInfo> | null {
    return this.adapterValue;
  }

  /** How the frozen base weights are stored ('float32' unless loaded with `baseDtype`). */
  get baseDtype(): BaseDtype {
    return this.options.baseDtype ?? 'float32';
  }

  /**
   * The frozen base store: its dtype, its memory in bytes and the milliseconds spent dequantising its weights and in
   * the matmuls over them, cumulative since load or the last `baseStats(true)` (which returns the totals, then resets).
   */
  baseStats(reset = false): BaseStats {
    if (typeof reset !== 'boolean') throw invalidParameterError('reset', 'true or false', reset);
    if (this.disposed) throw new SftkitError('SFTKIT_BAD_ARGUMENT', 'the model has been disposed');
    if (typeof this.native.baseStats !== 'function') {
      throw new SftkitError('SFTKIT_UNSUPPORTED', 'baseStats: this build of the native addon predates low-precision bases; rebuild it (npm run build:native)');
    }
    return this.native.baseStats(reset);
  }

  /** Training needs LoRA adapters over a low-precision base: its weights are frozen in their small form. */
  private checkTrainable(what: string): void {
    if (this.baseDtype !== 'float32' && !this.adapterValue) {
      throw new SftkitError(
        'SFTKIT_UNSUPPORTED',
        `${what}: the base weights are stored in ${this.baseDtype} (baseDtype), frozen; only LoRA adapters train over them: ` +
          "load with `lora` (--lora-r R) or with baseDtype 'float32' for full fine-tuning",
      );
    }
  }

  /** The validated architecture spec (vocabSize follows resizeTokenEmbeddings). */
  get spec(): Readonly<ModelSpec> {
    return this.specValue;
  }

  private run<T>(op: () => Promise<T> | T): Promise<T> {
    return withCallerStack(() =>
      this.queue.run(async () => {
        if (this.disposed) throw new SftkitError('SFTKIT_BAD_ARGUMENT', 'the model has been disposed');
        return op();
      }),
    );
  }

  /** Logits [B, T, V] (fp32) for inspection and evaluation; no gradients. */
  forward(batch: ForwardBatch): Promise<Logits> {
    checkBatch(batch, false);
    return this.run(() => this.native.forward(batch));
  }

  /** Forward + fused masked cross-entropy + backward; gradients accumulate until zeroGrad(). */
  step(batch: Batch, options: StepOptions = {}): Promise<LossSum> {
    checkBatch(batch, true);
    this.checkTrainable('step');
    const { lossScale = 1 } = options;
    if (typeof lossScale !== 'number' || !Number.isFinite(lossScale) || lossScale < 0) {
      throw invalidParameterError('lossScale', 'a finite number >= 0', lossScale);
    }
    return this.run(() => this.native.step(batch, { lossScale }));
  }

  /**
   * Per-row sums of the labelled tokens' log-probabilities (and their counts), without gradients. `adapter: false`
   * runs the base model without its LoRA adapters: the reference of a LoRA policy in DPO, without a second model.
   */
  sequenceLogps(batch: Batch, options: { adapter?: boolean } = {}): Promise<{ logps: Float64Array; tokens: Float64Array }> {
    checkBatch(batch, true);
    const { adapter = true } = options;
    if (typeof adapter !== 'boolean') throw invalidParameterError('adapter', 'true or false', adapter);
    return this.run(() => this.native.sequenceLogps(batch, { adapter }));
  }

  /**
   * One DPO micro-batch: rows are pairs (chosen, rejected); the preference loss against `refLogps` (sigmoid with
   * optional label smoothing, or IPO on token-averaged log-probs, as TRL defines them), backward included.
   */
  preferenceStep(batch: Batch, options: PreferenceStepOptions): Promise<PreferenceStepResult> {
    checkBatch(batch, true);
    this.checkTrainable('preferenceStep');
    const { refLogps, beta = 0.1, labelSmoothing = 0, lossType = 'sigmoid', lossScale = 1 } = options;
    if (!(refLogps instanceof Float64Array) || refLogps.length !== batch.shape[0]) {
      throw invalidParameterError('refLogps', `a Float64Array of ${batch.shape[0]} values (one per row)`, refLogps);
    }
    if (batch.shape[0] % 2 !== 0) throw invalidParameterError('batch.shape[0]', 'an even number of rows (chosen, rejected pairs)', batch.shape[0]);
    if (!(typeof beta === 'number' && beta > 0)) throw invalidParameterError('beta', 'a number > 0', beta);
    if (!(typeof labelSmoothing === 'number' && labelSmoothing >= 0 && labelSmoothing < 0.5)) throw invalidParameterError('labelSmoothing', 'a number in [0, 0.5)', labelSmoothing);
    if (lossType !== 'sigmoid' && lossType !== 'ipo') throw invalidParameterError('lossType', "'sigmoid' or 'ipo'", lossType);
    if (!(typeof lossScale === 'number' && Number.isFinite(lossScale) && lossScale >= 0)) throw invalidParameterError('lossScale', 'a finite number >= 0', lossScale);
    return this.run(() => this.native.preferenceStep(batch, { refLogps, beta, labelSmoothing, lossType, lossScale }));
  }

  /**
   * Logit-level distillation step: the teacher's forward (no gradients) and this model's forward on the same batch,
   * alpha * CE + (1 - alpha) * T^2 * KL(teacher || student) summed over the label tokens, chunk by chunk (never the
   * full [N, V] logits of either model), backward included. Both models must have the same vocabulary.
   */
  distillStep(batch: Batch, teacher: Model, options: DistillStepOptions = {}): Promise<DistillStepResult> {
    checkBatch(batch, true);
    if (!(teacher instanceof Model)) throw invalidParameterError('teacher', 'a Model', teacher);
    if (teacher === this) throw invalidParameterError('teacher', 'another model than the student', teacher.dir);
    this.checkTrainable('distillStep');
    const { alpha = 0.5, temperature = 1, lossScale = 1 } = options;
    checkNumber('alpha', alpha, (x) => x >= 0 && x <= 1, 'a number in [0, 1]');
    checkNumber('temperature', temperature, (x) => x > 0, 'a number > 0');
    checkNumber('lossScale', lossScale, (x) => x >= 0, 'a finite number >= 0');
    if (teacher.spec.vocabSize !== this.spec.vocabSize) {
      throw new SftkitError(
        'SFTKIT_BAD_ARGUMENT',
        `distillStep: the teacher ${teacher.dir} has a vocabulary of ${teacher.spec.vocabSize}, the student ${this.dir} of ${this.spec.vocabSize}; they must share the tokenizer`,
      );
    }
    // Both models are busy for the call: it runs in the student's queue and holds the teacher's.
    return this.run(() => teacher.run(() => this.native.distillStep(batch, teacher.native, { alpha, temperature, lossScale })));
  }

  /** Loss sum and label-token count without gradients. */
  evalLoss(batch: Batch): Promise<LossSum> {
    checkBatch(batch, true);
    return this.run(() => this.native.evalLoss(batch));
  }

  /** Clips the global gradient norm (maxGradNorm) and applies one AdamW update; returns the pre-clip norm. */
  optimizerStep(opts: OptimizerStepOptions): Promise<{ gradNorm: number }> {
    if (typeof opts !== 'object' || opts === null) throw invalidParameterError('options', 'an object', opts);
    this.checkTrainable('optimizerStep');
    checkNumber('lr', opts.lr, (x) => x >= 0, 'a number >= 0');
    if (opts.beta1 !== undefined) checkNumber('beta1', opts.beta1, (x) => x >= 0 && x < 1, 'a number in [0, 1)');
    if (opts.beta2 !== undefined) checkNumber('beta2', opts.beta2, (x) => x >= 0 && x < 1, 'a number in [0, 1)');
    if (opts.eps !== undefined) checkNumber('eps', opts.eps, (x) => x > 0, 'a number > 0');
    if (opts.weightDecay !== undefined) checkNumber('weightDecay', opts.weightDecay, (x) => x >= 0, 'a number >= 0');
    if (opts.maxGradNorm !== undefined) checkNumber('maxGradNorm', opts.maxGradNorm, (x) => x >= 0, 'a number >= 0');
    if (opts.noDecay !== undefined && (!Array.isArray(opts.noDecay) || opts.noDecay.some((s) => typeof s !== 'string'))) {
      throw invalidParameterError('noDecay', 'an array of strings', opts.noDecay);
    }
    return this.run(() => this.native.optimizerStep(opts));
  }

  zeroGrad(): Promise<void> {
    return this.run(() => this.native.zeroGrad());
  }

  numParameters(): number {
    if (this.disposed) throw new SftkitError('SFTKIT_BAD_ARGUMENT', 'the model has been disposed');
    return this.native.numParameters();
  }

  /** Elements that train: the LoRA adapters' when the model has them, else numParameters(). */
  numTrainableParameters(): number {
    if (this.disposed) throw new SftkitError('SFTKIT_BAD_ARGUMENT', 'the model has been disposed');
    return this.native.numTrainableParameters();
  }

  /** Where the parameters live: "cpu" or "cuda:0" (what `device: 'auto'` resolved to). */
  device(): string {
    if (this.disposed) throw new SftkitError('SFTKIT_BAD_ARGUMENT', 'the model has been disposed');
    return this.native.device();
  }

  /**
   * Restores the weights of this model's adapters from an adapter directory written by save() (resuming a LoRA run:
   * the adapters were attached with the run's options). Another rank or other target modules are errors.
   */
  loadAdapterWeights(dir: string): Promise<void> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalidParameterError('dir', 'a non-empty string', dir);
    if (!this.adapterValue) throw new SftkitError('SFTKIT_BAD_ARGUMENT', 'loadAdapterWeights: the model has no LoRA adapters');
    return this.run(() => this.native.loadAdapter(join(dir, ADAPTER_WEIGHTS_FILE)));
  }

  /**
   * Merges the LoRA adapters into the base weights (W += scaling * B A) and drops them: save() then writes a full
   * model (`sftkit merge`). The optimizer state is reset.
   */
  mergeAdapter(): Promise<void> {
    if (!this.adapterValue) throw new SftkitError('SFTKIT_BAD_ARGUMENT', 'mergeAdapter: the model has no LoRA adapters');
    if (this.baseDtype !== 'float32') {
      throw new SftkitError(
        'SFTKIT_UNSUPPORTED',
        `mergeAdapter: the base weights are stored in ${this.baseDtype} (baseDtype); merge into a full-precision copy: ` +
          "load the base and the adapter with baseDtype 'float32' (as `sftkit merge` does) and merge there",
      );
    }
    return this.run(async () => {
      await this.native.mergeAdapter();
      this.adapterValue = null;
    });
  }

  /** New vocabulary size; new rows are the mean of the existing ones (embedding and untied head). Resets AdamW. */
  resizeTokenEmbeddings(newVocab: number): Promise<void> {
    checkInt('newVocab', newVocab, 1, 100_000_000);
    if (this.baseDtype !== 'float32') {
      throw new SftkitError(
        'SFTKIT_UNSUPPORTED',
        `resizeTokenEmbeddings: the embeddings are frozen in ${this.baseDtype} (baseDtype); new rows would neither train nor be saved: ` +
          "load with baseDtype 'float32' (--base-dtype float32) to resize",
      );
    }
    return this.run(() => {
      this.native.resizeTokenEmbeddings(newVocab);
      this.specValue = { ...this.specValue, vocabSize: newVocab };
    });
  }

  /**
   * Writes config.json (vocab_size updated), generation_config.json and model.safetensors into dir. A model with
   * LoRA adapters writes the adapter instead, in the PEFT layout (adapter_config.json + adapter_model.safetensors:
   * `PeftModel.from_pretrained(base, dir)` loads it); mergeAdapter() first to write full weights.
   */
  save(dir: string): Promise<void> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalidParameterError('dir', 'a non-empty string', dir);
    return this.run(async () => {
      mkdirSync(dir, { recursive: true });
      const adapter = this.adapterValue;
      if (adapter) {
        if (resolve(dir) === resolve(this.dir)) {
          throw new SftkitError('SFTKIT_BAD_ARGUMENT', `save: ${dir} is the base model's directory; write the adapter elsewhere`);
        }
        await this.native.saveAdapter(join(dir, ADAPTER_WEIGHTS_FILE));
        writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), adapterConfigJson(adapter.config, this.specValue.arch));
        // A directory that held a full model before would otherwise look like one.
        for (const stale of ['model.safetensors', 'model.safetensors.index.json', 'config.json']) rmSync(join(dir, stale), { force: true });
        return;
      }
      await this.native.save(join(dir, 'model.safetensors'));
      writeFileAtomicSync(join(dir, 'config.json'), configTextForSave(this.rawConfig, this.specValue.vocabSize));
      writeJsonAtomic(join(dir, 'generation_config.json'), this.generationConfig());
    });
  }

  private generationConfig(): Record<string, unknown> {
    const file = join(this.dir, 'generation_config.json');
    if (existsSync(file)) {
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      } catch {
        // fall through to a fresh one
      }
    }
    const s = this.specValue;
    const out: Record<string, unknown> = {};
    if (s.bosTokenId !== null) out['bos_token_id'] = s.bosTokenId;
    if (s.eosTokenIds.length > 0) out['eos_token_id'] = s.eosTokenIds.length === 1 ? s.eosTokenIds[0] : s.eosTokenIds;
    if (s.padTokenId !== null) out['pad_token_id'] = s.padTokenId;
    return out;
  }

  saveOptimizerState(path: string): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw invalidParameterError('path', 'a non-empty string', path);
    return this.run(() => this.native.saveOptimizerState(path));
  }

  loadOptimizerState(path: string): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw invalidParameterError('path', 'a non-empty string', path);
    return this.run(() => this.native.loadOptimizerState(path));
  }

  /**
   * Sums every parameter's gradient over the ranks of `group` (data parallelism), in buckets of `bucketMb` MiB.
   * Each rank then holds the gradient of the summed loss; a rank without a gradient contributes zeros.
   */
  allReduceGrads(group: ProcessGroup, options: { bucketMb?: number } = {}): Promise<void> {
    const { bucketMb = 25 } = options;
    if (typeof bucketMb !== 'number' || !(bucketMb > 0)) throw invalidParameterError('bucketMb', 'a number > 0', bucketMb);
    return this.run(() => this.native.allReduceGrads(group.native, { bucketMb }));
  }

  /** Per-parameter gradient L2 norms by HF name (tests, diagnostics). */
  gradNorms(): Promise<Record<string, number>> {
    return this.run(() => this.native.gradNorms());
  }

  parameterNames(): Promise<string[]> {
    return this.run(() => this.native.parameterNames());
  }

  /** A parameter in HF layout (fp32 copy); LoRA adapters under their PEFT names (`base_model.model.<module>.lora_A.weight`). */
  getParameter(name: string): Promise<{ data: Float32Array; shape: number[] }> {
    if (typeof name !== 'string') throw invalidParameterError('name', 'a string', name);
    return this.run(() => this.native.getParameter(name));
  }

  /** A parameter's accumulated gradient in HF layout (fp32 copy), or null when it has none (frozen, or no step yet). */
  getGradient(name: string): Promise<{ data: Float32Array; shape: number[] } | null> {
    if (typeof name !== 'string') throw invalidParameterError('name', 'a string', name);
    return this.run(() => this.native.getGradient(name));
  }

  private generateArgs(prompts: ArrayLike<number>[], opts: GenerateOptions) {
    if (!Array.isArray(prompts) || prompts.length === 0) throw invalidParameterError('prompts', 'a non-empty array of token id arrays', prompts);
    const rows = prompts.map((p, i) => {
      if (!(p instanceof Int32Array) && !Array.isArray(p)) throw invalidParameterError(`prompts[${i}]`, 'an Int32Array or number[]', p);
      if (p.length === 0) throw invalidParameterError(`prompts[${i}]`, 'a non-empty prompt', p);
      return p instanceof Int32Array ? p : Int32Array.from(p);
    });
    const o = opts ?? {};
    const maxNewTokens = o.maxNewTokens ?? 32;
    checkInt('maxNewTokens', maxNewTokens, 0, 1_000_000);
    const temperature = o.temperature ?? 0;
    checkNumber('temperature', temperature, (x) => x >= 0, 'a number >= 0');
    const topK = o.topK ?? 0;
    checkInt('topK', topK, 0);
    const topP = o.topP ?? 1;
    checkNumber('topP', topP, (x) => x > 0 && x <= 1, 'a number in (0, 1]');
    const seed = o.seed ?? 0;
    checkInt('seed', seed, 0);
    const stopIds = o.stopIds ?? this.specValue.eosTokenIds;
    if (!Array.isArray(stopIds) || stopIds.some((x) => !Number.isInteger(x))) throw invalidParameterError('stopIds', 'an array of token ids', stopIds);
    return { rows, native: { maxNewTokens, temperature, topK, topP, seed, stopIds } };
  }

  /** Generates for every prompt (left-padded together); returns the new ids per prompt (stop id included). */
  generate(prompts: ArrayLike<number>[], opts: GenerateOptions = {}): Promise<Int32Array[]> {
    const { rows, native } = this.generateArgs(prompts, opts);
    return this.run(() => this.native.generate(rows, native));
  }

  /** Streams the tokens as they are produced: `for await (const { tokens } of model.generateStream(...))`. */
  generateStream(prompts: ArrayLike<number>[], opts: GenerateOptions = {}): AsyncIterableIterator<GenerateStep> {
    const { rows, native } = this.generateArgs(prompts, opts);
    const pending: GenerateStep[] = [];
    let wake: (() => void) | null = null;
    let finished = false;
    let failure: unknown = null;
    let step = 0;
    const notify = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    const done = this.run(() =>
      this.native.generate(rows, native, (tokens) => {
        pending.push({ step: step++, tokens });
        notify();
      }),
    ).then(
      () => {
        finished = true;
        notify();
      },
      (e: unknown) => {
        failure = e;
        finished = true;
        notify();
      },
    );
    const iterator: AsyncIterableIterator<GenerateStep> = {
      [Symbol.asyncIterator]() {
        return iterator;
      },
      next: async (): Promise<IteratorResult<GenerateStep>> => {
        for (;;) {
          if (pending.length > 0) return { value: pending.shift() as GenerateStep, done: false };
          if (finished) {
            if (failure !== null) {
              const e = failure;
              failure = null;
              throw e;
            }
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      },
      return: async (): Promise<IteratorResult<GenerateStep>> => {
        // Early exit: stop the native loop after its current step and wait for it to release the model.
        if (!finished) this.native.cancelGeneration();
        await done;
        pending.length = 0;
        return { value: undefined, done: true };
      },
    };
    return iterator;
  }

  /** Frees the native model (waits for queued operations first). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.queue.run(async () => undefined);
    this.disposed = true;
    this.native.dispose();
  }
}

function checkLoadOptions(opts: LoadModelOptions): void {
  if (typeof opts !== 'object' || opts === null) throw invalidParameterError('options', 'an object', opts);
  if (opts.dtype !== undefined && opts.dtype !== 'float32' && opts.dtype !== 'bfloat16') {
    throw invalidParameterError('dtype', "'float32' or 'bfloat16'", opts.dtype);
  }
  if (opts.device !== undefined && opts.device !== 'auto' && opts.device !== 'cpu' && opts.device !== 'cuda' && !(typeof opts.device === 'string' && /^cuda:\d{1,4}$/.test(opts.device))) {
    throw invalidParameterError('device', "'auto', 'cpu', 'cuda' or 'cuda:N'", opts.device);
  }
  if (opts.autocast !== undefined && typeof opts.autocast !== 'boolean') throw invalidParameterError('autocast', 'true or false', opts.autocast);
  if (opts.adapter !== undefined && (typeof opts.adapter !== 'string' || opts.adapter.length === 0)) {
    throw invalidParameterError('adapter', 'an adapter directory', opts.adapter);
  }
  if (opts.adapter !== undefined && opts.lora !== undefined) {
    throw new SftkitError('SFTKIT_BAD_ARGUMENT', 'give either lora (new adapters) or adapter (a saved one), not both');
  }
  if (opts.threads !== undefined) checkInt('threads', opts.threads, 0, 4096);
  if (opts.gradientCheckpointing !== undefined && typeof opts.gradientCheckpointing !== 'boolean') {
    throw invalidParameterError('gradientCheckpointing', 'true or false', opts.gradientCheckpointing);
  }
  checkBaseDtypeOptions(opts);
}

/**
 * The rules of a low-precision frozen base (issue 24), shared by loadModel and the command schemas: a base dtype of
 * the list; doubleQuant with nf4 only; a base other than float32 computes in float32 (bf16 compute comes through
 * autocast). `name` spells the options as the caller wrote them (flags or library keys).
 */
export function checkBaseDtypeOptions(
  opts: { baseDtype?: unknown; doubleQuant?: unknown; dtype?: unknown },
  name: (key: 'baseDtype' | 'doubleQuant' | 'dtype' | 'autocast') => string = (k) => k,
): void {
  const { baseDtype, doubleQuant, dtype } = opts;
  if (baseDtype !== undefined && !(BASE_DTYPES as readonly unknown[]).includes(baseDtype)) {
    throw invalidParameterError(name('baseDtype'), BASE_DTYPES.map((d) => `'${d}'`).join(', ').replace(/, ([^,]*)$/, ' or $1'), baseDtype);
  }
  if (doubleQuant !== undefined && typeof doubleQuant !== 'boolean') throw invalidParameterError(name('doubleQuant'), 'true or false', doubleQuant);
  if (doubleQuant === true && baseDtype !== 'nf4') {
    throw new SftkitError(
      'SFTKIT_BAD_ARGUMENT',
      `${name('doubleQuant')} quantises nf4's block scales: it needs ${name('baseDtype')} nf4 (received ${baseDtype === undefined ? 'no base dtype' : String(baseDtype)})`,
    );
  }
  if (baseDtype !== undefined && baseDtype !== 'float32' && dtype === 'bfloat16') {
    throw new SftkitError(
      'SFTKIT_BAD_ARGUMENT',
      `${name('baseDtype')} ${String(baseDtype)} stores the frozen base small and computes in float32: it needs ${name('dtype')} float32 ` +
        `(for bf16 compute, on CUDA, add ${name('autocast')})`,
    );
  }
}

/**
 * The base model directory and adapter directory of a load: DIR itself and options.adapter, or, when DIR is an
 * adapter directory (adapter_config.json, no config.json), its base_model_name_or_path and DIR.
 */
export function resolveModelDirs(dir: string, adapter?: string): { base: string; adapter?: string } {
  if (!isAdapterDir(dir)) return adapter === undefined ? { base: dir } : { base: dir, adapter };
  if (adapter !== undefined) {
    throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${dir} is a LoRA adapter directory (${ADAPTER_CONFIG_FILE}), not a model: pass its base model as the model and ${adapter} as the adapter`);
  }
  const base = readAdapterConfig(dir).baseModel;
  // A relative base_model_name_or_path: from the working directory (as peft reads it), else from the adapter's.
  const found = base === null ? undefined : [base, ...(isAbsolute(base) ? [] : [join(dir, base)])].find((d) => existsSync(join(d, 'config.json')));
  if (found === undefined) {
    throw new SftkitError(
      'SFTKIT_IO',
      `${dir} holds a LoRA adapter (${ADAPTER_CONFIG_FILE}), not a model, and its base_model_name_or_path ${JSON.stringify(base)} ` +
        'is not a model directory here: pass the base model as the model (--model BASE) and this directory as the adapter (--adapter DIR)',
    );
  }
  return { base: found, adapter: dir };
}

/**
 * Loads a Hugging Face model directory (config.json + model.safetensors or a sharded index), optionally with new
 * LoRA adapters (`lora`) or a saved PEFT adapter (`adapter`; a directory holding only an adapter loads its base
 * model from base_model_name_or_path).
 */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<Model> {
  if (typeof dir !== 'string' || dir.length === 0) throw invalidParameterError('dir', 'a non-empty string', dir);
  checkLoadOptions(options);
  const dirs = resolveModelDirs(dir, options.adapter);
  const { spec, raw } = readModelConfig(dirs.base);
  // Adapter options are checked before the weights are read.
  const fresh = options.lora ? adapterConfigFromOptions(options.lora, spec.arch, resolve(dirs.base)) : undefined;
  const saved = dirs.adapter !== undefined ? readAdapterConfig(dirs.adapter) : undefined;
  const Native = binding().NativeModel;
  const native = new Native();
  const { lora: _lora, adapter: _adapter, ...nativeOptions } = options;
  await withCallerStack(() => native.load(dirs.base, spec, nativeOptions));
  let adapter: AdapterInfo | null = null;
  try {
    const config = fresh ?? saved;
    if (config) {
      const what = fresh ? 'lora.targets' : `${join(dirs.adapter!, ADAPTER_CONFIG_FILE)} target_modules`;
      const modules = resolveLoraTargets(config.targets, native.loraTargetModules(), spec.arch, what);
      config.targets = savedTargets(config.targets, modules);
      const seed = options.lora?.seed ?? 0;
      await withCallerStack(() => native.attachLora({ modules: loraModuleSpecs(modules, config), dropout: config.dropout, seed }));
      if (saved) {
        await withCallerStack(() => native.loadAdapter(join(dirs.adapter!, ADAPTER_WEIGHTS_FILE)));
        if (saved.baseModel === null) saved.baseModel = resolve(dirs.base);
      }
      adapter = dirs.adapter !== undefined ? { config, modules, dir: dirs.adapter } : { config, modules };
    }
  } catch (e) {
    native.dispose();
    throw e;
  }
  return new Model(dirs.base, spec, raw, { ...options }, native, adapter);
}

// The training loop: prepared data -> micro-batches -> native step (loss sum, token count) -> AdamW, with gradient
// accumulation normalised by the label-token count of the whole optimizer step, LR schedule, validation, atomic
// checkpoints, exact resume, graceful stop on SIGINT/SIGTERM, metrics.jsonl and loss-curve plots.
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdir, writeFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  batches,
  collate,
  collatePacked,
  formatSummary,
  packBestFitDecreasing,
  planBatches,
  prepareDataset,
  saveTokenizer,
  type Batch,
  type PreparedDataset,
  type TokenizedExample,
} from '../data-api.ts';
import { parseFieldMap } from '../data/formats.ts';
import type { RecordFormat } from '../data/types.ts';
import type { MaskMode } from '../mask/mask-mode.ts';
import { SftkitError, invalidParameterError } from '../errors.ts';
import { connectProcessGroup, distributedFromEnv, validateDistributed, type DistributedOptions, type ProcessGroup } from '../native/distributed.ts';
import { loadModel, type Model } from '../native/model.ts';
import { readModelConfig } from '../native/model-config.ts';
import {
  latestCheckpoint,
  pruneCheckpoints,
  readTrainerState,
  removeStaleTempDirs,
  saveCheckpoint,
  installStopSignals,
  type TrainerState,
} from './checkpoint.ts';
import { openMetricsWriter, readMetrics, type MetricRecord, type MetricsWriter } from './metrics.ts';
import { checkLoraResume, loraFromTrainOptions } from './lora.ts';
import { validateTrainOptions, type TrainOptions } from './options.ts';
import { writeLossPlots } from './plot.ts';
import { ProgressReporter, type ProgressStream } from './progress.ts';
import { lrAt, warmupSteps } from './schedule.ts';
import { writeSplitFiles } from './split-files.ts';

export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const RUN_FILE = 'sftkit_run.json';

export type StopReason = 'completed' | 'interrupted';

export interface TrainHooks {
  /** Progress bar / log lines (default: process.stderr). */
  progress?: ProgressStream;
  /** Messages for the user (default: lines on process.stderr). */
  log?: (message: string) => void;
  /** Called after every optimizer step with its metric record. */
  onStep?: (record: MetricRecord) => void;
  /** Aborting stops the run after the current optimizer step, with a checkpoint (like SIGINT). */
  signal?: AbortSignal;
  /** Handle SIGINT/SIGTERM (default true; the library API may turn it off). */
  handleSignals?: boolean;
}

export interface TrainResult {
  out: string;
  stopped: StopReason;
  steps: number;
  totalSteps: number;
  tokensSeen: number;
  /** Mean train loss of the last optimizer step. */
  lastTrainLoss: number | null;
  lastValLoss: number | null;
  bestValLoss: number | null;
  /** Checkpoint directory written last, if any. */
  lastCheckpoint: string | null;
  examples: { train: number; val: number; test: number; dropped: number };
}

/** Label tokens a model step will count: targets after the shift (labels[b, 1:] != -100). */
function countTargets(b: Batch): number {
  return b.labelTokens;
}

function realTokens(b: Batch): number {
  let n = 0;
  for (let i = 0; i < b.attentionMask.length; i++) n += b.attentionMask[i] as number;
  return n;
}

function fingerprint(examples: readonly TokenizedExample[], o: TrainOptions): string {
  const h = createHash('sha256');
  for (const e of examples) {
    h.update(new Uint8Array(e.inputIds.buffer, e.inputIds.byteOffset, e.inputIds.byteLength));
    h.update(new Uint8Array(e.labels.buffer, e.labels.byteOffset, e.labels.byteLength));
  }
  h.update(
    JSON.stringify([o.batchSize, o.gradAccum, o.seed, o.packing, o.maxLength ?? null, o.groupByLength, o.dropLast]),
  );
  return h.digest('hex').slice(0, 32);
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}

/**
 * Everything needed to turn the training set into the micro-batches of an epoch. With data parallelism every rank
 * plans the same global batches (`--batch-size` rows) and takes its own slice of each; a rank whose slice of the
 * last batch is empty gets null (it still takes part in the collectives).
 */
interface EpochPlan {
  batchesOf(epoch: number): Generator<Batch | null>;
  microBatchesPerEpoch: number;
  stepsPerEpoch: number;
}

function epochPlan(prepared: PreparedDataset, o: TrainOptions, maxLength: number, rank = 0, world = 1): EpochPlan {
  const padId = prepared.tokenizer.padId;
  const base = {
    batchSize: o.batchSize,
    padId,
    seed: o.seed,
    dropLast: o.dropLast,
    groupByLength: o.groupByLength,
    packing: o.packing,
    maxLength,
  };
  const lengths = prepared.train.map((e) => e.inputIds.length);
  const rowLengths = o.packing
    ? packBestFitDecreasing(lengths, maxLength).map((bin) => bin.reduce((s, i) => s + (lengths[i] as number), 0))
    : lengths;
  const microBatchesPerEpoch = planBatches(rowLengths, { ...base, epoch: 0 }).length;
  if (microBatchesPerEpoch === 0) {
    throw new SftkitError('SFTKIT_DATA', `no training batch: ${prepared.train.length} examples with --batch-size ${o.batchSize} and --drop-last`);
  }
  const bins = o.packing ? packBestFitDecreasing(lengths, maxLength) : [];
  const per = o.batchSize / world;
  const pad = { padId };
  function* sharded(epoch: number): Generator<Batch | null> {
    for (const plan of planBatches(rowLengths, { ...base, epoch })) {
      const mine = plan.slice(rank * per, (rank + 1) * per);
      if (mine.length === 0) yield null;
      else if (o.packing) yield collatePacked(mine.map((r) => (bins[r] as number[]).map((i) => prepared.train[i] as TokenizedExample)), pad);
      else yield collate(mine.map((i) => prepared.train[i] as TokenizedExample), pad);
    }
  }
  return {
    batchesOf: (epoch) => (world === 1 ? batches(prepared.train, { ...base, epoch }) : sharded(epoch)),
    microBatchesPerEpoch,
    stepsPerEpoch: Math.ceil(microBatchesPerEpoch / o.gradAccum),
  };
}

/** Loss sum and label tokens over examples (this rank's share of them when data parallel). */
async function evalSums(model: Model, examples: readonly TokenizedExample[], o: TrainOptions, padId: number, maxLength: number): Promise<[number, number]> {
  let sum = 0;
  let tokens = 0;
  if (examples.length === 0) return [0, 0];
  for (const b of batches(examples, { batchSize: o.batchSize, padId, shuffle: false, packing: false, maxLength })) {
    const r = await model.evalLoss(b);
    sum += r.lossSum;
    tokens += r.tokens;
  }
  return [sum, tokens];
}

/**
 * Fine-tunes `options.model` on `options.data` and writes the run into `options.out`: checkpoints, the final model
 * (a Hugging Face directory in OUT itself), `metrics.jsonl`, `loss.svg`/`loss.png` and `data/{train,val,test}.jsonl`.
 */
export async function train(input: unknown, hooks: TrainHooks = {}): Promise<TrainResult> {
  // `distributed` (data parallelism) is not a flag of the run: it says where this process sits in the group. When it
  // is absent, the torchrun environment (WORLD_SIZE > 1, RANK, MASTER_ADDR, MASTER_PORT) is used if present.
  let distributed: DistributedOptions | undefined;
  if (input !== null && typeof input === 'object' && 'distributed' in input) {
    const { distributed: d, ...rest } = input as { distributed?: unknown };
    distributed = d === undefined ? undefined : validateDistributed(d);
    input = rest;
  } else {
    distributed = distributedFromEnv();
  }
  const o = validateTrainOptions(input);
  const world = distributed?.worldSize ?? 1;
  if (o.batchSize % world !== 0) {
    throw invalidParameterError('batchSize', `a multiple of the world size ${world} (--batch-size is the global batch)`, o.batchSize);
  }
  const group = distributed && world > 1 ? await connectProcessGroup(distributed) : undefined;
  const rank = group?.rank ?? 0;
  const isMain = rank === 0;
  const out = resolve(o.out);
  const userLog = hooks.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const log = isMain ? userLog : () => {};
  await mkdir(out, { recursive: true });
  const runFile = join(out, RUN_FILE);
  const startedAt = new Date().toISOString();
  const writeRun = async (status: 'running' | 'finished' | 'failed' | 'interrupted', extra: Record<string, unknown> = {}) => {
    if (isMain) await writeJsonAtomic(runFile, { status, startedAt, updatedAt: new Date().toISOString(), pid: process.pid, worldSize: world, options: o, ...extra });
  };
  // Resume reads the latest checkpoint before rank 0 cleans stale temp dirs (they are never listed anyway).
  const resumeFrom = o.resume ? await latestCheckpoint(out) : undefined;
  if (group) await group.barrier();
  if (isMain) await removeStaleTempDirs(out);
  await writeRun('running');
  if (group) log(`sftkit train: data parallel, ${world} processes (this is rank ${rank}), global batch ${o.batchSize}`);

  try {
    // ---- resume point -------------------------------------------------------------------------------------------
    if (o.resume && !resumeFrom) log(`sftkit train: --resume: no complete checkpoint in ${out}, starting from ${o.model}`);
    const state: TrainerState | undefined = resumeFrom ? await readTrainerState(resumeFrom.path) : undefined;

    // ---- data ---------------------------------------------------------------------------------------------------
    const { spec } = readModelConfig(o.model);
    const maxLength = o.maxLength ?? spec.maxPositions;
    const prepared = await prepareDataset({
      data: o.data,
      tokenizer: resumeFrom ? resumeFrom.path : o.model,
      format: o.format === 'auto' ? 'auto' : (o.format as RecordFormat),
      fieldMap: parseFieldMap(o.fieldMap),
      template: o.template === 'auto' ? undefined : o.template,
      mask: o.mask === 'auto' ? undefined : (o.mask as MaskMode),
      maxLength,
      addSpecialTokens: o.addSpecialTokens,
      split: o.valData !== undefined || o.testData !== undefined ? false : { val: o.valSplit, test: o.testSplit, train: 1 - o.valSplit - o.testSplit, seed: o.seed },
      valData: o.valData,
      testData: o.testData,
      // Tokenized examples are cached on disk, keyed by data, tokenizer, template and masking options.
      cache: true,
    });
    const dropped = prepared.summary.droppedTotal;
    log(
      `sftkit train: ${prepared.format} data, template ${prepared.templateId}, mask ${prepared.mask}: ` +
        `${prepared.train.length} train / ${prepared.val.length} val / ${prepared.test.length} test examples (${formatSummary(prepared.summary)})`,
    );
    if (isMain) await writeSplitFiles(join(out, 'data'), prepared);
    const dataFingerprint = fingerprint(prepared.train, o);
    if (state && state.dataFingerprint !== dataFingerprint) {
      throw new SftkitError(
        'SFTKIT_BAD_ARGUMENT',
        `--resume: ${resumeFrom?.path} was trained on other data or batch options (fingerprint ${state.dataFingerprint}, now ${dataFingerprint}); ` +
          'resume with the same --data, --batch-size, --grad-accum, --seed, --packing and --max-length, or use a new --out',
      );
    }
    const plan = epochPlan(prepared, o, maxLength, rank, world);
    const totalSteps = o.maxSteps ?? (o.epochs ?? 1) * plan.stepsPerEpoch;
    const warmup = warmupSteps(o.warmup, totalSteps);

    // ---- model --------------------------------------------------------------------------------------------------
    const threads = o.threads > 0 ? o.threads : Math.max(1, Math.floor(availableParallelism() / (group ? Math.min(world, availableParallelism()) : 1)));
    // LoRA: adapters on the frozen base; a LoRA checkpoint holds the adapter, so a resume loads the base and the
    // checkpoint's adapter weights into adapters attached with the same options.
    const lora = loraFromTrainOptions(o);
    if (state && resumeFrom) checkLoraResume(state.options, o, resumeFrom.path);
    const model = await loadModel(resumeFrom && !lora ? resumeFrom.path : o.model, {
      dtype: o.dtype,
      threads,
      gradientCheckpointing: o.gradientCheckpointing,
      device: o.device,
      autocast: o.autocast,
      ...(lora ? { lora } : {}),
    });
    try {
      if (lora) {
        if (resumeFrom) await model.loadAdapterWeights(resumeFrom.path);
        const trainable = model.numTrainableParameters();
        log(
          `sftkit train: LoRA r=${o.loraR} alpha=${o.loraAlpha} on ${model.adapter!.modules.length} modules: ` +
            `${trainable} trainable parameters of ${trainable + model.numParameters()} (${((100 * trainable) / (trainable + model.numParameters())).toFixed(3)}%)`,
        );
      }
      if (!resumeFrom && prepared.tokenizer.vocabSize > model.spec.vocabSize) {
        if (lora) {
          throw new SftkitError(
            'SFTKIT_UNSUPPORTED',
            `--add-special-tokens needs ${prepared.tokenizer.vocabSize - model.spec.vocabSize} new embedding rows, which a LoRA adapter (--lora-r) ` +
              'neither trains nor saves; fine-tune fully or use a template whose tokens the tokenizer has',
          );
        }
        log(`sftkit train: resizing the token embeddings ${model.spec.vocabSize} -> ${prepared.tokenizer.vocabSize} for the added tokens`);
        await model.resizeTokenEmbeddings(prepared.tokenizer.vocabSize);
      }
      if (state) {
        await model.loadOptimizerState(join(resumeFrom!.path, state.optimizerFile));
        log(`sftkit train: resumed from ${resumeFrom!.path} at step ${state.step} (epoch ${state.epoch}, batch ${state.batchInEpoch})`);
      }
      return await loop(model, prepared, plan, o, out, {
        totalSteps,
        warmup,
        maxLength,
        dataFingerprint,
        state,
        dropped,
        log,
        hooks,
        writeRun,
        group,
      });
    } finally {
      await model.dispose();
    }
  } catch (e) {
    await writeRun('failed', { error: e instanceof Error ? e.message : String(e) }).catch(() => undefined);
    throw e;
  } finally {
    group?.close();
  }
}

interface LoopContext {
  totalSteps: number;
  warmup: number;
  maxLength: number;
  dataFingerprint: string;
  state: TrainerState | undefined;
  dropped: number;
  log: (m: string) => void;
  hooks: TrainHooks;
  writeRun: (status: 'running' | 'finished' | 'failed' | 'interrupted', extra?: Record<string, unknown>) => Promise<void>;
  /** Data parallelism: every rank runs this loop in lock step; only rank 0 writes. */
  group: ProcessGroup | undefined;
}

async function loop(model: Model, prepared: PreparedDataset, plan: EpochPlan, o: TrainOptions, out: string, c: LoopContext): Promise<TrainResult> {
  const { totalSteps, state, log, hooks, group } = c;
  const isMain = (group?.rank ?? 0) === 0;
  const world = group?.worldSize ?? 1;
  const sum = async (values: number[]): Promise<number[]> => (group ? group.allReduce(values) : values);
  const padId = prepared.tokenizer.padId;
  let step = state?.step ?? 0;
  let epoch = state?.epoch ?? 0;
  let batchInEpoch = state?.batchInEpoch ?? 0;
  let tokensSeen = state?.tokensSeen ?? 0;
  let bestValLoss: number | null = state?.bestValLoss ?? null;
  let lastTrainLoss: number | null = null;
  let lastValLoss: number | null = null;
  let lastCheckpoint: string | null = null;

  const metricsFile = join(out, 'metrics.jsonl');
  const metrics: MetricsWriter = isMain
    ? openMetricsWriter(metricsFile, state ? { keepUpToStep: state.step } : {})
    : { file: metricsFile, write: () => {}, close: () => {} };
  const progress = new ProgressReporter({
    stream: isMain ? (hooks.progress ?? process.stderr) : { write: () => true },
    total: totalSteps,
    startStep: step,
    logEvery: o.logEvery,
  });
  const signals = hooks.handleSignals === false ? undefined : installStopSignals(() => log('sftkit train: stopping after this step (again to exit now)'));
  const stopRequested = () => (signals?.stopRequested ?? false) || hooks.signal?.aborted === true;

  const writeCheckpoint = async (): Promise<void> => {
    if (!isMain) return;
    const trainerState: TrainerState = {
      step,
      epoch,
      batchInEpoch,
      tokensSeen,
      ...(bestValLoss !== null ? { bestValLoss } : {}),
      optimizerFile: OPTIMIZER_FILE,
      dataFingerprint: c.dataFingerprint,
      options: o,
    };
    const info = await saveCheckpoint(out, trainerState, async (dir) => {
      await model.save(dir);
      await saveTokenizer(prepared.tokenizer, dir);
      await model.saveOptimizerState(join(dir, OPTIMIZER_FILE));
    });
    lastCheckpoint = info.path;
    if (o.saveTotalLimit > 0) await pruneCheckpoints(out, o.saveTotalLimit);
  };

  const validate = async (): Promise<void> => {
    const mine = world === 1 ? prepared.val : prepared.val.filter((_, i) => i % world === (group?.rank ?? 0));
    const [valSum, tokens] = await sum(await evalSums(model, mine, o, padId, c.maxLength));
    if (!(tokens! > 0)) return;
    const loss = (valSum as number) / (tokens as number);
    lastValLoss = loss;
    if (bestValLoss === null || loss < bestValLoss) bestValLoss = loss;
    metrics.write({ type: 'val', step, epoch, tokensSeen, loss, perplexity: Math.exp(loss), tokens });
    progress.log(`step ${step}: val loss ${loss.toFixed(4)} (ppl ${Math.exp(loss).toFixed(2)})`);
  };

  const plots = async (): Promise<void> => {
    if (isMain) await writeLossPlots(readMetrics(metricsFile), out);
  };

  let stopped: StopReason = 'completed';
  const started = Date.now();
  let tokensThisRun = 0;
  try {
    if (step === 0 && !state) await validate();
    outer: while (step < totalSteps) {
      const it = plan.batchesOf(epoch);
      // Skip what this epoch already consumed (resume).
      for (let i = 0; i < batchInEpoch; i++) it.next();
      // A group is the micro-batches of one optimizer step (up to gradAccum, within the epoch). Its label-token
      // total must be known before its first backward (lossScale), so a group is collated whole; the next group is
      // collated while the native step of the current group's last micro-batch runs on its worker thread.
      const takeGroup = (): (Batch | null)[] => {
        const g: (Batch | null)[] = [];
        while (g.length < o.gradAccum) {
          const n = it.next();
          if (n.done) break;
          g.push(n.value);
        }
        return g;
      };
      let upcoming = takeGroup();
      while (upcoming.length > 0 && step < totalSteps) {
        const micro = upcoming;
        upcoming = [];
        // The loss is normalised by the label tokens of the whole optimizer step over all ranks.
        const [targets = 0] = await sum([micro.reduce((s, b) => s + (b ? countTargets(b) : 0), 0)]);
        let lossSum = 0;
        let counted = 0;
        let stepTokens = 0;
        const t0 = Date.now();
        for (let k = 0; k < micro.length; k++) {
          const b = micro[k] ?? null;
          const pending = b ? model.step(b, { lossScale: targets > 0 ? 1 / targets : 0 }) : Promise.resolve({ lossSum: 0, tokens: 0 });
          if (k === micro.length - 1) upcoming = takeGroup();
          const r = await pending;
          lossSum += r.lossSum;
          counted += r.tokens;
          if (b) stepTokens += realTokens(b);
        }
        if (c.group) {
          await model.allReduceGrads(c.group);
          [lossSum = 0, counted = 0, stepTokens = 0] = await sum([lossSum, counted, stepTokens]);
        }
        tokensSeen += stepTokens;
        tokensThisRun += stepTokens;
        batchInEpoch += micro.length;
        const loss = counted > 0 ? lossSum / counted : Number.NaN;
        if (counted > 0 && !Number.isFinite(loss)) {
          metrics.write({ type: 'event', step, epoch, tokensSeen, message: `non-finite loss ${loss} at step ${step + 1}` });
          throw new SftkitError(
            'SFTKIT_NATIVE',
            `training diverged: the loss is ${loss} at step ${step + 1}; the weights were not updated with it. ` +
              (lastCheckpoint ?? (await latestCheckpoint(out))?.path
                ? `The last good checkpoint is ${lastCheckpoint ?? (await latestCheckpoint(out))?.path}.`
                : 'No checkpoint was written yet.') +
              ' Lower --lr or check the data.',
          );
        }
        const lr = lrAt(step, { schedule: o.schedule, lr: o.lr, warmupSteps: c.warmup, totalSteps });
        const { gradNorm } = await model.optimizerStep({ lr, weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm });
        await model.zeroGrad();
        step += 1;
        lastTrainLoss = counted > 0 ? loss : null;
        const seconds = (Date.now() - started) / 1000;
        const tokensPerSec = seconds > 0 ? tokensThisRun / seconds : 0;
        const record: MetricRecord = {
          type: 'train',
          step,
          epoch: epoch + batchInEpoch / plan.microBatchesPerEpoch,
          tokensSeen,
          loss: lastTrainLoss,
          lr,
          gradNorm: Number.isFinite(gradNorm) ? gradNorm : null,
          tokensPerSec,
          labelTokens: counted,
          stepMs: Date.now() - t0,
        };
        metrics.write(record);
        hooks.onStep?.(record);
        progress.update({ step, epoch, ...(lastTrainLoss !== null ? { loss: lastTrainLoss } : {}), lr, tokensPerSec });
        if (!Number.isFinite(gradNorm)) {
          metrics.write({ type: 'event', step, epoch, tokensSeen, message: `non-finite gradient norm ${gradNorm} at step ${step}` });
          throw new SftkitError(
            'SFTKIT_NATIVE',
            `training diverged: the gradient norm is ${gradNorm} at step ${step}; ` +
              `${lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : 'no checkpoint was written yet'}. Lower --lr or check the data.`,
          );
        }
        const epochDone = upcoming.length === 0;
        if (epochDone) {
          epoch += 1;
          batchInEpoch = 0;
        }
        const evalNow = (o.evalEvery > 0 && step % o.evalEvery === 0) || epochDone || step === totalSteps;
        if (evalNow) await validate();
        if (evalNow) await plots();
        // Every rank must stop at the same step: a stop request anywhere stops all.
        const [stopVotes = 0] = c.group ? await sum([stopRequested() ? 1 : 0]) : [stopRequested() ? 1 : 0];
        const stopping = stopVotes > 0;
        const saveNow = (o.saveEvery > 0 && step % o.saveEvery === 0) || (o.saveEvery === 0 && epochDone) || stopping;
        if (saveNow && step < totalSteps) await writeCheckpoint();
        if (stopping) {
          stopped = 'interrupted';
          break outer;
        }
      }
      if (upcoming.length === 0 && batchInEpoch !== 0 && step < totalSteps) {
        epoch += 1;
        batchInEpoch = 0;
      }
    }
    progress.finish();
    if (stopped === 'completed' && isMain) {
      // The final model in OUT itself (a Hugging Face directory), with the tokenizer it was trained with.
      await model.save(out);
      await saveTokenizer(prepared.tokenizer, out);
    }
    await plots();
    metrics.write({ type: 'event', step, epoch, tokensSeen, message: stopped === 'completed' ? 'finished' : 'interrupted' });
    const result: TrainResult = {
      out,
      stopped,
      steps: step,
      totalSteps,
      tokensSeen,
      lastTrainLoss,
      lastValLoss,
      bestValLoss,
      lastCheckpoint,
      examples: { train: prepared.train.length, val: prepared.val.length, test: prepared.test.length, dropped: c.dropped },
    };
    await c.writeRun(stopped === 'completed' ? 'finished' : 'interrupted', { result });
    log(
      stopped === 'completed'
        ? `sftkit train: done, ${step} steps; model saved to ${out}`
        : `sftkit train: stopped at step ${step}; resume with --resume (checkpoint ${lastCheckpoint ?? 'none'})`,
    );
    return result;
  } finally {
    signals?.uninstall();
    metrics.close();
  }
}

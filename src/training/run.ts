// One training run, whatever is trained: where the process sits in a data-parallel group, the run directory's lock
// (lock.ts: one owner per OUT), the run file, resume from the latest checkpoint (same data fingerprint), the policy
// model (fresh or from the checkpoint, with its optimizer state), then the shared loop. A task (SFT, DPO) prepares its
// data and objective in between.
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { TextTokenizer } from '../tokenize/index.ts';
import { SftkitError, invalidParameterError } from '../errors.ts';
import {
  binding,
  chooseDistBackend,
  connectProcessGroup,
  type DistPlan,
  distributedFromEnv,
  type DistributedOptions,
  loadModel,
  type Model,
  type ProcessGroup,
  validateDistributed,
} from '../native/index.ts';
import { baseStoreOf } from '../options/index.ts';
import { plotListener } from '../report/index.ts';
import { formatBytes, writeFileAtomic } from '../shared/index.ts';
import { latestCheckpoint, readTrainerState, removeStaleTempDirs, type CheckpointInfo, type TrainerState } from './checkpoint.ts';
import { runLoop, type EpochPlan, type Objective, type TrainHooks, type TrainResult } from './loop.ts';
import { acquireRunLock, type RunLock } from './lock.ts';
import { checkLoraResume, loraFromTrainOptions } from './lora.ts';
import type { BaseTrainOptions } from './options.ts';
import { warmupSteps } from './schedule.ts';

export const RUN_FILE = 'sftkit_run.json';

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

export interface TaskContext {
  out: string;
  /** The checkpoint a resumed run continues from (its tokenizer is the one to use). */
  resumeFrom: CheckpointInfo | undefined;
  log: (m: string) => void;
  isMain: boolean;
  rank: number;
  world: number;
  group: ProcessGroup | undefined;
  /** Intra-op threads for every model of this process. */
  threads: number;
}

/** What a task hands the loop once its data is ready. */
export interface PreparedTask<B> {
  tokenizer: TextTokenizer;
  plan: EpochPlan<B>;
  /** Hash of what produced the batches; resume refuses a checkpoint with another one. */
  fingerprint: string;
  objective: Objective<B>;
  examples: TrainResult['examples'];
  /** Called with the freshly loaded policy (not on resume), e.g. to resize the embeddings for added tokens. */
  prepareModel?(model: Model): Promise<void>;
  /** Frees what the task holds (a teacher model). */
  dispose?(): Promise<void>;
}

/** Splits the `distributed` placement off a library options object (or reads the torchrun environment). */
export function takeDistributed(input: unknown): { input: unknown; distributed: DistributedOptions | undefined } {
  // `distributed` (data parallelism) is not a flag of the run: it says where this process sits in the group. When it
  // is absent, the torchrun environment (WORLD_SIZE > 1, RANK, MASTER_ADDR, MASTER_PORT) is used if present.
  if (input !== null && typeof input === 'object' && 'distributed' in input) {
    const { distributed: d, ...rest } = input as { distributed?: unknown };
    return { input: rest, distributed: d === undefined ? undefined : validateDistributed(d) };
  }
  return { input, distributed: distributedFromEnv() };
}

export async function runTraining<B>(
  command: 'train' | 'dpo',
  o: BaseTrainOptions,
  distributed: DistributedOptions | undefined,
  hooks: TrainHooks,
  prepare: (ctx: TaskContext) => Promise<PreparedTask<B>>,
): Promise<TrainResult> {
  const world = distributed?.worldSize ?? 1;
  if (o.batchSize % world !== 0) {
    throw invalidParameterError('batchSize', `a multiple of the world size ${world} (--batch-size is the global batch)`, o.batchSize);
  }
  // A group for several ranks; a group of one only when NCCL is asked for by name (the device check's --nproc 1).
  const plan: DistPlan | undefined =
    distributed && (world > 1 || distributed.backend === 'nccl')
      ? chooseDistBackend({ requested: distributed.backend ?? 'auto', device: o.device, localRank: distributed.localRank ?? distributed.rank, runtime: binding().info() })
      : undefined;
  const group = distributed && plan ? await connectProcessGroup(distributed, plan) : undefined;
  const rank = group?.rank ?? 0;
  const isMain = rank === 0;
  const out = resolve(o.out);
  const userLog = hooks.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const log = isMain ? userLog : () => {};
  await mkdir(out, { recursive: true });
  // One owner per run directory: rank 0 takes OUT's lock (or uses its --nproc launcher's) before anything is written;
  // a second run on OUT stops here. Released in the finally below (and at process.exit).
  let lock: RunLock | undefined;
  try {
    lock = isMain ? await acquireRunLock(out, { command, log: userLog }) : undefined;
  } catch (e) {
    group?.close();
    throw e;
  }
  const runFile = join(out, RUN_FILE);
  const startedAt = new Date().toISOString();
  const writeRun = async (status: 'running' | 'finished' | 'failed' | 'interrupted', extra: Record<string, unknown> = {}) => {
    if (isMain) await writeJsonAtomic(runFile, { status, command, startedAt, updatedAt: new Date().toISOString(), pid: process.pid, worldSize: world, options: o, ...extra });
  };
  let task: PreparedTask<B> | undefined;
  try {
    // Resume reads the latest checkpoint before rank 0 cleans stale temp dirs (they are never listed anyway).
    const resumeFrom = o.resume ? await latestCheckpoint(out) : undefined;
    if (group) await group.barrier();
    if (isMain) await removeStaleTempDirs(out);
    await writeRun('running');
    if (group) log(`sftkit ${command}: data parallel, ${world} processes (this is rank ${rank}), global batch ${o.batchSize}, ${plan!.note}`);
    if (o.resume && !resumeFrom) log(`sftkit ${command}: --resume: no complete checkpoint in ${out}, starting from ${o.model}`);
    const state: TrainerState | undefined = resumeFrom ? await readTrainerState(resumeFrom.path) : undefined;
    const threads = o.threads > 0 ? o.threads : Math.max(1, Math.floor(availableParallelism() / (group ? Math.min(world, availableParallelism()) : 1)));
    task = await prepare({ out, resumeFrom, log, isMain, rank, world, group, threads });
    if (state && state.dataFingerprint !== task.fingerprint) {
      throw new SftkitError(
        'SFTKIT_BAD_ARGUMENT',
        `--resume: ${resumeFrom?.path} was trained on other data or batch options (fingerprint ${state.dataFingerprint}, now ${task.fingerprint}); ` +
          'resume with the same --data, --batch-size, --grad-accum, --seed, --packing and --max-length, or use a new --out',
      );
    }
    const totalSteps = o.maxSteps ?? (o.epochs ?? 1) * task.plan.stepsPerEpoch;
    // LoRA: adapters on the frozen base (every objective then trains them only). A LoRA checkpoint holds the adapter:
    // a resume loads the base and the checkpoint's adapter weights into adapters attached with the same options.
    const lora = loraFromTrainOptions(o);
    if (state && resumeFrom) checkLoraResume(state.options, o, resumeFrom.path);
    const model = await loadModel(resumeFrom && !lora ? resumeFrom.path : o.model, {
      dtype: o.dtype,
      threads,
      gradientCheckpointing: o.gradientCheckpointing,
      device: plan?.device ?? o.device,
      autocast: o.autocast,
      ...baseStoreOf(o),
      ...(lora ? { lora } : {}),
    });
    try {
      if (lora) {
        if (resumeFrom) await model.loadAdapterWeights(resumeFrom.path);
        const trainable = model.numTrainableParameters();
        const all = trainable + model.numParameters();
        log(
          `sftkit ${command}: LoRA r=${o.loraR} alpha=${o.loraAlpha} on ${model.adapter!.modules.length} modules: ` +
            `${trainable} trainable parameters of ${all} (${((100 * trainable) / all).toFixed(3)}%)`,
        );
      }
      if (model.baseDtype !== 'float32') {
        const stats = model.baseStats();
        log(`sftkit ${command}: frozen base in ${stats.dtype}${o.doubleQuant ? ' (double quantisation)' : ''}: ${formatBytes(stats.bytes)}`);
      }
      if (!resumeFrom) await task.prepareModel?.(model);
      if (state) {
        await model.loadOptimizerState(join(resumeFrom!.path, state.optimizerFile));
        log(`sftkit ${command}: resumed from ${resumeFrom!.path} at step ${state.step} (epoch ${state.epoch}, batch ${state.batchInEpoch})`);
      }
      return await runLoop({
        command,
        model,
        objective: task.objective,
        plan: task.plan,
        tokenizer: task.tokenizer,
        options: o,
        out,
        totalSteps,
        warmup: warmupSteps(o.warmup, totalSteps),
        dataFingerprint: task.fingerprint,
        state,
        examples: task.examples,
        log,
        hooks,
        listeners: [plotListener],
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
    await task?.dispose?.();
    group?.close();
    lock?.release();
  }
}

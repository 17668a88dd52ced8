// The optimizer-step loop every training command shares (SFT, pretraining, distillation, DPO): micro-batches of an
// epoch plan -> an objective's native step (loss sum, units) -> AdamW, with gradient accumulation normalised by the
// units of the whole optimizer step (label tokens, pairs), LR schedule, validation, atomic checkpoints, exact resume,
// graceful stop on SIGINT/SIGTERM, metrics.jsonl and metric events to listeners (the curves are drawn by one,
// src/report/plot.ts). What is trained on and how the loss is computed is the objective's business; this file knows
// neither.
import { join } from 'node:path';
import { planBatches } from '../collate/index.ts';
import { saveTokenizer, type TextTokenizer } from '../tokenize/index.ts';
import { SftkitError } from '../errors.ts';
import type { Model, ProcessGroup } from '../native/index.ts';
import {
  type MetricEvent,
  type MetricListener,
  type MetricRecord,
  type MetricsWriter,
  openMetricsWriter,
  ProgressReporter,
  type ProgressStream,
  readMetrics,
} from '../report/index.ts';
import { latestCheckpoint, pruneCheckpoints, saveCheckpoint, installStopSignals, type TrainerState } from './checkpoint.ts';
import type { BaseTrainOptions } from './options.ts';
import { lrAt } from './schedule.ts';

export const OPTIMIZER_FILE = 'optimizer.safetensors';

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

/** What one micro-batch (or a validation pass) adds up: everything is a sum, so ranks and micro-batches add. */
export interface StepStats {
  /** Sum of the per-unit losses (backward ran on lossSum * lossScale). */
  lossSum: number;
  /** Units the loss is averaged over: label tokens (SFT) or pairs (DPO). */
  units: number;
  /** Further sums in the objective's `sumKeys` order; a record shows each divided by the units. */
  sums: number[];
}

/** How a batch is trained on and evaluated: the strategy the loop is given. */
export interface Objective<B> {
  /** Record keys of the unit count: train records (`labelTokens`, `pairs`) and validation records (`tokens`, `pairs`). */
  unitNames: { train: string; val: string };
  /** Names of the further sums (`ce`, `rewards/chosen`, ...), averaged over the units in the records. */
  sumKeys: readonly string[];
  /** Units of a micro-batch, known before it runs (the step's loss scale is 1 / the units of the optimizer step). */
  units(batch: B): number;
  /** Input tokens of a micro-batch (tokensSeen, tokens/s). */
  inputTokens(batch: B): number;
  /** Forward + loss + backward of lossSum * lossScale (gradients accumulate). */
  step(model: Model, batch: B, lossScale: number): Promise<StepStats>;
  /** Sums over this rank's share of the validation data (units 0: nothing to validate). */
  validate(model: Model, rank: number, world: number): Promise<StepStats>;
  /** Extra fields of a validation record from its mean loss (e.g. perplexity). */
  valExtras?(loss: number): Record<string, number>;
}

/**
 * The micro-batches of an epoch. With data parallelism every rank plans the same global batches (`--batch-size`
 * rows) and takes its own slice of each; a rank whose slice of the last batch is empty gets null (it still takes
 * part in the collectives).
 */
export interface EpochPlan<B> {
  batchesOf(epoch: number): Generator<B | null>;
  microBatchesPerEpoch: number;
  stepsPerEpoch: number;
}

export interface PlanOptions {
  batchSize: number;
  gradAccum: number;
  seed: number;
  dropLast: boolean;
  groupByLength: boolean;
}

/**
 * An epoch plan over rows of the given lengths (examples, packed rows, pairs): shuffled by (seed, epoch), so a resumed
 * run replays the same order; `collateRows` turns the row indices of this rank's slice into a batch.
 */
export function epochPlan<B>(rowLengths: readonly number[], collateRows: (rows: number[]) => B, o: PlanOptions, rank = 0, world = 1): EpochPlan<B> {
  const base = { batchSize: o.batchSize, seed: o.seed, dropLast: o.dropLast, groupByLength: o.groupByLength };
  const microBatchesPerEpoch = planBatches(rowLengths, { ...base, epoch: 0 }).length;
  if (microBatchesPerEpoch === 0) {
    throw new SftkitError('SFTKIT_DATA', `no training batch: ${rowLengths.length} rows with --batch-size ${o.batchSize} and --drop-last`);
  }
  const per = o.batchSize / world;
  function* batchesOf(epoch: number): Generator<B | null> {
    for (const plan of planBatches(rowLengths, { ...base, epoch })) {
      const mine = plan.slice(rank * per, (rank + 1) * per);
      yield mine.length === 0 ? null : collateRows(mine);
    }
  }
  return { batchesOf, microBatchesPerEpoch, stepsPerEpoch: Math.ceil(microBatchesPerEpoch / o.gradAccum) };
}

/** This rank's share of the validation items: every world-th one. */
export function rankShare<T>(items: readonly T[], rank: number, world: number): readonly T[] {
  return world === 1 ? items : items.filter((_, i) => i % world === rank);
}

export interface LoopContext<B> {
  /** `train`, `dpo`: the prefix of log lines. */
  command: string;
  model: Model;
  objective: Objective<B>;
  plan: EpochPlan<B>;
  /** Saved with every checkpoint and the final model. */
  tokenizer: TextTokenizer;
  options: BaseTrainOptions;
  out: string;
  totalSteps: number;
  warmup: number;
  dataFingerprint: string;
  state: TrainerState | undefined;
  examples: TrainResult['examples'];
  log: (m: string) => void;
  hooks: TrainHooks;
  /** Metric events (main rank only), e.g. the curves' listener. */
  listeners?: readonly MetricListener[];
  writeRun: (status: 'running' | 'finished' | 'failed' | 'interrupted', extra?: Record<string, unknown>) => Promise<void>;
  /** Data parallelism: every rank runs this loop in lock step; only rank 0 writes. */
  group: ProcessGroup | undefined;
}

const mean = (keys: readonly string[], sums: readonly number[], units: number): Record<string, number | null> =>
  Object.fromEntries(keys.map((k, i) => [k, units > 0 && Number.isFinite(sums[i]! / units) ? sums[i]! / units : null]));

export async function runLoop<B>(c: LoopContext<B>): Promise<TrainResult> {
  const { model, objective, plan, options: o, out, totalSteps, state, log, hooks, group } = c;
  const isMain = (group?.rank ?? 0) === 0;
  const rank = group?.rank ?? 0;
  const world = group?.worldSize ?? 1;
  const sum = async (values: number[]): Promise<number[]> => (group ? group.allReduce(values) : values);
  const nSums = objective.sumKeys.length;
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
  const signals = hooks.handleSignals === false ? undefined : installStopSignals(() => log(`sftkit ${c.command}: stopping after this step (again to exit now)`));
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
      await saveTokenizer(c.tokenizer, dir);
      await model.saveOptimizerState(join(dir, OPTIMIZER_FILE));
    });
    lastCheckpoint = info.path;
    if (o.saveTotalLimit > 0) await pruneCheckpoints(out, o.saveTotalLimit);
  };

  const validate = async (): Promise<void> => {
    const v = await objective.validate(model, rank, world);
    const [valSum = 0, units = 0, ...sums] = await sum([v.lossSum, v.units, ...v.sums]);
    if (!(units > 0)) return;
    const loss = valSum / units;
    lastValLoss = loss;
    if (bestValLoss === null || loss < bestValLoss) bestValLoss = loss;
    const extras = objective.valExtras?.(loss) ?? {};
    metrics.write({ type: 'val', step, epoch, tokensSeen, loss, ...extras, ...mean(objective.sumKeys, sums, units), [objective.unitNames.val]: units });
    const shown = Object.entries(extras).map(([k, x]) => ` (${k} ${x.toFixed(2)})`).join('');
    progress.log(`step ${step}: val loss ${loss.toFixed(4)}${shown}`);
  };

  const emit = async (type: MetricEvent['type']): Promise<void> => {
    if (!isMain) return;
    const event: MetricEvent = { type, step, out, records: () => readMetrics(metricsFile) };
    for (const listener of c.listeners ?? []) await listener(event);
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
      // A group is the micro-batches of one optimizer step (up to gradAccum, within the epoch). Its unit total must be
      // known before its first backward (lossScale), so a group is collated whole; the next group is collated while
      // the native step of the current group's last micro-batch runs on its worker thread.
      const takeGroup = (): (B | null)[] => {
        const g: (B | null)[] = [];
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
        // The loss is normalised by the units of the whole optimizer step over all ranks.
        const [targets = 0] = await sum([micro.reduce((s, b) => s + (b ? objective.units(b) : 0), 0)]);
        let lossSum = 0;
        let counted = 0;
        let stepTokens = 0;
        let sums = new Array<number>(nSums).fill(0);
        const t0 = Date.now();
        for (let k = 0; k < micro.length; k++) {
          const b = micro[k] ?? null;
          const pending = b ? objective.step(model, b, targets > 0 ? 1 / targets : 0) : Promise.resolve<StepStats>({ lossSum: 0, units: 0, sums: new Array<number>(nSums).fill(0) });
          if (k === micro.length - 1) upcoming = takeGroup();
          const r = await pending;
          lossSum += r.lossSum;
          counted += r.units;
          r.sums.forEach((x, i) => (sums[i]! += x));
          if (b) stepTokens += objective.inputTokens(b);
        }
        if (c.group) {
          await model.allReduceGrads(c.group);
          [lossSum = 0, counted = 0, stepTokens = 0, ...sums] = await sum([lossSum, counted, stepTokens, ...sums]);
        }
        tokensSeen += stepTokens;
        tokensThisRun += stepTokens;
        batchInEpoch += micro.length;
        const loss = counted > 0 ? lossSum / counted : Number.NaN;
        if (counted > 0 && !Number.isFinite(loss)) {
          metrics.write({ type: 'event', step, epoch, tokensSeen, message: `non-finite loss ${loss} at step ${step + 1}` });
          const good = lastCheckpoint ?? (await latestCheckpoint(out))?.path;
          throw new SftkitError(
            'SFTKIT_NATIVE',
            `training diverged: the loss is ${loss} at step ${step + 1}; the weights were not updated with it. ` +
              (good ? `The last good checkpoint is ${good}.` : 'No checkpoint was written yet.') +
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
          ...mean(objective.sumKeys, sums, counted),
          lr,
          gradNorm: Number.isFinite(gradNorm) ? gradNorm : null,
          tokensPerSec,
          [objective.unitNames.train]: counted,
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
        if (evalNow) await emit('validated');
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
      await saveTokenizer(c.tokenizer, out);
    }
    await emit('finished');
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
      examples: c.examples,
    };
    await c.writeRun(stopped === 'completed' ? 'finished' : 'interrupted', { result });
    log(
      stopped === 'completed'
        ? `sftkit ${c.command}: done, ${step} steps; model saved to ${out}`
        : `sftkit ${c.command}: stopped at step ${step}; resume with --resume (checkpoint ${lastCheckpoint ?? 'none'})`,
    );
    return result;
  } finally {
    signals?.uninstall();
    metrics.close();
  }
}

// DPO training on the shared loop: preference pairs -> train/val/test split -> reference log-probabilities (one pass
// with the frozen reference model, then it is freed; cached in OUT keyed by a fingerprint of reference model and
// pairs, reused on resume) -> pair batches through Model.preferenceStep, normalised by the pairs of the optimizer
// step. Metrics per step are TRL's: loss, rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { splitIndices } from '../pipeline/index.ts';
import { realTokens, type Batch } from '../collate/index.ts';
import { formatUnkWarning, type TokenizedExample } from '../mask/index.ts';
import { type DataSource, parseFieldMap, type SplitName, splitSources } from '../data/index.ts';
import { SftkitError } from '../errors.ts';
import { loadModel, readModelConfig } from '../native/index.ts';
import { baseStoreOf } from '../options/index.ts';
import { writeFileAtomic } from '../shared/index.ts';
import {
  checkSameTokenizer,
  epochPlan,
  pairBatch,
  pairLogps,
  preferenceMetrics,
  preparePreferencePairs,
  rankShare,
  runTraining,
  takeDistributed,
  validateDpoOptions,
  writeSplitFiles,
  type DpoOptions,
  type Objective,
  type PreferencePair,
  type PreparedTask,
  type StepStats,
  type TaskContext,
  type TrainHooks,
  type TrainResult,
} from '../training/index.ts';

/** A micro-batch of pairs: rows chosen_0, rejected_0, ... and the reference log-prob sums of those rows. */
export interface PairBatch {
  batch: Batch;
  refLogps: Float64Array;
  pairs: number;
}

export const DPO_SUM_KEYS = ['rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins'] as const;

const hashExamples = (h: ReturnType<typeof createHash>, pairs: readonly PreferencePair[]) => {
  const add = (e: TokenizedExample) => {
    h.update(new Uint8Array(e.inputIds.buffer, e.inputIds.byteOffset, e.inputIds.byteLength));
    h.update(new Uint8Array(e.labels.buffer, e.labels.byteOffset, e.labels.byteLength));
  };
  for (const p of pairs) {
    add(p.chosen);
    add(p.rejected);
  }
};

/** What identifies a model directory's weights without reading them: config.json and each weight file's size and mtime. */
export function modelFingerprint(dir: string): string {
  const h = createHash('sha256');
  h.update(readFileSync(join(dir, 'config.json')));
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.safetensors') || n.endsWith('.safetensors.index.json')).sort()) {
    const st = statSync(join(dir, f));
    h.update(`${f}:${st.size}:${st.mtimeMs}\n`);
  }
  return h.digest('hex');
}

interface RefCache {
  fingerprint: string;
  train: number[];
  val: number[];
}

/**
 * The reference log-prob sums of every train and val row, from OUT/ref_logps-<fingerprint>.json when present (a
 * resumed run), else computed in one pass with the reference model (freed right after) and written atomically.
 * With data parallelism rank 0 computes and writes, the other ranks read after a barrier.
 */
async function referenceLogps(o: DpoOptions, ctx: TaskContext, train: readonly PreferencePair[], val: readonly PreferencePair[], padId: number): Promise<RefCache> {
  const refDir = o.ref ?? o.model;
  if (o.ref !== undefined) checkSameTokenizer('--ref', o.ref, readModelConfig(o.ref).spec.vocabSize, o.model, readModelConfig(o.model).spec.vocabSize);
  const h = createHash('sha256');
  h.update(modelFingerprint(refDir));
  h.update(o.dtype);
  // The reference is frozen like the policy's base: with a low-precision base it is kept in the same form (so the
  // policy starts equal to it), and its log-probs differ from float32's.
  if (o.baseDtype !== 'float32') h.update(`|base ${o.baseDtype}${o.doubleQuant ? '+dq' : ''}|`);
  hashExamples(h, train);
  h.update('|val|');
  hashExamples(h, val);
  const fingerprint = h.digest('hex').slice(0, 24);
  const file = join(ctx.out, `ref_logps-${fingerprint}.json`);
  const read = async (): Promise<RefCache | undefined> => {
    if (!existsSync(file)) return undefined;
    const c = JSON.parse(await readFile(file, 'utf8')) as RefCache;
    return c.fingerprint === fingerprint && c.train.length === train.length * 2 && c.val.length === val.length * 2 ? c : undefined;
  };
  if (!ctx.isMain && ctx.group) {
    await ctx.group.barrier();
    const c = await read();
    if (!c) throw new SftkitError('SFTKIT_IO', `rank ${ctx.rank}: the reference log-probs ${file} written by rank 0 are missing or stale`);
    return c;
  }
  let cache = await read();
  if (cache) ctx.log(`sftkit dpo: reference log-probs from ${file}`);
  else {
    const t0 = Date.now();
    const ref = await loadModel(refDir, { dtype: o.dtype, threads: ctx.threads, device: o.device, autocast: o.autocast, ...baseStoreOf(o) });
    try {
      const pairsPerBatch = Math.max(1, o.batchSize);
      const t = await pairLogps(ref, train, padId, pairsPerBatch);
      const v = await pairLogps(ref, val, padId, pairsPerBatch);
      cache = { fingerprint, train: [...t.logps], val: [...v.logps] };
    } finally {
      await ref.dispose();
    }
    await writeFileAtomic(file, JSON.stringify(cache));
    ctx.log(`sftkit dpo: reference log-probs of ${train.length + val.length} pairs with ${refDir} in ${((Date.now() - t0) / 1000).toFixed(1)} s (cached in ${file})`);
  }
  if (ctx.group) await ctx.group.barrier();
  return cache;
}

function dpoObjective(o: DpoOptions, val: readonly PreferencePair[], valRef: Float64Array, padId: number): Objective<PairBatch> {
  const loss = { beta: o.beta, labelSmoothing: o.labelSmoothing, lossType: o.lossType };
  return {
    unitNames: { train: 'pairs', val: 'pairs' },
    sumKeys: DPO_SUM_KEYS,
    units: (b) => b.pairs,
    inputTokens: (b) => realTokens(b.batch),
    async step(model, b, lossScale): Promise<StepStats> {
      const r = await model.preferenceStep(b.batch, { refLogps: b.refLogps, ...loss, lossScale });
      let chosen = 0;
      let rejected = 0;
      let wins = 0;
      for (let i = 0; i < r.pairs; i++) {
        const c = r.chosenRewards[i] as number;
        const j = r.rejectedRewards[i] as number;
        chosen += c;
        rejected += j;
        wins += c > j ? 1 : 0;
      }
      return { lossSum: r.lossSum, units: r.pairs, sums: [chosen, rejected, wins, chosen - rejected] };
    },
    async validate(model, rank, world): Promise<StepStats> {
      const idx = rankShare(val.map((_, i) => i), rank, world);
      if (idx.length === 0) return { lossSum: 0, units: 0, sums: [0, 0, 0, 0] };
      const pairs = idx.map((i) => val[i] as PreferencePair);
      const ref = Float64Array.from(idx.flatMap((i) => [valRef[2 * i] as number, valRef[2 * i + 1] as number]));
      const pol = await pairLogps(model, pairs, padId, Math.max(1, o.batchSize));
      const m = preferenceMetrics(pol.logps, ref, pol.tokens, loss);
      const n = m.pairs;
      return { lossSum: m.loss * n, units: n, sums: [m.rewards_chosen * n, m.rewards_rejected * n, m.accuracy * n, m.margin * n] };
    },
  };
}

async function prepareDpo(o: DpoOptions, ctx: TaskContext): Promise<PreparedTask<PairBatch>> {
  const { spec } = readModelConfig(o.model);
  const maxLength = o.maxLength ?? spec.maxPositions;
  const read = (data: DataSource, split: SplitName) =>
    preparePreferencePairs({
      data,
      split,
      tokenizer: ctx.resumeFrom ? ctx.resumeFrom.path : o.model,
      format: o.format,
      ...(o.template !== 'auto' ? { template: o.template } : {}),
      maxLength,
      fieldMap: parseFieldMap(o.fieldMap),
    });
  const main = await read(o.data, 'train');
  // --val-data / --test-data, else a dataset directory's validation / test files.
  const sources = await splitSources(o.data, o.valData, o.testData);
  let train: PreferencePair[];
  let val: PreferencePair[];
  let test: PreferencePair[];
  let dropped = main.dropped;
  let v: Awaited<ReturnType<typeof read>> | undefined;
  let t: Awaited<ReturnType<typeof read>> | undefined;
  if (sources.val !== undefined || sources.test !== undefined) {
    v = sources.val === undefined ? undefined : await read(sources.val, 'validation');
    t = sources.test === undefined ? undefined : await read(sources.test, 'test');
    [train, val, test] = [main.pairs, v?.pairs ?? [], t?.pairs ?? []];
    dropped += (v?.dropped ?? 0) + (t?.dropped ?? 0);
  } else {
    const parts = splitIndices(main.pairs.length, { val: o.valSplit, test: o.testSplit, train: 1 - o.valSplit - o.testSplit, seed: o.seed });
    const pick = (idx: number[]) => idx.map((i) => main.pairs[i] as PreferencePair);
    [train, val, test] = [pick(parts.train), pick(parts.val), pick(parts.test)];
  }
  if (train.length === 0) throw new SftkitError('SFTKIT_DATA', `${o.data}: no preference pair left to train on after the split`);
  ctx.log(
    `sftkit dpo: ${train.length} train / ${val.length} val / ${test.length} test pairs, template ${main.templateId}` +
      `${dropped ? ` (${dropped} dropped: no trained token on one side)` : ''}; ${o.lossType} loss, beta ${o.beta}` +
      `${o.labelSmoothing ? `, label smoothing ${o.labelSmoothing}` : ''}; reference ${o.ref ?? `${o.model} (the starting policy)`}`,
  );
  const unkToken = main.tokenizer.unkId === undefined ? undefined : main.tokenizer.idToToken(main.tokenizer.unkId);
  // Once per file read (the main data, and validation / test data read from their own files).
  for (const [name, read_] of [[o.data, main], [o.valData ?? `${o.data} (validation)`, v], [o.testData ?? `${o.data} (test)`, t]] as const) {
    const warning = read_ && formatUnkWarning(read_.summary, name, unkToken);
    if (warning) ctx.log(`sftkit dpo: ${warning}`);
  }
  if (ctx.isMain) {
    await writeSplitFiles(join(ctx.out, 'data'), {
      sources: { data: main.source, ...(v ? { valData: v.source } : {}), ...(t ? { testData: t.source } : {}) },
      train,
      val,
      test,
    });
  }
  const padId = main.tokenizer.padId;
  const refs = await referenceLogps(o, ctx, train, val, padId);
  const trainRef = Float64Array.from(refs.train);
  const lengths = train.map((p) => Math.max(p.chosen.inputIds.length, p.rejected.inputIds.length));
  const collateRows = (rows: number[]): PairBatch => ({
    batch: pairBatch(rows.map((i) => train[i] as PreferencePair), padId),
    refLogps: Float64Array.from(rows.flatMap((i) => [trainRef[2 * i] as number, trainRef[2 * i + 1] as number])),
    pairs: rows.length,
  });
  const fp = createHash('sha256');
  hashExamples(fp, train);
  fp.update(JSON.stringify([o.batchSize, o.gradAccum, o.seed, o.maxLength ?? null, o.groupByLength, o.dropLast]));
  return {
    tokenizer: main.tokenizer,
    plan: epochPlan(lengths, collateRows, o, ctx.rank, ctx.world),
    fingerprint: fp.digest('hex').slice(0, 32),
    objective: dpoObjective(o, val, Float64Array.from(refs.val), padId),
    examples: { train: train.length, val: val.length, test: test.length, dropped },
  };
}

/**
 * Direct Preference Optimization of `options.model` on the preference pairs of `options.data` against a frozen
 * reference (`options.ref`, default: the starting policy). The run directory is laid out like SFT's, plus
 * `ref_logps-<fingerprint>.json`. `batchSize` counts pairs (2 rows each).
 */
export async function trainDpo(input: unknown, hooks: TrainHooks = {}): Promise<TrainResult> {
  const split = takeDistributed(input);
  const o = validateDpoOptions(split.input);
  return runTraining('dpo', o, split.distributed, hooks, (ctx) => prepareDpo(o, ctx));
}

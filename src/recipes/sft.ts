// Supervised fine-tuning and pretraining (and logit-level distillation from a teacher): prepared data -> rows (padded
// or packed) -> the fused cross-entropy (or CE + KL against the teacher) in the shared loop (training/loop.ts),
// normalised by the label tokens of the whole optimizer step. Distillation has no wiring of its own: it wraps the SFT
// objective (distillObjective) when --teacher is given.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { batches, collateForLoss, collatePacked, packBestFitDecreasing, realTokens, type Batch } from '../collate/index.ts';
import { formatSummary, formatUnkWarning, type MaskMode, type TokenizedExample } from '../mask/index.ts';
import { prepareDataset, type PreparedDataset } from '../pipeline/index.ts';
import { parseFieldMap, type RecordFormat } from '../data/index.ts';
import { SftkitError } from '../errors.ts';
import { loadModel, type Model, readModelConfig } from '../native/index.ts';
import {
  checkSameTokenizer,
  epochPlan,
  rankShare,
  resolvePacking,
  runTraining,
  takeDistributed,
  validateTrainOptions,
  writeSplitFiles,
  type EpochPlan,
  type Objective,
  type PreparedTask,
  type StepStats,
  type TaskContext,
  type TrainHooks,
  type TrainOptions,
  type TrainResult,
} from '../training/index.ts';

export { OPTIMIZER_FILE, RUN_FILE, type StopReason, type TrainHooks, type TrainResult } from '../training/index.ts';


function fingerprint(examples: readonly TokenizedExample[], o: TrainOptions, packing: boolean): string {
  const h = createHash('sha256');
  for (const e of examples) {
    h.update(new Uint8Array(e.inputIds.buffer, e.inputIds.byteOffset, e.inputIds.byteLength));
    h.update(new Uint8Array(e.labels.buffer, e.labels.byteOffset, e.labels.byteLength));
  }
  h.update(JSON.stringify([o.batchSize, o.gradAccum, o.seed, packing, o.maxLength ?? null, o.groupByLength, o.dropLast]));
  return h.digest('hex').slice(0, 32);
}

/** The rows of the training set (examples, or packed bins of them) and their epoch plan. */
function sftPlan(train: readonly TokenizedExample[], o: TrainOptions, packing: boolean, padId: number, maxLength: number, rank: number, world: number): EpochPlan<Batch> {
  const pad = { padId };
  const lengths = train.map((e) => e.inputIds.length);
  if (!packing) return epochPlan(lengths, (rows) => collateForLoss(rows.map((i) => train[i] as TokenizedExample), pad), o, rank, world);
  const bins = packBestFitDecreasing(lengths, maxLength);
  const binLengths = bins.map((bin) => bin.reduce((s, i) => s + (lengths[i] as number), 0));
  return epochPlan(binLengths, (rows) => collatePacked(rows.map((r) => (bins[r] as number[]).map((i) => train[i] as TokenizedExample)), pad), o, rank, world);
}

/** Loss sum and label tokens over examples (no gradients). */
async function evalSums(model: Model, examples: readonly TokenizedExample[], batchSize: number, padId: number): Promise<StepStats> {
  let lossSum = 0;
  let units = 0;
  for (const b of examples.length === 0 ? [] : batches(examples, { batchSize, padId, shuffle: false })) {
    const r = await model.evalLoss(b);
    lossSum += r.lossSum;
    units += r.tokens;
  }
  return { lossSum, units, sums: [] };
}

/** Cross-entropy on the label tokens; validation loss with perplexity. */
function crossEntropyObjective(val: readonly TokenizedExample[], batchSize: number, padId: number): Objective<Batch> {
  return {
    unitNames: { train: 'labelTokens', val: 'tokens' },
    sumKeys: [],
    units: (b) => b.labelTokens,
    inputTokens: realTokens,
    async step(model, b, lossScale) {
      const r = await model.step(b, { lossScale });
      return { lossSum: r.lossSum, units: r.tokens, sums: [] };
    },
    validate: (model, rank, world) => evalSums(model, rankShare(val, rank, world), batchSize, padId),
    valExtras: (loss) => ({ perplexity: Math.exp(loss) }),
  };
}

/**
 * Logit-level distillation: A * CE + (1 - A) * T^2 * KL(teacher || student) per label token, the teacher run without
 * gradients in the same native call; records carry the mean `ce` and `kl` (before weighting) per label token.
 * Validation stays the plain cross-entropy (comparable with SFT runs).
 */
function distillObjective(teacher: Model, alpha: number, temperature: number, base: Objective<Batch>): Objective<Batch> {
  return {
    ...base,
    sumKeys: ['ce', 'kl'],
    async step(model, b, lossScale) {
      const r = await model.distillStep(b, teacher, { alpha, temperature, lossScale });
      return { lossSum: r.lossSum, units: r.tokens, sums: [r.ceSum, r.klSum] };
    },
  };
}

/**
 * Fine-tunes `options.model` on `options.data` and writes the run into `options.out`: checkpoints, the final model
 * (a Hugging Face directory in OUT itself), `metrics.jsonl`, `loss.svg`/`loss.png` and `data/{train,val,test}.jsonl`.
 * `--format text` (mask pretrain) is pretraining: every token but padding trained, rows packed by default.
 */
export async function train(input: unknown, hooks: TrainHooks = {}): Promise<TrainResult> {
  const split = takeDistributed(input);
  const o = validateTrainOptions(split.input);
  return runTraining('train', o, split.distributed, hooks, (ctx) => prepareSft(o, ctx));
}

async function prepareSft(o: TrainOptions, ctx: TaskContext): Promise<PreparedTask<Batch>> {
  const { resumeFrom, log } = ctx;
  const { spec } = readModelConfig(o.model);
  const maxLength = o.maxLength ?? spec.maxPositions;
  const prepared: PreparedDataset = await prepareDataset({
    data: o.data,
    tokenizer: resumeFrom ? resumeFrom.path : o.model,
    format: o.format === 'auto' ? 'auto' : (o.format as RecordFormat),
    fieldMap: parseFieldMap(o.fieldMap),
    template: o.template === 'auto' ? undefined : o.template,
    mask: o.mask === 'auto' ? undefined : (o.mask as MaskMode),
    maxLength,
    // Pretraining (every token trained) splits long documents into row-sized pieces instead of cutting them.
    truncation: o.packing === false ? 'cut' : 'auto',
    addSpecialTokens: o.addSpecialTokens,
    split: o.valData !== undefined || o.testData !== undefined ? false : { val: o.valSplit, test: o.testSplit, train: 1 - o.valSplit - o.testSplit, seed: o.seed },
    valData: o.valData,
    testData: o.testData,
    // Tokenized examples are cached on disk, keyed by data, tokenizer, template and masking options.
    cache: true,
  });
  const packing = resolvePacking(o.packing, prepared.mask);
  log(
    `sftkit train: ${prepared.format} data, template ${prepared.templateId}, mask ${prepared.mask}${packing ? ', packed rows' : ''}: ` +
      `${prepared.train.length} train / ${prepared.val.length} val / ${prepared.test.length} test examples (${formatSummary(prepared.summary)})`,
  );
  const unkToken = prepared.tokenizer.unkId === undefined ? undefined : prepared.tokenizer.idToToken(prepared.tokenizer.unkId);
  // Once per dataset read (the main data, and validation / test data read from their own files).
  const datasets = [
    [o.data, prepared.summary],
    [o.valData ?? `${o.data} (validation)`, prepared.valSummary],
    [o.testData ?? `${o.data} (test)`, prepared.testSummary],
  ] as const;
  for (const [name, summary] of datasets) {
    const warning = summary && formatUnkWarning(summary, name, unkToken);
    if (warning) log(`sftkit train: ${warning}`);
  }
  if (ctx.isMain) await writeSplitFiles(join(ctx.out, 'data'), prepared);
  const padId = prepared.tokenizer.padId;
  let objective = crossEntropyObjective(prepared.val, o.batchSize, padId);
  let teacher: Model | undefined;
  if (o.teacher !== undefined) {
    const { spec: teacherSpec } = readModelConfig(o.teacher);
    checkSameTokenizer('--teacher', o.teacher, teacherSpec.vocabSize, o.model, Math.max(spec.vocabSize, prepared.tokenizer.vocabSize));
    teacher = await loadModel(o.teacher, { dtype: o.dtype, threads: ctx.threads, device: o.device, autocast: o.autocast });
    objective = distillObjective(teacher, o.kdAlpha, o.kdTemperature, objective);
    log(`sftkit train: distilling from ${o.teacher} (alpha ${o.kdAlpha}, temperature ${o.kdTemperature})`);
  }
  return {
    tokenizer: prepared.tokenizer,
    plan: sftPlan(prepared.train, o, packing, padId, maxLength, ctx.rank, ctx.world),
    fingerprint: fingerprint(prepared.train, o, packing),
    objective,
    examples: { train: prepared.train.length, val: prepared.val.length, test: prepared.test.length, dropped: prepared.summary.droppedTotal },
    async prepareModel(model) {
      if (prepared.tokenizer.vocabSize > model.spec.vocabSize) {
        if (model.baseDtype !== 'float32') {
          throw new SftkitError(
            'SFTKIT_UNSUPPORTED',
            `--add-special-tokens needs ${prepared.tokenizer.vocabSize - model.spec.vocabSize} new embedding rows, but --base-dtype ${model.baseDtype} keeps the ` +
              'embeddings frozen in that format (LoRA neither trains nor saves new rows); use a template whose tokens the tokenizer has, ' +
              'or fine-tune fully with --base-dtype float32',
          );
        }
        if (model.adapter) {
          throw new SftkitError(
            'SFTKIT_UNSUPPORTED',
            `--add-special-tokens needs ${prepared.tokenizer.vocabSize - model.spec.vocabSize} new embedding rows, which a LoRA adapter (--lora-r) ` +
              'neither trains nor saves; fine-tune fully or use a template whose tokens the tokenizer has',
          );
        }
        log(`sftkit train: resizing the token embeddings ${model.spec.vocabSize} -> ${prepared.tokenizer.vocabSize} for the added tokens`);
        await model.resizeTokenEmbeddings(prepared.tokenizer.vocabSize);
      }
    },
    dispose: async () => teacher?.dispose(),
  };
}

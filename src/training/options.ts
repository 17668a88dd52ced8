// The options of `sftkit train` and `sftkit dpo`: one schema each (src/options: types, flags, `--config` keys, help,
// library validation). The shared training fields are one fragment; each command adds its own.
//
// Precedence: defaults < config file < flags. Paths in a config file are taken as written (relative to the working
// directory, like flags).
import { SftkitError } from '../errors.ts';
import type { MaskMode } from '../mask/index.ts';
import { baseStoreFields, baseStoreRule, commandOptions, common, dataSelection, opt, type RuleContext } from '../options/index.ts';
import { SCHEDULE_NAMES } from './schedule.ts';

/** Packing unless chosen: on for pretraining masks (every token trained: pretrain, all), off otherwise. */
export function resolvePacking(packing: boolean | undefined, mask: MaskMode): boolean {
  return packing ?? (mask === 'pretrain' || mask === 'all');
}

// ---------------------------------------------------------------------------------------------------------------
// The shared training fields (the loop, the optimizer, data splits, checkpoints, LoRA), in help order

function runFields(model: string) {
  return {
    model: opt.string(model, { placeholder: 'DIR' }),
    data: opt.string('training data: JSON, JSONL, Parquet, CSV or TSV file, dataset directory, or http(s) URL', { placeholder: 'FILE' }),
    out: opt.string('output directory: checkpoints, final model, metrics, curves', { placeholder: 'DIR' }),
  };
}

function loopFields(lr: number) {
  return {
    epochs: opt.int('passes over the training data; exclusive with --max-steps', { min: 1, defaultText: '1 (unless --max-steps)' }).optional(),
    maxSteps: opt.int('stop after N optimizer steps; exclusive with --epochs', { min: 1 }).optional(),
    batchSize: opt.int('examples (or packed rows) per micro-batch', { min: 1 }).default(8),
    gradAccum: opt.int('micro-batches per optimizer step', { min: 1 }).default(1),
    lr: opt.number('peak learning rate (AdamW)', { gt: 0 }).default(lr),
    schedule: opt.enum(SCHEDULE_NAMES, 'learning-rate schedule after warmup').default('linear'),
    warmup: opt
      .number('warmup: X < 1 is a ratio of the total steps, X >= 1 a step count', {
        min: 0,
        refine: (v) => v < 1 || Number.isInteger(v),
        expected: 'a ratio in [0, 1) or an integer step count >= 1',
      })
      .default(0),
    weightDecay: opt.number('AdamW weight decay', { min: 0 }).default(0),
    maxGradNorm: opt.number('clip the global gradient norm (0: no clipping)', { min: 0 }).default(1),
  };
}

const restFields = {
  valSplit: opt.number('fraction of --data held out for validation', { min: 0, lt: 1 }).default(0.05),
  testSplit: opt.number('fraction of --data held out for testing', { min: 0, lt: 1 }).default(0.1),
  evalEvery: opt.int('validation every N optimizer steps (0: at each epoch end only)', { min: 0 }).default(0),
  saveEvery: opt.int('checkpoint every N optimizer steps (0: at each epoch end only)', { min: 0 }).default(0),
  saveTotalLimit: opt.int('keep the last K checkpoints (0: keep all)', { min: 0 }).default(2),
  seed: opt.int('seed for split, shuffling, init and dropout', { min: 0, max: 2 ** 32 - 1 }).default(42),
  threads: common.threads,
  resume: opt.boolean('continue from the latest complete checkpoint in --out').default(false),
  logEvery: opt.int('log a train line every N optimizer steps', { min: 1 }).default(10),
  valData: opt.string('separate validation file (instead of --val-split)', { placeholder: 'FILE' }).optional(),
  testData: opt.string('separate test file (instead of --test-split)', { placeholder: 'FILE' }).optional(),
  fieldMap: dataSelection.fieldMap,
  nproc: opt.int('data-parallel workers here (Gloo; NCCL on CUDA, a GPU each); --batch-size is the global batch', { min: 1, max: 256 }).default(1),
  dtype: common.dtype,
  groupByLength: opt.boolean('batch examples of similar length together (less padding)').default(false),
  dropLast: opt.boolean('drop the last incomplete training batch of each epoch').default(false),
  gradientCheckpointing: opt.boolean('recompute each layer in backward, keeping only its input (less memory, ~30% more compute)').default(false),
  device: opt.enum(['auto', 'cpu', 'cuda'], 'where to train (auto: cuda when this libtorch has CUDA and a GPU is visible)').default('auto'),
  autocast: opt.boolean('bf16 autocast of the forward passes over fp32 weights (for cuda; the loss stays fp32)').default(false),
  loraR: opt.int('LoRA rank: adapters on a frozen base, saved in the PEFT layout (0: full fine-tuning)', { min: 0, max: 65536 }).default(0),
  loraAlpha: opt.number('LoRA scaling: adapters scaled by alpha / r (PEFT default)', { gt: 0 }).default(8),
  loraDropout: opt.number('dropout on the LoRA adapter inputs while training', { min: 0, lt: 1 }).default(0),
  loraTargets: opt
    .string('LoRA target modules by HF name (suffix match, as PEFT) or all-linear', { placeholder: 'NAME,...', defaultText: 'q_proj,v_proj; gpt2 c_attn' })
    .optional(),
  ...baseStoreFields(true),
};

const exclusive = [
  ['epochs', 'maxSteps'],
  ['valData', 'valSplit'],
  ['testData', 'testSplit'],
] as const;

type Shared = { loraR: number; loraAlpha: number; loraDropout: number; loraTargets?: string | undefined };

/** LoRA values without a rank are a mistake. */
function loraRule<O extends Shared>({ given, name, source, defaultOf }: RuleContext<O>): void {
  if (given.loraR !== undefined && given.loraR !== 0) return;
  // Flags and config files hold only what the user wrote: any LoRA value without a rank is a mistake. A library
  // object may be a resolved options object validated again (--nproc workers, resume), which carries every default:
  // there a value equal to its default passes.
  const strict = source.kind !== 'object';
  for (const k of ['loraAlpha', 'loraDropout', 'loraTargets'] as const) {
    if (given[k] !== undefined && (strict || given[k] !== defaultOf(k))) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${name(k)} needs ${name('loraR')} >= 1 (LoRA is off)`);
  }
}

/** Epochs unless max steps; a separate val/test file means no split of --data for it; some data left to train on. */
function finishTraining<O extends { epochs?: number | undefined; maxSteps?: number | undefined; valData?: string | undefined; testData?: string | undefined; valSplit: number; testSplit: number }>(
  o: O,
  name: (k: keyof O & string) => string,
): O {
  if (o.maxSteps === undefined) o.epochs ??= 1;
  if (o.valData !== undefined) o.valSplit = 0;
  if (o.testData !== undefined) o.testSplit = 0;
  if (o.valSplit + o.testSplit >= 1) {
    throw new SftkitError(
      'SFTKIT_BAD_ARGUMENT',
      `Expected a sum below 1 (some data must be left to train on) for ${name('valSplit')} + ${name('testSplit')} but received ${o.valSplit + o.testSplit} (number)`,
    );
  }
  return o;
}

// ---------------------------------------------------------------------------------------------------------------
// `sftkit train`

export const trainOptions = commandOptions({
  command: 'train',
  config: true,
  shape: {
    ...runFields('Hugging Face model directory to fine-tune'),
    format: dataSelection.format,
    template: dataSelection.template,
    mask: dataSelection.mask,
    maxLength: dataSelection.maxLength,
    ...loopFields(5e-5),
    packing: opt.boolean('pack examples into rows (no attention across them; long texts split)', { defaultText: 'on for --mask pretrain|all' }).optional(),
    addSpecialTokens: dataSelection.addSpecialTokens,
    teacher: opt.string('distil from this teacher (same tokenizer): A*CE + (1-A)*T^2*KL(teacher||student)', { placeholder: 'DIR' }).optional(),
    kdAlpha: opt.number('with --teacher: weight A of the cross-entropy (1 - A weighs the KL)', { min: 0, max: 1 }).default(0.5),
    kdTemperature: opt.number('with --teacher: softmax temperature T of teacher and student in the KL', { gt: 0 }).default(1),
    ...restFields,
  },
  exclusive,
  rules(ctx) {
    loraRule(ctx);
    baseStoreRule(ctx, { key: 'loraR' });
    // A distillation setting without a teacher is a mistake (validated options, defaults applied, pass again).
    if (ctx.given.teacher === undefined) {
      for (const k of ['kdAlpha', 'kdTemperature'] as const) {
        if (ctx.given[k] !== undefined && ctx.given[k] !== ctx.defaultOf(k)) {
          throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${ctx.name(k)} needs --teacher DIR (logit-level distillation)`);
        }
      }
    }
  },
  finish: finishTraining,
});

/** Validated options of a training run (every key has its default applied). */
export type TrainOptions = ReturnType<typeof trainOptions.validate>;

// ---------------------------------------------------------------------------------------------------------------
// `sftkit dpo`

/** DPO's own fields (also read by `sftkit dpo --eval-only`). */
export const dpoFields = {
  format: opt.enum(['auto', 'preference'], 'record format: {prompt?, chosen, rejected} preference records').default('auto'),
  ref: opt.string('frozen reference model (log-probs computed once, cached in OUT)', { placeholder: 'DIR', defaultText: 'the starting policy (--model)' }).optional(),
  beta: opt.number('DPO beta (strength of the KL regularisation)', { gt: 0 }).default(0.1),
  labelSmoothing: opt.number('conservative DPO: label smoothing of the sigmoid loss', { min: 0, lt: 0.5 }).default(0),
  lossType: opt.enum(['sigmoid', 'ipo'], 'sigmoid (DPO) or ipo (on token-averaged log-probs, as TRL)').default('sigmoid'),
};

/** The label smoothing belongs to the sigmoid loss. */
export function ipoRule<O extends { lossType: 'sigmoid' | 'ipo'; labelSmoothing: number }>({ given, name }: RuleContext<O>): void {
  if (given.lossType === 'ipo' && given.labelSmoothing !== undefined && given.labelSmoothing > 0) {
    throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${name('labelSmoothing')} applies to the sigmoid loss only (--loss-type ipo has none)`);
  }
}

export const dpoOptions = commandOptions({
  command: 'dpo',
  config: true,
  shape: {
    ...runFields('Hugging Face model directory: the starting policy'),
    ...dpoFields,
    template: dataSelection.template,
    maxLength: dataSelection.maxLength,
    ...loopFields(1e-6),
    ...restFields,
  },
  exclusive,
  rules(ctx) {
    loraRule(ctx);
    baseStoreRule(ctx, { key: 'loraR' });
    ipoRule(ctx);
  },
  finish: finishTraining,
});

/** Validated options of a DPO run (`sftkit dpo`). */
export type DpoOptions = ReturnType<typeof dpoOptions.validate>;

/** The options every training command shares (what the loop, checkpoints and the run directory read). */
export type BaseTrainOptions = Omit<TrainOptions, 'mask' | 'packing' | 'addSpecialTokens' | 'teacher' | 'kdAlpha' | 'kdTemperature'>;
export type Dtype = TrainOptions['dtype'];

export const TRAIN_OPTION_KEYS = trainOptions.keys;
export const TRAIN_OPTION_TABLE = trainOptions.table;
export const formatTrainOptionsHelp = (): string => trainOptions.formatHelp();
export const validateTrainOptions = (input: unknown): TrainOptions => trainOptions.validate(input);
export const loadConfigFile = (path: string): Partial<TrainOptions> => trainOptions.loadConfigFile(path);
export const parseTrainArgs = (argv: readonly string[]): TrainOptions => trainOptions.parseArgs(argv);
export const validateDpoOptions = (input: unknown): DpoOptions => dpoOptions.validate(input);

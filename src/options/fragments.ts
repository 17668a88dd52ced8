// Option fields several commands share, declared once: data selection (train, dpo, eval, inspect, distill), model
// loading (eval, generate, chat), sampling (generate, chat, eval --responses, distill) and a few single fields.
// Commands spread them into their shapes: `{ ...dataSelection, ...modelLoad, json }`.
import { parseFieldMap, RECORD_FORMATS } from '../data/index.ts';
import type { DataSelection } from '../eval/index.ts';
import { MASK_MODES } from '../mask/index.ts';
import { BASE_DTYPES, checkBaseDtypeOptions, type LoadModelOptions } from '../native/index.ts';
import { TEMPLATE_NAMES } from '../template/index.ts';
import type { z } from 'zod';
import { SftkitError } from '../errors.ts';
import { opt, type RuleContext } from './command-options.ts';

/** Single fields used by several commands under the same meaning. */
export const common = {
  /** CPU threads of the native engine (0: libtorch's default, all cores). */
  threads: opt.int('CPU threads for the native engine (0: automatic, all cores)', { min: 0 }).default(0),
  json: opt.boolean('print the result as one JSON object').default(false),
  dtype: opt.enum(['float32', 'bfloat16'], 'parameter and compute dtype').default('float32'),
  device: opt.enum(['auto', 'cpu', 'cuda'], 'where to run (auto: cuda when this libtorch has CUDA and a GPU is visible)').default('auto'),
};

/**
 * How the frozen base weights are kept (issue 24): --base-dtype and --double-quant. `training`: the help of train,
 * dpo and bench train (the base then needs LoRA adapters).
 */
export function baseStoreFields(training: boolean) {
  return {
    baseDtype: baseDtypeField(training).default('float32'),
    doubleQuant: opt.boolean('with --base-dtype nf4: quantise the block scales too (QLoRA double quantisation)').default(false),
  };
}

/** The --base-dtype field without its default (`sftkit bench train` reports the base only when it is given). */
export function baseDtypeField(training: boolean, o: { defaultText?: string } = {}) {
  return opt.enum(
    BASE_DTYPES,
    'keep the frozen base weights in this format: bfloat16 (2 bytes a weight), int8 (1, per-channel scales)\n' +
      'or nf4 (about 0.5, QLoRA); each layer dequantises its weights just in time, compute stays float32\n' +
      '(bf16 with --autocast: fast where the CPU has bf16 dot products, AVX512_BF16 / AMX)' +
      (training ? '\n(a base other than float32 trains LoRA adapters only: needs --lora-r)' : ''),
    o,
  );
}

/** The base-store fields of eval, generate and chat (no training). */
export const baseStore = baseStoreFields(false);

/** Options that carry the base-store fields (and maybe a dtype and LoRA rank). */
type BaseStoreOptions = { baseDtype: LoadModelOptions['baseDtype']; doubleQuant: boolean };

/**
 * The rules of the base store between options: --double-quant needs --base-dtype nf4; a base other than float32
 * needs --dtype float32 (bf16 compute through --autocast). With `lora` (train, dpo, bench train): a base other than
 * float32 is frozen, so it needs LoRA adapters (--lora-r), full fine-tuning is refused.
 */
export function baseStoreRule<O extends Partial<BaseStoreOptions>>(ctx: RuleContext<O>, lora?: { key: keyof O & string }): void {
  const { given } = ctx;
  const g = given as { baseDtype?: string; doubleQuant?: boolean; dtype?: string } & Record<string, unknown>;
  const name = ctx.name as (k: string) => string;
  checkBaseDtypeOptions(g, name);
  if (lora && g.baseDtype !== undefined && g.baseDtype !== 'float32') {
    const r = g[lora.key];
    if (r === undefined || r === 0) {
      throw new SftkitError(
        'SFTKIT_BAD_ARGUMENT',
        `${name('baseDtype')} ${g.baseDtype} keeps the base weights frozen in ${g.baseDtype}: only LoRA adapters train over them; ` +
          `add ${name(lora.key)} R (e.g. 16), or use ${name('baseDtype')} float32 for full fine-tuning`,
      );
    }
  }
}

/** The load options of the base store (float32 and no double quantisation are left out: the defaults). */
export function baseStoreOf(o: Partial<BaseStoreOptions>): Pick<LoadModelOptions, 'baseDtype' | 'doubleQuant'> {
  return {
    ...(o.baseDtype !== undefined && o.baseDtype !== 'float32' ? { baseDtype: o.baseDtype } : {}),
    ...(o.doubleQuant ? { doubleQuant: true } : {}),
  };
}

/** How a data file is read and rendered (the data pipeline's choices). */
export const dataSelection = {
  format: opt.enum(['auto', ...RECORD_FORMATS], 'record format (auto: detected from the keys)').default('auto'),
  template: opt.string(`prompt style: ${TEMPLATE_NAMES.join(', ')}, or a Jinja file (auto: by format)`, { placeholder: 'NAME|FILE' }).default('auto'),
  mask: opt.enum(['auto', ...MASK_MODES], 'which tokens are trained (auto: by format)').default('auto'),
  maxLength: opt.int('truncate examples (and packed rows) to N tokens', { min: 1, defaultText: "the model's context length" }).optional(),
  limit: opt.int('read only the first N records', { min: 1 }).optional(),
  fieldMap: opt.string('read fields from other keys, e.g. instruction=question,output=answer', { placeholder: 'F=KEY,...' }).optional(),
  addSpecialTokens: opt.boolean("add template tokens the tokenizer lacks (training resizes the model's embeddings)").default(false),
};

/** Validated options that carry a data selection (defaults applied or not). */
type DataSelectionOptions = { data: string } & Partial<z.output<z.ZodObject<typeof dataSelection>>>;

/** The data selection of validated options as the data pipeline takes it ('auto' template and mask: by format). */
export function selectionOf(o: DataSelectionOptions): DataSelection {
  return {
    data: o.data,
    format: o.format ?? 'auto',
    ...(o.template !== undefined && o.template !== 'auto' ? { template: o.template } : {}),
    ...(o.mask !== undefined && o.mask !== 'auto' ? { mask: o.mask } : {}),
    ...(o.maxLength !== undefined ? { maxLength: o.maxLength } : {}),
    ...(o.limit !== undefined ? { limit: o.limit } : {}),
    ...(o.addSpecialTokens !== undefined ? { addSpecialTokens: o.addSpecialTokens } : {}),
    fieldMap: parseFieldMap(o.fieldMap),
  };
}

/** How eval, generate and chat load their model. */
export const modelLoad = {
  adapter: opt
    .string(
      'apply a LoRA adapter (PEFT directory: adapter_config.json + adapter_model.safetensors);\n--model may also be an adapter directory alone (its base_model_name_or_path is loaded)',
      { placeholder: 'DIR' },
    )
    .optional(),
  device: common.device,
  threads: common.threads,
  ...baseStore,
};

export function loadOptionsOf(o: z.output<z.ZodObject<typeof modelLoad>>): LoadModelOptions {
  return { device: o.device, ...(o.threads ? { threads: o.threads } : {}), ...(o.adapter !== undefined ? { adapter: o.adapter } : {}), ...baseStoreOf(o) };
}

/** Sampling of generated replies. */
export const sampling = {
  maxNewTokens: opt.int('most tokens to generate', { min: 1, defaultText: '256' }).optional(),
  temperature: opt.number('0 = greedy; > 0 samples', { min: 0, defaultText: '0' }).optional(),
  topK: opt.int('sample among the N most likely tokens (0 = off)', { min: 0 }).optional(),
  topP: opt.number('nucleus sampling threshold (1 = off)', { min: 0, max: 1 }).optional(),
  seed: opt.int('seed of the sampler (reproducible)', { min: 0 }).optional(),
};

export type SamplingOptions = z.output<z.ZodObject<typeof sampling>>;

/** The sampling keys that were given (absent ones stay absent: the generator's defaults apply). */
export function samplingOf(o: SamplingOptions): SamplingOptions {
  const out: SamplingOptions = {};
  for (const k of ['maxNewTokens', 'temperature', 'topK', 'topP', 'seed'] as const) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

// The train options: ONE schema (type, default, description, validation) that drives the `sftkit train` flags, the
// `--config file.json|yaml` keys, the library's option validation and the generated help table.
//
// Naming: config keys are the camelCase option names (`maxLength`); the flag is the kebab-case form (`--max-length`).
// Kebab-case keys in a config file are rejected with a hint naming the camelCase key. Precedence: defaults < config
// file < flags. Paths in a config file are taken as written (relative to the working directory, like flags).
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { SftkitError, invalidParameterError } from '../errors.ts';
import { RECORD_FORMATS, type RecordFormat } from '../data/types.ts';
import { MASK_MODES, type MaskMode } from '../mask/mask-mode.ts';
import { TEMPLATE_NAMES } from '../template/types.ts';
import type { PreferenceLossType } from '../native/model.ts';
import { SCHEDULE_NAMES, type ScheduleName } from './schedule.ts';

export type Dtype = 'float32' | 'bfloat16';

/** The options every training command shares (the loop, the optimizer, data selection and splits, checkpoints). */
export interface BaseTrainOptions {
  model: string;
  data: string;
  out: string;
  /** 'auto': detected from the keys of the first record. */
  format: RecordFormat | 'auto';
  /** A built-in name (plain, alpaca, phi3, chatml, model), 'auto' (the format's default) or a template file path. */
  template: string;
  /** undefined: the model's context length (max_position_embeddings). */
  maxLength?: number;
  /** Exactly one of epochs / maxSteps is set after validation. */
  epochs?: number;
  maxSteps?: number;
  batchSize: number;
  gradAccum: number;
  lr: number;
  schedule: ScheduleName;
  /** < 1: a ratio of the total optimizer steps; >= 1: a step count (see warmupSteps() in schedule.ts). */
  warmup: number;
  weightDecay: number;
  maxGradNorm: number;
  valSplit: number;
  testSplit: number;
  evalEvery: number;
  saveEvery: number;
  saveTotalLimit: number;
  seed: number;
  threads: number;
  resume: boolean;
  logEvery: number;
  valData?: string;
  testData?: string;
  /** Other key names: `instruction=question,output=answer` (canonical field = the record's key). */
  fieldMap?: string;
  /** Data-parallel worker processes on this machine (1: no parallelism). */
  nproc: number;
  dtype: Dtype;
  groupByLength: boolean;
  dropLast: boolean;
  gradientCheckpointing: boolean;
  /** 'auto': CUDA when available, else the CPU. */
  device: 'auto' | 'cpu' | 'cuda';
  /** bf16 autocast of the forward passes (fp32 master weights, fp32 loss). */
  autocast: boolean;
  /** LoRA rank; 0 = full fine-tuning (no adapters). */
  loraR: number;
  loraAlpha: number;
  loraDropout: number;
  /** Comma-separated module names (PEFT matching), or all-linear; undefined: PEFT's default for the architecture. */
  loraTargets?: string;
}

/** Validated options of a training run (every key has its default applied). */
export interface TrainOptions extends BaseTrainOptions {
  /** 'auto': the format's default (completion for instruction formats, assistant for chat). */
  mask: MaskMode | 'auto';
  /** undefined: packing on for pretraining (mask pretrain or all), off otherwise (see resolvePacking). */
  packing?: boolean;
  addSpecialTokens: boolean;
  /** Logit-level distillation: a teacher model directory sharing the tokenizer. */
  teacher?: string;
  /** Weight of the cross-entropy in A * CE + (1 - A) * T^2 * KL(teacher || student). */
  kdAlpha: number;
  kdTemperature: number;
}

/** Validated options of a DPO run (`sftkit dpo`). */
export interface DpoOptions extends BaseTrainOptions {
  format: 'auto' | 'preference';
  /** The frozen reference model; undefined: the starting policy (--model). */
  ref?: string;
  beta: number;
  labelSmoothing: number;
  lossType: PreferenceLossType;
}

/** Packing unless chosen: on for pretraining masks (every token trained: pretrain, all), off otherwise. */
export function resolvePacking(packing: boolean | undefined, mask: MaskMode): boolean {
  return packing ?? (mask === 'pretrain' || mask === 'all');
}

// ---------------------------------------------------------------------------------------------------------------
// The schema helper

interface SpecCommon {
  description: string;
  /** Shown in the help table instead of the default value (for defaults that depend on other options). */
  defaultText?: string;
  required?: boolean;
}
export interface StringSpec extends SpecCommon {
  kind: 'string';
  default?: string;
  /** Placeholder in the help (`PATH`, `NAME`). */
  placeholder?: string;
}
export interface IntegerSpec extends SpecCommon {
  kind: 'integer';
  default?: number;
  min: number;
  max?: number;
}
export interface NumberSpec extends SpecCommon {
  kind: 'number';
  default?: number;
  min?: number;
  /** When set, the value must be strictly below it. */
  below?: number;
  /** Extra rule: returns the expectation text when the value is bad, undefined when fine. */
  validate?: (value: number) => string | undefined;
  /** The expectation text for the basic range (e.g. `a number in [0, 1)`). */
  expected: string;
}
export interface BooleanSpec extends SpecCommon {
  kind: 'boolean';
  /** undefined: decided later from other options (defaultText says how). */
  default?: boolean;
}
export interface EnumSpec<V extends string> extends SpecCommon {
  kind: 'enum';
  values: readonly V[];
  default?: V;
}

type SpecFor<T> = [T] extends [boolean]
  ? BooleanSpec
  : [T] extends [number]
    ? IntegerSpec | NumberSpec
    : [T] extends [string]
      ? string extends T
        ? StringSpec
        : EnumSpec<T>
      : never;

export type OptionSchema<O> = { [K in keyof O]-?: SpecFor<NonNullable<O[K]>> };
export type OptionSpec = StringSpec | IntegerSpec | NumberSpec | BooleanSpec | EnumSpec<string>;

// ---------------------------------------------------------------------------------------------------------------
// The schemas (the order here is the order of the help tables)

const lrSpec = (dflt: number): NumberSpec => ({
  kind: 'number',
  min: 0,
  default: dflt,
  expected: 'a finite number > 0',
  validate: (v) => (v > 0 ? undefined : 'a finite number > 0'),
  description: 'peak learning rate (AdamW)',
});

/** The shared keys, in help order, minus the ones each command places itself (model/data/out first). */
function baseSchema(model: string, lr: number): OptionSchema<Omit<BaseTrainOptions, 'format'>> {
  return {
    model: { kind: 'string', required: true, placeholder: 'DIR', description: model },
    data: { kind: 'string', required: true, placeholder: 'FILE', description: 'training data: JSON, JSONL, Parquet, CSV or TSV file, dataset directory, or http(s) URL' },
    out: { kind: 'string', required: true, placeholder: 'DIR', description: 'output directory: checkpoints, final model, metrics, curves' },
    template: { kind: 'string', default: 'auto', placeholder: 'NAME|FILE', description: `prompt style: ${TEMPLATE_NAMES.join(', ')}, or a Jinja file (auto: by format)` },
    maxLength: { kind: 'integer', min: 1, defaultText: "the model's context length", description: 'truncate examples (and pack rows) to N tokens' },
    epochs: { kind: 'integer', min: 1, defaultText: '1 (unless --max-steps)', description: 'passes over the training data; exclusive with --max-steps' },
    maxSteps: { kind: 'integer', min: 1, description: 'stop after N optimizer steps; exclusive with --epochs' },
    batchSize: { kind: 'integer', min: 1, default: 8, description: 'examples (or packed rows) per micro-batch' },
    gradAccum: { kind: 'integer', min: 1, default: 1, description: 'micro-batches per optimizer step' },
    lr: lrSpec(lr),
    schedule: { kind: 'enum', values: SCHEDULE_NAMES, default: 'linear', description: 'learning-rate schedule after warmup' },
    warmup: {
      kind: 'number',
      min: 0,
      default: 0,
      expected: 'a ratio in [0, 1) or an integer step count >= 1',
      validate: (v) => (v < 1 || Number.isInteger(v) ? undefined : 'a ratio in [0, 1) or an integer step count >= 1'),
      description: 'warmup: X < 1 is a ratio of the total steps, X >= 1 a step count',
    },
    weightDecay: { kind: 'number', min: 0, default: 0, expected: 'a finite number >= 0', description: 'AdamW weight decay' },
    maxGradNorm: { kind: 'number', min: 0, default: 1, expected: 'a finite number >= 0', description: 'clip the global gradient norm (0: no clipping)' },
    valSplit: { kind: 'number', min: 0, below: 1, default: 0.05, expected: 'a number in [0, 1)', description: 'fraction of --data held out for validation' },
    testSplit: { kind: 'number', min: 0, below: 1, default: 0.1, expected: 'a number in [0, 1)', description: 'fraction of --data held out for testing' },
    evalEvery: { kind: 'integer', min: 0, default: 0, description: 'validation every N optimizer steps (0: at each epoch end only)' },
    saveEvery: { kind: 'integer', min: 0, default: 0, description: 'checkpoint every N optimizer steps (0: at each epoch end only)' },
    saveTotalLimit: { kind: 'integer', min: 0, default: 2, description: 'keep the last K checkpoints (0: keep all)' },
    seed: { kind: 'integer', min: 0, max: 2 ** 32 - 1, default: 42, description: 'seed for split, shuffling, init and dropout' },
    threads: { kind: 'integer', min: 0, default: 0, description: 'CPU threads for the native engine (0: automatic)' },
    resume: { kind: 'boolean', default: false, description: 'continue from the latest complete checkpoint in --out' },
    logEvery: { kind: 'integer', min: 1, default: 10, description: 'log a train line every N optimizer steps' },
    valData: { kind: 'string', placeholder: 'FILE', description: 'separate validation file (instead of --val-split)' },
    testData: { kind: 'string', placeholder: 'FILE', description: 'separate test file (instead of --test-split)' },
    fieldMap: { kind: 'string', placeholder: 'F=KEY,...', description: 'read fields from other keys, e.g. instruction=question,output=answer' },
    nproc: { kind: 'integer', min: 1, max: 256, default: 1, description: 'data-parallel workers here (Gloo; NCCL on CUDA, a GPU each); --batch-size is the global batch' },
    dtype: { kind: 'enum', values: ['float32', 'bfloat16'], default: 'float32', description: 'parameter and compute dtype' },
    groupByLength: { kind: 'boolean', default: false, description: 'batch examples of similar length together (less padding)' },
    dropLast: { kind: 'boolean', default: false, description: 'drop the last incomplete training batch of each epoch' },
    gradientCheckpointing: { kind: 'boolean', default: false, description: 'recompute each layer in backward, keeping only its input (less memory, ~30% more compute)' },
    device: { kind: 'enum', values: ['auto', 'cpu', 'cuda'], default: 'auto', description: 'where to train (auto: cuda when this libtorch has CUDA and a GPU is visible)' },
    autocast: { kind: 'boolean', default: false, description: 'bf16 autocast of the forward passes over fp32 weights (for cuda; the loss stays fp32)' },
    loraR: { kind: 'integer', min: 0, max: 65536, default: 0, description: 'LoRA rank: adapters on a frozen base, saved in the PEFT layout (0: full fine-tuning)' },
    loraAlpha: { kind: 'number', min: 0, default: 8, expected: 'a number > 0', validate: (v) => (v > 0 ? undefined : 'a number > 0'), description: 'LoRA scaling: adapters scaled by alpha / r (PEFT default)' },
    loraDropout: { kind: 'number', min: 0, below: 1, default: 0, expected: 'a number in [0, 1)', description: 'dropout on the LoRA adapter inputs while training' },
    loraTargets: {
      kind: 'string',
      placeholder: 'NAME,...',
      defaultText: 'q_proj,v_proj; gpt2 c_attn',
      description: 'LoRA target modules by HF name (suffix match, as PEFT) or all-linear',
    },
  };
}

/** The base schema with each command's own keys inserted after the named keys (help order). */
function extend<O>(base: Record<string, OptionSpec>, inserts: Record<string, Record<string, OptionSpec>>): OptionSchema<O> {
  const out: Record<string, OptionSpec> = {};
  for (const [k, v] of Object.entries(base)) {
    out[k] = v;
    Object.assign(out, inserts[k] ?? {});
  }
  return out as unknown as OptionSchema<O>;
}

const trainBase = baseSchema('Hugging Face model directory to fine-tune', 5e-5) as unknown as Record<string, OptionSpec>;

export const trainOptionSchema: OptionSchema<TrainOptions> = extend<TrainOptions>(trainBase, {
  out: { format: { kind: 'enum', values: ['auto', ...RECORD_FORMATS], default: 'auto', description: 'record format (auto: detected from the keys)' } },
  template: { mask: { kind: 'enum', values: ['auto', ...MASK_MODES], default: 'auto', description: 'which tokens are trained (auto: by format)' } },
  maxGradNorm: {
    packing: {
      kind: 'boolean',
      defaultText: 'on for --mask pretrain|all',
      description: 'pack examples into rows (no attention across them; long texts split)',
    },
    addSpecialTokens: { kind: 'boolean', default: false, description: "add template tokens the tokenizer lacks (resizes the model's embeddings)" },
    teacher: { kind: 'string', placeholder: 'DIR', description: 'distil from this teacher (same tokenizer): A*CE + (1-A)*T^2*KL(teacher||student)' },
    kdAlpha: {
      kind: 'number',
      min: 0,
      default: 0.5,
      expected: 'a number in [0, 1]',
      validate: (v) => (v <= 1 ? undefined : 'a number in [0, 1]'),
      description: 'with --teacher: weight A of the cross-entropy (1 - A weighs the KL)',
    },
    kdTemperature: {
      kind: 'number',
      min: 0,
      default: 1,
      expected: 'a finite number > 0',
      validate: (v) => (v > 0 ? undefined : 'a finite number > 0'),
      description: 'with --teacher: softmax temperature T of teacher and student in the KL',
    },
  },
});

export const dpoOptionSchema: OptionSchema<DpoOptions> = extend<DpoOptions>(baseSchema('Hugging Face model directory: the starting policy', 1e-6) as unknown as Record<string, OptionSpec>, {
  out: {
    format: { kind: 'enum', values: ['auto', 'preference'], default: 'auto', description: 'record format: {prompt?, chosen, rejected} preference records' },
    ref: { kind: 'string', placeholder: 'DIR', defaultText: 'the starting policy (--model)', description: 'frozen reference model (log-probs computed once, cached in OUT)' },
    beta: { kind: 'number', min: 0, default: 0.1, expected: 'a finite number > 0', validate: (v) => (v > 0 ? undefined : 'a finite number > 0'), description: 'DPO beta (strength of the KL regularisation)' },
    labelSmoothing: { kind: 'number', min: 0, below: 0.5, default: 0, expected: 'a number in [0, 0.5)', description: 'conservative DPO: label smoothing of the sigmoid loss' },
    lossType: { kind: 'enum', values: ['sigmoid', 'ipo'], default: 'sigmoid', description: 'sigmoid (DPO) or ipo (on token-averaged log-probs, as TRL)' },
  },
});

// ---------------------------------------------------------------------------------------------------------------
// The option machinery, one instance per command

/** camelCase key -> kebab-case flag name without dashes (`maxLength` -> `max-length`). */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function kebabToCamel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export interface OptionRow {
  key: string;
  flag: string;
  type: string;
  default: string;
  description: string;
}

function typeText(spec: OptionSpec): string {
  switch (spec.kind) {
    case 'string':
      return spec.placeholder ?? 'STR';
    case 'integer':
      return 'N';
    case 'number':
      return 'X';
    case 'boolean':
      return '';
    case 'enum':
      return spec.values.join('|');
  }
}

function defaultValueText(spec: OptionSpec): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  if (spec.required) return '(required)';
  if (spec.default === undefined) return '-';
  return String(spec.default);
}

type Source = { kind: 'flag' } | { kind: 'config'; file: string } | { kind: 'object' };

function displayName(key: string, source: Source): string {
  if (source.kind === 'flag') return `--${flagName(key)}`;
  if (source.kind === 'config') return `${key} in ${source.file}`;
  return key;
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** Parses a flag's string as a number: decimal or exponent notation only (no '', '0x10', 'Infinity'). */
function parseNumberText(text: string): number | undefined {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text.trim())) return undefined;
  return Number(text);
}

/** Checks one value against its spec; flags arrive as strings and are converted. Returns the typed value. */
function checkValue(key: string, spec: OptionSpec, raw: unknown, source: Source): string | number | boolean {
  const name = displayName(key, source);
  switch (spec.kind) {
    case 'string': {
      if (typeof raw !== 'string' || raw.length === 0) throw invalidParameterError(name, 'a non-empty string', raw);
      return raw;
    }
    case 'boolean': {
      if (typeof raw !== 'boolean') throw invalidParameterError(name, 'true or false', raw);
      return raw;
    }
    case 'enum': {
      if (typeof raw !== 'string' || !spec.values.includes(raw)) {
        throw invalidParameterError(name, `one of ${spec.values.map((v) => `'${v}'`).join(', ')}`, raw);
      }
      return raw;
    }
    case 'integer': {
      const range = spec.max === undefined ? `an integer >= ${spec.min}` : `an integer in [${spec.min}, ${spec.max}]`;
      const n = source.kind === 'flag' && typeof raw === 'string' ? parseNumberText(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < spec.min || (spec.max !== undefined && n > spec.max)) {
        throw invalidParameterError(name, range, raw);
      }
      return n;
    }
    case 'number': {
      const n = source.kind === 'flag' && typeof raw === 'string' ? parseNumberText(raw) : raw;
      if (
        typeof n !== 'number' ||
        !Number.isFinite(n) ||
        (spec.min !== undefined && n < spec.min) ||
        (spec.below !== undefined && n >= spec.below)
      ) {
        throw invalidParameterError(name, spec.expected, raw);
      }
      const extra = spec.validate?.(n);
      if (extra !== undefined) throw invalidParameterError(name, extra, raw);
      return n;
    }
  }
}

/** Rules between options beyond the shared ones (epochs vs maxSteps, split fractions vs separate files). */
type ExtraRules<O> = (given: Partial<O>, name: (k: keyof O & string) => string) => void;

/** Flags, config files, validation and help of one command's options, all from its schema. */
export class OptionParser<O extends BaseTrainOptions> {
  readonly keys: (keyof O & string)[];
  /** One row per option: the documented defaults. */
  readonly table: readonly OptionRow[];

  constructor(
    readonly schema: OptionSchema<O>,
    /** The command in messages: `Unknown train option "x"`. */
    readonly command: string,
    private readonly extraRules: ExtraRules<O> = () => {},
  ) {
    this.keys = Object.keys(schema) as (keyof O & string)[];
    this.table = this.keys.map((key) => {
      const spec = this.specOf(key)!;
      return { key, flag: `--${flagName(key)}`, type: typeText(spec), default: defaultValueText(spec), description: spec.description };
    });
  }

  specOf(key: string): OptionSpec | undefined {
    return Object.hasOwn(this.schema, key) ? (this.schema as Record<string, OptionSpec>)[key] : undefined;
  }

  /** The options part of `sftkit <command> --help`, generated from the table. */
  formatHelp(): string {
    const rows = this.table.map((r) => {
      const spec = this.specOf(r.key)!;
      const left = spec.kind === 'boolean' ? `${r.flag}, --no-${r.flag.slice(2)}` : `${r.flag} ${r.type}`;
      const note = spec.required ? ' (required)' : r.default === '-' ? '' : ` (default: ${r.default})`;
      return { left, right: `${r.description}${note}` };
    });
    rows.push({ left: '--config FILE', right: 'JSON or YAML file with the same options as camelCase keys (flags win)' });
    // Flags longer than the column get their description on the next line.
    const width = Math.min(30, Math.max(...rows.map((r) => r.left.length)));
    return (
      rows
        .map((r) => (r.left.length > width ? `  ${r.left}\n  ${' '.repeat(width)}  ${r.right}` : `  ${r.left.padEnd(width)}  ${r.right}`))
        .join('\n') + '\n'
    );
  }

  private unknownKeyError(key: string, source: Source): SftkitError {
    const where = source.kind === 'config' ? ` in ${source.file}` : '';
    const camel = kebabToCamel(key);
    let hint = '';
    if (camel !== key && this.specOf(camel)) hint = ` (config keys are camelCase: did you mean "${camel}"?)`;
    else {
      const near = this.keys.filter((k) => levenshtein(k.toLowerCase(), key.toLowerCase()) <= 2);
      if (near.length > 0) hint = ` (did you mean "${near[0]}"?)`;
    }
    return new SftkitError('SFTKIT_BAD_ARGUMENT', `Unknown ${this.command} option "${key}"${where}${hint}`);
  }

  /** Checks keys and values of a partial options object (no defaults, no cross-option rules). */
  private checkPartial(input: unknown, source: Source): Partial<O> {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      const where = source.kind === 'config' ? `the top level of ${source.file}` : `${this.command} options`;
      throw invalidParameterError(where, 'an object of options', input);
    }
    const out: Record<string, string | number | boolean> = {};
    for (const [key, raw] of Object.entries(input)) {
      const spec = this.specOf(key);
      if (!spec) throw this.unknownKeyError(key, source);
      if (raw === undefined) continue;
      out[key] = checkValue(key, spec, raw, source);
    }
    return out as Partial<O>;
  }

  /**
   * Validates a complete options object (library API): rejects unknown keys, checks every value, applies defaults and
   * the rules between options (epochs vs maxSteps, split fractions, separate val/test files).
   */
  validate(input: unknown): O {
    return this.finalize(this.checkPartial(input, { kind: 'object' }), { kind: 'object' });
  }

  private finalize(given: Partial<O>, source: Source): O {
    // From argv the value may come from the flag or the config file: name both spellings.
    const name = (k: keyof O & string) => (source.kind === 'flag' ? `--${flagName(k)}/${k}` : k);
    for (const key of this.keys) {
      const spec = this.specOf(key)!;
      if (spec.required && given[key] === undefined) {
        throw new SftkitError('SFTKIT_BAD_ARGUMENT', `Missing required ${this.command} option ${name(key)}`);
      }
    }
    const g = given as Partial<BaseTrainOptions>;
    if (g.epochs !== undefined && g.maxSteps !== undefined) {
      throw new SftkitError(
        'SFTKIT_BAD_ARGUMENT',
        `${name('epochs')} and ${name('maxSteps')} are mutually exclusive (received ${g.epochs} and ${g.maxSteps})`,
      );
    }
    for (const [file, split] of [['valData', 'valSplit'], ['testData', 'testSplit']] as const) {
      if (g[file] !== undefined && g[split] !== undefined) {
        throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${name(file)} and ${name(split)} are mutually exclusive`);
      }
    }
    if (g.loraR === undefined || g.loraR === 0) {
      // Flags and config files hold only what the user wrote: any LoRA value without a rank is a mistake. A library
      // object may be a resolved options object validated again (--nproc workers, resume), which carries every
      // default: there a value equal to its default passes.
      const strict = source.kind !== 'object';
      for (const k of ['loraAlpha', 'loraDropout', 'loraTargets'] as const) {
        if (g[k] !== undefined && (strict || g[k] !== this.specOf(k)?.default)) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${name(k)} needs ${name('loraR')} >= 1 (LoRA is off)`);
      }
    }
    this.extraRules(given, name);
    const resolved: Record<string, string | number | boolean | undefined> = {};
    for (const key of this.keys) {
      const spec = this.specOf(key)!;
      const value = given[key] ?? spec.default;
      if (value !== undefined) resolved[key] = value as string | number | boolean; // absent optional options stay absent (JSON round-trips equal)
    }
    if (resolved.maxSteps === undefined) resolved.epochs ??= 1;
    if (g.valData !== undefined) resolved.valSplit = 0;
    if (g.testData !== undefined) resolved.testSplit = 0;
    const options = resolved as unknown as O;
    if (options.valSplit + options.testSplit >= 1) {
      throw invalidParameterError(
        `${name('valSplit')} + ${name('testSplit')}`,
        'a sum below 1 (some data must be left to train on)',
        options.valSplit + options.testSplit,
      );
    }
    return options;
  }

  /** Reads a `--config` file (JSON for .json, YAML otherwise) and checks its keys and values (no defaults applied). */
  loadConfigFile(path: string): Partial<O> {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new SftkitError('SFTKIT_IO', `Cannot read config file ${path}: ${(e as Error).message}`, { cause: e });
    }
    let parsed: unknown;
    try {
      parsed = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
    } catch (e) {
      throw new SftkitError('SFTKIT_BAD_ARGUMENT', `Cannot parse config file ${path}: ${(e as Error).message}`, { cause: e });
    }
    return this.checkPartial(parsed ?? {}, { kind: 'config', file: path });
  }

  private argvSpec(extraFlags: ParseArgsOptions): ParseArgsOptions {
    const spec: ParseArgsOptions = { config: { type: 'string' }, ...extraFlags };
    for (const key of this.keys) {
      const s = this.specOf(key)!;
      const flag = flagName(key);
      if (s.kind === 'boolean') {
        spec[flag] = { type: 'boolean' };
        spec[`no-${flag}`] = { type: 'boolean' };
      } else spec[flag] = { type: 'string' };
    }
    return spec;
  }

  /**
   * argv -> validated options. `--config FILE` supplies options under the flags (flags win; a flag for one of
   * epochs / max-steps also overrides the other one from the config). Unknown flags throw node's
   * ERR_PARSE_ARGS_UNKNOWN_OPTION naming the flag; bad values throw SFTKIT_BAD_ARGUMENT naming the flag and the value.
   * `extraFlags` are command flags outside the schema (e.g. dpo's --eval-only); they are accepted and ignored here.
   */
  parseArgs(argv: readonly string[], extraFlags: ParseArgsOptions = {}): O {
    const { values } = parseArgs({ args: [...argv], options: this.argvSpec(extraFlags), strict: true, allowPositionals: false });
    const raw = values as Record<string, string | boolean | undefined>;
    const fromFlags: Record<string, unknown> = {};
    for (const key of this.keys) {
      const flag = flagName(key);
      if (this.specOf(key)!.kind === 'boolean') {
        const yes = raw[flag] === true;
        const no = raw[`no-${flag}`] === true;
        if (yes && no) {
          throw new SftkitError('SFTKIT_BAD_ARGUMENT', `--${flag} and --no-${flag} contradict each other`);
        }
        if (yes || no) fromFlags[key] = yes;
      } else if (raw[flag] !== undefined) fromFlags[key] = raw[flag];
    }
    const flags = this.checkPartial(fromFlags, { kind: 'flag' }) as Partial<BaseTrainOptions>;
    const configPath = raw.config;
    const config = (typeof configPath === 'string' ? this.loadConfigFile(configPath) : {}) as Partial<BaseTrainOptions>;
    if (flags.epochs !== undefined) delete config.maxSteps;
    if (flags.maxSteps !== undefined) delete config.epochs;
    if (flags.valSplit !== undefined) delete config.valData;
    if (flags.valData !== undefined) delete config.valSplit;
    if (flags.testSplit !== undefined) delete config.testData;
    if (flags.testData !== undefined) delete config.testSplit;
    const merged: Record<string, unknown> = { ...config };
    for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
    return this.finalize(merged as Partial<O>, { kind: 'flag' });
  }
}

type ParseArgsOptions = Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>;

// ---------------------------------------------------------------------------------------------------------------
// `sftkit train` and `sftkit dpo`

export const trainOptions = new OptionParser<TrainOptions>(trainOptionSchema, 'train', (given, name) => {
  // A distillation setting without a teacher is a mistake (validated options, defaults applied, pass again).
  if (given.teacher === undefined) {
    for (const k of ['kdAlpha', 'kdTemperature'] as const) {
      if (given[k] !== undefined && given[k] !== trainOptionSchema[k].default) {
        throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${name(k)} needs --teacher DIR (logit-level distillation)`);
      }
    }
  }
});
export const dpoOptions = new OptionParser<DpoOptions>(dpoOptionSchema, 'dpo', (given, name) => {
  if (given.lossType === 'ipo' && given.labelSmoothing !== undefined && given.labelSmoothing > 0) {
    throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${name('labelSmoothing')} applies to the sigmoid loss only (--loss-type ipo has none)`);
  }
});

export const TRAIN_OPTION_KEYS = trainOptions.keys;
export const TRAIN_OPTION_TABLE = trainOptions.table;
export const formatTrainOptionsHelp = (): string => trainOptions.formatHelp();
export const validateTrainOptions = (input: unknown): TrainOptions => trainOptions.validate(input);
export const loadConfigFile = (path: string): Partial<TrainOptions> => trainOptions.loadConfigFile(path);
export const parseTrainArgs = (argv: readonly string[]): TrainOptions => trainOptions.parseArgs(argv);
export const validateDpoOptions = (input: unknown): DpoOptions => dpoOptions.validate(input);

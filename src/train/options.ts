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
import { SCHEDULE_NAMES, type ScheduleName } from './schedule.ts';

export type Dtype = 'float32' | 'bfloat16';

/** Validated options of a training run (every key has its default applied). */
export interface TrainOptions {
  model: string;
  data: string;
  out: string;
  /** 'auto': detected from the keys of the first record. */
  format: RecordFormat | 'auto';
  /** A built-in name (plain, alpaca, phi3, chatml, model), 'auto' (the format's default) or a template file path. */
  template: string;
  /** 'auto': the format's default (completion for instruction formats, assistant for chat). */
  mask: MaskMode | 'auto';
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
  packing: boolean;
  valSplit: number;
  testSplit: number;
  evalEvery: number;
  saveEvery: number;
  saveTotalLimit: number;
  seed: number;
  threads: number;
  resume: boolean;
  logEvery: number;
  addSpecialTokens: boolean;
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
  default: boolean;
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
// The train schema (the order here is the order of the help table)

export const trainOptionSchema: OptionSchema<TrainOptions> = {
  model: { kind: 'string', required: true, placeholder: 'DIR', description: 'Hugging Face model directory to fine-tune' },
  data: { kind: 'string', required: true, placeholder: 'FILE', description: 'training data: JSON or JSONL file, or http(s) URL' },
  out: { kind: 'string', required: true, placeholder: 'DIR', description: 'output directory: checkpoints, final model, metrics, curves' },
  format: { kind: 'enum', values: ['auto', ...RECORD_FORMATS], default: 'auto', description: 'record format (auto: detected from the keys)' },
  template: { kind: 'string', default: 'auto', placeholder: 'NAME|FILE', description: `prompt style: ${TEMPLATE_NAMES.join(', ')}, or a Jinja file (auto: by format)` },
  mask: { kind: 'enum', values: ['auto', ...MASK_MODES], default: 'auto', description: 'which tokens are trained (auto: by format)' },
  maxLength: { kind: 'integer', min: 1, defaultText: "the model's context length", description: 'truncate examples (and pack rows) to N tokens' },
  epochs: { kind: 'integer', min: 1, defaultText: '1 (unless --max-steps)', description: 'passes over the training data; exclusive with --max-steps' },
  maxSteps: { kind: 'integer', min: 1, description: 'stop after N optimizer steps; exclusive with --epochs' },
  batchSize: { kind: 'integer', min: 1, default: 8, description: 'examples (or packed rows) per micro-batch' },
  gradAccum: { kind: 'integer', min: 1, default: 1, description: 'micro-batches per optimizer step' },
  lr: { kind: 'number', min: 0, default: 5e-5, expected: 'a finite number > 0', validate: (v) => (v > 0 ? undefined : 'a finite number > 0'), description: 'peak learning rate (AdamW)' },
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
  packing: { kind: 'boolean', default: false, description: 'pack several examples per row (attention stays inside each)' },
  valSplit: { kind: 'number', min: 0, below: 1, default: 0.05, expected: 'a number in [0, 1)', description: 'fraction of --data held out for validation' },
  testSplit: { kind: 'number', min: 0, below: 1, default: 0.1, expected: 'a number in [0, 1)', description: 'fraction of --data held out for testing' },
  evalEvery: { kind: 'integer', min: 0, default: 0, description: 'validation loss every N optimizer steps (0: at each epoch end only)' },
  saveEvery: { kind: 'integer', min: 0, default: 0, description: 'checkpoint every N optimizer steps (0: at each epoch end only)' },
  saveTotalLimit: { kind: 'integer', min: 0, default: 2, description: 'keep the last K checkpoints (0: keep all)' },
  seed: { kind: 'integer', min: 0, max: 2 ** 32 - 1, default: 42, description: 'seed for split, shuffling, init and dropout' },
  threads: { kind: 'integer', min: 0, default: 0, description: 'CPU threads for the native engine (0: automatic)' },
  resume: { kind: 'boolean', default: false, description: 'continue from the latest complete checkpoint in --out' },
  logEvery: { kind: 'integer', min: 1, default: 10, description: 'log a train line every N optimizer steps' },
  addSpecialTokens: { kind: 'boolean', default: false, description: "add template tokens the tokenizer lacks (resizes the model's embeddings)" },
  valData: { kind: 'string', placeholder: 'FILE', description: 'separate validation file (instead of --val-split)' },
  testData: { kind: 'string', placeholder: 'FILE', description: 'separate test file (instead of --test-split)' },
  fieldMap: { kind: 'string', placeholder: 'F=KEY,...', description: 'read fields from other keys, e.g. instruction=question,output=answer' },
  nproc: { kind: 'integer', min: 1, max: 256, default: 1, description: 'data-parallel worker processes on this machine (c10d/Gloo); --batch-size is the global batch' },
  dtype: { kind: 'enum', values: ['float32', 'bfloat16'], default: 'float32', description: 'parameter and compute dtype' },
  groupByLength: { kind: 'boolean', default: false, description: 'batch examples of similar length together (less padding)' },
  dropLast: { kind: 'boolean', default: false, description: 'drop the last incomplete training batch of each epoch' },
  gradientCheckpointing: { kind: 'boolean', default: false, description: 'recompute each layer in backward instead of keeping its activations (less memory, ~1/3 more compute)' },
  device: { kind: 'enum', values: ['auto', 'cpu', 'cuda'], default: 'auto', description: 'where to train (auto: cuda when this libtorch has CUDA and a GPU is visible, else cpu)' },
  autocast: { kind: 'boolean', default: false, description: 'bf16 autocast of the forward passes over fp32 weights (meant for cuda; the loss stays fp32)' },
  loraR: { kind: 'integer', min: 0, max: 65536, default: 0, description: 'LoRA rank: train low-rank adapters on a frozen base and save them in the PEFT layout (0: full fine-tuning)' },
  loraAlpha: { kind: 'number', min: 0, default: 8, expected: 'a number > 0', validate: (v) => (v > 0 ? undefined : 'a number > 0'), description: 'LoRA scaling numerator: adapters scaled by alpha / r (PEFT default 8)' },
  loraDropout: { kind: 'number', min: 0, below: 1, default: 0, expected: 'a number in [0, 1)', description: 'dropout on the LoRA adapter inputs in training' },
  loraTargets: {
    kind: 'string',
    placeholder: 'NAME,...',
    defaultText: 'q_proj,v_proj (llama, qwen2, qwen3); c_attn (gpt2)',
    description: 'modules that get adapters (HF names, matched by suffix as PEFT does, e.g. q_proj,k_proj,v_proj,o_proj or c_attn,c_proj,c_fc), or all-linear',
  },
};

export const TRAIN_OPTION_KEYS = Object.keys(trainOptionSchema) as (keyof TrainOptions)[];

/** camelCase key -> kebab-case flag name without dashes (`maxLength` -> `max-length`). */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function kebabToCamel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

// ---------------------------------------------------------------------------------------------------------------
// The table the help is generated from

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

function specOf(key: string): OptionSpec | undefined {
  return Object.hasOwn(trainOptionSchema, key)
    ? (trainOptionSchema as Record<string, OptionSpec>)[key]
    : undefined;
}

/** One row per option: the documented defaults. */
export const TRAIN_OPTION_TABLE: readonly OptionRow[] = TRAIN_OPTION_KEYS.map((key) => {
  const spec = specOf(key)!;
  return { key, flag: `--${flagName(key)}`, type: typeText(spec), default: defaultValueText(spec), description: spec.description };
});

/** The options part of `sftkit train --help`, generated from TRAIN_OPTION_TABLE. */
export function formatTrainOptionsHelp(): string {
  const rows = TRAIN_OPTION_TABLE.map((r) => {
    const spec = specOf(r.key)!;
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

// ---------------------------------------------------------------------------------------------------------------
// Validation

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

function unknownKeyError(key: string, source: Source): SftkitError {
  const where = source.kind === 'config' ? ` in ${source.file}` : '';
  const camel = kebabToCamel(key);
  let hint = '';
  if (camel !== key && specOf(camel)) hint = ` (config keys are camelCase: did you mean "${camel}"?)`;
  else {
    const near = TRAIN_OPTION_KEYS.filter((k) => levenshtein(k.toLowerCase(), key.toLowerCase()) <= 2);
    if (near.length > 0) hint = ` (did you mean "${near[0]}"?)`;
  }
  return new SftkitError('SFTKIT_BAD_ARGUMENT', `Unknown train option "${key}"${where}${hint}`);
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

/** Checks keys and values of a partial options object (no defaults, no cross-option rules). */
function checkPartial(input: unknown, source: Source): Partial<TrainOptions> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    const where = source.kind === 'config' ? `the top level of ${source.file}` : 'train options';
    throw invalidParameterError(where, 'an object of options', input);
  }
  const out: Record<string, string | number | boolean> = {};
  for (const [key, raw] of Object.entries(input)) {
    const spec = specOf(key);
    if (!spec) throw unknownKeyError(key, source);
    if (raw === undefined) continue;
    out[key] = checkValue(key, spec, raw, source);
  }
  return out as Partial<TrainOptions>;
}

/**
 * Validates a complete options object (library API): rejects unknown keys, checks every value, applies defaults and
 * the rules between options (epochs vs maxSteps, split fractions, separate val/test files).
 */
export function validateTrainOptions(input: unknown): TrainOptions {
  return finalize(checkPartial(input, { kind: 'object' }), { kind: 'object' });
}

function finalize(given: Partial<TrainOptions>, source: Source): TrainOptions {
  // From argv the value may come from the flag or the config file: name both spellings.
  const name = (k: keyof TrainOptions) => (source.kind === 'flag' ? `--${flagName(k)}/${k}` : k);
  for (const key of TRAIN_OPTION_KEYS) {
    const spec = specOf(key)!;
    if (spec.required && given[key] === undefined) {
      throw new SftkitError('SFTKIT_BAD_ARGUMENT', `Missing required train option ${name(key)}`);
    }
  }
  if (given.epochs !== undefined && given.maxSteps !== undefined) {
    throw new SftkitError(
      'SFTKIT_BAD_ARGUMENT',
      `${name('epochs')} and ${name('maxSteps')} are mutually exclusive (received ${given.epochs} and ${given.maxSteps})`,
    );
  }
  if (given.loraR === undefined || given.loraR === 0) {
    for (const k of ['loraAlpha', 'loraDropout', 'loraTargets'] as const) {
      if (given[k] !== undefined) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${name(k)} needs ${name('loraR')} >= 1 (LoRA is off)`);
    }
  }
  for (const [file, split] of [['valData', 'valSplit'], ['testData', 'testSplit']] as const) {
    if (given[file] !== undefined && given[split] !== undefined) {
      throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${name(file)} and ${name(split)} are mutually exclusive`);
    }
  }
  const resolved: Record<string, string | number | boolean | undefined> = {};
  for (const key of TRAIN_OPTION_KEYS) {
    const spec = specOf(key)!;
    const value = given[key] ?? spec.default;
    if (value !== undefined) resolved[key] = value; // absent optional options stay absent (JSON round-trips equal)
  }
  if (resolved.maxSteps === undefined) resolved.epochs ??= 1;
  if (given.valData !== undefined) resolved.valSplit = 0;
  if (given.testData !== undefined) resolved.testSplit = 0;
  const options = resolved as unknown as TrainOptions;
  if (options.valSplit + options.testSplit >= 1) {
    throw invalidParameterError(
      `${name('valSplit')} + ${name('testSplit')}`,
      'a sum below 1 (some data must be left to train on)',
      options.valSplit + options.testSplit,
    );
  }
  return options;
}

// ---------------------------------------------------------------------------------------------------------------
// Config files and argv

/** Reads a `--config` file (JSON for .json, YAML otherwise) and checks its keys and values (no defaults applied). */
export function loadConfigFile(path: string): Partial<TrainOptions> {
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
  return checkPartial(parsed ?? {}, { kind: 'config', file: path });
}

type ParseArgsOptions = Record<string, { type: 'string' | 'boolean' }>;

function argvSpec(): ParseArgsOptions {
  const spec: ParseArgsOptions = { config: { type: 'string' } };
  for (const key of TRAIN_OPTION_KEYS) {
    const s = specOf(key)!;
    const flag = flagName(key);
    if (s.kind === 'boolean') {
      spec[flag] = { type: 'boolean' };
      spec[`no-${flag}`] = { type: 'boolean' };
    } else spec[flag] = { type: 'string' };
  }
  return spec;
}

/**
 * `sftkit train` argv -> validated options. `--config FILE` supplies options under the flags (flags win; a flag for
 * one of epochs / max-steps also overrides the other one from the config). Unknown flags throw node's
 * ERR_PARSE_ARGS_UNKNOWN_OPTION naming the flag; bad values throw SFTKIT_BAD_ARGUMENT naming the flag and the value.
 */
export function parseTrainArgs(argv: readonly string[]): TrainOptions {
  const { values } = parseArgs({ args: [...argv], options: argvSpec(), strict: true, allowPositionals: false });
  const raw = values as Record<string, string | boolean | undefined>;
  const fromFlags: Record<string, unknown> = {};
  for (const key of TRAIN_OPTION_KEYS) {
    const flag = flagName(key);
    if (specOf(key)!.kind === 'boolean') {
      const yes = raw[flag] === true;
      const no = raw[`no-${flag}`] === true;
      if (yes && no) {
        throw new SftkitError('SFTKIT_BAD_ARGUMENT', `--${flag} and --no-${flag} contradict each other`);
      }
      if (yes || no) fromFlags[key] = yes;
    } else if (raw[flag] !== undefined) fromFlags[key] = raw[flag];
  }
  const flags = checkPartial(fromFlags, { kind: 'flag' });
  const configPath = raw.config;
  const config: Partial<TrainOptions> = typeof configPath === 'string' ? loadConfigFile(configPath) : {};
  if (flags.epochs !== undefined) delete config.maxSteps;
  if (flags.maxSteps !== undefined) delete config.epochs;
  if (flags.valSplit !== undefined) delete config.valData;
  if (flags.valData !== undefined) delete config.valSplit;
  if (flags.testSplit !== undefined) delete config.testData;
  if (flags.testData !== undefined) delete config.testSplit;
  const merged: Partial<TrainOptions> = { ...config };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  return finalize(merged, { kind: 'flag' });
}

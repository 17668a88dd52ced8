// The option system: a command declares ONE strict zod object schema whose fields are built with `opt` (each carries
// its description and help placeholder); from it come the options' type (z.output), the node:util parseArgs flags,
// string -> number/enum/boolean coercion under one set of number rules, the `--help` table, the `--config` file keys
// (for commands that take one) and the validation of library option objects. Options are validated once, here.
//
// Naming: keys are camelCase (`maxLength`), flags their kebab-case form (`--max-length`); config keys are the camelCase
// names, and a kebab-case key in a config file is rejected with a hint. Precedence: defaults < config file < flags.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SftkitError, invalidParameterError } from '../errors.ts';

// ---------------------------------------------------------------------------------------------------------------
// Fields

type Kind = 'string' | 'integer' | 'number' | 'boolean' | 'enum' | 'list';

/** What the CLI needs of a field beyond its zod type. */
export interface OptionMeta {
  kind: Kind;
  /** One line for the help table. */
  description: string;
  /** The value in the help (`DIR`, `N`, `a|b`). */
  placeholder: string;
  /** What a bad value is told it should have been: `Expected <expected> for --flag but received ...`. */
  expected: string;
  /** Shown in the help instead of the default value (defaults that depend on other options or are decided later). */
  defaultText?: string;
}

/** The registry of the fields' CLI metadata (kept off zod's global registry). */
const optionMeta = z.registry<OptionMeta>();

interface Common {
  /** Overrides the generated expectation text (`a port in [0, 65535]`). */
  expected?: string;
  defaultText?: string;
}

function meta<T extends z.ZodType>(schema: T, m: OptionMeta): T {
  optionMeta.add(schema as z.ZodType, m);
  return schema;
}

function numberExpected(o: { min?: number; gt?: number; max?: number; lt?: number }): string {
  const lo = o.min !== undefined ? `[${o.min}` : o.gt !== undefined ? `(${o.gt}` : undefined;
  const hi = o.max !== undefined ? `${o.max}]` : o.lt !== undefined ? `${o.lt})` : undefined;
  if (lo !== undefined && hi !== undefined) return `a number in ${lo}, ${hi}`;
  if (o.min !== undefined) return `a finite number >= ${o.min}`;
  if (o.gt !== undefined) return `a finite number > ${o.gt}`;
  if (o.max !== undefined) return `a finite number <= ${o.max}`;
  if (o.lt !== undefined) return `a finite number < ${o.lt}`;
  return 'a finite number';
}

/** Field builders; chain `.optional()` or `.default(v)` onto them (neither: the option is required). */
export const opt = {
  string(description: string, o: Common & { placeholder?: string } = {}) {
    return meta(z.string().min(1), { kind: 'string', description, placeholder: o.placeholder ?? 'STR', expected: o.expected ?? 'a non-empty string', ...pick(o) });
  },
  /** A whole number (safe integer) in [min, max]. */
  int(description: string, o: Common & { min: number; max?: number; placeholder?: string }) {
    let s = z.number().int().min(o.min);
    if (o.max !== undefined) s = s.max(o.max);
    const expected = o.expected ?? (o.max === undefined ? `an integer >= ${o.min}` : `an integer in [${o.min}, ${o.max}]`);
    return meta(s, { kind: 'integer', description, placeholder: o.placeholder ?? 'N', expected, ...pick(o) });
  },
  /** A finite number; `min`/`max` are inclusive bounds, `gt`/`lt` exclusive ones; `refine` adds a rule of its own. */
  number(description: string, o: Common & { min?: number; gt?: number; max?: number; lt?: number; refine?: (v: number) => boolean; placeholder?: string } = {}) {
    let s = z.number();
    if (o.min !== undefined) s = s.min(o.min);
    if (o.gt !== undefined) s = s.gt(o.gt);
    if (o.max !== undefined) s = s.max(o.max);
    if (o.lt !== undefined) s = s.lt(o.lt);
    const refined = o.refine ? s.refine(o.refine) : s;
    return meta(refined as z.ZodNumber, { kind: 'number', description, placeholder: o.placeholder ?? 'X', expected: o.expected ?? numberExpected(o), ...pick(o) });
  },
  boolean(description: string, o: Pick<Common, 'defaultText'> = {}) {
    return meta(z.boolean(), { kind: 'boolean', description, placeholder: '', expected: 'true or false', ...pick(o) });
  },
  enum<const T extends string>(values: readonly T[], description: string, o: Common & { placeholder?: string } = {}) {
    return meta(z.enum(values), {
      kind: 'enum',
      description,
      placeholder: o.placeholder ?? values.join('|'),
      expected: o.expected ?? `one of ${values.map((v) => `'${v}'`).join(', ')}`,
      ...pick(o),
    });
  },
  /** A repeatable string flag (`--data A --data B`). */
  list(description: string, o: Common & { placeholder?: string } = {}) {
    return meta(z.array(z.string().min(1)), { kind: 'list', description, placeholder: o.placeholder ?? 'STR', expected: o.expected ?? 'a list of non-empty strings', ...pick(o) });
  },
};

function pick(o: Common): Pick<OptionMeta, 'defaultText'> {
  return o.defaultText !== undefined ? { defaultText: o.defaultText } : {};
}

/** A field as the layer sees it: its metadata, the inner zod type (no optional/default wrapper), default, required. */
interface Field {
  key: string;
  flag: string;
  meta: OptionMeta;
  inner: z.ZodType;
  default?: unknown;
  required: boolean;
}

function fieldOf(key: string, schema: z.ZodType): Field {
  let s = schema;
  let dflt: unknown;
  let required = true;
  for (;;) {
    const def = (s as unknown as { def: { type: string; innerType?: z.ZodType; defaultValue?: unknown } }).def;
    if (def.type === 'optional' && def.innerType) {
      required = false;
      s = def.innerType;
    } else if (def.type === 'default' && def.innerType) {
      required = false;
      dflt = def.defaultValue;
      s = def.innerType;
    } else break;
  }
  const m = optionMeta.get(s);
  if (!m) throw new Error(`option "${key}" is not built with opt.*`);
  return { key, flag: flagName(key), meta: m, inner: s, ...(dflt !== undefined ? { default: dflt } : {}), required };
}

/** camelCase key -> kebab-case flag name without dashes (`maxLength` -> `max-length`). */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function kebabToCamel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * The one number rule of flags: decimal or exponent notation (`3`, `0.5`, `1e-4`); no '', '0x10', 'Infinity'.
 * Integers are the numbers that are whole; ranges come from the field.
 */
export function parseNumberText(text: string): number | undefined {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text.trim())) return undefined;
  return Number(text);
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

// ---------------------------------------------------------------------------------------------------------------
// Commands

/** Where values came from: flags (and a config file under them), a config file alone, or a library object. */
export type Source = { kind: 'flag' } | { kind: 'config'; file: string } | { kind: 'object' };

export type Shape = Record<string, z.ZodType>;

/** What a command's rules between options get: the values given (no defaults), and how to name an option. */
export interface RuleContext<O> {
  given: Partial<O>;
  /** The option as the user wrote it: `--max-steps` from flags (`--max-steps/maxSteps` where a config file may hold it). */
  name: (key: keyof O & string) => string;
  source: Source;
  /** The field's default value. */
  defaultOf: (key: keyof O & string) => unknown;
}

export interface CommandOptionsSpec<S extends Shape, O> {
  /** The command in messages: `Unknown train option "x"`, `Missing required merge option --out`. */
  command: string;
  /** The options, in help order. */
  shape: S;
  /** Takes `--config FILE` (JSON or YAML, camelCase keys) under the flags; booleans then get `--no-` forms too. */
  config?: boolean;
  /** Pairs of options that exclude each other; from argv, a flag for one drops the other from the config file. */
  exclusive?: readonly (readonly [keyof O & string, keyof O & string])[];
  /** Rules between options, on the given values (before defaults). */
  rules?: (ctx: RuleContext<O>) => void;
  /** The last step after defaults: options decided from others, checks on resolved values. */
  finish?: (options: O, name: (key: keyof O & string) => string) => O;
}

export interface OptionRow {
  key: string;
  flag: string;
  type: string;
  default: string;
  description: string;
}

type ParseArgsOptions = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

/** One command's options: flags, config files, validation and help, all from its schema. */
export class CommandOptions<S extends Shape, O = z.output<z.ZodObject<S>>> {
  readonly schema: z.ZodObject<S, z.core.$strict>;
  readonly command: string;
  readonly keys: (keyof O & string)[];
  /** One row per option: the documented defaults. */
  readonly table: readonly OptionRow[];
  private readonly fields: Map<string, Field>;

  constructor(private readonly spec: CommandOptionsSpec<S, O>) {
    this.command = spec.command;
    this.schema = z.strictObject(spec.shape);
    this.fields = new Map(Object.entries(spec.shape).map(([k, s]) => [k, fieldOf(k, s)]));
    this.keys = [...this.fields.keys()] as (keyof O & string)[];
    this.table = [...this.fields.values()].map((f) => ({
      key: f.key,
      flag: `--${f.flag}`,
      type: f.meta.placeholder,
      default: f.meta.defaultText ?? (f.required ? '(required)' : f.default === undefined || f.default === false || (Array.isArray(f.default) && f.default.length === 0) ? '-' : String(f.default)),
      description: f.meta.description,
    }));
  }

  /** The field's default value (undefined: none). */
  defaultOf(key: string): unknown {
    return this.fields.get(key)?.default;
  }

  /** The options part of `sftkit <command> --help`, generated from the table. */
  formatHelp(): string {
    const rows = this.table.map((r) => {
      const f = this.fields.get(r.key)!;
      const left = f.meta.kind === 'boolean' ? (this.spec.config ? `${r.flag}, --no-${f.flag}` : r.flag) : `${r.flag} ${r.type}`;
      const note = f.required ? ' (required)' : r.default === '-' ? '' : ` (default: ${r.default})`;
      return { left, right: `${r.description}${note}` };
    });
    if (this.spec.config) rows.push({ left: '--config FILE', right: 'JSON or YAML file with the same options as camelCase keys (flags win)' });
    // Flags longer than the column get their description on the next line; descriptions may hold line breaks.
    const width = Math.min(30, Math.max(...rows.map((r) => r.left.length)));
    const pad = `  ${' '.repeat(width)}  `;
    return (
      rows
        .map((r) => {
          const right = r.right.split('\n').join(`\n${pad}`);
          return r.left.length > width ? `  ${r.left}\n${pad}${right}` : `  ${r.left.padEnd(width)}  ${right}`;
        })
        .join('\n') + '\n'
    );
  }

  private display(key: string, source: Source): string {
    if (source.kind === 'flag') return `--${flagName(key)}`;
    if (source.kind === 'config') return `${key} in ${source.file}`;
    return key;
  }

  private unknownKeyError(key: string, source: Source): SftkitError {
    const where = source.kind === 'config' ? ` in ${source.file}` : '';
    const camel = kebabToCamel(key);
    let hint = '';
    if (camel !== key && this.fields.has(camel)) hint = ` (config keys are camelCase: did you mean "${camel}"?)`;
    else {
      const near = this.keys.filter((k) => levenshtein(k.toLowerCase(), key.toLowerCase()) <= 2);
      if (near.length > 0) hint = ` (did you mean "${near[0]}"?)`;
    }
    return new SftkitError('SFTKIT_BAD_ARGUMENT', `Unknown ${this.command} option "${key}"${where}${hint}`);
  }

  /** Checks one value against its field; flag strings of number fields are converted first (the one number rule). */
  private checkValue(f: Field, raw: unknown, source: Source): unknown {
    let value = raw;
    if (source.kind === 'flag' && typeof raw === 'string' && (f.meta.kind === 'integer' || f.meta.kind === 'number')) value = parseNumberText(raw);
    const r = f.inner.safeParse(value);
    if (!r.success) throw invalidParameterError(this.display(f.key, source), f.meta.expected, raw);
    return r.data;
  }

  /** Checks keys and values of a partial options object (no defaults, no rules between options). */
  private checkPartial(input: unknown, source: Source): Partial<O> {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      const where = source.kind === 'config' ? `the top level of ${source.file}` : `${this.command} options`;
      throw invalidParameterError(where, 'an object of options', input);
    }
    const out: Record<string, unknown> = {};
    for (const [key, raw] of Object.entries(input)) {
      const f = this.fields.get(key);
      if (!f) throw this.unknownKeyError(key, source);
      if (raw === undefined) continue;
      out[key] = this.checkValue(f, raw, source);
    }
    return out as Partial<O>;
  }

  /**
   * Validates a complete options object (library API): rejects unknown keys, checks every value, applies the rules
   * between options and the defaults. Validated options validate again to themselves.
   */
  validate(input: unknown): O {
    return this.finalize(this.checkPartial(input, { kind: 'object' }), { kind: 'object' });
  }

  private finalize(given: Partial<O>, source: Source): O {
    // From argv the value may come from the flag or the config file: name both spellings.
    const name = (k: keyof O & string) =>
      source.kind === 'flag' ? (this.spec.config ? `--${flagName(k)}/${k}` : `--${flagName(k)}`) : k;
    const g = given as Record<string, unknown>;
    const missing = [...this.fields.values()].filter((f) => f.required && g[f.key] === undefined);
    if (missing.length === 1) {
      const f = missing[0]!;
      throw new SftkitError('SFTKIT_BAD_ARGUMENT', `Missing required ${this.command} option ${name(f.key as keyof O & string)}: ${f.meta.description.split('\n')[0]}`);
    }
    if (missing.length > 1) {
      throw new SftkitError('SFTKIT_BAD_ARGUMENT', `Missing required ${this.command} options ${missing.map((f) => name(f.key as keyof O & string)).join(', ')}`);
    }
    for (const [a, b] of this.spec.exclusive ?? []) {
      if (g[a] !== undefined && g[b] !== undefined) {
        throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${name(a)} and ${name(b)} are mutually exclusive (received ${String(g[a])} and ${String(g[b])})`);
      }
    }
    this.spec.rules?.({ given, name, source, defaultOf: (k) => this.defaultOf(k) });
    // Defaults from the schema; absent optional options stay absent (JSON round-trips equal).
    const parsed = this.schema.safeParse(given);
    if (!parsed.success) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `Invalid ${this.command} options: ${parsed.error.message}`);
    const options = parsed.data as O;
    return this.spec.finish ? this.spec.finish(options, name) : options;
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

  /** The node:util parseArgs declarations of the flags. */
  argvSpec(): ParseArgsOptions {
    const spec: ParseArgsOptions = this.spec.config ? { config: { type: 'string' } } : {};
    for (const f of this.fields.values()) {
      if (f.meta.kind === 'boolean') {
        spec[f.flag] = { type: 'boolean' };
        if (this.spec.config) spec[`no-${f.flag}`] = { type: 'boolean' };
      } else spec[f.flag] = f.meta.kind === 'list' ? { type: 'string', multiple: true } : { type: 'string' };
    }
    return spec;
  }

  /**
   * argv -> validated options. Unknown flags and positionals throw node's ERR_PARSE_ARGS_* errors naming them; bad
   * values throw SFTKIT_BAD_ARGUMENT naming the flag (or the config key and file) and what was expected.
   */
  parseArgs(argv: readonly string[]): O {
    const { values } = parseArgs({ args: [...argv], options: this.argvSpec(), strict: true, allowPositionals: false });
    const raw = values as Record<string, string | boolean | string[] | undefined>;
    const fromFlags: Record<string, unknown> = {};
    for (const f of this.fields.values()) {
      if (f.meta.kind === 'boolean') {
        const yes = raw[f.flag] === true;
        const no = raw[`no-${f.flag}`] === true;
        if (yes && no) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `--${f.flag} and --no-${f.flag} contradict each other`);
        if (yes || no) fromFlags[f.key] = yes;
      } else if (raw[f.flag] !== undefined) fromFlags[f.key] = raw[f.flag];
    }
    const flags = this.checkPartial(fromFlags, { kind: 'flag' }) as Record<string, unknown>;
    const configPath = raw.config;
    const config = (typeof configPath === 'string' ? this.loadConfigFile(configPath) : {}) as Record<string, unknown>;
    for (const [a, b] of this.spec.exclusive ?? []) {
      if (flags[a] !== undefined) delete config[b];
      if (flags[b] !== undefined) delete config[a];
    }
    return this.finalize({ ...config, ...flags } as Partial<O>, { kind: 'flag' });
  }
}

/** Declares a command's options: `const merge = commandOptions({ command: 'merge', shape: { ... } })`. */
export function commandOptions<S extends Shape>(spec: CommandOptionsSpec<S, z.output<z.ZodObject<S, z.core.$strict>>>): CommandOptions<S> {
  return new CommandOptions<S>(spec);
}

export type OptionsOf<C> = C extends CommandOptions<Shape, infer O> ? O : never;

// LoRA adapters in the layout of Python `peft`: the options of new adapters, PEFT's defaults per architecture, the
// resolution of target names to the model's modules (PEFT's rules: a list matches a module whose name equals an
// entry or ends with "." + entry; a string is a regular expression that must match the whole name; "all-linear"),
// and adapter_config.json (read strictly, naming the file and field; written so that peft loads it as is).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SftkitError, invalidParameterError } from '../errors.ts';
import type { ModelArch } from './model-config.ts';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** New LoRA adapters (`loadModel(dir, { lora })`). */
export interface LoraOptions {
  /** Rank (>= 1). */
  r: number;
  /** Scaling numerator: the adapter's output is multiplied by alpha / r (default 8, PEFT's LoraConfig default). */
  alpha?: number;
  /** Dropout on the adapter input in training steps (default 0, as PEFT). */
  dropout?: number;
  /**
   * Module names (HF, e.g. q_proj or c_attn; a module matches when its name equals an entry or ends with "." + entry),
   * "all-linear", or a regular expression string matched against whole module names. Default: PEFT's targets for
   * the architecture (q_proj,v_proj for llama/qwen2/qwen3/mistral/gemma2/gemma3_text/smollm3, qkv_proj for phi3, c_attn
   *   for gpt2).
   */
  targets?: readonly string[] | string;
  /** Seed of the A initialisation and of the dropout masks (default 0). */
  seed?: number;
  /** rsLoRA scaling alpha / sqrt(r) instead of alpha / r (default false). */
  rslora?: boolean;
}

/** What an adapter directory's adapter_config.json says (validated), plus the fields kept as read. */
export interface AdapterConfig {
  r: number;
  alpha: number;
  dropout: number;
  targets: string[] | string;
  rslora: boolean;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  baseModel: string | null;
}

/** One module's adapter as the native engine takes it. */
export interface LoraModuleSpec {
  module: string;
  r: number;
  scaling: number;
}

/** PEFT's default target modules (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING) for the architectures. */
export const DEFAULT_LORA_TARGETS: Readonly<Record<ModelArch, readonly string[]>> = {
  gpt2: ['c_attn'],
  llama: ['q_proj', 'v_proj'],
  qwen2: ['q_proj', 'v_proj'],
  qwen3: ['q_proj', 'v_proj'],
  mistral: ['q_proj', 'v_proj'],
  gemma2: ['q_proj', 'v_proj'],
  gemma3_text: ['q_proj', 'v_proj'],
  // PEFT 0.x has no entry for these two (it asks for target_modules): phi3's fused attention projection, and
  // smollm3 as the llama it derives from.
  phi3: ['qkv_proj'],
  smollm3: ['q_proj', 'v_proj'],
};

export const DEFAULT_LORA_ALPHA = 8;

function shortNames(modules: readonly string[]): string[] {
  return [...new Set(modules.map((m) => m.slice(m.lastIndexOf('.') + 1)))];
}

function fullMatch(pattern: string, name: string, what: string): boolean {
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${pattern})$`);
  } catch (e) {
    throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${what}: ${JSON.stringify(pattern)} is not a valid regular expression (${(e as Error).message})`);
  }
  return re.test(name);
}

/** PEFT's "all-linear" shorthand, as a string or as the only entry of a list. */
function isAllLinear(targets: readonly string[] | string): boolean {
  return targets === 'all-linear' || (Array.isArray(targets) && targets.length === 1 && targets[0] === 'all-linear');
}

/**
 * The modules (full HF names, in the model's order) that `targets` selects among `available` (the modules that can
 * take an adapter). A list entry that matches nothing, or a pattern that matches nothing, is an error listing the
 * valid names of this architecture. `what` names the option or file field in messages.
 */
export function resolveLoraTargets(targets: readonly string[] | string, available: readonly string[], arch: string, what = 'loraTargets'): string[] {
  const valid = `valid module names of this ${arch} model: ${shortNames(available).join(', ')} (or "all-linear")`;
  if (isAllLinear(targets)) return [...available];
  if (typeof targets === 'string') {
    const hit = available.filter((m) => fullMatch(targets, m, what));
    if (hit.length === 0) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${what}: the pattern ${JSON.stringify(targets)} matches no module (${valid})`);
    return hit;
  }
  if (targets.length === 0) throw invalidParameterError(what, 'at least one module name', targets);
  const matches = (m: string, t: string) => m === t || m.endsWith(`.${t}`);
  const unknown = targets.filter((t) => !available.some((m) => matches(m, t)));
  if (unknown.length > 0) {
    throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${what}: ${unknown.map((t) => JSON.stringify(t)).join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not a module that can take an adapter (${valid})`);
  }
  return available.filter((m) => targets.some((t) => matches(m, t)));
}

/**
 * The target_modules to write for `targets` resolved to `modules`: "all-linear" is written as the distinct module
 * names it selected (as peft does: its loader takes "all-linear" only as a plain string); anything else as given.
 */
export function savedTargets(targets: readonly string[] | string, modules: readonly string[]): string[] | string {
  return isAllLinear(targets) ? shortNames(modules) : typeof targets === 'string' ? targets : [...targets];
}

/** PEFT's get_pattern_key: the first pattern key that matches the end of the module name at a "." boundary. */
function patternValue(pattern: Record<string, number>, module: string, what: string): number | undefined {
  for (const [key, value] of Object.entries(pattern)) {
    if (fullMatch(`(.*\\.)?(?:${key})`, module, what)) return value;
  }
  return undefined;
}

/** Per-module rank and scaling (rank_pattern / alpha_pattern applied, rsLoRA or alpha / r). */
export function loraModuleSpecs(modules: readonly string[], c: Pick<AdapterConfig, 'r' | 'alpha' | 'rslora' | 'rankPattern' | 'alphaPattern'>): LoraModuleSpec[] {
  return modules.map((module) => {
    const r = patternValue(c.rankPattern, module, 'rank_pattern') ?? c.r;
    const alpha = patternValue(c.alphaPattern, module, 'alpha_pattern') ?? c.alpha;
    return { module, r, scaling: c.rslora ? alpha / Math.sqrt(r) : alpha / r };
  });
}

/** Validates new-adapter options and fills PEFT's defaults (targets by architecture). */
export function adapterConfigFromOptions(o: LoraOptions, arch: ModelArch, baseModel: string | null): AdapterConfig {
  if (typeof o !== 'object' || o === null) throw invalidParameterError('lora', 'an object { r, alpha?, dropout?, targets? }', o);
  if (!Number.isInteger(o.r) || o.r < 1) throw invalidParameterError('lora.r', 'an integer >= 1', o.r);
  const alpha = o.alpha ?? DEFAULT_LORA_ALPHA;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) throw invalidParameterError('lora.alpha', 'a number > 0', alpha);
  const dropout = o.dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw invalidParameterError('lora.dropout', 'a number in [0, 1)', dropout);
  const targets = o.targets ?? DEFAULT_LORA_TARGETS[arch];
  if (typeof targets !== 'string' && !(Array.isArray(targets) && targets.every((t) => typeof t === 'string' && t.length > 0))) {
    throw invalidParameterError('lora.targets', 'an array of module names or a regular expression string', targets);
  }
  if (o.rslora !== undefined && typeof o.rslora !== 'boolean') throw invalidParameterError('lora.rslora', 'true or false', o.rslora);
  return {
    r: o.r,
    alpha,
    dropout,
    targets: typeof targets === 'string' ? targets : [...targets],
    rslora: o.rslora ?? false,
    rankPattern: {},
    alphaPattern: {},
    baseModel,
  };
}

/** adapter_config.json as peft writes it (fields peft reads; inference_mode true as after save_pretrained). */
export function adapterConfigJson(c: AdapterConfig, arch: ModelArch): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: c.baseModel,
    r: c.r,
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    target_modules: c.targets,
    bias: 'none',
    // GPT-2's projections are transformers Conv1D modules (weights stored [in, out]).
    fan_in_fan_out: arch === 'gpt2',
    inference_mode: true,
    init_lora_weights: true,
    use_rslora: c.rslora,
    use_dora: false,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: c.rankPattern,
    alpha_pattern: c.alphaPattern,
    revision: null,
  };
}

/** Reads and validates DIR/adapter_config.json; what sftkit cannot apply exactly is an error naming the field. */
export function readAdapterConfig(dir: string): AdapterConfig {
  const file = join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(file)) throw new SftkitError('SFTKIT_IO', `${dir} is not a LoRA adapter directory: ${ADAPTER_CONFIG_FILE} is missing`);
  if (!existsSync(join(dir, ADAPTER_WEIGHTS_FILE))) {
    throw new SftkitError('SFTKIT_IO', `${dir}: ${ADAPTER_WEIGHTS_FILE} is missing (sftkit reads adapters in safetensors only)`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SftkitError('SFTKIT_IO', `${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SftkitError('SFTKIT_IO', `${file}: expected a JSON object`);
  const v = raw as Record<string, unknown>;
  const bad = (field: string, expected: string) =>
    new SftkitError('SFTKIT_BAD_ARGUMENT', `${file}: expected ${expected} for "${field}" but found ${JSON.stringify(v[field])}`);
  const unsupported = (field: string, why: string) =>
    new SftkitError('SFTKIT_UNSUPPORTED', `${file}: "${field}" = ${JSON.stringify(v[field])} is not supported (${why})`);
  if (v.peft_type !== 'LORA') throw unsupported('peft_type', 'sftkit applies LoRA adapters only');
  if (v.task_type !== undefined && v.task_type !== null && v.task_type !== 'CAUSAL_LM') throw unsupported('task_type', 'causal language models only');
  if (!Number.isInteger(v.r) || (v.r as number) < 1) throw bad('r', 'an integer >= 1');
  const alpha = v.lora_alpha ?? DEFAULT_LORA_ALPHA;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw bad('lora_alpha', 'a number');
  const dropout = v.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw bad('lora_dropout', 'a number in [0, 1)');
  const targets = v.target_modules;
  if (!(typeof targets === 'string' || (Array.isArray(targets) && targets.length > 0 && targets.every((t) => typeof t === 'string')))) {
    throw bad('target_modules', 'a list of module names or a regular expression string');
  }
  if (v.bias !== undefined && v.bias !== 'none') throw unsupported('bias', 'only "none" (trained biases are not part of sftkit adapters)');
  for (const [f, what] of [['use_dora', 'DoRA'], ['lora_bias', 'trained lora_B biases'], ['use_qalora', 'QALoRA']] as const) {
    if (v[f] !== undefined && v[f] !== null && v[f] !== false) throw unsupported(f, `${what} is not implemented`);
  }
  for (const f of ['modules_to_save', 'layers_to_transform', 'exclude_modules', 'target_parameters', 'trainable_token_indices', 'layer_replication', 'alora_invocation_tokens', 'use_bdlora']) {
    const x = v[f];
    if (x !== undefined && x !== null && !(Array.isArray(x) && x.length === 0)) throw unsupported(f, 'sftkit adapters hold LoRA matrices only');
  }
  if (v.use_rslora !== undefined && typeof v.use_rslora !== 'boolean') throw bad('use_rslora', 'true or false');
  const pattern = (f: string): Record<string, number> => {
    const x = v[f];
    if (x === undefined || x === null) return {};
    if (typeof x !== 'object' || Array.isArray(x) || !Object.values(x).every((n) => typeof n === 'number' && Number.isFinite(n) && n > 0)) {
      throw bad(f, 'an object of module pattern -> positive number');
    }
    return x as Record<string, number>;
  };
  const rankPattern = pattern('rank_pattern');
  if (!Object.values(rankPattern).every((n) => Number.isInteger(n))) throw bad('rank_pattern', 'integer ranks');
  const base = v.base_model_name_or_path;
  return {
    r: v.r as number,
    alpha,
    dropout,
    targets: typeof targets === 'string' ? targets : [...(targets as string[])],
    rslora: v.use_rslora === true,
    rankPattern,
    alphaPattern: pattern('alpha_pattern'),
    baseModel: typeof base === 'string' && base.length > 0 ? base : null,
  };
}

/** True when DIR holds an adapter (adapter_config.json) rather than a model (config.json). */
export function isAdapterDir(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG_FILE)) && !existsSync(join(dir, 'config.json'));
}

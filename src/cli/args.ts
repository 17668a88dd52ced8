// Small argument readers shared by the commands: numbers and enums from parseArgs strings, validated with
// invalidParameterError so a bad flag names itself.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { invalidParameterError } from '../errors.ts';
import { resolveModelDirs, type LoadModelOptions, type ModelDevice } from '../native/model.ts';

export function intFlag(name: string, v: string | undefined, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) throw invalidParameterError(`--${name}`, `an integer >= ${min}`, v);
  return n;
}

export function numFlag(name: string, v: string | undefined, min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw invalidParameterError(`--${name}`, `a number in [${min}, ${max}]`, v);
  return n;
}

export function enumFlag<T extends string>(name: string, v: string | undefined, values: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(values as readonly string[]).includes(v)) throw invalidParameterError(`--${name}`, `one of ${values.join(', ')}`, v);
  return v as T;
}

export function requiredFlag(name: string, v: string | undefined): string {
  if (v === undefined || v === '') throw invalidParameterError(`--${name}`, 'a value (required)', v);
  return v;
}

/** How a data file is read and rendered: the flags shared by eval and inspect (train has its own schema). */
export const dataSelectionFlags = {
  model: { type: 'string' },
  data: { type: 'string' },
  format: { type: 'string' },
  template: { type: 'string' },
  mask: { type: 'string' },
  'max-length': { type: 'string' },
  limit: { type: 'string' },
  'field-map': { type: 'string' },
  'add-special-tokens': { type: 'boolean', default: false },
} as const;

/** Sampling flags shared by generate, chat and eval --responses. */
export const samplingFlags = {
  'max-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  seed: { type: 'string' },
} as const;

export function samplingOptions(values: Record<string, unknown>): {
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
} {
  const s = (k: string) => values[k] as string | undefined;
  const maxNewTokens = intFlag('max-new-tokens', s('max-new-tokens'), 1);
  const temperature = numFlag('temperature', s('temperature'), 0);
  const topK = intFlag('top-k', s('top-k'), 0);
  const topP = numFlag('top-p', s('top-p'), 0, 1);
  const seed = intFlag('seed', s('seed'), 0);
  return {
    ...(maxNewTokens !== undefined ? { maxNewTokens } : {}),
    ...(temperature !== undefined ? { temperature } : {}),
    ...(topK !== undefined ? { topK } : {}),
    ...(topP !== undefined ? { topP } : {}),
    ...(seed !== undefined ? { seed } : {}),
  };
}

export const SAMPLING_HELP = `  --max-new-tokens N     most tokens to generate (default 256)
  --temperature X        0 (default) = greedy; > 0 samples
  --top-k N              sample among the N most likely tokens (0 = off)
  --top-p X              nucleus sampling threshold in (0, 1] (1 = off)
  --seed N               seed of the sampler (reproducible)
`;

/** How eval, generate and chat load their model: --adapter, --device, --threads. */
export const modelLoadFlags = {
  adapter: { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
} as const;

export const MODEL_LOAD_HELP = `  --adapter DIR          apply a LoRA adapter (PEFT directory: adapter_config.json + adapter_model.safetensors);
                         --model may also be an adapter directory alone (its base_model_name_or_path is loaded)
  --device D             auto (default: cuda when available), cpu or cuda
  --threads N            CPU threads (default: all cores)
`;

export function modelLoadOptions(values: Record<string, unknown>): LoadModelOptions {
  const threads = intFlag('threads', values.threads as string | undefined, 0);
  const device = enumFlag<ModelDevice>('device', values.device as string | undefined, ['auto', 'cpu', 'cuda']) ?? 'auto';
  const adapter = values.adapter as string | undefined;
  if (adapter === '') throw invalidParameterError('--adapter', 'an adapter directory', adapter);
  return { device, ...(threads ? { threads } : {}), ...(adapter !== undefined ? { adapter } : {}) };
}

/** Where the tokenizer of --model is: DIR itself, or for an adapter directory without one, its base model. */
export function tokenizerDir(modelDir: string): string {
  if (existsSync(join(modelDir, 'tokenizer.json'))) return modelDir;
  return resolveModelDirs(modelDir).base;
}

// What the model commands (eval, generate, chat) share beyond their options (those are in src/options).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolveModelDirs } from '../native/index.ts';

/** Where the tokenizer of --model is: DIR itself, or for an adapter directory without one, its base model. */
export function tokenizerDir(modelDir: string): string {
  if (existsSync(join(modelDir, 'tokenizer.json'))) return modelDir;
  return resolveModelDirs(modelDir).base;
}

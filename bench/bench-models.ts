// The random-weight models the benches share: built once by `sftkit bench build-model` into the cache, so every
// bench (bench/compare, bench/packed.ts) and both sides of a comparison load the same files.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { builtMarker } from '../src/bench/random-models.ts';

const root = resolve(import.meta.dirname, '..');
export const sftkitBin = join(root, 'bin', 'sftkit.js');
export const BENCH_MODEL_SHAPES = ['gpt2-124m', 'qwen2-0.5b', 'llama3.2-1b', 'gemma3-1b', 'qwen2.5-3b-bf16', 'qwen2.5-7b-bf16'] as const;
export type BenchModelShape = (typeof BENCH_MODEL_SHAPES)[number];

/** The cache root of scripts/libtorch.mjs (SFTKIT_CACHE_DIR, else $XDG_CACHE_HOME/sftkit or ~/.cache/sftkit). */
export function cacheRoot(): string {
  if (process.env.SFTKIT_CACHE_DIR) return resolve(process.env.SFTKIT_CACHE_DIR);
  return join(process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'sftkit');
}

/**
 * The directory of the random `shape` model, built on first use (the GPT-2 one gets the GPT-2 tokenizer too): e.g.
 * ~/.cache/sftkit/bench-models/qwen2.5-7b-bf16-v1 (BF16 shards + index: the index is written last, so a build cut
 * short is redone).
 */
export function benchModel(shape: BenchModelShape, log: (m: string) => void = (m) => process.stderr.write(`${m}\n`)): string {
  const dir = join(cacheRoot(), 'bench-models', `${shape}-v1`);
  if (!existsSync(join(dir, builtMarker(shape)))) {
    log(`building the random ${shape} model in ${dir} (once)`);
    rmSync(dir, { recursive: true, force: true });
    const r = spawnSync(process.execPath, [sftkitBin, 'bench', 'build-model', '--shape', shape, '--out', dir], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`could not build ${shape}`);
  }
  if (shape === 'gpt2-124m') {
    // The GPT-2 tokenizer, for the SFT workload (bench train ignores it).
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(root, 'test', 'fixtures', 'tokenizers', 'gpt2', f), join(dir, f));
  }
  return dir;
}

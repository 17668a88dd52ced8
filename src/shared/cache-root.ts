// The one cache root every sftkit cache lives under (URL data, tokenized datasets; libtorch downloads at install
// time): $SFTKIT_CACHE_DIR, else $XDG_CACHE_HOME/sftkit, else ~/.cache/sftkit. scripts/libtorch.mjs (install time,
// plain .mjs that cannot import src) keeps a copy of the same rule; test/unit/shared/cache-root.test.ts checks both agree.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SFTKIT_CACHE_DIR) return resolve(env.SFTKIT_CACHE_DIR);
  const base = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(base, 'sftkit');
}

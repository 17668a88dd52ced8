// Resolves `--data`: a local path as is, an http(s) URL downloaded once into the data cache and reused.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { Readable } from 'node:stream';
import { SftkitError } from '../errors.ts';
import { cacheRoot, writeStreamAtomic } from '../shared/index.ts';

export { cacheRoot };

export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

export interface ResolvedSource {
  /** Local file to read. */
  path: string;
  /** What error messages call it: the URL or the path as given. */
  displayName: string;
  /** True when this call downloaded the file (false: local path or cache hit). */
  downloaded: boolean;
}

/**
 * The cache file a URL is stored in: `<cacheDir>/<sha256(url)[0:16]>-<last path segment>` (at most 80 characters,
 * keeping the extension, which tells the readers a `.parquet`, `.csv` or `.tsv` file).
 */
export function cachedPathFor(url: string, cacheDir: string): string {
  const digest = createHash('sha256').update(url).digest('hex').slice(0, 16);
  let name = 'data';
  try {
    name = basename(new URL(url).pathname) || 'data';
  } catch {
    // keep the default name
  }
  name = name.replace(/[^A-Za-z0-9._-]/g, '_');
  if (name.length > 80) {
    const ext = extname(name).slice(0, 16);
    name = name.slice(0, 80 - ext.length) + ext;
  }
  return join(cacheDir, `${digest}-${name}`);
}

/**
 * The content hash of a dataset's files (hex sha256): of the bytes for one file, of the files' names and hashes in
 * order for several (the shards of a split).
 */
export async function hashDataFiles(files: readonly string[]): Promise<string> {
  const one = async (path: string): Promise<string> => {
    const h = createHash('sha256');
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
    return h.digest('hex');
  };
  if (files.length === 1) return one(files[0] as string);
  const h = createHash('sha256');
  for (const f of files) h.update(`${basename(f)}\0${await one(f)}\n`);
  return h.digest('hex');
}

/**
 * A local path is returned as is; a URL is fetched once into `cacheDir` (default `<cacheRoot>/data`) and the cached
 * copy is reused afterwards. The download is written atomically (src/shared/atomic-write.ts), so an interrupted
 * download never leaves a truncated cache entry.
 */
export async function resolveDataSource(
  source: string,
  options: { cacheDir?: string; fetchImpl?: typeof fetch } = {},
): Promise<ResolvedSource> {
  if (!isUrl(source)) return { path: source, displayName: source, downloaded: false };
  const dir = options.cacheDir ?? join(cacheRoot(), 'data');
  const target = cachedPathFor(source, dir);
  try {
    if ((await stat(target)).isFile()) return { path: target, displayName: source, downloaded: false };
  } catch {
    // not cached yet
  }
  await mkdir(dir, { recursive: true });
  const doFetch = options.fetchImpl ?? fetch;
  let response: Response;
  try {
    response = await doFetch(source, { redirect: 'follow' });
  } catch (err) {
    throw new SftkitError('SFTKIT_IO', `${source}: download failed (${(err as Error).message})`, { cause: err });
  }
  if (!response.ok || response.body === null) {
    throw new SftkitError('SFTKIT_IO', `${source}: download failed with HTTP ${response.status}`);
  }
  try {
    await writeStreamAtomic(target, Readable.fromWeb(response.body as import('node:stream/web').ReadableStream));
  } catch (err) {
    throw new SftkitError('SFTKIT_IO', `${source}: download failed (${(err as Error).message})`, { cause: err });
  }
  return { path: target, displayName: source, downloaded: true };
}

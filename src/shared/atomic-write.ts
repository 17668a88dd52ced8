// The one atomic file write of sftkit: every file written whole goes to a temp file in the same directory, is
// fsynced, renamed over the target and the directory fsynced; on failure the temp file is removed and the target is
// untouched (absent, or its previous content). A crash leaves the old file or the new one, never a partial one.
// Three forms: async, sync (for the synchronous callers) and streaming (a download, JSONL written line by line).
// Checkpoint directories are atomic one level up (src/training/checkpoint.ts renames a whole temp directory).
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

export type FileData = string | Uint8Array;
/** What the streaming form writes: chunks (strings are UTF-8), from an (async) iterable or a Readable. */
export type FileChunks = Iterable<FileData> | AsyncIterable<FileData>;

/** A temp name beside `path` (same directory, hence same file system): `.<name>.tmp-<pid>-<random>`. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Errors of a directory fsync that only say the platform cannot do it (Windows, some file systems). */
function unsupportedDirSync(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EISDIR' || code === 'EPERM' || code === 'EINVAL' || code === 'EBADF' || code === 'ENOTSUP';
}

/**
 * fsyncs a file or a directory (so that a rename inside it is durable); a no-op where directories cannot be opened
 * or fsynced (Windows).
 */
export async function fsyncPath(path: string): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'r');
    await fh.sync();
  } catch (e) {
    if (!unsupportedDirSync(e)) throw e;
  } finally {
    await fh?.close();
  }
}

export function fsyncPathSync(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } catch (e) {
    if (!unsupportedDirSync(e)) throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

async function commit(tmp: string, path: string, fill: () => Promise<void>): Promise<void> {
  try {
    await fill();
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  await fsyncPath(dirname(path));
}

/** Writes `data` to `path` atomically (temp file, write, fsync, rename, directory fsync). */
export async function writeFileAtomic(path: string, data: FileData): Promise<void> {
  const tmp = tempPathFor(path);
  await commit(tmp, path, async () => {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
}

/** writeFileAtomic for synchronous callers. */
export function writeFileAtomicSync(path: string, data: FileData): void {
  const tmp = tempPathFor(path);
  try {
    const fd = openSync(tmp, 'w');
    try {
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let at = 0;
      while (at < buf.length) at += writeSync(fd, buf, at, buf.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncPathSync(dirname(path));
}

/**
 * Streams `chunks` into `path` atomically: nothing appears at `path` until every chunk is written and fsynced; an
 * error from the source (a broken download) removes the temp file and leaves `path` as it was.
 */
export async function writeStreamAtomic(path: string, chunks: FileChunks): Promise<void> {
  const tmp = tempPathFor(path);
  await commit(tmp, path, async () => {
    // The temp file is opened (and closed) here, not by a write stream: a source failing before a lazily opened stream
    // got its file would let the file appear after the cleanup removed it. Each chunk is written whole at the current
    // position (FileHandle.writeFile loops until every byte is written).
    const fh = await open(tmp, 'w');
    try {
      for await (const chunk of chunks) await fh.writeFile(chunk);
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
}

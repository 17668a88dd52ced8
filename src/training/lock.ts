// A run directory has one owner: OUT/sftkit.lock, created atomically (open 'wx') by the process that runs the training
// (rank 0, or the --nproc launcher for its workers), holding its pid, host and start time. A second run on the same
// OUT is refused with a message naming the holder; a lock left by a process that is gone (same host, dead pid) is
// taken over with a note. Released on every way out: normal return, errors, the graceful stop on SIGINT/SIGTERM (a
// return as well) and process.exit (the second Ctrl-C), through an 'exit' listener.
import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SftkitError } from '../errors.ts';

export const LOCK_FILE = 'sftkit.lock';
/** The token of the lock a launcher (--nproc N) holds on behalf of its workers: they use it instead of taking one. */
export const LOCK_ENV = 'SFTKIT_RUN_LOCK';

export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  startedAt: string;
  /** The command that holds it (train, dpo). */
  command: string | null;
  /** Tells this holder's lock from another one of the same pid (a launcher passes it to its workers). */
  token: string;
}

export interface RunLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** False when the lock belongs to the launcher of this worker: release() then leaves it alone. */
  readonly owned: boolean;
  /** Removes the lock file if it is still this holder's; idempotent, synchronous. */
  release(): void;
}

export interface AcquireOptions {
  command: string;
  /** Where the stale-lock note goes (default: a line on process.stderr). */
  log?: (message: string) => void;
  /** Liveness of a pid on this host (default: signal 0). */
  alive?: (pid: number) => boolean;
  host?: string;
  pid?: number;
  /** A launcher's lock token (default: process.env.SFTKIT_RUN_LOCK): a lock with this token is used, not refused. */
  inheritedToken?: string;
}

/** Whether a process with this pid exists (EPERM: it exists, owned by someone else). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseHolder(text: string): LockHolder | null {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v !== 'object' || v === null || !Number.isInteger(v.pid) || typeof v.host !== 'string' || typeof v.startedAt !== 'string') return null;
    return { pid: v.pid as number, host: v.host, startedAt: v.startedAt, command: typeof v.command === 'string' ? v.command : null, token: typeof v.token === 'string' ? v.token : '' };
  } catch {
    return null;
  }
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** The holder of DIR's lock, or null (no lock, or one that cannot be read). */
export function readRunLock(dir: string): LockHolder | null {
  try {
    const text = readText(join(dir, LOCK_FILE));
    return text === null ? null : parseHolder(text);
  } catch {
    return null;
  }
}

/** "pid 123 on host box since 2026-12-06T13:30:00.000Z (sftkit train)" */
export function describeHolder(h: LockHolder): string {
  return `pid ${h.pid} on host ${h.host} since ${h.startedAt}${h.command ? ` (sftkit ${h.command})` : ''}`;
}

function createExclusive(path: string, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new SftkitError('SFTKIT_IO', `cannot create the run lock ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Moves a stale lock (exactly `staleText`) out of the way. Another process may be taking it over at the same time:
 * whoever's rename moved something else (a fresh lock) puts it back.
 */
function removeStale(path: string, staleText: string): void {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const moved = readText(aside);
  if (moved !== staleText) {
    try {
      linkSync(aside, path);
    } catch {
      // a third run made a lock meanwhile: it owns OUT, the one moved aside lost it (rarer than rare)
    }
  }
  unlinkSync(aside);
}

/**
 * Takes DIR's run lock (DIR must exist). Refused (SFTKIT_BAD_ARGUMENT) while another live process holds it, or one
 * on another host (its liveness cannot be checked here); a dead holder on this host is taken over with a note.
 */
export async function acquireRunLock(dir: string, o: AcquireOptions): Promise<RunLock> {
  const path = join(dir, LOCK_FILE);
  const alive = o.alive ?? pidAlive;
  const host = o.host ?? hostname();
  const pid = o.pid ?? process.pid;
  const inherited = o.inheritedToken ?? process.env[LOCK_ENV];
  const log = o.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const holder: LockHolder = { pid, host, startedAt: new Date().toISOString(), command: o.command, token: randomBytes(8).toString('hex') };
  const text = `${JSON.stringify(holder, null, 2)}\n`;
  let unreadable = 0;
  for (let attempt = 0; attempt < 50; attempt++) {
    if (createExclusive(path, text)) return ownedLock(path, holder, text);
    const existing = readText(path);
    if (existing === null) continue; // released meanwhile
    const other = parseHolder(existing);
    if (!other) {
      // Created but not written yet by another run (open 'wx', then write): look again shortly.
      if (++unreadable < 20) {
        await sleep(25);
        continue;
      }
      throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${dir} is locked by ${path}, which cannot be read; if no run uses this directory, remove ${path}`);
    }
    if (inherited && other.token === inherited) return { path, holder: other, owned: false, release: () => {} };
    if (other.host === host && !alive(other.pid)) {
      removeStale(path, existing);
      log(`sftkit ${o.command}: taking over the lock of ${dir} from ${describeHolder(other)}, which is no longer running`);
      continue;
    }
    const where = other.host === host ? '' : ` (another host: if that run is gone, remove ${path})`;
    throw new SftkitError(
      'SFTKIT_BAD_ARGUMENT',
      `${dir} is in use by another run: ${describeHolder(other)}${where}; wait for it to finish, stop it, or choose another --out`,
    );
  }
  throw new SftkitError('SFTKIT_IO', `cannot take the run lock ${path}: it keeps changing`);
}

function ownedLock(path: string, holder: LockHolder, text: string): RunLock {
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    try {
      if (readText(path) === text) unlinkSync(path);
    } catch {
      // gone already, or the directory was removed
    }
  };
  // process.exit() (a second Ctrl-C, a CLI exiting) skips finally blocks: 'exit' listeners still run.
  process.on('exit', release);
  return { path, holder, owned: true, release };
}

// Atomic checkpoint directories (write into OUT/.tmp-<name>-<pid>, fsync, rename), their trainer state, listing,
// pruning and discovery of the latest complete one, and the SIGINT/SIGTERM handling that turns a first signal into a
// graceful stop request. A checkpoint is complete when its trainer_state.json (written last) exists and validates.
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SftkitError, dataError, invalidParameterError } from '../errors.ts';
import { fsyncPath, writeFileAtomic } from '../shared/index.ts';
import type { BaseTrainOptions } from './options.ts';

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const CHECKPOINT_PREFIX = 'checkpoint-';
const STATE_VERSION = 1;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Where a run stands, enough to resume it exactly. Written as OUT/checkpoint-<step>/trainer_state.json. */
export interface TrainerState {
  /** Optimizer steps done. */
  step: number;
  /** 0-based epoch in progress, and how many micro-batches of it were consumed. */
  epoch: number;
  batchInEpoch: number;
  tokensSeen: number;
  /** RNG state of the run (opaque to this module: whatever the trainer needs to restore it). */
  rngState?: JsonValue;
  bestValLoss?: number;
  /** Optimizer moments file, relative to the checkpoint directory. */
  optimizerFile: string;
  /** Hash of the data, tokenizer, template and options that produced the batches (resume refuses a mismatch). */
  dataFingerprint: string;
  options: BaseTrainOptions;
}

export interface CheckpointInfo {
  name: string;
  path: string;
  step: number;
}

// ---------------------------------------------------------------------------------------------------------------
// fsync helpers (fsyncPath: src/shared/atomic-write.ts)

/** fsyncs every file under `dir` and every directory (deepest first), then `dir` itself. */
async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(p);
    else if (entry.isFile()) await fsyncPath(p);
  }
  await fsyncPath(dir);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Atomic directories

function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw invalidParameterError('name', 'a directory name of letters, digits, ".", "_" or "-" not starting with "."', name);
  }
}

/**
 * Creates OUT/<name> atomically: `writeInto` fills OUT/.tmp-<name>-<pid>, every file and directory is fsynced, the
 * temp dir is renamed to OUT/<name> (an existing OUT/<name> is first moved aside to OUT/.old-<name>-<pid> and removed
 * after the rename), and OUT is fsynced. If `writeInto` throws, the temp dir is removed and nothing else changes.
 * A crash leaves at most a dot-prefixed temp dir, which listCheckpoints never reports (a crash between the two
 * renames of a replacement leaves the previous copy in .old-<name>-<pid> and no OUT/<name>: an older checkpoint is
 * then the latest; node has no atomic directory exchange).
 */
export async function writeCheckpointDir(
  outDir: string,
  name: string,
  writeInto: (tmpDir: string) => Promise<void>,
): Promise<string> {
  checkName(name);
  await mkdir(outDir, { recursive: true });
  const tmp = join(outDir, `.tmp-${name}-${process.pid}`);
  const final = join(outDir, name);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  try {
    await writeInto(tmp);
    await fsyncTree(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  let old: string | undefined;
  if (await exists(final)) {
    old = join(outDir, `.old-${name}-${process.pid}`);
    await rm(old, { recursive: true, force: true });
    await rename(final, old);
  }
  await rename(tmp, final);
  await fsyncPath(outDir);
  if (old) await rm(old, { recursive: true, force: true });
  return final;
}

/** Removes the `.tmp-*`, `.old-*` and `.del-*` directories that crashed runs left in OUT. Returns their names. */
export async function removeStaleTempDirs(outDir: string): Promise<string[]> {
  if (!(await exists(outDir))) return [];
  const removed: string[] = [];
  for (const entry of await readdir(outDir, { withFileTypes: true })) {
    if (entry.isDirectory() && /^\.(tmp|old|del)-/.test(entry.name)) {
      await rm(join(outDir, entry.name), { recursive: true, force: true });
      removed.push(entry.name);
    }
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------------------------
// Trainer state

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** Checks a parsed trainer_state.json; errors name the file and the field. */
export function validateTrainerState(value: unknown, file = TRAINER_STATE_FILE): TrainerState {
  const bad = (field: string, message: string) => dataError({ file, field }, message);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw dataError({ file }, 'not a JSON object');
  const v = value as Record<string, unknown>;
  if (v.version !== STATE_VERSION) throw bad('version', `expected ${STATE_VERSION}, found ${JSON.stringify(v.version)}`);
  for (const f of ['step', 'epoch', 'batchInEpoch', 'tokensSeen'] as const) {
    if (!isNonNegInt(v[f])) throw bad(f, `expected an integer >= 0, found ${JSON.stringify(v[f])}`);
  }
  for (const f of ['optimizerFile', 'dataFingerprint'] as const) {
    if (typeof v[f] !== 'string' || v[f] === '') throw bad(f, `expected a non-empty string, found ${JSON.stringify(v[f])}`);
  }
  if (v.bestValLoss !== undefined && (typeof v.bestValLoss !== 'number' || !Number.isFinite(v.bestValLoss))) {
    throw bad('bestValLoss', `expected a finite number, found ${JSON.stringify(v.bestValLoss)}`);
  }
  if (typeof v.options !== 'object' || v.options === null || Array.isArray(v.options)) {
    throw bad('options', 'expected the train options object');
  }
  const state: TrainerState = {
    step: v.step as number,
    epoch: v.epoch as number,
    batchInEpoch: v.batchInEpoch as number,
    tokensSeen: v.tokensSeen as number,
    optimizerFile: v.optimizerFile as string,
    dataFingerprint: v.dataFingerprint as string,
    options: v.options as BaseTrainOptions,
  };
  if (v.rngState !== undefined) state.rngState = v.rngState as JsonValue;
  if (v.bestValLoss !== undefined) state.bestValLoss = v.bestValLoss as number;
  return state;
}

/** Writes `dir/trainer_state.json` atomically (writeFileAtomic). Write it last: its presence marks a complete checkpoint. */
export async function writeTrainerState(dir: string, state: TrainerState): Promise<void> {
  const checked = validateTrainerState({ version: STATE_VERSION, ...state }, join(dir, TRAINER_STATE_FILE));
  const file = join(dir, TRAINER_STATE_FILE);
  await writeFileAtomic(file, JSON.stringify({ version: STATE_VERSION, ...checked }, null, 2) + '\n');
}

export async function readTrainerState(dir: string): Promise<TrainerState> {
  const file = join(dir, TRAINER_STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new SftkitError('SFTKIT_IO', `Cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw dataError({ file }, 'not valid JSON');
  }
  return validateTrainerState(parsed, file);
}

/**
 * Writes OUT/checkpoint-<state.step> atomically: `writeInto` writes the model, tokenizer and optimizer files, then
 * trainer_state.json is written last, then the directory is renamed into place.
 */
export async function saveCheckpoint(
  outDir: string,
  state: TrainerState,
  writeInto: (tmpDir: string) => Promise<void>,
): Promise<CheckpointInfo> {
  const name = `${CHECKPOINT_PREFIX}${state.step}`;
  const path = await writeCheckpointDir(outDir, name, async (tmp) => {
    await writeInto(tmp);
    await writeTrainerState(tmp, state);
  });
  return { name, path, step: state.step };
}

// ---------------------------------------------------------------------------------------------------------------
// Listing and pruning

/**
 * The complete checkpoints in OUT, sorted by step (ascending): directories named checkpoint-<step> whose
 * trainer_state.json exists, validates and carries the same step. Temp dirs and incomplete ones are skipped.
 */
export async function listCheckpoints(outDir: string): Promise<CheckpointInfo[]> {
  let entries;
  try {
    entries = await readdir(outDir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const found: CheckpointInfo[] = [];
  for (const entry of entries) {
    const m = /^checkpoint-(\d+)$/.exec(entry.name);
    if (!entry.isDirectory() || !m) continue;
    const path = join(outDir, entry.name);
    const step = Number(m[1]);
    try {
      const state = await readTrainerState(path);
      if (state.step !== step) continue;
    } catch {
      continue;
    }
    found.push({ name: entry.name, path, step });
  }
  return found.sort((a, b) => a.step - b.step);
}

export async function latestCheckpoint(outDir: string): Promise<CheckpointInfo | undefined> {
  const all = await listCheckpoints(outDir);
  return all[all.length - 1];
}

/**
 * Keeps the last `keepLast` complete checkpoints (0 keeps all) plus the names in `keep` (e.g. the best one) and
 * removes the others; each is first renamed to a dot-dir so a crash mid-removal never leaves a half-deleted
 * checkpoint that looks complete. Returns the removed names.
 */
export async function pruneCheckpoints(outDir: string, keepLast: number, keep: readonly string[] = []): Promise<string[]> {
  if (!Number.isInteger(keepLast) || keepLast < 0) throw invalidParameterError('keepLast', 'an integer >= 0', keepLast);
  if (keepLast === 0) return [];
  const all = await listCheckpoints(outDir);
  const doomed = all.slice(0, Math.max(0, all.length - keepLast)).filter((c) => !keep.includes(c.name));
  for (const c of doomed) {
    const del = join(outDir, `.del-${c.name}-${process.pid}`);
    await rename(c.path, del);
    await rm(del, { recursive: true, force: true });
  }
  if (doomed.length > 0) await fsyncPath(outDir);
  return doomed.map((c) => c.name);
}

// ---------------------------------------------------------------------------------------------------------------
// Signals

export type StopSignal = 'SIGINT' | 'SIGTERM';

export interface StopSignals {
  /** True once a first SIGINT/SIGTERM arrived: the loop saves a checkpoint and returns. */
  readonly stopRequested: boolean;
  /** The signal that asked to stop, if any. */
  readonly signal: StopSignal | undefined;
  /** Removes the handlers (idempotent). */
  uninstall(): void;
}

export interface StopSignalsOptions {
  /** Where the signals come from (tests pass an EventEmitter). Default: process. */
  source?: NodeJS.EventEmitter;
  /** Called on the second signal. Default: process.exit(130 for SIGINT, 143 for SIGTERM). */
  exit?: (code: number) => void;
}

/**
 * The first SIGINT/SIGTERM becomes a graceful stop request (`onStop` is called once and `stopRequested` turns true;
 * the loop polls it); a second one exits at once. While installed, the default "terminate" action is replaced.
 */
export function installStopSignals(onStop: (signal: StopSignal) => void = () => {}, options: StopSignalsOptions = {}): StopSignals {
  const source = options.source ?? process;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let signal: StopSignal | undefined;
  let installed = true;
  const handlers = new Map<StopSignal, () => void>();
  for (const name of ['SIGINT', 'SIGTERM'] as const) {
    const handler = (): void => {
      if (signal === undefined) {
        signal = name;
        onStop(name);
      } else {
        exit(name === 'SIGINT' ? 130 : 143);
      }
    };
    handlers.set(name, handler);
    source.on(name, handler);
  }
  return {
    get stopRequested() {
      return signal !== undefined;
    },
    get signal() {
      return signal;
    },
    uninstall() {
      if (!installed) return;
      installed = false;
      for (const [name, handler] of handlers) source.removeListener(name, handler);
    },
  };
}

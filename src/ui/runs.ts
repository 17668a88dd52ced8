// The run directories under --runs (every directory holding metrics.jsonl) and what the dashboard says about each:
// status from sftkit_run.json (a 'running' run whose process is gone is reported as failed and stale), the holder of
// its lock (sftkit.lock: pid, host, since), step, tokens seen, throughput and losses from its metrics, followed
// incrementally (MetricsLog).
import { readFileSync } from 'node:fs';
import { readdir, realpath } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join, relative, sep } from 'node:path';
import type { MetricRecord } from '../report/index.ts';
import { pidAlive, readRunLock, RUN_FILE, type LockHolder } from '../training/index.ts';
import { isInside } from './access.ts';
import { MetricsLog, type LineProblem } from './metrics-log.ts';

export const METRICS_FILE = 'metrics.jsonl';

export type RunStatus = 'running' | 'finished' | 'failed' | 'interrupted' | 'unknown';

export interface RunSummary {
  /** Path of the run directory relative to --runs, with `/` separators (the root itself: its base name). */
  name: string;
  status: RunStatus;
  /** Optimizer steps done (the largest step in the metrics). */
  steps: number;
  bestValLoss: number | null;
  /** Training tokens seen. */
  tokens: number;
  tokensPerSec: number | null;
  lastTrainLoss: number | null;
  lastValLoss: number | null;
  epoch: number | null;
  /** Records in metrics.jsonl. */
  records: number;
  /** True when sftkit_run.json says running but its process is not alive. */
  stale: boolean;
  /** Why the status is what it is, when that is not obvious (stale pid, unreadable sftkit_run.json, error). */
  statusDetail: string | null;
  error: string | null;
  pid: number | null;
  /** Who owns the run directory now (its lock): the process of a running run (or its --nproc launcher). */
  holder: RunHolder | null;
  startedAt: string | null;
  /** Last change of sftkit_run.json (or of the metrics when there is none), ISO time. */
  updatedAt: string | null;
  /** The run directory (realpath). */
  path: string;
  /** Lines of metrics.jsonl that could not be read (line number and reason). */
  problems: LineProblem[];
}

export interface RunDetail extends RunSummary {
  /** The options the run was started with (sftkit_run.json), or null. */
  config: Record<string, unknown> | null;
  /** The trainer's result when it finished or was interrupted. */
  result: Record<string, unknown> | null;
  /** Event records (finished, interrupted, non-finite loss...), the last 50. */
  events: { step: number; message: string; time?: number }[];
}

/** How deep below --runs run directories are looked for. */
const MAX_DEPTH = 4;
/** Directories visited at most per scan. */
const MAX_VISITS = 5000;

export { pidAlive };

/** The process holding a run directory's lock (sftkit.lock) while a run owns it. */
export interface RunHolder {
  pid: number;
  host: string;
  /** When it took the lock, ISO time. */
  since: string;
  /** The command (train, dpo). */
  command: string | null;
}

/** The holder of the lock: null without one, or for a dead process on this host (a stale lock, taken over by the next run). */
export function lockHolder(lock: LockHolder | null, alive: (pid: number) => boolean = pidAlive, host: string = hostname()): RunHolder | null {
  if (!lock || (lock.host === host && !alive(lock.pid))) return null;
  return { pid: lock.pid, host: lock.host, since: lock.startedAt, command: lock.command };
}

interface RunFile {
  status?: unknown;
  pid?: unknown;
  startedAt?: unknown;
  updatedAt?: unknown;
  options?: unknown;
  result?: unknown;
  error?: unknown;
}

function readRunFile(dir: string): { value: RunFile | null; problem: string | null } {
  let text: string;
  try {
    text = readFileSync(join(dir, RUN_FILE), 'utf8');
  } catch (e) {
    return { value: null, problem: (e as NodeJS.ErrnoException).code === 'ENOENT' ? null : `${RUN_FILE}: ${(e as Error).message}` };
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return { value: null, problem: `${RUN_FILE} is not a JSON object` };
    return { value: v as RunFile, problem: null };
  } catch {
    return { value: null, problem: `${RUN_FILE} is not valid JSON` };
  }
}

const STATUSES: readonly RunStatus[] = ['running', 'finished', 'failed', 'interrupted'];
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** What the summary needs from a run's metrics, folded record by record (the records themselves are not kept). */
export interface MetricsStats {
  records: number;
  steps: number;
  tokens: number;
  tokensPerSec: number | null;
  lastTrainLoss: number | null;
  lastValLoss: number | null;
  bestValLoss: number | null;
  epoch: number | null;
  /** The last event messages (finished, interrupted, non-finite loss...), at most 50. */
  events: { step: number; message: string; time?: number }[];
}

export function emptyStats(): MetricsStats {
  return { records: 0, steps: 0, tokens: 0, tokensPerSec: null, lastTrainLoss: null, lastValLoss: null, bestValLoss: null, epoch: null, events: [] };
}

/** Adds records to the stats (mutates and returns them). */
export function foldMetrics(stats: MetricsStats, records: readonly MetricRecord[]): MetricsStats {
  for (const r of records) {
    stats.records++;
    if (finite(r.step) && r.step > stats.steps) stats.steps = r.step;
    if (finite(r.tokensSeen)) stats.tokens = r.tokensSeen;
    if (r.type === 'train') {
      stats.lastTrainLoss = finite(r.loss) ? r.loss : null;
      if (finite(r.tokensPerSec)) stats.tokensPerSec = r.tokensPerSec;
      if (finite(r.epoch)) stats.epoch = r.epoch;
    } else if (r.type === 'val' && finite(r.loss)) {
      stats.lastValLoss = r.loss;
      if (stats.bestValLoss === null || r.loss < stats.bestValLoss) stats.bestValLoss = r.loss;
    } else if (r.type === 'event' && typeof r.message === 'string') {
      stats.events.push({ step: r.step, message: r.message, ...(finite(r.time) ? { time: r.time } : {}) });
      if (stats.events.length > 50) stats.events.shift();
    }
  }
  return stats;
}

/** The summary of a run from its metrics stats and sftkit_run.json (pure but for the pid check). */
export function summarizeRun(
  name: string,
  path: string,
  stats: MetricsStats,
  runFile: { value: RunFile | null; problem: string | null },
  metricsMtimeMs: number,
  alive: (pid: number) => boolean = pidAlive,
  lock: LockHolder | null = null,
): RunSummary {
  const { steps, tokens, tokensPerSec, lastTrainLoss, lastValLoss, bestValLoss, epoch } = stats;
  const lastEvent = stats.events.at(-1)?.message ?? null;
  const rf = runFile.value;
  let status: RunStatus = 'unknown';
  let stale = false;
  let statusDetail = runFile.problem;
  const pid = rf && Number.isInteger(rf.pid) ? (rf.pid as number) : null;
  if (rf && STATUSES.includes(rf.status as RunStatus)) {
    status = rf.status as RunStatus;
    if (status === 'running' && (pid === null || !alive(pid))) {
      status = 'failed';
      stale = true;
      statusDetail = `${RUN_FILE} says running, but ${pid === null ? 'names no process' : `process ${pid} is not alive`}: the run ended without recording it (killed or crashed)`;
    }
  } else if (rf) {
    statusDetail = `${RUN_FILE} has no known status (${JSON.stringify(rf.status)})`;
  } else if (lastEvent === 'finished' || lastEvent === 'interrupted') {
    // metrics.jsonl alone (copied runs, other tools): its final event tells.
    status = lastEvent;
  } else if (statusDetail === null) {
    statusDetail = `no ${RUN_FILE}: the status is not known`;
  }
  const error = str(rf?.error);
  if (status === 'failed' && error && !stale) statusDetail = error;
  return {
    name,
    status,
    steps,
    bestValLoss,
    tokens,
    tokensPerSec,
    lastTrainLoss,
    lastValLoss,
    epoch,
    records: stats.records,
    stale,
    statusDetail,
    error,
    pid,
    holder: lockHolder(lock, alive),
    startedAt: str(rf?.startedAt),
    updatedAt: str(rf?.updatedAt) ?? (metricsMtimeMs > 0 ? new Date(metricsMtimeMs).toISOString() : null),
    path,
    problems: [],
  };
}

/** Finds run directories (those holding metrics.jsonl) below `root` without following symlinks out of it. */
export async function findRunDirs(root: string): Promise<{ name: string; dir: string }[]> {
  const found: { name: string; dir: string }[] = [];
  let visits = 0;
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (++visits > MAX_VISITS) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    if (entries.some((e) => e.name === METRICS_FILE && (e.isFile() || e.isSymbolicLink()))) {
      const rel = relative(root, dir);
      found.push({ name: rel === '' ? basename(root) : rel.split(sep).join('/'), dir });
      return; // a run's checkpoints and data are not runs
    }
    if (depth >= MAX_DEPTH) return;
    const subdirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules').map((e) => e.name).sort();
    for (const name of subdirs) await walk(join(dir, name), depth + 1);
  };
  await walk(root, 0);
  return found;
}

interface StatsEntry {
  dir: string;
  log: MetricsLog;
  stats: MetricsStats;
}

interface FullEntry {
  dir: string;
  log: MetricsLog;
  lastUsed: number;
}

/** Runs whose records are held for /metrics and /events (besides those being watched). */
const MAX_FULL_LOGS = 8;

/**
 * The runs under one root. Every run's metrics are followed for its summary without holding the records; the
 * records themselves are held only for the runs asked for (metrics, events), the last few of them.
 */
export class RunIndex {
  readonly root: string;
  private readonly stats = new Map<string, StatsEntry>();
  private readonly full = new Map<string, FullEntry>();
  private readonly pollMs: number;
  private clock = 0;

  constructor(root: string, options: { pollMs?: number } = {}) {
    this.root = root;
    this.pollMs = options.pollMs ?? 1000;
  }

  /** Rescans the tree and refreshes every run's summary; newest first. */
  async list(): Promise<RunSummary[]> {
    const dirs = await findRunDirs(this.root);
    const seen = new Set<string>();
    const out: RunSummary[] = [];
    for (const { name, dir } of dirs) {
      const entry = await this.statsEntry(name, dir);
      if (!entry) continue;
      seen.add(name);
      out.push(this.summary(name, entry));
    }
    for (const [name, e] of this.stats) {
      if (!seen.has(name)) {
        e.log.close();
        this.stats.delete(name);
      }
    }
    return out.sort((a, b) => (b.updatedAt ?? '').localeCompare(a.updatedAt ?? '') || a.name.localeCompare(b.name));
  }

  /** The run called `name` (exactly as /api/runs lists it) with its records, or undefined: names are looked up, never joined. */
  async find(name: string): Promise<{ dir: string; log: MetricsLog } | undefined> {
    const known = this.full.get(name);
    if (known) {
      known.lastUsed = ++this.clock;
      return known;
    }
    const dir = await this.locate(name);
    if (dir === undefined) return undefined;
    const entry: FullEntry = { dir, log: new MetricsLog(join(dir, METRICS_FILE), { pollMs: this.pollMs }), lastUsed: ++this.clock };
    this.full.set(name, entry);
    // Forget the least recently asked runs nobody watches.
    const idle = [...this.full.entries()].filter(([n, e]) => n !== name && !e.log.watched).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    while (this.full.size > MAX_FULL_LOGS && idle.length > 0) {
      const [n, e] = idle.shift()!;
      e.log.close();
      this.full.delete(n);
    }
    return entry;
  }

  async detail(name: string): Promise<RunDetail | undefined> {
    const dir = await this.locate(name);
    if (dir === undefined) return undefined;
    const entry = await this.statsEntry(name, dir);
    if (!entry) return undefined;
    const summary = this.summary(name, entry);
    const rf = readRunFile(entry.dir).value;
    const obj = (v: unknown) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
    return { ...summary, config: obj(rf?.options), result: obj(rf?.result), events: [...entry.stats.events] };
  }

  close(): void {
    for (const e of [...this.stats.values(), ...this.full.values()]) e.log.close();
    this.stats.clear();
    this.full.clear();
  }

  private summary(name: string, entry: StatsEntry): RunSummary {
    const change = entry.log.refresh();
    if (change.reset) entry.stats = emptyStats();
    foldMetrics(entry.stats, change.added);
    const s = summarizeRun(name, entry.dir, entry.stats, readRunFile(entry.dir), entry.log.mtimeMs(), pidAlive, readRunLock(entry.dir));
    s.problems = entry.log.problems.slice(0, 20);
    return s;
  }

  /** The directory of the run `name` when it is one of the runs found below the root. */
  private async locate(name: string): Promise<string | undefined> {
    const known = this.stats.get(name)?.dir ?? this.full.get(name)?.dir;
    const dir = known ?? (await findRunDirs(this.root)).find((r) => r.name === name)?.dir;
    return dir !== undefined && (await this.metricsInside(dir)) ? dir : undefined;
  }

  /** The metrics file (possibly a symlink) must resolve inside the root. */
  private async metricsInside(dir: string): Promise<boolean> {
    try {
      return isInside(this.root, await realpath(join(dir, METRICS_FILE)));
    } catch {
      return false;
    }
  }

  private async statsEntry(name: string, dir: string): Promise<StatsEntry | undefined> {
    const known = this.stats.get(name);
    if (known && known.dir === dir) return known;
    if (!(await this.metricsInside(dir))) return undefined;
    known?.log.close();
    const entry: StatsEntry = { dir, log: new MetricsLog(join(dir, METRICS_FILE), { keep: false }), stats: emptyStats() };
    this.stats.set(name, entry);
    return entry;
  }
}

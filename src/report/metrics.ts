// metrics.jsonl: an append-only log of one JSON object per line, written line by line so a crash loses at most the
// line being written; the reader tolerates a truncated last line. Resume can cut the log back to a checkpoint's step.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync, ftruncateSync, fstatSync, readSync } from 'node:fs';
import { dataError, invalidParameterError } from '../errors.ts';
import { writeFileAtomicSync } from '../shared/index.ts';

export type MetricType = 'train' | 'val' | 'epoch' | 'event';
const METRIC_TYPES: readonly MetricType[] = ['train', 'val', 'epoch', 'event'];

/**
 * One line of metrics.jsonl. `step` is the number of optimizer steps done; `tokensSeen` counts input tokens of the
 * training batches so far; `loss` is null when it was not finite (JSON has no NaN); `time` is Unix seconds, filled
 * in by the writer when absent. Other keys (e.g. `message` for events, `perplexity`) pass through.
 */
export interface MetricRecord {
  type: MetricType;
  step: number;
  epoch?: number;
  tokensSeen?: number;
  loss?: number | null;
  lr?: number;
  gradNorm?: number | null;
  tokensPerSec?: number;
  time?: number;
  [extra: string]: unknown;
}

/**
 * A metric event of the training loop's main rank: `validated` after each validation in the step loop (also when the
 * validation set is empty; not after the step-0 validation), `finished` once at the end of the loop (completed or
 * interrupted, after the final model is saved and before the closing event line). `records()` reads metrics.jsonl as
 * it stands. The curves (src/report/plot.ts, plotListener) are drawn by such a listener.
 */
export interface MetricEvent {
  type: 'validated' | 'finished';
  step: number;
  out: string;
  records: () => MetricRecord[];
}

/** Receives the loop's metric events in order; the loop awaits each before it goes on. */
export type MetricListener = (event: MetricEvent) => void | Promise<void>;

export interface MetricsWriterOptions {
  /** Resume: drop the records with `step` greater than this before appending (the rest of a crashed run). */
  keepUpToStep?: number;
  /** fsync after every line (survives power loss, not just a process crash). Default false. */
  fsync?: boolean;
  /** Clock for `time` (tests). */
  now?: () => number;
}

export interface MetricsWriter {
  readonly file: string;
  write(record: MetricRecord): void;
  close(): void;
}

/** Drops a half-written tail (no final newline) left by a crash, so appended lines start on a line of their own. */
function repairTail(file: string): void {
  const fd = openSync(file, 'r+');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return;
    // Read backwards in chunks to the last newline.
    const chunk = Buffer.alloc(4096);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const n = readSync(fd, chunk, 0, end - start, start);
      const nl = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (nl >= 0) {
        const keep = start + nl + 1;
        if (keep !== size) ftruncateSync(fd, keep);
        return;
      }
      end = start;
    }
    ftruncateSync(fd, 0);
  } finally {
    closeSync(fd);
  }
}

/** Opens (creating or appending to) a metrics.jsonl file. */
export function openMetricsWriter(file: string, options: MetricsWriterOptions = {}): MetricsWriter {
  const now = options.now ?? (() => Date.now() / 1000);
  if (existsSync(file)) {
    repairTail(file);
    if (options.keepUpToStep !== undefined) {
      const keep = readMetrics(file).filter((r) => r.step <= options.keepUpToStep!);
      writeFileAtomicSync(file, keep.map((r) => JSON.stringify(r) + '\n').join(''));
    }
  }
  let fd: number | undefined = openSync(file, 'a');
  return {
    file,
    write(record: MetricRecord): void {
      if (fd === undefined) throw new Error(`metrics writer for ${file} is closed`);
      if (!METRIC_TYPES.includes(record.type)) throw invalidParameterError('record.type', METRIC_TYPES.join(' | '), record.type);
      if (!Number.isInteger(record.step) || record.step < 0) throw invalidParameterError('record.step', 'an integer >= 0', record.step);
      const line = JSON.stringify(record.time === undefined ? { ...record, time: now() } : record) + '\n';
      writeSync(fd, line);
      if (options.fsync) fsyncSync(fd);
    },
    close(): void {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** One line of metrics.jsonl as a record, or what is wrong with it (the caller names the file and line). */
export function parseMetricLine(line: string): { record: MetricRecord } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { error: 'not a JSON object' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'not a JSON object' };
  const rec = value as Record<string, unknown>;
  if (!METRIC_TYPES.includes(rec.type as MetricType) || typeof rec.step !== 'number') {
    return { error: 'a metrics record needs "type" and "step"' };
  }
  return { record: rec as MetricRecord };
}

/**
 * Parses metrics.jsonl text. A last line without its newline that does not parse is a crash's half-written line and
 * is skipped; any other bad line is an error naming the file and line.
 */
export function parseMetrics(text: string, file = 'metrics.jsonl'): MetricRecord[] {
  const lines = text.split('\n');
  const complete = text.endsWith('\n') || text.length === 0;
  const out: MetricRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const parsed = parseMetricLine(line);
    if ('error' in parsed) {
      if (i === lines.length - 1 && !complete) break;
      throw dataError({ file, line: i + 1 }, parsed.error);
    }
    out.push(parsed.record);
  }
  return out;
}

/** Reads metrics.jsonl (see parseMetrics). */
export function readMetrics(file: string): MetricRecord[] {
  return parseMetrics(readFileSync(file, 'utf8'), file);
}

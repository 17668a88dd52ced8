// A metrics.jsonl followed as it grows: only the new bytes are read, a trailing line without its newline waits for
// the rest (the writer may be mid-line), and a file cut back or replaced (a resume rewrites it) starts over. Bad
// complete lines are skipped and reported with their line number, never fatal: one hand-edited line must not hide
// a run. Watching uses fs.watch on the directory (the file may be replaced) plus polling as the fallback.
import { closeSync, fstatSync, openSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { parseMetricLine, type MetricRecord } from '../report/index.ts';

export interface MetricsChange {
  /** Records appended since the previous refresh (after a reset: every record of the file). */
  added: MetricRecord[];
  /** The file was cut back or replaced: it was read again from the start. */
  reset: boolean;
}

export interface LineProblem {
  line: number;
  error: string;
}

export type MetricsListener = (change: MetricsChange) => void;

export class MetricsLog {
  readonly file: string;
  /** Every record so far (empty with `keep: false`: then only `count` and the changes tell). */
  readonly records: MetricRecord[] = [];
  /** Records read so far. */
  count = 0;
  readonly problems: LineProblem[] = [];
  private offset = 0;
  private pending: Buffer = Buffer.alloc(0);
  private lines = 0;
  private identity = '';
  private readonly listeners = new Set<MetricsListener>();
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private readonly pollMs: number;
  private readonly keep: boolean;

  /** `keep: false` reads the file as it grows without holding the records (a summary folds the changes). */
  constructor(file: string, options: { pollMs?: number; keep?: boolean } = {}) {
    this.file = file;
    this.pollMs = options.pollMs ?? 1000;
    this.keep = options.keep ?? true;
  }

  /** Reads what was appended since the last call. A missing file counts as empty. */
  refresh(): MetricsChange {
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch {
      const reset = this.count > 0 || this.offset > 0;
      if (reset) this.clear();
      return { added: [], reset };
    }
    try {
      const st = fstatSync(fd);
      const identity = `${st.dev}:${st.ino}`;
      let reset = false;
      if (identity !== this.identity || st.size < this.offset - this.pending.length) {
        // Replaced, or cut back into lines already read: start over.
        reset = this.identity !== '' || this.count > 0;
        this.clear();
        this.identity = identity;
      } else if (st.size < this.offset) {
        // Only the unfinished tail was cut (a crashed writer's line removed on resume).
        this.offset = st.size;
        this.pending = Buffer.alloc(0);
      }
      if (st.size === this.offset) return { added: [], reset };
      const fresh = Buffer.alloc(st.size - this.offset);
      let got = 0;
      while (got < fresh.length) {
        const n = readSync(fd, fresh, got, fresh.length - got, this.offset + got);
        if (n === 0) break;
        got += n;
      }
      this.offset += got;
      const buf = this.pending.length ? Buffer.concat([this.pending, fresh.subarray(0, got)]) : fresh.subarray(0, got);
      const nl = buf.lastIndexOf(0x0a);
      this.pending = Buffer.from(buf.subarray(nl + 1));
      const added: MetricRecord[] = [];
      if (nl >= 0) {
        for (const line of buf.subarray(0, nl).toString('utf8').split('\n')) {
          this.lines++;
          if (line.trim() === '') continue;
          const parsed = parseMetricLine(line);
          if ('record' in parsed) added.push(parsed.record);
          else if (this.problems.length < 100) this.problems.push({ line: this.lines, error: parsed.error });
        }
      }
      if (this.keep) for (const r of added) this.records.push(r);
      this.count += added.length;
      return { added, reset };
    } finally {
      closeSync(fd);
    }
  }

  /** Calls `listener` with every change from now on; returns the unsubscribe function. */
  subscribe(listener: MetricsListener): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.startWatching();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopWatching();
    };
  }

  /** True while someone is subscribed. */
  get watched(): boolean {
    return this.listeners.size > 0;
  }

  /** Stops watching (every subscriber is dropped). */
  close(): void {
    this.listeners.clear();
    this.stopWatching();
  }

  /** Modification time of the file in ms (0 when missing). */
  mtimeMs(): number {
    try {
      return statSync(this.file).mtimeMs;
    } catch {
      return 0;
    }
  }

  private clear(): void {
    this.records.length = 0;
    this.count = 0;
    this.problems.length = 0;
    this.offset = 0;
    this.lines = 0;
    this.pending = Buffer.alloc(0);
    this.identity = '';
  }

  private check = (): void => {
    let change: MetricsChange;
    try {
      change = this.refresh();
    } catch {
      return;
    }
    if (change.added.length === 0 && !change.reset) return;
    for (const l of [...this.listeners]) l(change);
  };

  private startWatching(): void {
    this.check();
    try {
      const name = basename(this.file);
      this.watcher = watch(dirname(this.file), { persistent: false }, (_event, f) => {
        if (f === null || f === name) this.check();
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      this.watcher = undefined;
    }
    this.poller = setInterval(this.check, this.pollMs);
    this.poller.unref();
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }
}

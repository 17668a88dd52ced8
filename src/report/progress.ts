// Training progress: one updating line with a bar on a TTY (step/total, loss, lr, tokens/s, ETA), plain log lines
// every N steps otherwise. The formatting is pure functions; the reporter only decides when to write to its stream.

import { formatCount, formatDuration } from '../shared/index.ts';

// The number formatting is src/shared/format.ts's (re-exported for the callers of this module).
export { formatCount, formatDuration };

/**
 * Seconds left after `done` of `total` steps, from the rate since the reporter started (`doneSinceStart` steps in
 * `elapsed` seconds: a resumed run does not count the steps of the earlier run). NaN when there is no rate yet.
 */
export function etaSeconds(done: number, total: number, doneSinceStart: number, elapsed: number): number {
  if (doneSinceStart <= 0 || elapsed <= 0) return Number.NaN;
  return Math.max(0, total - done) * (elapsed / doneSinceStart);
}

/** A bar of exactly `width` cells (at least 0) for a fraction in [0, 1]: full cells `█`, the rest `░`. */
export function renderBar(fraction: number, width: number): string {
  const w = Math.max(0, Math.floor(width));
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const full = Math.floor(f * w + 1e-9);
  return '█'.repeat(full) + '░'.repeat(w - full);
}

export interface ProgressState {
  step: number;
  total: number;
  epoch?: number;
  loss?: number;
  lr?: number;
  tokensPerSec?: number;
  /** Seconds left (NaN or undefined: unknown). */
  eta?: number;
  elapsed?: number;
}

function fields(s: ProgressState): string[] {
  const out: string[] = [];
  if (s.epoch !== undefined) out.push(`epoch ${s.epoch + 1}`);
  if (s.loss !== undefined) out.push(`loss ${Number.isFinite(s.loss) ? s.loss.toFixed(4) : String(s.loss)}`);
  if (s.lr !== undefined) out.push(`lr ${s.lr.toExponential(2)}`);
  if (s.tokensPerSec !== undefined) out.push(`${formatCount(s.tokensPerSec)} tok/s`);
  if (s.elapsed !== undefined) out.push(`elapsed ${formatDuration(s.elapsed)}`);
  out.push(`ETA ${formatDuration(s.eta ?? Number.NaN)}`);
  return out;
}

/** The plain (non-TTY) line: `step 12/100 (12%) | loss 2.3450 | lr 5.00e-5 | 1.20k tok/s | ETA 1m05s`. */
export function formatLogLine(s: ProgressState): string {
  const pct = s.total > 0 ? Math.floor((100 * s.step) / s.total) : 0;
  return [`step ${s.step}/${s.total} (${pct}%)`, ...fields(s)].join(' | ');
}

/**
 * The TTY line, at most `columns` characters: `12/100 [████░░░░] 12% loss 2.3450 lr 5.00e-5 1.20k tok/s ETA 1m05s`.
 * The bar takes what the text leaves (8 to 30 cells); fields are dropped from the right when even that does not fit.
 */
export function formatBarLine(s: ProgressState, columns: number): string {
  const pct = s.total > 0 ? Math.floor((100 * s.step) / s.total) : 0;
  const head = `${s.step}/${s.total}`;
  let tail = fields(s);
  const textLen = (t: string[]) => head.length + 3 + ` ${pct}%`.length + (t.length ? 1 + t.join(' ').length : 0);
  while (tail.length > 0 && textLen(tail) + 8 > columns) tail = tail.slice(0, -1);
  const barWidth = Math.max(0, Math.min(30, columns - textLen(tail)));
  const line = `${head} [${renderBar(s.total > 0 ? s.step / s.total : 0, barWidth)}] ${pct}%${tail.length ? ' ' + tail.join(' ') : ''}`;
  return line.length > columns ? line.slice(0, Math.max(0, columns)) : line;
}

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  stream: ProgressStream;
  /** Total optimizer steps. */
  total: number;
  /** Step the run starts from (resume), for the rate behind the ETA. Default 0. */
  startStep?: number;
  /** Override stream.isTTY. */
  tty?: boolean;
  /** Non-TTY: a line every N steps (and at the last step). Default 10. */
  logEvery?: number;
  /** TTY: at most one redraw per this many ms (the last step is always drawn). Default 100. */
  minIntervalMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

export interface StepUpdate {
  step: number;
  epoch?: number;
  loss?: number;
  lr?: number;
  tokensPerSec?: number;
}

/** Reports progress to a stream: a redrawn line on a TTY, log lines otherwise. */
export class ProgressReporter {
  private readonly tty: boolean;
  private readonly start: number;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private lastLine = '';
  private drawn = false;

  constructor(private readonly o: ProgressOptions) {
    this.tty = o.tty ?? o.stream.isTTY === true;
    this.start = this.now();
  }

  private now(): number {
    return this.o.now ? this.o.now() : Date.now();
  }

  private state(u: StepUpdate): ProgressState {
    const elapsed = (this.now() - this.start) / 1000;
    const eta = etaSeconds(u.step, this.o.total, u.step - (this.o.startStep ?? 0), elapsed);
    return { ...u, total: this.o.total, eta, elapsed };
  }

  update(u: StepUpdate): void {
    const last = u.step >= this.o.total;
    if (this.tty) {
      const t = this.now();
      if (!last && t - this.lastDraw < (this.o.minIntervalMs ?? 100)) return;
      this.lastDraw = t;
      this.lastLine = formatBarLine(this.state(u), (this.o.stream.columns ?? 100) - 1);
      this.o.stream.write(`\r${this.lastLine}\x1b[K`);
      this.drawn = true;
    } else if (last || u.step % (this.o.logEvery ?? 10) === 0) {
      this.o.stream.write(formatLogLine(this.state(u)) + '\n');
    }
  }

  /** A message (validation loss, checkpoint saved...) printed above the bar, which is then redrawn. */
  log(message: string): void {
    if (this.tty && this.drawn) this.o.stream.write(`\r\x1b[K${message}\n${this.lastLine}`);
    else this.o.stream.write(message + '\n');
  }

  /** Ends the bar's line (TTY). */
  finish(): void {
    if (this.tty && this.drawn) this.o.stream.write('\n');
    this.drawn = false;
  }
}

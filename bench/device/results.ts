// The device check's record (scripts/device-check.sh -> bench/device/check.ts): every step with its status, the
// throughput table, and the markdown view of both. Written after every step, so a run cut short still leaves what
// it had.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type StepStatus = 'passed' | 'failed' | 'skipped';
export type StepGroup = 'setup' | 'correctness' | 'training' | 'throughput';

export interface StepResult {
  id: string;
  group: StepGroup;
  title: string;
  status: StepStatus;
  /** Why a step was skipped or failed (required for both). */
  reason?: string;
  seconds: number;
  details?: Record<string, unknown>;
}

/** One side of one throughput workload (a process of its own). */
export interface ThroughputSide {
  side: string;
  status: StepStatus;
  reason?: string;
  tokensPerS?: number;
  msPerStep?: number;
  /** Model FLOPs of the real tokens per second over the run's matmul ceiling. */
  mfu?: number;
  /** CUDA: the allocator's peak of allocated memory (max_memory_allocated); CPU: the process's peak RSS. */
  peakMemMiB?: number;
  peakMemKind?: 'gpu-allocated' | 'rss';
  /** Seconds the whole process took (load, compile, warm-up and the timed steps). */
  wallSeconds?: number;
  raw?: Record<string, unknown>;
}

export interface ThroughputRow {
  name: string;
  shape: string;
  batch: number;
  seqLen: number;
  steps: number;
  warmup: number;
  flopsPerToken: number;
  realTokens: number;
  sides: ThroughputSide[];
}

export interface Ceiling {
  via: string;
  dtype: string;
  size: number;
  gflops: number;
}

export interface DeviceCheckResults {
  schema: 1;
  mode: 'cuda' | 'cpu';
  quick: boolean;
  started: string;
  finished: string | null;
  wallSeconds: number;
  machine: Record<string, unknown>;
  build: Record<string, unknown>;
  tolerances: Record<string, unknown>;
  steps: StepResult[];
  throughput: { ceilings: Ceiling[]; ceilingGflops: number | null; rows: ThroughputRow[] };
  summary: { passed: number; failed: number; skipped: number; ok: boolean };
}

export function summarize(steps: StepResult[]): DeviceCheckResults['summary'] {
  const n = (s: StepStatus) => steps.filter((x) => x.status === s).length;
  return { passed: n('passed'), failed: n('failed'), skipped: n('skipped'), ok: n('failed') === 0 };
}

const fmt = (v: number | undefined, digits = 1) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The markdown view: the machine, the steps, then the throughput table (sftkit's sides against the first PyTorch one). */
export function renderMarkdown(r: DeviceCheckResults): string {
  const lines: string[] = [];
  const gpu = r.machine.gpu as { name?: string; computeCapability?: string } | null | undefined;
  lines.push(
    `Device check ${r.started} (${r.mode}${r.quick ? ', --quick' : ''}), ${fmt(r.wallSeconds, 0)} s: ` +
      `${r.summary.passed} passed, ${r.summary.failed} failed, ${r.summary.skipped} skipped.`,
    '',
    `Machine: ${gpu?.name ? `${gpu.name} (compute capability ${gpu.computeCapability ?? '?'}), ` : ''}${String(r.machine.cpu ?? '')}, ` +
      `${String(r.machine.cores ?? '?')} cores; node ${String(r.machine.node ?? '?')}; libtorch ${String(r.build.torchVersion ?? '?')}` +
      `${r.build.versionCheckBypassed ? ' (version check bypassed: SFTKIT_SKIP_LIBTORCH_VERSION_CHECK=1)' : ''}; ` +
      `Python: ${String(r.machine.python ?? 'none')}.`,
    '',
    '| step | status | seconds | notes |',
    '|---|---|---:|---|',
  );
  for (const s of r.steps) {
    lines.push(`| ${cell(`${s.group}: ${s.title}`)} | ${s.status} | ${fmt(s.seconds)} | ${cell(s.reason ?? noteOf(s))} |`);
  }
  if (r.throughput.rows.length) {
    const c = r.throughput.ceilingGflops;
    lines.push(
      '',
      `Throughput (one run per side, alternating; MFU: model FLOPs of the real tokens, 6 N + 12 L H D T per token, over the ` +
        `run's highest matmul reading${c ? `, ${fmt(c / 1000, 1)} TFLOP/s` : ''}: ${r.throughput.ceilings.map((x) => `${x.via} ${x.dtype} ${x.size}^3 ${fmt(x.gflops / 1000, 1)}`).join(', ') || 'none'}).`,
      '',
      '| workload | side | tokens/s | ms/step | MFU | peak memory MiB | vs first PyTorch side (speed / memory) | notes |',
      '|---|---|---:|---:|---:|---:|---|---|',
    );
    for (const row of r.throughput.rows) {
      const base = row.sides.find((s) => s.side.startsWith('pytorch') && s.status === 'passed');
      for (const s of row.sides) {
        const ratio =
          base && s !== base && s.tokensPerS && base.tokensPerS
            ? `${fmt(s.tokensPerS / base.tokensPerS, 2)}x / ${s.peakMemMiB && base.peakMemMiB ? `${fmt(s.peakMemMiB / base.peakMemMiB, 2)}x` : '—'}`
            : '';
        lines.push(
          `| ${cell(row.name)} | ${s.side} | ${fmt(s.tokensPerS, 0)} | ${fmt(s.msPerStep, 1)} | ${s.mfu === undefined ? '—' : `${fmt(100 * s.mfu, 1)}%`} | ` +
            `${fmt(s.peakMemMiB, 0)}${s.peakMemKind === 'rss' ? ' (RSS)' : ''} | ${ratio} | ${cell(s.status === 'passed' ? '' : `${s.status}: ${s.reason ?? ''}`)} |`,
        );
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

function noteOf(s: StepResult): string {
  const d = s.details ?? {};
  return typeof d.note === 'string' ? d.note : '';
}

/** results.json and results.md into `dir`. */
export function writeResults(dir: string, r: DeviceCheckResults): void {
  r.summary = summarize(r.steps);
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(dir, 'results.md'), renderMarkdown(r));
}

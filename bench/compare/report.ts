// bench/compare's report: ratios, MFU / HFU and the Markdown tables from the measured rows. Kept apart from the
// measuring so that `run.ts --render compare.json` can rebuild the tables of a finished run without re-running it.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mfu } from '../../src/bench/flops.ts';

type RunRecord = Record<string, unknown>;

export interface StepRow {
  name: string;
  shape: string;
  batch: number;
  seqLen: number;
  flopsPerToken: number;
  /** Per step: real (non-padding) tokens, labelled positions, model FLOPs of the real tokens, FLOPs each side runs. */
  realTokens: number;
  labelRows: number;
  modelFlops: number;
  sftkitFlops: number;
  torchFlops: number;
  sftkit: Record<string, number> | null;
  torch: Record<string, number> | null;
  /** PyTorch with sftkit's MKL dispatch library LD_PRELOADed; null when not run. */
  torchIsa?: Record<string, number> | null;
  runs: Partial<Record<'sftkit' | 'torch' | 'torchIsa', RunRecord[]>>;
  /**
   * run.ts --loss-memory: sftkit's fused loss buffers (the [chunk, V] fp32 buffer + the labelled rows' [N, C]
   * gradient, from the engine's shapes) and PyTorch's loss memory measured by loss_memory.py (loss_peak_mib).
   */
  lossMemory?: { sftkit: { chunk_rows: number; labelled_rows: number; loss_mib: number }; torch: Record<string, number> | null };
  /** Issue 24: sftkit's --base-dtype and the dtype PyTorch loaded the base in. */
  baseDtype?: string;
  torchDtype?: string;
  /**
   * Issue 24: the memory of loading alone (bench/load-memory.ts: load_peak_mib, peak_rss_mib; torch_bench.py
   * --load-only: peak_rss_mib) and the weights' bytes on disk.
   */
  load?: { diskBytes: number; sftkit: RunRecord | null; torch: RunRecord | null };
}
export interface SftRow {
  name: string;
  sftkit: Record<string, number> | null;
  trl: RunRecord | null;
  trlIsa?: RunRecord | null;
  trlMode: string;
  runs: Partial<Record<'sftkit' | 'trl' | 'trlIsa', RunRecord[]>>;
}
/** What a run measured: the input of the report, and (with the derived fields added) compare.json. */
export interface CompareData {
  date: string;
  machine: { cpu: string; cores: number; isa: string; memGiB: number; libtorch: string; python: string | null; threads: number; [k: string]: unknown };
  repeats?: number;
  sftRepeats?: number;
  /** The library LD_PRELOADed into the third Python runs, or null when they did not run. */
  preloadLibrary?: string | null;
  matmul: { sftkit: RunRecord | null; torch: RunRecord | null };
  steps: StepRow[];
  sft: SftRow[];
}

const ratio = (a: number | undefined, b: number | undefined) => (a && b ? a / b : null);
const gflops = (r: RunRecord | null | undefined, key: string) => Number(r?.[key] ?? 0) || 0;

/**
 * The run's matmul ceiling: the highest 2048^3 rate measured anywhere in it (at the start and before every training
 * run). Noise only ever slows a measurement down, so a single reading taken in a slow moment of the host would
 * inflate the MFU of the run after it (one such reading, 159 against 200-222, gave 110%); the highest is the
 * conservative denominator, and the same for both sides.
 */
export function peakCeiling(d: CompareData): number {
  const all = [gflops(d.matmul.sftkit, 'gflops'), gflops(d.matmul.torch, 'gflops')];
  for (const r of d.steps) for (const rs of Object.values(r.runs)) for (const run of rs ?? []) all.push(gflops(run, 'ceiling_gflops'));
  return Math.max(...all);
}

export function buildReport(d: CompareData) {
  const ceiling = peakCeiling(d);
  const u = (side: Record<string, number> | null | undefined, flops: number) => (side && ceiling ? mfu(1000 / side.ms_per_step!, flops, ceiling) : null);
  return {
    ...d,
    matmul: { ...d.matmul, ceilingGflops: ceiling },
    steps: d.steps.map((r) => ({
      ...r,
      // The reading taken just before each reported run, to show the host's drift; MFU and HFU use `ceiling`.
      ceilingGflops: { sftkit: gflops(r.sftkit, 'ceiling_gflops'), torch: gflops(r.torch, 'ceiling_gflops'), torchIsa: gflops(r.torchIsa, 'ceiling_gflops') },
      tokensRatio: ratio(r.sftkit?.tokens_per_s, r.torch?.tokens_per_s),
      tokensRatioIsa: ratio(r.sftkit?.tokens_per_s, r.torchIsa?.tokens_per_s),
      rssRatio: ratio(r.sftkit?.peak_rss_mib, r.torch?.peak_rss_mib),
      // MFU: the model FLOPs of the step's real tokens per second of step; HFU: the FLOPs the engine actually ran.
      mfuSftkit: u(r.sftkit, r.modelFlops),
      mfuTorch: u(r.torch, r.modelFlops),
      mfuTorchIsa: u(r.torchIsa, r.modelFlops),
      hfuSftkit: u(r.sftkit, r.sftkitFlops),
      hfuTorch: u(r.torch, r.torchFlops),
    })),
    sft: d.sft.map((r) => ({
      ...r,
      tokensRatio: ratio(r.sftkit?.unpadded_tokens_per_s, r.trl?.unpadded_tokens_per_s as number | undefined),
      tokensRatioIsa: ratio(r.sftkit?.unpadded_tokens_per_s, r.trlIsa?.unpadded_tokens_per_s as number | undefined),
    })),
  };
}

const f = (v: number | null | undefined, d = 0) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(d));
const pct = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(0)}%`);
const x = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${v.toFixed(2)}x`);
const each = (n: number | undefined, what: string) => (n === undefined ? '' : n === 1 ? `one ${what}` : `best of ${n}`);

export function renderMarkdown(report: ReturnType<typeof buildReport>): string {
  const { machine: m, matmul } = report;
  const preloaded = report.steps.some((r) => r.torchIsa) || report.sft.some((r) => r.trlIsa);
  const md: string[] = [
    `Run ${report.date.slice(0, 16).replace('T', ' ')} UTC on ${m.cpu}, ${m.cores} cores (${m.isa}), ${m.memGiB} GiB; ${m.threads} threads; libtorch ${m.libtorch}; ` +
      `${report.repeats === undefined ? '' : report.repeats === 1 ? 'one run per side' : `best of ${report.repeats} alternating runs per side`}` +
      `${report.sftRepeats === undefined ? '' : ` (SFT: ${each(report.sftRepeats, 'run')})`}${m.python ? `; Python: ${m.python}` : '; Python side skipped'}. ` +
      `fp32 matmul ceiling (2048^3, best of 10): ${f(gflops(matmul.sftkit, 'gflops'), 1)} GFLOP/s through sftkit and ${f(gflops(matmul.torch, 'gflops'), 1)} through PyTorch at the start, ` +
      `measured again (through sftkit) just before every training run (that reading is in the table: the host drifts); MFU and HFU of both sides are quoted against the highest reading of the run, ${f(matmul.ceilingGflops, 1)} GFLOP/s. ` +
      'MFU: model FLOPs of the real tokens (6 x matmul parameters incl. the LM head + 12 L H D T per token) per second; ' +
      'HFU: the FLOPs each engine executes (PyTorch: every position through layers and head; sftkit: the real tokens through the layers, the labelled ones through the head).',
    '',
    '| workload | sftkit tokens/s | PyTorch tokens/s | speed ratio | matmul ceiling before the runs GFLOP/s sftkit / PyTorch | MFU sftkit / PyTorch | HFU sftkit / PyTorch | sftkit peak RSS | PyTorch peak RSS | memory ratio | sftkit fwd / bwd / optim ms | PyTorch fwd / bwd / optim ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
    ...report.steps.map(
      (r) =>
        `| ${r.name} | ${f(r.sftkit?.tokens_per_s, 1)} | ${f(r.torch?.tokens_per_s, 1)} | ${x(r.tokensRatio)} | ${f(r.ceilingGflops.sftkit)} / ${f(r.ceilingGflops.torch)} | ${pct(r.mfuSftkit)} / ${pct(r.mfuTorch)} | ${pct(r.hfuSftkit)} / ${pct(r.hfuTorch)} | ` +
        `${f((r.sftkit?.peak_rss_mib ?? NaN) / 1024, 2)} GiB | ${f((r.torch?.peak_rss_mib ?? NaN) / 1024, 2)} GiB | ${x(r.rssRatio)} | ` +
        `${f(r.sftkit?.ms_forward)} / ${f(r.sftkit?.ms_backward)} / ${f(r.sftkit?.ms_optimizer)} | ${f(r.torch?.ms_forward)} / ${f(r.torch?.ms_backward)} / ${f(r.torch?.ms_optimizer)} |`,
    ),
    '',
    // (no SFT table when the run had no SFT rows: --only steps)
    ...(report.sft.length
      ? [
          '| SFT workload (GPT-2-124M shape, random weights, instruction-data.json) | sftkit unpadded tokens/s | TRL unpadded tokens/s | ratio | tokens | trained tokens sftkit / TRL | steps sftkit / TRL |',
          '|---|---:|---:|---:|---:|---:|---:|',
          ...report.sft.map(
            (r) =>
              `| ${r.name} | ${f(r.sftkit?.unpadded_tokens_per_s, 1)} | ${f(r.trl?.unpadded_tokens_per_s as number | undefined, 1)} | ${x(r.tokensRatio)} | ${f(r.sftkit?.tokens)} | ` +
              `${f(r.sftkit?.trained_tokens)} / ${f(r.trl?.trained_tokens as number)} | ${f(r.sftkit?.steps)} / ${f(r.trl?.steps as number)} |`,
          ),
          '',
        ]
      : []),
  ];
  const baseRows = report.steps.filter((r) => r.baseDtype);
  if (baseRows.length) {
    const gib = (mib: unknown) => `${f(Number(mib ?? NaN) / 1024, 2)} GiB`;
    const split = (s: Record<string, number> | null | undefined) => {
      if (!s || s.dequantMs === undefined) return '—';
      return `${f(s.dequantMs)} / ${f(s.matmulMs)} / ${f(s.ms_per_step! - s.dequantMs - (s.matmulMs ?? 0))}`;
    };
    md.push(
      'Issue 24: LoRA over a frozen base stored small (sftkit `--base-dtype`: dequantised just in time into an fp32 workspace, computed in fp32) against PyTorch + peft ' +
        'with the base loaded in bf16 (computed in bf16, fp32 adapters). sftkit\'s step split: the ms per step spent dequantising base weights, in the matmuls over them, ' +
        'and the rest (attention, norms, the adapters, the loss, AdamW). Loading alone: the peak RSS of a process that only loads the model (sftkit: its growth during ' +
        '`loadModel`, after a warm-up on a tiny model; PyTorch: `from_pretrained` + peft, the whole process), against the weights\' size on disk (BF16).',
      '',
      '| workload | sftkit tokens/s | PyTorch tokens/s | speed ratio | sftkit peak RSS | PyTorch peak RSS | memory ratio | sftkit ms/step: dequant / base matmuls / rest | sftkit base store | load alone: sftkit growth / PyTorch peak RSS / on disk |',
      '|---|---:|---:|---:|---:|---:|---:|---|---:|---|',
      ...baseRows.map(
        (r) =>
          `| ${r.name} | ${f(r.sftkit?.tokens_per_s, 1)} | ${f(r.torch?.tokens_per_s, 1)} | ${x(r.tokensRatio)} | ${gib(r.sftkit?.peak_rss_mib)} | ${gib(r.torch?.peak_rss_mib)} | ${x(r.rssRatio)} | ` +
          `${split(r.sftkit)} | ${r.sftkit?.baseBytes === undefined ? '—' : `${f(r.sftkit.baseBytes / 2 ** 30, 2)} GiB`} | ` +
          `${gib(r.load?.sftkit?.load_peak_mib)} / ${gib(r.load?.torch?.peak_rss_mib)} / ${r.load ? `${f(r.load.diskBytes / 2 ** 30, 2)} GiB` : '—'} |`,
      ),
      '',
    );
  }
  const lossRows = report.steps.filter((r) => r.lossMemory);
  if (lossRows.length) {
    const share = (mib: number | undefined, side: Record<string, number> | null | undefined) =>
      mib !== undefined && side?.peak_rss_mib ? `${((100 * mib) / side.peak_rss_mib).toFixed(1)}%` : '—';
    md.push(
      "The loss's memory: PyTorch's measured (`loss_memory.py`: transformers' LM head over all B x T positions and its ForCausalLMLoss, forward and backward at the row's shapes; " +
        'the peak RSS above the RSS before, less the gradients of the hidden states and of the head), sftkit\'s the one [chunk, V] fp32 buffer of its fused loss ' +
        '(logits, softmax and their gradient in place, chunk = 32M logits / V rows, at most the labelled rows) plus the [N, C] gradient of the labelled rows; each as a share of the side\'s peak RSS in the row above.',
      '',
      '| workload | sftkit loss buffers | share of sftkit peak RSS | PyTorch loss memory (measured) | share of PyTorch peak RSS | PyTorch [B x T, V] fp32 logits |',
      '|---|---:|---:|---:|---:|---:|',
      ...lossRows.map((r) => {
        const l = r.lossMemory!;
        return `| ${r.name} | ${f(l.sftkit.loss_mib)} MiB (${l.sftkit.chunk_rows} of ${l.sftkit.labelled_rows} rows per chunk) | ${share(l.sftkit.loss_mib, r.sftkit)} | ` +
          `${f(l.torch?.loss_peak_mib)} MiB | ${share(l.torch?.loss_peak_mib, r.torch)} | ${f(l.torch?.logits_mib)} MiB |`;
      }),
      '',
    );
  }
  if (preloaded) {
    md.push(
      "The same Python runs with sftkit's MKL dispatch library (`libsftkit_mkl_dispatch.so`) LD_PRELOADed, so that MKL runs the AVX-512 kernels sftkit runs on this CPU, " +
        'alternating with the runs above: the ratio here is what sftkit gains over PyTorch / TRL given the same kernels.',
      '',
      '| workload | sftkit tokens/s | PyTorch or TRL + MKL dispatch tokens/s | speed ratio | MFU PyTorch + MKL dispatch | peak RSS PyTorch + MKL dispatch | fwd / bwd / optim ms |',
      '|---|---:|---:|---:|---:|---:|---|',
      ...report.steps.map(
        (r) =>
          `| ${r.name} | ${f(r.sftkit?.tokens_per_s, 1)} | ${f(r.torchIsa?.tokens_per_s, 1)} | ${x(r.tokensRatioIsa)} | ${pct(r.mfuTorchIsa)} | ` +
          `${f((r.torchIsa?.peak_rss_mib ?? NaN) / 1024, 2)} GiB | ${f(r.torchIsa?.ms_forward)} / ${f(r.torchIsa?.ms_backward)} / ${f(r.torchIsa?.ms_optimizer)} |`,
      ),
      ...report.sft.map((r) => `| ${r.name} | ${f(r.sftkit?.unpadded_tokens_per_s, 1)} | ${f(r.trlIsa?.unpadded_tokens_per_s as number | undefined, 1)} | ${x(r.tokensRatioIsa)} | — | — | — |`),
      '',
    );
  }
  return md.join('\n');
}

/** compare.json + compare.md in `outDir`, and optionally the block between the markers of bench/README.md. */
export function writeReport(d: CompareData, outDir: string, readme: string | null, log: (m: string) => void): string {
  const report = buildReport(d);
  const md = renderMarkdown(report);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'compare.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(outDir, 'compare.md'), md);
  log(`wrote ${join(outDir, 'compare.json')} and compare.md`);
  if (readme) {
    const text = readFileSync(readme, 'utf8');
    const begin = '<!-- compare:begin -->', end = '<!-- compare:end -->';
    const i = text.indexOf(begin), j = text.indexOf(end);
    if (i < 0 || j < 0) log(`${readme} has no ${begin} ... ${end} block; not updated`);
    else writeFileSync(readme, `${text.slice(0, i + begin.length)}\n${md}\n${text.slice(j)}`);
  }
  return md;
}

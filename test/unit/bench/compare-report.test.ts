// bench/compare's report: MFU against the run's highest matmul reading (not the one beside each run), ratios, and
// the preloaded-PyTorch table only when those runs exist.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildReport, type CompareData, peakCeiling, renderMarkdown } from '../../../bench/compare/report.ts';

function data(withPreload: boolean): CompareData {
  const step = (tps: number, ceiling: number) => ({ tokens_per_s: tps, ms_per_step: 1000, ms_forward: 400, ms_backward: 500, ms_optimizer: 100, peak_rss_mib: 2048, ceiling_gflops: ceiling });
  const sftkit = step(250, 150), torch = step(125, 200), torchIsa = step(140, 210);
  return {
    date: '2026-12-02T17:24:00.000Z',
    machine: { cpu: 'AMD EPYC', cores: 2, isa: 'avx512f', memGiB: 23.5, libtorch: '2.13.0 cpu', python: 'torch 2.13.0+cpu', threads: 2 },
    repeats: 2,
    sftRepeats: 1,
    preloadLibrary: withPreload ? '/x/libsftkit_mkl_dispatch.so' : null,
    matmul: { sftkit: { gflops: 205 }, torch: { gflops: 120 } },
    steps: [
      {
        name: 'gpt2-124m B4 T256', shape: 'gpt2-124m', batch: 4, seqLen: 256, flopsPerToken: 8e8, realTokens: 900, labelRows: 500,
        modelFlops: 1.6e11, sftkitFlops: 1.4e11, torchFlops: 1.8e11,
        sftkit, torch, torchIsa: withPreload ? torchIsa : null,
        // a later run of the other side read the highest ceiling
        runs: { sftkit: [sftkit], torch: [torch, step(120, 220)], torchIsa: withPreload ? [torchIsa] : [] },
      },
    ],
    sft: [{ name: 'SFT packed', sftkit: { unpadded_tokens_per_s: 280, tokens: 100, trained_tokens: 20, steps: 2 }, trl: { unpadded_tokens_per_s: 120 }, trlIsa: withPreload ? { unpadded_tokens_per_s: 140 } : null, trlMode: 'packed', runs: {} }],
  };
}

test('compare report: MFU and HFU use the highest ceiling read anywhere in the run, for both sides', () => {
  const d = data(true);
  assert.equal(peakCeiling(d), 220);
  const r = buildReport(d).steps[0]!;
  // 1 step/s x 1.6e11 FLOPs over 220 GFLOP/s, not over the 150 read beside sftkit's run (which would give 107%).
  assert.ok(Math.abs(r.mfuSftkit! - 160 / 220) < 1e-12);
  assert.ok(Math.abs(r.hfuSftkit! - 140 / 220) < 1e-12);
  assert.ok(Math.abs(r.mfuTorch! - r.mfuSftkit!) < 1e-12, 'the same step time gives the same MFU on both sides');
  assert.equal(r.tokensRatio, 2);
  assert.ok(Math.abs(r.tokensRatioIsa! - 250 / 140) < 1e-12);
  assert.equal(r.rssRatio, 1);
  assert.deepEqual(r.ceilingGflops, { sftkit: 150, torch: 200, torchIsa: 210 });
});

test('compare report: the MKL dispatch table appears only when the preloaded runs exist', () => {
  const withIsa = renderMarkdown(buildReport(data(true)));
  assert.match(withIsa, /LD_PRELOADed/);
  assert.match(withIsa, /\| SFT packed \| 280\.0 \| 140\.0 \| 2\.00x \|/);
  assert.match(withIsa, /highest reading of the run, 220\.0 GFLOP\/s/);
  assert.match(withIsa, /best of 2 alternating runs per side \(SFT: one run\)/);
  const without = renderMarkdown(buildReport(data(false)));
  assert.doesNotMatch(without, /LD_PRELOADed/);
  assert.match(without, /\| gpt2-124m B4 T256 \| 250\.0 \| 125\.0 \| 2\.00x \| 150 \/ 200 \| 73% \/ 73% \| 64% \/ 82% \|/);
});

test("compare report: the loss's memory table appears with --loss-memory rows, the SFT table only with SFT rows", () => {
  const d = data(false);
  const plain = renderMarkdown(buildReport(d));
  assert.doesNotMatch(plain, /The loss's memory/);
  d.sft = [];
  d.steps[0]!.lossMemory = { sftkit: { chunk_rows: 128, labelled_rows: 139, loss_mib: 204.8 }, torch: { loss_peak_mib: 512, logits_mib: 256 } };
  const md = renderMarkdown(buildReport(d));
  assert.doesNotMatch(md, /SFT workload/);
  // shares of each side's peak RSS (2048 MiB on both sides here)
  assert.match(md, /\| gpt2-124m B4 T256 \| 205 MiB \(128 of 139 rows per chunk\) \| 10\.0% \| 512 MiB \| 25\.0% \| 256 MiB \|/);
});

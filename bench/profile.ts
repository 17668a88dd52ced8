// Where the time of a training step goes: `perf record` over `sftkit bench train`, then `perf report` grouped by
// shared object and symbol, and the symbols summed into a few categories (matmul, attention, kernel, ...). The
// profile covers the whole process: loading the model and the warm-up step are in it (a few percent).
// Prints one JSON object: {command, samples, categories: {name: percent}, top: [{percent, dso, symbol}]}.
//   node --import tsx bench/profile.ts [--model gpt2-124m|qwen2-0.5b|DIR] [--batch-size 4] [--seq-len 256]
//                                      [--steps 2] [--warmup 1] [--threads 2] [--freq 199] [--top 25]
// Needs `perf` (Debian: linux-perf) and a kernel that allows it (perf_event_paranoid <= 2 for user space).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_MODEL_SHAPES, type BenchModelShape, benchModel } from './bench-models.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'gpt2-124m' },
    'batch-size': { type: 'string', default: '4' },
    'seq-len': { type: 'string', default: '256' },
    steps: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '1' },
    threads: { type: 'string', default: '2' },
    freq: { type: 'string', default: '199' },
    top: { type: 'string', default: '25' },
  },
});

if (spawnSync('perf', ['--version']).status !== 0) {
  process.stderr.write('bench/profile: `perf` is not installed (Debian: apt install linux-perf)\n');
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'sftkit-profile-'));
const data = join(dir, 'perf.data');
// A shape name resolves to the cached random model (built once, outside the profile): `bench train --model SHAPE`
// would build it in a child process that perf follows, and its 500 MB of file writes were 3% of the samples.
const model = (BENCH_MODEL_SHAPES as readonly string[]).includes(values.model) ? benchModel(values.model as BenchModelShape) : values.model;
const bench = [join(import.meta.dirname, '..', 'bin', 'sftkit.js'), 'bench', 'train', '--model', model, '--batch-size', values['batch-size'], '--seq-len', values['seq-len'], '--steps', values.steps, '--warmup', values.warmup, '--threads', values.threads, '--json'];
try {
  const rec = spawnSync('perf', ['record', '-F', values.freq, '-o', data, '--', process.execPath, ...bench], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (rec.status !== 0) throw new Error(`perf record failed (${rec.status}):\n${rec.stderr}`);
  const rep = spawnSync('perf', ['report', '-i', data, '--no-children', '--sort', 'dso,sym', '--stdio', '--percent-limit', '0.05'], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (rep.status !== 0) throw new Error(`perf report failed (${rep.status}):\n${rep.stderr}`);
  const samples = /# Samples: (\S+) of event/.exec(rep.stdout)?.[1] ?? null;
  const rows: { percent: number; dso: string; symbol: string }[] = [];
  for (const line of rep.stdout.split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\S+)\s+\[([.k])\]\s+(.+?)\s*$/.exec(line);
    // C++ symbols of templated kernels run to kilobytes: keep their head.
    if (m) rows.push({ percent: Number(m[1]), dso: m[2]!, symbol: (m[3] === 'k' ? `[kernel] ${m[4]}` : m[4]!).slice(0, 200) });
  }
  // Ordered: the first pattern that matches a symbol names its category.
  const categories: [string, RegExp][] = [
    ['matmul (MKL/oneDNN gemm, incl. packing)', /gemm|mkl_blas|dnnl|jit_avx|brgemm/i],
    ['kernel (page faults, memory, scheduling)', /^\[kernel\]/],
    ['OpenMP runtime (barriers, spin)', /kmp|libgomp|libiomp|omp_/i],
    ['Node / V8 (JS, GC)', /^node /],
    ['attention (softmax, SDPA)', /softmax|flash|sdpa|attention/i],
    ['AdamW', /adam/i],
    ['activations (tanh, gelu, silu)', /tanh|gelu|silu|sigmoid|swiglu/i],
    ['copies, fill, memset', /memcpy|memmove|memset|copy_|fill_|cat_/i],
    ['reductions, norms', /reduce|norm|sum_|mean_|logsumexp/i],
    ['malloc/free', /malloc|free|_int_|arena|mmap/i],
  ];
  const byCategory: Record<string, number> = {};
  for (const r of rows) {
    const name = categories.find(([, re]) => re.test(r.symbol) || re.test(`${r.dso} ${r.symbol}`))?.[0] ?? 'other';
    byCategory[name] = (byCategory[name] ?? 0) + r.percent;
  }
  for (const k of Object.keys(byCategory)) byCategory[k] = Math.round(byCategory[k]! * 10) / 10;
  const result = rec.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  process.stdout.write(`${JSON.stringify({
    command: `sftkit ${bench.slice(1).join(' ')}`,
    bench: result ? JSON.parse(result) : null,
    samples,
    categories: Object.fromEntries(Object.entries(byCategory).sort((a, b) => b[1] - a[1])),
    top: rows.slice(0, Number(values.top)),
  })}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

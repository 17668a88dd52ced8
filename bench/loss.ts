// Fused masked cross-entropy vs the naive full-logits one: time of forward+backward and peak memory, each case in a
// fresh child process (peak RSS is per process). Usage: node --import tsx bench/loss.ts [--rows 1024] [--runs 3]
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { binding } from '../src/native/binding.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1024' }, runs: { type: 'string', default: '3' }, child: { type: 'string' } } });

if (values.child) {
  const [mode, V, C, N, runs] = values.child.split(',') as [string, string, string, string, string];
  const v = Number(V);
  const c = Number(C);
  const n = Number(N);
  const hidden = Float32Array.from({ length: n * c }, (_, i) => Math.sin(i) * 0.5);
  const weight = Float32Array.from({ length: v * c }, (_, i) => Math.cos(i) * 0.02);
  const labels = Int32Array.from({ length: n }, (_, i) => (i % 5 < 2 ? -100 : (i * 7919) % v));
  const native = binding();
  const before = process.resourceUsage().maxRSS;
  const times: number[] = [];
  for (let r = 0; r < Number(runs); r++) {
    const t = performance.now();
    await native.crossEntropy(hidden, [1, n, c], weight, [v, c], labels, [1, n], { naive: mode === 'naive' });
    times.push(performance.now() - t);
  }
  const peak = process.resourceUsage().maxRSS;
  console.log(JSON.stringify({ ms: Math.min(...times), peakRssMib: peak / 1024, extraPeakMib: (peak - before) / 1024 }));
  process.exit(0);
}

const rows = Number(values.rows);
const cases = [
  { name: 'GPT-2', V: 50257, C: 768 },
  { name: 'Qwen2-0.5B', V: 151936, C: 896 },
];
const results = [];
for (const k of cases) {
  for (const mode of ['fused', 'naive'] as const) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--child', `${mode},${k.V},${k.C},${rows},${values.runs}`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    results.push({ model: k.name, V: k.V, C: k.C, rows, mode, ...JSON.parse(r.stdout.trim().split('\n').pop() as string) });
  }
}
console.log(JSON.stringify({ bench: 'loss', threads: binding().getNumThreads(), results }, null, 2));

// The memory of loading a model, alone (issue 24): run in a process of its own, it loads the model of --model with
// --base-dtype (and LoRA adapters with --lora-r) and prints one JSON object:
//   {"base_dtype", "disk_bytes", "disk_dtypes", "rss_before_mib", "peak_rss_mib", "load_peak_mib", "rss_after_mib",
//    "load_ms", "base_bytes", "maxrss_mib"}
// load_peak_mib is the increase of the resident set during loadModel(): the high-water mark after it (VmHWM, reset to
// the current RSS through /proc/self/clear_refs just before loading) less the RSS just before. Before that the runtime
// is warmed up (--warm, default on: the addon and libtorch loaded, a tiny fixture model loaded and disposed with the
// same options), so that what is measured is this model's load, not the first use of libtorch's allocators and
// thread pools. Where clear_refs cannot be written the peak is process.resourceUsage().maxRSS (a high-water mark over
// the whole process, at least as high). base_bytes: the addon's baseStats().bytes, the frozen store it holds.
//   node --import tsx bench/load-memory.ts --model DIR [--base-dtype float32|bfloat16|int8|nf4] [--double-quant]
//        [--lora-r R] [--threads 2] [--no-warm]
// bench/compare/run.ts runs it beside each issue-24 row; test/e2e/base-dtype-memory.test.ts runs it on a small model.
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { binding, loadModel, type LoadModelOptions } from '../src/native/index.ts';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string' },
    'base-dtype': { type: 'string', default: 'float32' },
    'double-quant': { type: 'boolean', default: false },
    'lora-r': { type: 'string' },
    threads: { type: 'string', default: '2' },
    'no-warm': { type: 'boolean', default: false },
  },
});
if (!a.model) throw new Error('--model DIR is required');
const dir = a.model;
const mib = (bytes: number) => bytes / 2 ** 20;

function status(key: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile' | 'RssShmem'): number | null {
  try {
    const kb = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : null;
  } catch {
    return null;
  }
}
/** Resets VmHWM to the current RSS (Linux >= 4.0); false where it cannot. */
function resetPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

// The weights on disk and their dtypes (from the safetensors headers).
let diskBytes = 0;
const dtypes = new Set<string>();
for (const f of readdirSync(dir).filter((n) => n.endsWith('.safetensors'))) {
  diskBytes += statSync(join(dir, f)).size;
  const fd = openSync(join(dir, f), 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const head = Buffer.alloc(n);
    readSync(fd, head, 0, n, 8);
    for (const [k, v] of Object.entries(JSON.parse(head.toString('utf8')) as Record<string, { dtype?: string }>)) if (k !== '__metadata__' && v.dtype) dtypes.add(v.dtype);
  } finally {
    closeSync(fd);
  }
}

const threads = Number(a.threads);
const loraR = a['lora-r'] ? Number(a['lora-r']) : undefined;
const options: LoadModelOptions = {
  threads,
  ...(a['base-dtype'] !== 'float32' ? { baseDtype: a['base-dtype'] as LoadModelOptions['baseDtype'] } : {}),
  ...(a['double-quant'] ? { doubleQuant: true } : {}),
  ...(loraR ? { lora: { r: loraR, alpha: 2 * loraR } } : {}),
};
binding();
if (!a['no-warm']) {
  const warm = await loadModel(join(import.meta.dirname, '..', 'test', 'fixtures', 'models', 'tiny-llama'), options);
  await warm.dispose();
}
const rssBefore = status('VmRSS') ?? process.memoryUsage().rss;
const reset = resetPeak();
const t0 = performance.now();
const model = await loadModel(dir, options);
const loadMs = performance.now() - t0;
const hwm = reset ? status('VmHWM') : null;
const maxRss = process.resourceUsage().maxRSS * 1024;
const peak = hwm ?? maxRss;
let stats: { dtype: string; bytes: number } | null = null;
try {
  stats = model.baseStats();
} catch {
  // an addon that predates issue 24
}
// What the resident set is made of after the load: anonymous memory (glibc), file pages (mapped safetensors) and
// shared memory (the CPU pool's memfd).
const parts = { anon: status('RssAnon'), file: status('RssFile'), shmem: status('RssShmem') };
const out = {
  model: dir,
  base_dtype: a['base-dtype'],
  double_quant: a['double-quant'],
  disk_bytes: diskBytes,
  disk_dtypes: [...dtypes].sort(),
  rss_before_mib: mib(rssBefore),
  peak_rss_mib: mib(peak),
  load_peak_mib: mib(peak - rssBefore),
  rss_after_mib: mib(status('VmRSS') ?? process.memoryUsage().rss),
  maxrss_mib: mib(maxRss),
  rss_after_parts_mib: { anon: mib(parts.anon ?? NaN), file: mib(parts.file ?? NaN), shmem: mib(parts.shmem ?? NaN) },
  peak_from: hwm !== null ? 'VmHWM after clear_refs' : 'maxRSS',
  load_ms: loadMs,
  base_bytes: stats?.bytes ?? null,
  base_stats_dtype: stats?.dtype ?? null,
  threads,
};
await model.dispose();
process.stdout.write(`${JSON.stringify(out)}\n`);

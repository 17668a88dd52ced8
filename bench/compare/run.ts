// bench/compare: the same training workloads through sftkit and through Python (PyTorch + transformers, TRL's
// SFTTrainer) in ONE run on this machine, then a JSON + Markdown table of ratios, MFU and peak memory.
//
//   node --import tsx bench/compare/run.ts [--steps 3] [--warmup 1] [--threads 2] [--records 400]
//        [--repeats 1] [--sft-repeats 1] [--only steps|sft|all] [--rows TEXT,...] [--python PY] [--skip-python]
//        [--skip-torch-preload]
//        [--setup-only] [--out bench/results] [--update-readme] [--render bench/results/compare.json]
//        [--model-dir SHAPE=DIR ...]
//
// Every measurement runs in a process of its own (peak RSS is per process), one at a time. With --repeats N the two
// sides of a workload run alternately N times (A B A B ...) and each side's best run is reported: the shared host
// drifts by ~10% over minutes and noise only ever slows a run down; every run is kept in the JSON. The models are random
// (built once by `sftkit bench build-model` into the cache) and both sides load the same files. The Python side
// runs in its own venv (SFTKIT_BENCH_VENV, default ~/.cache/sftkit/bench-venv) created from the configured pip index;
// when Python or the wheels are missing its columns are skipped with a message, the sftkit columns still run.
// sftkit loads its MKL dispatch library (native/preload/mkl_dispatch.cc) so that MKL runs its AVX-512 kernels on AMD
// CPUs too; PyTorch as shipped does not. Unless --skip-torch-preload, every Python workload runs a third time with that
// library LD_PRELOADed (a separate table): the share of sftkit's lead that is MKL's kernel choice alone.
// --loss-memory adds, per row, the loss's memory on both sides: PyTorch's measured by loss_memory.py (transformers'
// LM head + ForCausalLMLoss forward and backward at the row's shapes), sftkit's the one [chunk, V] fp32 buffer its fused
// loss works in (native/engine/loss.cc: auto_chunk_rows, ce_chunks: softmax and its gradient in place) and the
// [N, C] gradient of the labelled rows' hidden states.
// --rows keeps only the training-step rows whose name contains one of the given texts (e.g. --rows llama3.2-1b,gemma3-1b).
// Issue 24's rows (LoRA over a low-precision frozen base: qwen2.5-3b-lora-bf16, qwen2.5-3b-lora-int8,
// qwen2.5-3b-lora-nf4, qwen2.5-7b-lora-bf16, qwen2.5-7b-lora-nf4) run only when --rows names them (the 7B rows take
// most of an hour, alone on the machine), e.g.
//   node --import tsx bench/compare/run.ts --only steps --rows qwen2.5-3b-lora --steps 2 --skip-torch-preload
//        --out bench/results/compare-issue24
// sftkit trains with `--base-dtype`, PyTorch + peft with the base loaded in bf16 (the peers' way to fit it); the
// PyTorch runs of one model are shared by its rows (the same command: run once per repeat, reused). Beside each row
// the memory of loading alone: bench/load-memory.ts (sftkit, the row's base dtype) and torch_bench.py --load-only.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, freemem, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { executedTrainFlops, headParameters, matmulParameters, trainFlopsPerToken } from '../../src/bench/flops.ts';
import { randomBatch } from '../../src/bench/train-bench.ts';
import { mklDispatchLibrary } from '../../src/native/binding.ts';
import { readModelConfig } from '../../src/native/model-config.ts';
import { type BenchModelShape, benchModel, cacheRoot, sftkitBin } from '../bench-models.ts';
import { type CompareData, type SftRow, type StepRow, writeReport } from './report.ts';

const root = resolve(import.meta.dirname, '..', '..');
const here = import.meta.dirname;

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    threads: { type: 'string', default: '2' },
    records: { type: 'string', default: '400' },
    repeats: { type: 'string', default: '1' },
    'sft-repeats': { type: 'string', default: '1' },
    only: { type: 'string', default: 'all' },
    rows: { type: 'string' },
    python: { type: 'string' },
    'skip-python': { type: 'boolean', default: false },
    'skip-torch-preload': { type: 'boolean', default: false },
    'loss-memory': { type: 'boolean', default: false },
    out: { type: 'string', default: join(root, 'bench', 'results') },
    'update-readme': { type: 'boolean', default: false },
    'setup-only': { type: 'boolean', default: false },
    render: { type: 'string' },
    'model-dir': { type: 'string', multiple: true },
  },
});
// --model-dir SHAPE=DIR: the rows of SHAPE load DIR instead of the cached random model (a small stand-in, to try a
// row's plumbing end to end before the real run).
const modelDirs = new Map((args['model-dir'] ?? []).map((kv) => kv.split('=') as [string, string]));
const steps = Number(args.steps), warmup = Number(args.warmup), threads = Number(args.threads), records = Number(args.records);
const only = args.only as 'steps' | 'sft' | 'all';
const rowFilter = args.rows?.split(',').map((r) => r.trim()).filter(Boolean) ?? null;
const repeats = Number(args.repeats), sftRepeats = Number(args['sft-repeats']);
for (const [k, v] of [['--repeats', repeats], ['--sft-repeats', sftRepeats]] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${k}: expected an integer >= 1, got ${v}`);
}

/** Runs `sides` alternately `n` times; per side the run with the highest `key`, and every run. */
function alternate<S extends string>(n: number, key: string, sides: Record<S, () => Record<string, unknown> | null>) {
  const runs = Object.fromEntries(Object.keys(sides).map((k) => [k, [] as Record<string, unknown>[]])) as Record<S, Record<string, unknown>[]>;
  for (let i = 0; i < n; i++) {
    for (const side of Object.keys(sides) as S[]) {
      const r = sides[side]();
      if (r) runs[side].push(r);
    }
  }
  const best = (rs: Record<string, unknown>[]) => (rs.length ? rs.reduce((a, b) => (Number(b[key]) > Number(a[key]) ? b : a)) : null);
  return { best: Object.fromEntries(Object.keys(sides).map((k) => [k, best(runs[k as S])])) as Record<S, Record<string, unknown> | null>, runs };
}
const log = (m: string) => process.stderr.write(`compare: ${m}\n`);
const readmePath = args['update-readme'] ? join(root, 'bench', 'README.md') : null;

// --render FILE: the tables of a finished run (its compare.json) rebuilt with this version of report.ts; nothing runs.
if (args.render) {
  process.stdout.write(writeReport(JSON.parse(readFileSync(args.render, 'utf8')) as CompareData, args.out!, readmePath, log));
  process.exit(0);
}

// ---- processes ------------------------------------------------------------------------------------------------

function runJson(cmd: string, argv: string[], what: string, env: Record<string, string> = {}): Record<string, unknown> | null {
  const envText = Object.entries(env).map(([k, v]) => `${k}=${v} `).join('');
  log(`${what}: ${envText}${[cmd, ...argv].map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}`);
  const t0 = Date.now();
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, OMP_NUM_THREADS: String(threads), ...env } });
  if (r.status !== 0) {
    log(`${what} FAILED (exit ${r.status}):\n${(r.stderr ?? '').split('\n').slice(-25).join('\n')}`);
    return null;
  }
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) {
    log(`${what}: no JSON on stdout`);
    return null;
  }
  const out = JSON.parse(line) as Record<string, unknown>;
  log(`${what}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s ${line}`);
  return out;
}

// ---- Python ---------------------------------------------------------------------------------------------------

function findPython(): { python: string | null; why: string } {
  if (args['skip-python']) return { python: null, why: '--skip-python' };
  const probe = (py: string) => spawnSync(py, ['-c', 'import torch, transformers, trl, datasets, peft; print(torch.__version__)'], { encoding: 'utf8' }).status === 0;
  if (args.python) return probe(args.python) ? { python: args.python, why: '' } : { python: null, why: `${args.python} cannot import torch, transformers, trl, datasets, peft` };
  const venv = process.env.SFTKIT_BENCH_VENV ?? join(cacheRoot(), 'bench-venv');
  const py = join(venv, 'bin', 'python');
  if (existsSync(py) && probe(py)) return { python: py, why: '' };
  const sys = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  if (sys.status !== 0) return { python: null, why: 'python3 is not installed' };
  log(`creating the Python venv ${venv} from the configured pip index (once)`);
  if (!existsSync(py) && spawnSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' }).status !== 0) {
    return { python: null, why: `python3 -m venv ${venv} failed (is python3-venv installed?)` };
  }
  const extra = (process.env.SFTKIT_BENCH_PIP_ARGS ?? '').split(/\s+/).filter(Boolean);
  const pip = spawnSync(py, ['-m', 'pip', 'install', '--quiet', 'torch==2.13.0+cpu', 'transformers', 'trl', 'datasets', 'accelerate', 'peft', ...extra], { stdio: 'inherit' });
  if (pip.status !== 0 || !probe(py)) return { python: null, why: 'pip could not install torch==2.13.0+cpu, transformers, trl, datasets, peft from the configured index' };
  return { python: py, why: '' };
}

// ---- the run --------------------------------------------------------------------------------------------------

const started = new Date();
const cpuFlags = (readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/);
const { python, why } = findPython();
if (!python) log(`the Python columns are skipped: ${why}`);
if (args['setup-only']) {
  log(python ? `Python ready: ${python}` : 'no Python side');
  process.exit(python ? 0 : 1);
}
/** Environment of the preloaded Python runs, or null when they are not run (no library, no AVX-512: nothing changes). */
const preloadEnv = ((): Record<string, string> | null => {
  if (args['skip-torch-preload'] || !python) return null;
  const lib = mklDispatchLibrary();
  const avx512 = cpuFlags.includes('avx512f');
  if (!lib || !avx512) {
    log(`the PyTorch + MKL dispatch runs are skipped: ${lib ? 'no AVX-512 on this CPU' : 'no libsftkit_mkl_dispatch.so beside the addon'}`);
    return null;
  }
  return { LD_PRELOAD: lib };
})();
const torchVersion = python ? spawnSync(python, ['-c', 'import torch, transformers, trl; print(torch.__version__, transformers.__version__, trl.__version__)'], { encoding: 'utf8' }).stdout.trim() : null;

const matmulSftkit = runJson(process.execPath, [sftkitBin, 'bench', 'matmul', '--size', '2048', '--reps', '10', '--threads', String(threads), '--json'], 'matmul (sftkit/libtorch)');
const matmulTorch = python
  ? runJson(python, ['-c', `import torch,time,json\ntorch.set_num_threads(${threads})\na=torch.randn(2048,2048);b=torch.randn(2048,2048);c=a@b\nbest=1e9\nfor _ in range(10):\n  t=time.perf_counter();c=a@b;best=min(best,time.perf_counter()-t)\nprint(json.dumps({"gflops":2*2048**3/best/1e9,"ms":best*1e3}))`], 'matmul (PyTorch)')
  : null;
/**
 * The host's speed drifts (its matmul ceiling measured 92-141 GFLOP/s within two hours), so each training run is
 * preceded by a matmul measurement of its own, kept in the run's record as ceiling_gflops.
 */
function withCeiling(run: () => Record<string, unknown> | null): () => Record<string, unknown> | null {
  return () => {
    const m = runJson(process.execPath, [sftkitBin, 'bench', 'matmul', '--size', '2048', '--reps', '10', '--threads', String(threads), '--json'], 'matmul beside the next run');
    const r = run();
    return r ? { ...r, ceiling_gflops: Number(m?.gflops ?? 0) } : null;
  };
}

interface Workload {
  /** Issue 24's rows: the name --rows selects them by (they run only when it does: optIn). */
  id?: string;
  shape: BenchModelShape;
  batch: number;
  seqLen: number;
  checkpointing: boolean;
  loraR?: number;
  /** LoRA target modules, both sides (default all-linear). */
  loraTargets?: string;
  /** sftkit's --base-dtype. */
  baseDtype?: 'bfloat16' | 'int8' | 'nf4';
  /** sftkit's --autocast (the base's matmuls in bf16, as the PyTorch side computes). */
  autocast?: boolean;
  /** The dtype PyTorch loads the model in (torch_bench.py --dtype; default float32). */
  torchDtype?: 'float32' | 'bfloat16';
  optIn?: boolean;
}

/** The bytes of the weights of a model directory: the index's total_size, else the safetensors files' sizes. */
function readIndexSize(dir: string): number {
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) return Number((JSON.parse(readFileSync(index, 'utf8')) as { metadata?: { total_size?: number } }).metadata?.total_size ?? 0);
  return statSync(join(dir, 'model.safetensors')).size;
}

const stepRows: StepRow[] = [];
if (only !== 'sft') {
  // Issue 24: LoRA r16 on every projection of the layers (q, k, v, o, gate, up, down: peft's all-linear for Qwen2).
  const q7 = 'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj';
  const issue24 = (id: string, shape: BenchModelShape, baseDtype: 'bfloat16' | 'int8' | 'nf4', autocast = false): Workload => ({
    id, shape, batch: 1, seqLen: 512, checkpointing: true, loraR: 16, loraTargets: q7, baseDtype, torchDtype: 'bfloat16', optIn: true,
    ...(autocast ? { autocast } : {}),
  });
  const workloads: Workload[] = [
    { shape: 'gpt2-124m', batch: 4, seqLen: 256, checkpointing: false },
    { shape: 'gpt2-124m', batch: 8, seqLen: 128, checkpointing: false },
    { shape: 'qwen2-0.5b', batch: 2, seqLen: 256, checkpointing: false },
    // Both sides with activation checkpointing (transformers' gradient_checkpointing_enable, non-reentrant).
    { shape: 'qwen2-0.5b', batch: 2, seqLen: 256, checkpointing: true },
    // Issue 22. Full fp32 fine-tuning of Gemma-3-1B (1.0B parameters, ~15 GiB of weights, gradients and AdamW
    // state) fits both sides in 24 GiB; Llama-3.2-1B's (1.24B, ~18.4 GiB) leaves PyTorch no room for the rest, so
    // its row trains rank-16 LoRA adapters on every linear layer (peft's all-linear: not the LM head) on both sides.
    { shape: 'gemma3-1b', batch: 1, seqLen: 256, checkpointing: false },
    { shape: 'llama3.2-1b', batch: 1, seqLen: 256, checkpointing: false, loraR: 16 },
    // Issue 24: random Qwen2.5-3B / 7B shapes stored in BF16 (as on the hub), B1 T512, LoRA r16, checkpointing.
    issue24('qwen2.5-3b-lora-bf16', 'qwen2.5-3b-bf16', 'bfloat16'),
    issue24('qwen2.5-3b-lora-int8', 'qwen2.5-3b-bf16', 'int8'),
    issue24('qwen2.5-3b-lora-nf4', 'qwen2.5-3b-bf16', 'nf4'),
    issue24('qwen2.5-7b-lora-bf16', 'qwen2.5-7b-bf16', 'bfloat16'),
    issue24('qwen2.5-7b-lora-nf4', 'qwen2.5-7b-bf16', 'nf4'),
    // The same with sftkit's --autocast: the base's matmuls in bf16 as on the PyTorch side (fast where the CPU has
    // bf16 dot products, AVX512_BF16 / AMX; the default fp32 compute is for CPUs without them).
    issue24('qwen2.5-3b-lora-bf16-autocast', 'qwen2.5-3b-bf16', 'bfloat16', true),
    issue24('qwen2.5-3b-lora-nf4-autocast', 'qwen2.5-3b-bf16', 'nf4', true),
    issue24('qwen2.5-7b-lora-bf16-autocast', 'qwen2.5-7b-bf16', 'bfloat16', true),
    issue24('qwen2.5-7b-lora-nf4-autocast', 'qwen2.5-7b-bf16', 'nf4', true),
  ];
  const rowName = (w: Workload) =>
    w.id
      ? `${w.id} B${w.batch} T${w.seqLen}, LoRA r${w.loraR} ${w.loraTargets === q7 ? 'q,k,v,o,gate,up,down' : w.loraTargets}, gradient checkpointing; ` +
        `sftkit --base-dtype ${w.baseDtype}${w.autocast ? ' --autocast' : ''}, PyTorch base in ${w.torchDtype === 'bfloat16' ? 'bf16' : 'fp32'}`
      : `${w.shape} B${w.batch} T${w.seqLen}${w.checkpointing ? ', both with gradient checkpointing' : ''}${w.loraR ? `, both LoRA r${w.loraR} all-linear` : ''}`;
  // The PyTorch runs of identical commands (the rows of one model that differ only on sftkit's side): the i-th run of
  // a command is made once and reused by the later rows.
  const torchRuns = new Map<string, (Record<string, unknown> | null)[]>();
  const loadRuns = new Map<string, Record<string, unknown> | null>();
  const once = (key: string, what: () => Record<string, unknown> | null) => {
    if (!loadRuns.has(key)) loadRuns.set(key, what());
    return loadRuns.get(key)!;
  };
  const selected = workloads.filter((w) => (rowFilter ? rowFilter.some((f) => rowName(w).includes(f)) : !w.optIn));
  for (const w of selected) {
    const dir = modelDirs.get(w.shape) ?? benchModel(w.shape, log);
    const name = rowName(w);
    const common = [
      '--batch-size', String(w.batch), '--seq-len', String(w.seqLen), '--steps', String(steps), '--warmup', String(warmup), '--threads', String(threads),
      ...(w.checkpointing ? ['--gradient-checkpointing'] : []),
      ...(w.loraR ? ['--lora-r', String(w.loraR), '--lora-targets', w.loraTargets ?? 'all-linear'] : []),
    ];
    const torchArgs = [join(here, 'torch_bench.py'), '--model', dir, ...common, ...(w.torchDtype ? ['--dtype', w.torchDtype] : [])];
    const sftkitArgs = [sftkitBin, 'bench', 'train', '--model', dir, ...common, ...(w.baseDtype ? ['--base-dtype', w.baseDtype] : []), ...(w.autocast ? ['--autocast'] : []), '--json'];
    const torchRun = (env?: Record<string, string>) => {
      const key = JSON.stringify([torchArgs, env ?? null]);
      let i = 0;
      return () => {
        const done = torchRuns.get(key) ?? [];
        torchRuns.set(key, done);
        const k = i++;
        if (k < done.length) {
          log(`${name} PyTorch+transformers${env ? ' + MKL dispatch' : ''}: run ${k + 1} of this command is reused from an earlier row`);
          return done[k]!;
        }
        const r = python ? runJson(python, torchArgs, `${name} PyTorch+transformers${env ? ' + MKL dispatch' : ''}`, env) : null;
        done.push(r);
        return r;
      };
    };
    const torchSide = torchRun();
    const torchIsaSide = preloadEnv ? torchRun(preloadEnv) : null;
    const { best, runs } = alternate(repeats, 'tokens_per_s', {
      sftkit: withCeiling(() => runJson(process.execPath, sftkitArgs, `${name} sftkit`)),
      torch: withCeiling(torchSide),
      torchIsa: torchIsaSide ? withCeiling(torchIsaSide) : () => null,
    });
    // Issue 24: the memory of loading alone, each side in a process of its own.
    let load: StepRow['load'];
    if (w.baseDtype) {
      const disk = readIndexSize(dir);
      load = {
        diskBytes: disk,
        sftkit: once(`sftkit ${dir} ${w.baseDtype}`, () =>
          runJson(process.execPath, ['--import', 'tsx', join(here, '..', 'load-memory.ts'), '--model', dir, '--base-dtype', w.baseDtype!, '--threads', String(threads)], `${name} sftkit load only`)),
        torch: python
          ? once(`torch ${dir} ${w.torchDtype}`, () => runJson(python, [join(here, 'torch_bench.py'), '--model', dir, ...common, '--dtype', w.torchDtype ?? 'float32', '--load-only'], `${name} PyTorch load only`))
          : null,
      };
    }
    const { sftkit, torch, torchIsa } = best;
    const spec = readModelConfig(dir).spec;
    const b = randomBatch(w.batch, w.seqLen, spec.vocabSize, 1000);
    const realTokens = b.attentionMask.reduce((s, m) => s + m, 0);
    // Targets after the shift: labels[t + 1] of each row.
    let labelRows = 0;
    for (let r = 0; r < w.batch; r++) for (let t = 1; t < w.seqLen; t++) labelRows += b.labels[r * w.seqLen + t] !== -100 ? 1 : 0;
    // LoRA: the frozen weights get no gradient, so 4 (not 6) x their parameters per token (forward and the input
    // gradients; the rank-16 adapters' own FLOPs are left out, under 1%).
    const frozen = w.loraR ? 2 * matmulParameters(spec) : 0;
    const frozenHead = w.loraR ? 2 * headParameters(spec) : 0;
    const executed = (tokens: number, headRows: number) => executedTrainFlops(spec, w.seqLen, tokens, headRows) - tokens * (frozen - frozenHead) - headRows * frozenHead;
    let lossMemory: StepRow['lossMemory'];
    if (args['loss-memory']) {
      // sftkit: rows per chunk as auto_chunk_rows (native/engine/loss.cc): 32M logits, at least 16, at most N.
      const chunk = Math.max(1, Math.min(Math.max(16, Math.floor((32 << 20) / spec.vocabSize)), labelRows));
      const lossArgs = ['--batch-size', String(w.batch), '--seq-len', String(w.seqLen), '--vocab', String(spec.vocabSize), '--hidden', String(spec.hiddenSize), '--threads', String(threads)];
      const torchLoss = python ? runJson(python, [join(here, 'loss_memory.py'), ...lossArgs, ...(w.loraR ? ['--frozen-head'] : [])], `${name} PyTorch loss memory`) : null;
      lossMemory = {
        sftkit: { chunk_rows: chunk, labelled_rows: labelRows, loss_mib: (chunk * spec.vocabSize * 4 + labelRows * spec.hiddenSize * 4) / 2 ** 20 },
        torch: torchLoss as Record<string, number> | null,
      };
    }
    stepRows.push({
      ...(lossMemory ? { lossMemory } : {}),
      ...(w.baseDtype ? { baseDtype: w.baseDtype, torchDtype: w.torchDtype ?? 'float32', load } : {}),
      name,
      shape: w.shape,
      batch: w.batch,
      seqLen: w.seqLen,
      flopsPerToken: trainFlopsPerToken(spec, w.seqLen) - frozen,
      realTokens,
      labelRows,
      modelFlops: realTokens * (trainFlopsPerToken(spec, w.seqLen) - frozen),
      sftkitFlops: executed(realTokens, labelRows),
      torchFlops: executed(w.batch * w.seqLen, w.batch * w.seqLen),
      sftkit: sftkit as Record<string, number> | null,
      torch: torch as Record<string, number> | null,
      torchIsa: torchIsa as Record<string, number> | null,
      runs,
    });
  }
}

const sftRows: SftRow[] = [];
if (only !== 'steps') {
  const dir = benchModel('gpt2-124m', log);
  const data = join(root, 'test', 'fixtures', 'data', 'instruction-data.json');
  const work = mkdtempSync(join(tmpdir(), 'sftkit-compare-'));
  const subset = join(work, 'instruction-data.json');
  writeFileSync(subset, JSON.stringify((JSON.parse(readFileSync(data, 'utf8')) as unknown[]).slice(0, records)));
  let runNo = 0;
  const sftkitSft = (extra: string[], tag: string) => {
    const out = join(work, `run-${tag}-${runNo++}`); // a fresh directory each run: an existing one would resume
    const flags = ['train', '--model', dir, '--data', subset, '--out', out, '--epochs', '1', '--lr', '5e-5', '--val-split', '0', '--test-split', '0', '--threads', String(threads), '--log-every', '1000', ...extra];
    const r = spawnSync(process.execPath, [sftkitBin, ...flags], { cwd: root, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
    log(`SFT sftkit ${tag}: sftkit ${flags.join(' ')}`);
    if (r.status !== 0) {
      log(`SFT sftkit ${tag} FAILED:\n${r.stderr.split('\n').slice(-20).join('\n')}`);
      return null;
    }
    const recs = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
    const train = recs.filter((x) => x.type === 'train');
    const last = train[train.length - 1]!;
    const trained = train.reduce((s, x) => s + Number(x.labelTokens), 0);
    const res = { unpadded_tokens_per_s: Number(last.tokensPerSec), tokens: Number(last.tokensSeen), trained_tokens: trained, steps: train.length, train_loss: Number(last.loss) };
    log(`SFT sftkit ${tag}: ${JSON.stringify(res)}`);
    return res;
  };
  const trlRun = (mode: 'padded' | 'packed', batch: number, env?: Record<string, string>) =>
    python
      ? runJson(python, [join(here, 'trl_sft.py'), '--model', dir, '--data', subset, '--records', String(records), '--batch-size', String(batch), '--mode', mode, '--threads', String(threads)], `SFT TRL ${mode}${env ? ' + MKL dispatch' : ''}`, env)
      : null;
  const sftRow = (name: string, trlMode: 'padded' | 'packed', sftkitFlags: string[], tag: string, batch: number) => {
    const { best, runs } = alternate(sftRepeats, 'unpadded_tokens_per_s', {
      sftkit: () => sftkitSft(sftkitFlags, tag),
      trl: () => trlRun(trlMode, batch),
      trlIsa: () => (preloadEnv ? trlRun(trlMode, batch, preloadEnv) : null),
    });
    sftRows.push({ name, sftkit: best.sftkit as Record<string, number> | null, trl: best.trl, trlIsa: best.trlIsa, trlMode, runs });
  };
  sftRow(`SFT ${records} alpaca records, B8, grouped by length vs TRL padded`, 'padded', ['--batch-size', '8', '--group-by-length'], 'grouped', 8);
  sftRow(`SFT ${records} alpaca records, packed rows of 1024, B2 vs TRL packing`, 'packed', ['--batch-size', '2', '--packing', '--max-length', '1024'], 'packed', 2);
  rmSync(work, { recursive: true, force: true });
}

// ---- report ---------------------------------------------------------------------------------------------------

const cpuModel = cpus()[0]?.model ?? 'unknown';
const isa = ['avx512f', 'avx2', 'fma'].filter((f) => cpuFlags.includes(f)).join(', ');
const machine = {
  cpu: cpuModel,
  cores: cpus().length,
  isa,
  memGiB: +(totalmem() / 2 ** 30).toFixed(1),
  freeMemGiBAtStart: +(freemem() / 2 ** 30).toFixed(1),
  node: process.version,
  libtorch: readLibtorch(),
  python: torchVersion ? `torch ${torchVersion.split(' ')[0]}, transformers ${torchVersion.split(' ')[1]}, trl ${torchVersion.split(' ')[2]}` : null,
  threads,
};
function readLibtorch(): string {
  try {
    const r = JSON.parse(readFileSync(join(root, 'libtorch.json'), 'utf8')) as { version: string; variant: string };
    return `${r.version} ${r.variant}`;
  } catch {
    return 'unknown';
  }
}

const data: CompareData = {
  date: started.toISOString(),
  machine,
  repeats,
  sftRepeats,
  preloadLibrary: preloadEnv?.LD_PRELOAD ?? null,
  matmul: { sftkit: matmulSftkit, torch: matmulTorch },
  steps: stepRows,
  sft: sftRows,
};
process.stdout.write(writeReport(data, args.out!, readmePath, log));

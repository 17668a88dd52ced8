// The device check's steps (run by scripts/device-check.sh, which unpacks node, builds the addon and then calls this):
//   node --import tsx bench/device/check.ts --device cuda|cpu [--quick] [--out DIR] [--python PY]
//        [--budget SECONDS --started-at EPOCH_S] [--native-suite full|subset|skip] [--build-json FILE]
//        [--only correctness,training,throughput]
// 1. correctness on the device: the native test suite, CPU-vs-device parity on the tiny fixture models (fp32 at the
//    parity suite's tolerances, bf16 autocast at looser stated ones), greedy generation;
// 2. training on the device: the shipped model on the shipped data (the loss falls; saved, reloaded on the CPU with
//    the same logits), a bf16-autocast run, LoRA and DPO steps against the CPU; --nproc 1 over NCCL (a group of one
//    on cuda:0: the same losses as without it, gradients unchanged by the all-reduce; skipped on the CPU and when the
//    addon was built without NCCL);
// 3. throughput, one run per side, alternating: sftkit vs PyTorch + transformers eager (SDPA) and torch.compile, bf16
//    autocast over fp32 weights everywhere (sftkit's bf16 weights apart): tokens/s, MFU against the run's matmul
//    ceiling, peak memory.
// --device cpu runs the same steps on the CPU with tiny shapes (CI: test/e2e/device-check.test.ts). results.json and
// results.md go to --out after every step; the exit code is 1 when a step failed.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { trainFlopsPerToken } from '../../src/bench/flops.ts';
import { randomBatch } from '../../src/bench/train-bench.ts';
import { binding } from '../../src/native/binding.ts';
import { connectProcessGroup } from '../../src/native/distributed.ts';
import { readModelConfig } from '../../src/native/model-config.ts';
import { loadModel, type ModelDevice } from '../../src/native/model.ts';
import { freePort } from '../../src/training/launch.ts';
import { readMetrics } from '../../src/report/metrics.ts';
import { train } from '../../src/recipes/sft.ts';
import { batchOf } from '../../test/native/helpers/batches.ts';
import { benchModel, sftkitBin } from '../bench-models.ts';
import { compareGradients, maxAbsDiff, modelParity, relError, relNormError, TOLERANCES, type ModelParity } from './parity.ts';
import { type Ceiling, type DeviceCheckResults, type StepGroup, type StepResult, type StepStatus, type ThroughputRow, type ThroughputSide, writeResults } from './results.ts';

const root = resolve(import.meta.dirname, '..', '..');
const fixtures = join(root, 'test', 'fixtures');
const { values: args } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    python: { type: 'string' },
    budget: { type: 'string' },
    'started-at': { type: 'string' },
    'native-suite': { type: 'string' },
    'build-json': { type: 'string' },
    threads: { type: 'string' },
    only: { type: 'string' },
  },
});
if (args.device !== 'cuda' && args.device !== 'cpu') throw new Error(`--device: expected cuda or cpu, got ${args.device}`);
const mode = args.device;
const device: ModelDevice = mode;
const quick = args.quick;
const out = resolve(args.out ?? process.env.OUT ?? join(root, 'device-out'));
mkdirSync(out, { recursive: true });
const startedAt = args['started-at'] ? Number(args['started-at']) * 1000 : Date.now();
const budgetMs = args.budget ? Number(args.budget) * 1000 : Infinity;
// The native suite is the CPU suite (CI runs it whole); on the GPU machine a subset proves the CUDA build loads and
// trains on the CPU, and `--native-suite full` runs all of it when a run has the time.
const nativeSuite = (args['native-suite'] ?? 'subset') as 'full' | 'subset' | 'skip';
if (!['full', 'subset', 'skip'].includes(nativeSuite)) throw new Error(`--native-suite: expected full, subset or skip, got ${nativeSuite}`);
const GROUPS = ['correctness', 'training', 'throughput'] as const;
const only = new Set<string>(args.only ? args.only.split(',').map((g) => g.trim()) : GROUPS);
for (const g of only) if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`--only: expected groups of ${GROUPS.join(', ')}, got ${g}`);
const threads = args.threads ? Number(args.threads) : Math.min(cpus().length, mode === 'cpu' ? 2 : 8);
const elapsed = () => (Date.now() - startedAt) / 1000;
const remaining = () => (startedAt + budgetMs - Date.now()) / 1000;
const log = (m: string) => process.stderr.write(`[device-check +${elapsed().toFixed(0)}s] ${m}\n`);
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-device-check-'));

// ---- the record ------------------------------------------------------------------------------------------------

const buildInfo: Record<string, unknown> = args['build-json'] && existsSync(args['build-json']) ? (JSON.parse(readFileSync(args['build-json'], 'utf8')) as Record<string, unknown>) : {};
const results: DeviceCheckResults = {
  schema: 1,
  mode,
  quick,
  started: new Date(startedAt).toISOString(),
  finished: null,
  wallSeconds: 0,
  machine: machineInfo(),
  build: buildInfo,
  tolerances: { ...TOLERANCES, note: 'fp32: TF32 off (libtorch default); bf16: device under bf16 autocast against the fp32 CPU reference' },
  steps: [],
  throughput: { ceilings: [], ceilingGflops: null, rows: [] },
  summary: { passed: 0, failed: 0, skipped: 0, ok: true },
};
const save = () => {
  results.wallSeconds = elapsed();
  writeResults(out, results);
};

function machineInfo(): Record<string, unknown> {
  const m: Record<string, unknown> = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memGiB: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    gpu: null,
    python: null,
  };
  const smi = spawnSync('nvidia-smi', ['--query-gpu=name,compute_cap,memory.total,driver_version', '--format=csv,noheader,nounits'], { encoding: 'utf8' });
  if (smi.status === 0) {
    const [name, cap, mem, driver] = smi.stdout.trim().split('\n')[0]!.split(',').map((s) => s.trim());
    m.gpu = { name, computeCapability: cap, memoryMiB: Number(mem), driver };
  }
  return m;
}

interface Outcome {
  status?: StepStatus;
  reason?: string;
  details?: Record<string, unknown>;
  /** The step's seconds when its work ran earlier (the throughput rounds). */
  seconds?: number;
}

/** Runs one step: its outcome (or its exception, as a failure) into the record, a progress line, the files saved. */
async function step(id: string, group: StepGroup, title: string, fn: () => Promise<Outcome>): Promise<StepResult> {
  if (group !== 'setup' && !only.has(group)) fn = async () => skip(`not selected (--only ${[...only].join(',')})`);
  log(`${group}: ${title} ...`);
  const t0 = Date.now();
  let r: StepResult;
  try {
    const o = await fn();
    r = { id, group, title, status: o.status ?? 'passed', seconds: o.seconds ?? (Date.now() - t0) / 1000, ...(o.reason ? { reason: o.reason } : {}), ...(o.details ? { details: o.details } : {}) };
  } catch (e) {
    const err = e as Error & { code?: string };
    r = { id, group, title, status: 'failed', seconds: (Date.now() - t0) / 1000, reason: `${err.code ? `${err.code}: ` : ''}${err.message}`.slice(0, 2000) };
  }
  results.steps.push(r);
  save();
  log(`${group}: ${title}: ${r.status.toUpperCase()} in ${r.seconds.toFixed(1)} s${r.reason ? ` (${r.reason.split('\n')[0]})` : ''}`);
  return r;
}
const skip = (reason: string): Outcome => ({ status: 'skipped', reason });

/** A child process: stdout collected, stderr streamed as progress (and to `logFile`), killed after `timeoutS`. */
function child(cmd: string, argv: string[], o: { timeoutS: number; env?: Record<string, string>; logFile?: string; what: string }) {
  return new Promise<{ code: number | null; stdout: string; stderrTail: string; timedOut: boolean; seconds: number }>((done) => {
    const t0 = Date.now();
    const p = spawn(cmd, argv, { cwd: root, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const file = o.logFile ? createWriteStream(o.logFile, { flags: 'a' }) : null;
    file?.write(`$ ${[cmd, ...argv].join(' ')}\n`);
    let stdout = '';
    let tail = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      file?.write(d);
    });
    p.stderr.on('data', (d: Buffer) => {
      tail = (tail + d.toString()).slice(-4000);
      file?.write(d);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, Math.max(1, o.timeoutS) * 1000);
    p.on('close', (code) => {
      clearTimeout(timer);
      file?.end();
      done({ code, stdout, stderrTail: tail, timedOut, seconds: (Date.now() - t0) / 1000 });
    });
  });
}
const lastJson = (s: string) => {
  const line = s.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  return line ? (JSON.parse(line) as Record<string, unknown>) : null;
};

// ---- Python ----------------------------------------------------------------------------------------------------

interface PythonInfo {
  exe: string;
  torch: string;
  transformers: string;
  cuda: boolean;
}
function findPython(): { py: PythonInfo | null; why: string; tried?: string[] } {
  const candidates = [args.python, process.env.PYTHON, '/opt/torch/.venv/bin/python3', 'python3'].filter((x): x is string => !!x);
  const probe = 'import json, torch, transformers; print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "cuda": torch.cuda.is_available()}))';
  const tried: string[] = [];
  for (const exe of [...new Set(candidates)]) {
    const r = spawnSync(exe, ['-c', probe], { encoding: 'utf8', timeout: 120_000 });
    const j = r.status === 0 ? lastJson(r.stdout) : null;
    if (j) return { py: { exe, torch: String(j.torch), transformers: String(j.transformers), cuda: j.cuda === true }, why: '' };
    tried.push(`${exe}: ${r.error ? r.error.message : (r.stderr ?? '').trim().split('\n').pop() ?? `exit ${r.status}`}`);
  }
  return { py: null, why: 'no Python with torch and transformers (results.json machine.pythonProbe)', tried };
}

// ---- the run ---------------------------------------------------------------------------------------------------

const shipped = join(fixtures, 'models', 'tinystories-656k');
const tiny = (n: string) => join(fixtures, 'models', `tiny-${n}`);
const onDevice = mode === 'cuda' ? 'CUDA' : 'the CPU';

async function main(): Promise<void> {
  log(`mode ${mode}${quick ? ' (quick)' : ''}, results in ${out}${Number.isFinite(budgetMs) ? `, budget ${budgetMs / 1000} s` : ''}`);
  const { py, why: noPython, tried } = findPython();
  results.machine.python = py ? `${py.exe}: torch ${py.torch}, transformers ${py.transformers}${py.cuda ? ', CUDA' : ''}` : null;
  if (tried) results.machine.pythonProbe = tried;
  if (!py) log(`Python sides skipped: ${noPython}`);
  save();

  await step('runtime', 'setup', 'the addon loads; libtorch, CUDA and build flags', async () => {
    const info = binding().info();
    const mem = binding().cudaMemoryStats?.();
    results.build.torchVersion = info.torchVersion;
    const details = {
      torchVersion: info.torchVersion,
      torchHeaders: info.build.torchHeaders,
      cudaAvailable: info.cudaAvailable,
      cudaDeviceCount: info.cudaDeviceCount,
      cpuCapability: info.cpu.capability,
      threads: info.numThreads,
      build: info.build,
      cudaMemoryStats: mem ?? 'not in this addon (built before cudaMemoryStats existed)',
    };
    if (mode === 'cuda' && !info.cudaAvailable) return { status: 'failed', reason: 'the addon sees no CUDA device (libtorch without CUDA, or no GPU visible)', details };
    return { details };
  });

  await step('native-suite', 'correctness', `the native test suite (${nativeSuite})`, async () => {
    if (nativeSuite === 'skip') return skip('--native-suite skip');
    const dir = join(root, 'test', 'native');
    const all = readdirSync(dir).filter((f) => f.endsWith('.test.ts')).sort();
    const subset = ['binding.test.ts', 'model.test.ts'];
    const files = (nativeSuite === 'full' ? all : all.filter((f) => subset.includes(f))).map((f) => join('test', 'native', f));
    // On the GPU machine the suite runs with no GPU visible: it is the CPU suite (it asserts that 'auto' is the CPU
    // there), run against the CUDA build of the addon and libtorch_cuda; the CUDA paths are the parity steps below.
    const env: Record<string, string> = mode === 'cuda' ? { CUDA_VISIBLE_DEVICES: '' } : {};
    const logFile = join(out, 'native-suite.log');
    writeFileSync(logFile, '');
    const r = await child(process.execPath, ['--import', 'tsx', '--expose-gc', '--test', '--test-reporter=spec', '--test-concurrency=1', ...files], {
      timeoutS: Math.min(mode === 'cuda' ? 300 : 240, remaining() - 60),
      env: { ...env, SFTKIT_TEST_REPORTER: 'spec' },
      logFile,
      what: 'native suite',
    });
    const count = (k: string) => Number(new RegExp(`^ℹ ${k} (\\d+)`, 'm').exec(r.stdout)?.[1] ?? NaN);
    const failedTests = [...r.stdout.matchAll(/^\s*✖ (.+?)(?: \(\d[\d.]*m?s\))?$/gm)].map((m) => m[1]!).filter((n) => !/^failing tests:?$/.test(n));
    const details = { files: files.length, tests: count('tests'), pass: count('pass'), fail: count('fail'), skipped: count('skipped'), failedTests: [...new Set(failedTests)].slice(0, 20), log: 'native-suite.log', ...(mode === 'cuda' ? { note: 'CUDA_VISIBLE_DEVICES= (the CPU suite on the CUDA build)' } : {}) };
    if (r.timedOut) return { status: 'failed', reason: `timed out after ${r.seconds.toFixed(0)} s`, details };
    if (r.code !== 0) return { status: 'failed', reason: `${details.fail} of ${details.tests} tests failed: ${details.failedTests.slice(0, 5).join('; ')}`, details };
    return { details };
  });

  const models = ['gpt2', 'llama', 'llama-untied', 'qwen2', 'qwen3'];
  for (const precision of ['fp32', 'bf16'] as const) {
    const tol = TOLERANCES[precision];
    const title = precision === 'fp32'
      ? `CPU vs ${onDevice} parity, fp32 (logits ${tol.logitsAbs}, loss rel ${tol.lossRel}, every gradient rel ${tol.gradRelNorm}, AdamW update rel ${tol.adamwUpdateRel}, greedy generation exact)`
      : `CPU fp32 vs ${onDevice} bf16 autocast parity (logits ${tol.logitsRelMax} of the largest |logit|, loss rel ${tol.lossRel}, every gradient rel ${tol.gradRelNorm})`;
    await step(`parity-${precision}`, 'correctness', title, async () => {
      const per: ModelParity[] = [];
      for (const m of models) per.push(await modelParity(tiny(m), `tiny-${m}`, device, precision === 'bf16', threads));
      const failed = per.filter((p) => !p.ok);
      const worst = (k: 'logitsMaxAbs' | 'logitsRelMax' | 'lossRelWorst' | 'gradRelNormWorst') => Math.max(...per.map((p) => p[k]));
      const details = {
        models: per,
        worst: { logitsMaxAbs: worst('logitsMaxAbs'), logitsRelMax: worst('logitsRelMax'), lossRel: worst('lossRelWorst'), gradRelNorm: worst('gradRelNormWorst') },
        note: `worst: logits ${worst('logitsMaxAbs').toExponential(1)} (${(100 * worst('logitsRelMax')).toFixed(2)}% of the largest), loss rel ${worst('lossRelWorst').toExponential(1)}, gradient rel ${worst('gradRelNormWorst').toExponential(1)}`,
      };
      if (failed.length) return { status: 'failed', reason: failed.map((p) => `${p.model}: ${p.failures.join('; ')}`).join(' | '), details };
      return { details };
    });
  }

  // Issue 24: a frozen low-precision base dequantised on the device (ATen ops there, the CPU's loops here): the same
  // numbers as the CPU's in fp32 compute; bf16 autocast runs the base's matmuls in bf16 (the peers' compute).
  await step('frozen-base', 'correctness', `frozen base (baseDtype bfloat16 / int8 / nf4, LoRA on every projection) on ${onDevice} vs the CPU: logits abs 1e-4, loss rel 1e-5, adapter gradients rel 1e-4; under autocast logits within 2% of the largest`, async () => {
    const batch = batchOf([[1, 80, 47, 101, 82, 15, 86, 90], [1, 80, 47, 9, 33]], [4, 2]); // tiny-llama: vocabulary 128
    const rows: Record<string, unknown>[] = [];
    const failures: string[] = [];
    for (const baseDtype of ['bfloat16', 'int8', 'nf4'] as const) {
      const lora = { r: 4, alpha: 8, targets: 'all-linear', seed: 1 } as const;
      for (const autocast of [false, true]) {
        const a = await loadModel(tiny('llama'), { baseDtype, lora, device, threads, autocast });
        const b = await loadModel(tiny('llama'), { baseDtype, lora, device: 'cpu', threads });
        try {
          const la = await a.forward(batch);
          const lb = await b.forward(batch);
          const logits = maxAbsDiff(la.logits, lb.logits);
          const largest = maxAbsDiff(lb.logits, new Float32Array(lb.logits.length));
          const sa = await a.step(batch);
          const sb = await b.step(batch);
          const loss = relError(sa.lossSum, sb.lossSum);
          let grad = 0;
          for (const name of (await b.parameterNames()).filter((n) => n.includes('lora_'))) {
            const ga = await a.getGradient(name);
            const gb = await b.getGradient(name);
            if (ga && gb) grad = Math.max(grad, relNormError(ga.data, gb.data));
          }
          const stats = a.baseStats();
          rows.push({ baseDtype, autocast, logits, loss, grad, device: a.device(), baseBytes: stats.bytes });
          const ok = autocast ? logits <= 0.02 * largest && loss <= 2e-2 : logits <= 1e-4 && loss <= 1e-5 && grad <= 1e-4;
          if (!ok) failures.push(`${baseDtype}${autocast ? ' autocast' : ''}: logits ${logits.toExponential(1)}, loss rel ${loss.toExponential(1)}, grad rel ${grad.toExponential(1)}`);
        } finally {
          await a.dispose();
          await b.dispose();
        }
      }
    }
    const details = { rows };
    if (failures.length) return { status: 'failed', reason: failures.join(' | '), details };
    return { details };
  });

  // ---- 2. training --------------------------------------------------------------------------------------------

  const data = join(scratch, 'instruction-data.json');
  writeFileSync(data, JSON.stringify((JSON.parse(readFileSync(join(fixtures, 'data', 'instruction-data.json'), 'utf8')) as unknown[]).slice(0, 160)));
  const probe = batchOf([[1, 80, 147, 201, 282, 215, 286, 1890], [1, 80, 147, 9, 33]], [4, 2]);
  for (const autocast of [false, true]) {
    const tag = autocast ? 'train-shipped-bf16' : 'train-shipped';
    const steps = 24;
    await step(tag, 'training', `TinyStories-656K on instruction-data.json, ${steps} steps on ${onDevice}${autocast ? ' under bf16 autocast' : ''}: the loss falls; saved and reloaded on the CPU with the same logits`, async () => {
      const runDir = join(scratch, tag);
      const quiet = { progress: { write: () => true }, log: () => {}, handleSignals: false };
      const t0 = Date.now();
      const r = await train(
        { model: shipped, data, out: runDir, device, autocast, maxSteps: steps, batchSize: 8, lr: 3e-3, maxLength: 192, seed: 7, threads, logEvery: 1, valSplit: 0, testSplit: 0, evalEvery: 0, saveEvery: 0 },
        quiet,
      );
      const seconds = (Date.now() - t0) / 1000;
      const losses = readMetrics(join(runDir, 'metrics.jsonl')).filter((m) => m.type === 'train').map((m) => m.loss as number);
      const head = losses.slice(0, 4).reduce((a, b) => a + b, 0) / 4;
      const tail = losses.slice(-4).reduce((a, b) => a + b, 0) / 4;
      const onDev = await loadModel(runDir, { device, threads });
      const onCpu = await loadModel(runDir, { device: 'cpu', threads });
      const a = await onDev.forward(probe);
      const b = await onCpu.forward(probe);
      const [B, T, V] = a.shape;
      const logitsDiff = maxAbsDiff(a.logits, b.logits, (i) => probe.attentionMask![Math.floor(i / V)] === 1 && Math.floor(i / (T * V)) < B);
      const la = await onDev.evalLoss(probe);
      const lb = await onCpu.evalLoss(probe);
      const where = onDev.device();
      await onDev.dispose();
      await onCpu.dispose();
      const details = {
        device: where, steps: r.steps, seconds, first: losses[0], last: losses.at(-1), head, tail, losses,
        reloadedLogitsMaxAbs: logitsDiff, reloadedLossRel: relError(la.lossSum, lb.lossSum),
        note: `loss ${head.toFixed(3)} -> ${tail.toFixed(3)} (mean of the first / last 4 steps); reloaded logits ${logitsDiff.toExponential(1)}`,
      };
      const fails: string[] = [];
      if (r.steps !== steps) fails.push(`ran ${r.steps} of ${steps} steps (${r.stopped})`);
      if (!(tail < head - 0.5)) fails.push(`the loss did not fall: ${head.toFixed(3)} -> ${tail.toFixed(3)}`);
      const atol = TOLERANCES.fp32.logitsAbs as number;
      if (!(logitsDiff <= atol)) fails.push(`reloaded on the CPU: logits differ by ${logitsDiff} (> ${atol})`);
      if (!(details.reloadedLossRel <= TOLERANCES.fp32.lossRel)) fails.push(`reloaded on the CPU: loss rel ${details.reloadedLossRel}`);
      return fails.length ? { status: 'failed', reason: fails.join('; '), details } : { details };
    });
  }

  await step('lora-step', 'training', `LoRA (tiny-llama + its PEFT adapter): a step and an AdamW step on ${onDevice} against the CPU (fp32 tolerances)`, async () => {
    const opts = { adapter: tiny('llama-lora'), threads };
    const cpu = await loadModel(tiny('llama'), { ...opts, device: 'cpu' });
    const dev = await loadModel(tiny('llama'), { ...opts, device });
    try {
      const batch = batchOf([[1, 17, 42, 99, 5, 63, 7, 88, 31, 2], [1, 33, 7, 81, 120, 9]], [3, 2]);
      const sa = await cpu.step(batch);
      const sb = await dev.step(batch);
      const g = await compareGradients(dev, cpu);
      const names = Object.keys(await dev.gradNorms());
      const base = names.filter((n) => !n.includes('lora_'));
      const before = new Map<string, Float32Array>();
      for (const n of names) before.set(n, (await dev.getParameter(n)).data);
      await cpu.optimizerStep({ lr: 1e-2, maxGradNorm: 1 });
      await dev.optimizerStep({ lr: 1e-2, maxGradNorm: 1 });
      let updateRel = 0;
      for (const n of names) {
        const p0 = before.get(n)!;
        const ua = Float32Array.from((await cpu.getParameter(n)).data, (x, i) => x - (p0[i] as number));
        const ub = Float32Array.from((await dev.getParameter(n)).data, (x, i) => x - (p0[i] as number));
        updateRel = Math.max(updateRel, relError(Math.hypot(...ub), Math.hypot(...ua)));
      }
      const details = { lossRel: relError(sb.lossSum, sa.lossSum), trainable: names.length, gradRelNormWorst: g.worst, gradWorstName: g.name, updateRel, note: `${names.length} adapter tensors, gradient rel ${g.worst.toExponential(1)}` };
      const fails: string[] = [];
      if (!(details.lossRel <= TOLERANCES.fp32.lossRel)) fails.push(`loss rel ${details.lossRel}`);
      if (base.length) fails.push(`base weights have gradients: ${base.join(', ')}`);
      if (names.length === 0) fails.push('no adapter gradients');
      if (g.missing.length) fails.push(`gradients on one side only: ${g.missing.join(', ')}`);
      if (!(g.worst <= TOLERANCES.fp32.gradRelNorm)) fails.push(`gradient ${g.name} rel ${g.worst}`);
      if (!(updateRel <= 2e-3)) fails.push(`AdamW update norm rel ${updateRel}`);
      return fails.length ? { status: 'failed', reason: fails.join('; '), details } : { details };
    } finally {
      await cpu.dispose();
      await dev.dispose();
    }
  });

  await step('dpo-step', 'training', `DPO: sequence log-probabilities and a preference step of TinyStories-656K on ${onDevice} against the CPU (fp32 tolerances)`, async () => {
    const cpu = await loadModel(shipped, { device: 'cpu', threads });
    const dev = await loadModel(shipped, { device, threads });
    try {
      // Two pairs (chosen, rejected), references off the policy so that the loss is not log 2.
      const pairs = batchOf([[1, 80, 147, 201, 282, 215], [1, 80, 147, 201, 9, 33, 12], [1, 64, 9, 120, 77, 301], [1, 64, 9, 5, 81]], [3, 3, 3, 3]);
      const la = await cpu.sequenceLogps(pairs);
      const lb = await dev.sequenceLogps(pairs);
      const logpsRel = Math.max(...Array.from(la.logps, (x, i) => relError(lb.logps[i] as number, x)));
      const refLogps = Float64Array.from(la.logps, (x, i) => x + (i % 2 === 0 ? -0.4 : 0.3));
      const ra = await cpu.preferenceStep(pairs, { refLogps, beta: 0.3 });
      const rb = await dev.preferenceStep(pairs, { refLogps, beta: 0.3 });
      const g = await compareGradients(dev, cpu);
      const details = { logpsRel, lossSum: [ra.lossSum, rb.lossSum], lossRel: relError(rb.lossSum, ra.lossSum), rewardsRel: relNormError(rb.chosenRewards, ra.chosenRewards), gradRelNormWorst: g.worst, gradWorstName: g.name, gradients: g.count, note: `loss ${ra.lossSum.toFixed(5)}, gradient rel ${g.worst.toExponential(1)}` };
      const fails: string[] = [];
      if (!(logpsRel <= TOLERANCES.fp32.lossRel)) fails.push(`sequence log-probs rel ${logpsRel}`);
      if (!(details.lossRel <= TOLERANCES.fp32.lossRel)) fails.push(`loss rel ${details.lossRel}`);
      if (!(details.rewardsRel <= 1e-4)) fails.push(`chosen rewards rel ${details.rewardsRel}`);
      if (g.missing.length) fails.push(`gradients on one side only: ${g.missing.join(', ')}`);
      if (!(g.worst <= TOLERANCES.fp32.gradRelNorm)) fails.push(`gradient ${g.name} rel ${g.worst}`);
      return fails.length ? { status: 'failed', reason: fails.join('; '), details } : { details };
    } finally {
      await cpu.dispose();
      await dev.dispose();
    }
  });

  await step('nccl-nproc1', 'training', `--nproc 1 over NCCL on ${onDevice}: a group of one (ProcessGroupNCCL on cuda:0) gives the losses of a run without it, and its all-reduce leaves the gradients as they are`, async () => {
    if (mode !== 'cuda') return skip('NCCL needs CUDA; on the CPU --nproc uses Gloo (test/e2e/distributed.test.ts)');
    const dist = binding().info().distributed;
    if (!dist?.nccl) return skip('this addon was built without NCCL (CMake found no nccl.h or the libtorch has no c10d NCCL: see build.log\'s "sftkit: NCCL" line); --nproc would use Gloo');
    // 1. Training: the same 8 steps without a group and with an NCCL group of one (train({ distributed })).
    const steps = 8;
    const quiet = { progress: { write: () => true }, handleSignals: false };
    const opts = { model: shipped, data, device, maxSteps: steps, batchSize: 8, lr: 3e-3, maxLength: 192, seed: 7, threads, logEvery: 1, valSplit: 0, testSplit: 0, evalEvery: 0, saveEvery: 0 };
    const plainDir = join(scratch, 'nccl-plain');
    const ncclDir = join(scratch, 'nccl-group');
    await train({ ...opts, out: plainDir }, { ...quiet, log: () => {} });
    const lines: string[] = [];
    const t0 = Date.now();
    const r = await train({ ...opts, out: ncclDir, distributed: { rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await freePort(), backend: 'nccl', timeoutMs: 120_000 } }, { ...quiet, log: (m: string) => lines.push(m) });
    const seconds = (Date.now() - t0) / 1000;
    const losses = (d: string) => readMetrics(join(d, 'metrics.jsonl')).filter((m) => m.type === 'train').map((m) => m.loss as number);
    const a = losses(plainDir);
    const b = losses(ncclDir);
    const lossRelWorst = Math.max(...a.map((x, i) => relError(b[i] as number, x)));
    const groupLine = lines.find((l) => l.includes('data parallel')) ?? '';
    // 2. The group itself: numbers, a barrier, and a CUDA model's gradients through allReduceGrads (a sum over one
    //    rank: exactly what went in); a CPU model's gradients are refused with the reason.
    const group = await connectProcessGroup({ rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await freePort(), timeoutMs: 120_000 }, { backend: 'nccl', deviceIndex: 0 });
    const dev = await loadModel(shipped, { device, threads });
    const cpu = await loadModel(shipped, { device: 'cpu', threads });
    try {
      const sums = await group.allReduce([1.5, -2, 3e10]);
      await group.barrier();
      await dev.step(probe);
      const before = await dev.gradNorms();
      const ta = Date.now();
      await dev.allReduceGrads(group);
      const allReduceMs = Date.now() - ta;
      const after = await dev.gradNorms();
      const gradChanged = Object.keys(before).filter((k) => before[k] !== after[k]);
      await cpu.step(probe);
      let cpuRefused = '';
      await cpu.allReduceGrads(group).catch((e: Error) => (cpuRefused = e.message));
      const details = {
        backend: group.backend, groupDevice: group.device, modelDevice: dev.device(), runLog: groupLine, steps: r.steps, seconds,
        losses: { plain: a, nccl: b }, lossRelWorst, sums, gradients: Object.keys(before).length, gradChanged: gradChanged.slice(0, 5), allReduceMs, cpuRefused,
        note: `${group.backend} on ${group.device}; losses rel ${lossRelWorst.toExponential(1)} against the run without a group; all-reduce of ${Object.keys(before).length} gradients ${allReduceMs} ms`,
      };
      const fails: string[] = [];
      if (r.steps !== steps || b.length !== steps) fails.push(`ran ${r.steps} of ${steps} steps (${r.stopped})`);
      if (!/NCCL on cuda:0/.test(groupLine)) fails.push(`the run did not say NCCL on cuda:0: ${groupLine || 'no data-parallel line'}`);
      // The same GPU and seed; only CUDA's nondeterministic kernels (atomics in the embedding gradient) may differ.
      if (!(lossRelWorst <= 1e-3)) fails.push(`losses differ from the run without a group by rel ${lossRelWorst}`);
      if (group.backend !== 'nccl' || group.device !== 'cuda:0') fails.push(`group is ${group.backend} on ${group.device}`);
      if (sums.join() !== [1.5, -2, 3e10].join()) fails.push(`all-reduce of numbers gave ${sums.join(', ')}`);
      if (gradChanged.length) fails.push(`the all-reduce over one rank changed gradients: ${gradChanged.slice(0, 3).join(', ')}`);
      if (!/NCCL on cuda:0: a tensor is on cpu/.test(cpuRefused)) fails.push(`a CPU model's all-reduce over NCCL: ${cpuRefused || 'not refused'}`);
      return fails.length ? { status: 'failed', reason: fails.join('; '), details } : { details };
    } finally {
      group.close();
      await dev.dispose();
      await cpu.dispose();
    }
  });

  // ---- 3. throughput ------------------------------------------------------------------------------------------

  // On the GPU machine the PyTorch sides need a torch that sees the GPU too.
  await throughput(py && mode === 'cuda' && !py.cuda ? { py: null, why: `${py.exe}: torch ${py.torch} sees no CUDA device` } : { py, why: noPython });

  results.finished = new Date().toISOString();
  save();
  rmSync(scratch, { recursive: true, force: true });
  log(`done: ${results.summary.passed} passed, ${results.summary.failed} failed, ${results.summary.skipped} skipped; ${join(out, 'results.json')}`);
  process.exitCode = results.summary.ok ? 0 : 1;
}

async function throughput(pyr: { py: PythonInfo | null; why: string }): Promise<void> {
  const { py, why } = pyr;
  const cuda = mode === 'cuda';
  // Ceilings: sftkit's libtorch and PyTorch, bf16 on the GPU (8192^3), fp32 on the CPU (where these CPUs have no fast bf16).
  const dtype = cuda ? 'bfloat16' : 'float32';
  const size = cuda ? 8192 : quick ? 512 : 1024;
  await step('matmul-ceiling', 'throughput', `${dtype} ${size}^3 matmul ceiling through sftkit's libtorch and through PyTorch`, async () => {
    const got: Ceiling[] = [];
    const s = await child(process.execPath, [sftkitBin, 'bench', 'matmul', '--size', String(size), '--reps', '5', '--threads', String(threads), '--device', mode, '--dtype', dtype, '--json'], { timeoutS: 120, what: 'matmul' });
    const sj = s.code === 0 ? lastJson(s.stdout) : null;
    if (sj) got.push({ via: 'sftkit', dtype, size, gflops: Number(sj.gflops) });
    let pyNote = '';
    if (py) {
      const code = [
        'import json, time, torch',
        `d = "${cuda ? 'cuda' : 'cpu'}"; n = ${size}; torch.set_num_threads(${threads})`,
        `a = torch.randn(n, n, device=d, dtype=torch.${dtype}); b = torch.randn(n, n, device=d, dtype=torch.${dtype}); c = a @ b`,
        `sync = torch.cuda.synchronize if d == "cuda" else (lambda: None); inner = ${cuda ? 10 : 1}; sync(); best = 1e9`,
        'for _ in range(5):',
        '    t = time.perf_counter()',
        '    for _ in range(inner): c = a @ b',
        '    sync(); best = min(best, (time.perf_counter() - t) / inner)',
        'print(json.dumps({"gflops": 2 * n**3 / best / 1e9, "ms": best * 1e3}))',
      ].join('\n');
      const p = await child(py.exe, ['-c', code], { timeoutS: 120, what: 'matmul (PyTorch)' });
      const pj = p.code === 0 ? lastJson(p.stdout) : null;
      if (pj) got.push({ via: 'pytorch', dtype, size, gflops: Number(pj.gflops) });
      else pyNote = `PyTorch matmul failed: ${p.stderrTail.split('\n').slice(-3).join(' ')}`;
    }
    results.throughput.ceilings = got;
    results.throughput.ceilingGflops = got.length ? Math.max(...got.map((c) => c.gflops)) : null;
    const details = { ceilings: got, note: got.map((c) => `${c.via} ${(c.gflops / 1000).toFixed(2)} TFLOP/s`).join(', ') + (py ? '' : ` (PyTorch: ${why})`) };
    if (!sj) return { status: 'failed', reason: `sftkit bench matmul failed: ${s.stderrTail.split('\n').slice(-3).join(' ')}`, details };
    if (pyNote) return { status: 'failed', reason: pyNote, details };
    return { details };
  });

  const workloads = cuda
    ? [
        { name: 'GPT-2-124M shape B16 T1024', shape: 'gpt2-124m' as const, batch: 16, seqLen: 1024 },
        ...(quick ? [] : [{ name: 'Qwen2.5-0.5B shape B8 T1024', shape: 'qwen2-0.5b' as const, batch: 8, seqLen: 1024 }]),
      ]
    : [
        { name: 'tiny-gpt2 B2 T64 (CPU stand-in for the GPT-2-124M shape)', shape: 'tiny-gpt2', batch: 2, seqLen: 64 },
        { name: 'tiny-qwen2 B2 T64 (CPU stand-in for the Qwen2.5-0.5B shape)', shape: 'tiny-qwen2', batch: 2, seqLen: 64 },
      ];
  const steps = cuda ? (quick ? 5 : 10) : 2;
  const warmup = cuda ? 3 : 1;
  const selected = only.has('throughput');
  const torchBench = join(root, 'bench', 'compare', 'torch_bench.py');
  interface Side {
    side: string;
    /** Expected seconds (process start, load, compile, warm-up, steps) for the budget; the timeout is what is left. */
    estimate: number;
    python: boolean;
    argv: (dir: string, common: string[]) => [string, string[]];
  }
  const sftkitSide = (side: string, extra: string[]): Side => ({
    side, estimate: 40, python: false,
    argv: (dir, common) => [process.execPath, [sftkitBin, 'bench', 'train', '--model', dir, ...common, '--device', mode, ...extra, '--json']],
  });
  const torchSide = (side: string, extra: string[], estimate: number): Side => ({
    side, estimate, python: true,
    argv: (dir, common) => [py?.exe ?? 'python3', [torchBench, '--model', dir, ...common, '--device', mode, '--autocast', ...extra]],
  });
  // Rounds over the workloads, so that a run short of time has sftkit and PyTorch eager of every shape before any
  // torch.compile (the longest, compiling first) and sftkit's bf16 weights (reported apart) last. Each side is one
  // process and one run; within a round the sides alternate.
  const rounds: Side[][] = [
    [sftkitSide('sftkit', ['--autocast']), torchSide('pytorch-eager', [], 45)],
    [torchSide('pytorch-compile', ['--compile'], cuda ? (quick ? 120 : 150) : 90)],
    [sftkitSide('sftkit-bf16-weights', ['--dtype', 'bfloat16'])],
  ];
  const rows: { row: ThroughputRow; dir: string | null; error?: string; t0: number; seconds: number }[] = [];
  if (selected) {
    for (const w of workloads) {
      const row: ThroughputRow = { name: w.name, shape: w.shape, batch: w.batch, seqLen: w.seqLen, steps, warmup, flopsPerToken: 0, realTokens: 0, sides: [] };
      const t0 = Date.now();
      try {
        const dir = w.shape.startsWith('tiny-') ? join(fixtures, 'models', w.shape) : benchModel(w.shape as 'gpt2-124m' | 'qwen2-0.5b', log);
        const spec = readModelConfig(dir).spec;
        const b = randomBatch(w.batch, w.seqLen, spec.vocabSize, 1000);
        row.realTokens = b.attentionMask.reduce((sum, m) => sum + m, 0);
        row.flopsPerToken = trainFlopsPerToken(spec, w.seqLen);
        rows.push({ row, dir, t0, seconds: (Date.now() - t0) / 1000 });
      } catch (e) {
        rows.push({ row, dir: null, error: `the model could not be built: ${(e as Error).message}`, t0, seconds: (Date.now() - t0) / 1000 });
      }
      results.throughput.rows.push(row);
    }
    for (const round of rounds) {
      for (const r of rows) {
        for (const s of round) {
          const side: ThroughputSide = { side: s.side, status: 'skipped' };
          r.row.sides.push(side);
          const left = remaining() - 15;
          if (r.error) side.reason = r.error;
          else if (s.python && !py) side.reason = why;
          else if (left < s.estimate) side.reason = `time budget: ${Math.max(0, left).toFixed(0)} s left, ~${s.estimate} s needed`;
          if (side.reason) {
            save();
            continue;
          }
          const common = ['--batch-size', String(r.row.batch), '--seq-len', String(r.row.seqLen), '--steps', String(steps), '--warmup', String(warmup), '--threads', String(threads)];
          const [cmd, argv] = s.argv(r.dir!, common);
          log(`throughput: ${r.row.name}: ${s.side} ...`);
          const res = await child(cmd, argv, { timeoutS: Math.min(left, 4 * s.estimate), what: s.side });
          r.seconds += res.seconds;
          side.wallSeconds = res.seconds;
          const j = res.code === 0 ? lastJson(res.stdout) : null;
          if (!j) {
            side.status = 'failed';
            side.reason = res.timedOut ? `timed out after ${res.seconds.toFixed(0)} s` : `exit ${res.code}: ${res.stderrTail.trim().split('\n').slice(-4).join(' | ')}`;
          } else {
            side.status = 'passed';
            side.raw = j;
            side.tokensPerS = Number(j.tokens_per_s);
            side.msPerStep = Number(j.ms_per_step);
            const c = results.throughput.ceilingGflops;
            if (c) side.mfu = (r.row.realTokens * r.row.flopsPerToken) / (side.msPerStep / 1000) / (c * 1e9);
            if (cuda && j.peak_gpu_mib !== undefined) Object.assign(side, { peakMemMiB: Number(j.peak_gpu_mib), peakMemKind: 'gpu-allocated' as const });
            else if (!cuda) Object.assign(side, { peakMemMiB: Number(j.peak_rss_mib), peakMemKind: 'rss' as const });
          }
          log(`throughput: ${r.row.name}: ${s.side}: ${side.status}${side.tokensPerS ? ` ${side.tokensPerS.toFixed(0)} tokens/s` : ''}${side.reason ? ` (${side.reason})` : ''}`);
          save();
        }
      }
    }
  }
  // One step per workload in the record, after all its sides ran.
  for (const [i, w] of workloads.entries()) {
    const r = rows[i];
    await step(`throughput-${w.shape}`, 'throughput', `${w.name}: sftkit vs PyTorch eager and torch.compile, bf16 autocast over fp32 weights (sftkit's bf16 weights apart)`, async () => {
      const sides = r?.row.sides ?? [];
      const failed = sides.filter((s) => s.status === 'failed');
      const note = sides.filter((s) => s.tokensPerS).map((s) => `${s.side} ${s.tokensPerS!.toFixed(0)} tok/s`).join(', ');
      const details = { note, sides: sides.map((s) => `${s.side}: ${s.status}`) };
      if (!r) return { details };
      if (r.error) return { status: 'failed', reason: r.error, details, seconds: r.seconds };
      return failed.length ? { status: 'failed', reason: failed.map((s) => `${s.side}: ${s.reason}`).join(' | '), details, seconds: r.seconds } : { details, seconds: r.seconds };
    });
  }
}

await main();

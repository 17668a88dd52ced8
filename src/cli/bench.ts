// `sftkit bench train`: one model's training-step speed and memory on random batches (JSON with --json).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_SHAPES, buildRandomModel, benchTrain } from '../bench/index.ts';
import { SftkitError, invalidParameterError } from '../errors.ts';
import { binding, packageRoot } from '../native/index.ts';
import { baseDtypeField, baseStoreFields, baseStoreRule, commandOptions, common, opt } from '../options/index.ts';
import { formatBytes } from '../shared/index.ts';
import type { CliIo, Command } from './command.ts';

const device = opt.enum(['cpu', 'cuda', 'auto'], 'where it runs (default: the CPU)').optional();

/** `sftkit bench build-model --shape S --out DIR` */
const buildModelOptions = commandOptions({
  command: 'bench build-model',
  shape: {
    shape: opt.enum(BENCH_SHAPES, 'the model shape to build with random weights'),
    out: opt.string('the model directory to write', { placeholder: 'DIR' }),
  },
});

const matmulOptions = commandOptions({
  command: 'bench matmul',
  shape: {
    size: opt.int('N of the N x N matmuls', { min: 1 }).default(2048),
    reps: opt.int('matmuls timed (the best counts)', { min: 1 }).default(5),
    threads: common.threads,
    device,
    dtype: common.dtype,
    json: opt.boolean('print {"gflops", "ms", "size", "threads", "device", "dtype"}').default(false),
  },
});

const trainBenchOptions = commandOptions({
  command: 'bench train',
  shape: {
    model: opt.string(`a model directory, or a shape built locally with random weights: ${BENCH_SHAPES.join(', ')}`, { placeholder: 'DIR|SHAPE' }),
    batchSize: opt.int('rows per step', { min: 1 }),
    seqLen: opt.int('tokens per row', { min: 2 }),
    steps: opt.int('timed training steps', { min: 1 }),
    warmup: opt.int('untimed steps first', { min: 0 }).default(1),
    threads: common.threads,
    dtype: opt.enum(['float32', 'bfloat16'], 'parameter dtype (default: float32)').optional(),
    gradientCheckpointing: opt.boolean('recompute each layer in backward (less memory)').default(false),
    loraR: opt.int('train rank-R LoRA adapters (alpha 2R) on the frozen model', { min: 1 }).optional(),
    loraTargets: opt.string("LoRA module names (default: PEFT's for the architecture), or all-linear", { placeholder: 'NAME,...' }).optional(),
    device,
    autocast: opt.boolean('bf16 autocast of the forward passes over the --dtype weights').default(false),
    baseDtype: baseDtypeField(true, { defaultText: 'float32; given, the JSON reports the base store' }).optional(),
    doubleQuant: baseStoreFields(true).doubleQuant,
    json: opt.boolean('print the result as one JSON object').default(false),
  },
  rules(ctx) {
    const { given, name } = ctx;
    if (given.loraTargets !== undefined && given.loraR === undefined) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${name('loraTargets')} needs ${name('loraR')} R`);
    baseStoreRule(ctx, { key: 'loraR' });
  },
});

const HELP = `Usage: sftkit bench train --model DIR|${BENCH_SHAPES.join('|')} --batch-size B --seq-len T --steps N
                         [--warmup N] [--threads N] [--dtype float32|bfloat16] [--gradient-checkpointing]
                         [--lora-r R [--lora-targets NAME,...]] [--device cpu|cuda|auto] [--autocast]
                         [--base-dtype float32|bfloat16|int8|nf4 [--double-quant]] [--json]
       sftkit bench matmul [--size 2048] [--reps 5] [--threads N] [--device cpu|cuda|auto]
                           [--dtype float32|bfloat16] [--json]

Times training steps (forward with the fused loss, backward, clip + AdamW) on random token batches with 40% of each
row masked as prompt and 10% padding. --model takes a model directory or a shape built locally with random weights
(gpt2-124m; qwen2-0.5b: vocab 151936, hidden 896, 24 layers, 14 heads, 2 KV heads, tied; llama3.2-1b and gemma3-1b:
the configs of Llama-3.2-1B and Gemma-3-1B, vocab 128256 and 262144; built in a child process
with \`sftkit bench build-model --shape S --out DIR\`, so it does not count in peak_rss_mib). tokens_per_s counts all
B x T positions per step. --json prints {"tokens_per_s", "ms_per_step", "ms_forward", "ms_backward",
"ms_optimizer", "peak_rss_mib", "threads"}. --lora-r trains rank-R LoRA adapters (alpha 2R) on the frozen model
(--lora-targets: module names, default PEFT's for the architecture, or all-linear). --device picks where it runs
(default cpu), --autocast runs the forward passes in bf16 autocast over the --dtype weights; with --device the JSON
adds "device", and on CUDA "peak_gpu_mib" / "peak_gpu_reserved_mib" (the caching allocator's peaks over the process).
--base-dtype keeps the frozen base in bfloat16, int8 or nf4 (with --lora-r); given (float32 too), the JSON carries "baseDtype",
"baseBytes" (the base store's memory) and, per timed step on average, "dequantMs" and "matmulMs" (dequantising the
base weights and the matmuls over them, parts of ms_per_step).

bench matmul: the matmul ceiling of this machine through libtorch (best of --reps N x N matmuls, fp32 on the CPU
unless --dtype / --device say otherwise); --json prints {"gflops", "ms", "size", "threads", "device", "dtype"}.
bench/compare quotes MFU against it.

bench train options:
${trainBenchOptions.formatHelp()}
bench matmul options:
${matmulOptions.formatHelp()}`;

export const benchCommand: Command = {
  name: 'bench',
  summary: 'benchmark training steps of a model (bench train) and the matmul ceiling (bench matmul)',
  help: HELP,
  async run(argv: string[], io: CliIo): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'build-model') {
      // `sftkit bench build-model --shape S --out DIR`: a random model directory (also used by bench train in a
      // child process, so that building it does not count in the bench's peak RSS).
      const o = buildModelOptions.parseArgs(rest);
      await buildRandomModel(o.out, o.shape);
      return 0;
    }
    if (sub === 'matmul') {
      const values = matmulOptions.parseArgs(rest);
      const { size, dtype } = values;
      const r = await binding().matmulBench(size, {
        reps: values.reps,
        ...(values.threads ? { threads: values.threads } : {}),
        ...(values.device ? { device: values.device } : {}),
        dtype,
      });
      const out = { gflops: r.gflops, ms: r.ms, size: r.size, threads: r.threads, device: r.device ?? 'cpu', dtype: r.dtype ?? 'float32' };
      io.stdout.write(
        values.json
          ? `${JSON.stringify(out)}\n`
          : `${size}^3 ${out.dtype === 'bfloat16' ? 'bf16' : 'fp32'} matmul on ${out.device}: ${r.gflops.toFixed(1)} GFLOP/s (${r.ms.toFixed(2)} ms, ${r.threads} threads)\n`,
      );
      return 0;
    }
    if (sub !== 'train') throw invalidParameterError('bench <what>', '"train", "matmul" or "build-model"', sub);
    const values = trainBenchOptions.parseArgs(rest);
    const { model, loraR } = values;
    const loraTargets = values.loraTargets?.split(',').map((t) => t.trim()).filter(Boolean);
    let dir = model;
    let tmp: string | undefined;
    if ((BENCH_SHAPES as readonly string[]).includes(model)) {
      tmp = mkdtempSync(join(tmpdir(), `sftkit-bench-${model}-`));
      dir = tmp;
      const built = spawnSync(process.execPath, [join(packageRoot, 'bin', 'sftkit.js'), 'bench', 'build-model', '--shape', model, '--out', dir], { stdio: 'inherit' });
      if (built.status !== 0) throw new SftkitError('SFTKIT_IO', `could not build the random ${model} model in ${dir}`);
    }
    try {
      const r = await benchTrain({
        model: dir,
        batchSize: values.batchSize,
        seqLen: values.seqLen,
        steps: values.steps,
        warmup: values.warmup,
        ...(values.threads ? { threads: values.threads } : {}),
        ...(values.gradientCheckpointing ? { gradientCheckpointing: true } : {}),
        ...(loraR !== undefined ? { lora: { r: loraR, alpha: 2 * loraR, ...(loraTargets ? { targets: loraTargets } : {}) } } : {}),
        ...(values.dtype ? { dtype: values.dtype } : {}),
        ...(values.device ? { device: values.device } : {}),
        ...(values.autocast ? { autocast: true } : {}),
        ...(values.baseDtype !== undefined ? { baseDtype: values.baseDtype } : {}),
        ...(values.doubleQuant ? { doubleQuant: true } : {}),
      });
      io.stdout.write(
        values.json
          ? `${JSON.stringify(r)}\n`
          : `${r.tokens_per_s.toFixed(1)} tokens/s, ${r.ms_per_step.toFixed(0)} ms/step (forward ${r.ms_forward.toFixed(0)}, backward ${r.ms_backward.toFixed(0)}, optimizer ${r.ms_optimizer.toFixed(0)}), peak RSS ${r.peak_rss_mib.toFixed(0)} MiB, ${r.threads} threads\n` +
              (r.baseDtype !== undefined && r.baseDtype !== 'float32'
                ? `base ${r.baseDtype}: ${formatBytes(r.baseBytes ?? NaN)}; per step dequantisation ${(r.dequantMs ?? 0).toFixed(1)} ms, base matmuls ${(r.matmulMs ?? 0).toFixed(1)} ms, the rest ${(r.ms_per_step - (r.dequantMs ?? 0) - (r.matmulMs ?? 0)).toFixed(1)} ms\n`
                : ''),
      );
      return 0;
    } finally {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }
  },
};

// `sftkit bench train`: one model's training-step speed and memory on random batches (JSON with --json).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_SHAPES, buildRandomModel, type BenchShape } from '../bench/random-models.ts';
import { benchTrain } from '../bench/train-bench.ts';
import { SftkitError, invalidParameterError } from '../errors.ts';
import { binding, packageRoot } from '../native/binding.ts';
import { enumFlag, intFlag, requiredFlag } from './args.ts';
import type { CliIo, Command } from './command.ts';

const DEVICES = ['cpu', 'cuda', 'auto'] as const;

const HELP = `Usage: sftkit bench train --model DIR|${BENCH_SHAPES.join('|')} --batch-size B --seq-len T --steps N
                         [--warmup N] [--threads N] [--dtype float32|bfloat16] [--gradient-checkpointing]
                         [--lora-r R [--lora-targets NAME,...]] [--device cpu|cuda|auto] [--autocast] [--json]
       sftkit bench matmul [--size 2048] [--reps 5] [--threads N] [--device cpu|cuda|auto]
                           [--dtype float32|bfloat16] [--json]

Times training steps (forward with the fused loss, backward, clip + AdamW) on random token batches with 40% of each
row masked as prompt and 10% padding. --model takes a model directory or a shape built locally with random weights
(gpt2-124m; qwen2-0.5b: vocab 151936, hidden 896, 24 layers, 14 heads, 2 KV heads, tied; built in a child process
with \`sftkit bench build-model --shape S --out DIR\`, so it does not count in peak_rss_mib). tokens_per_s counts all
B x T positions per step. --json prints {"tokens_per_s", "ms_per_step", "ms_forward", "ms_backward",
"ms_optimizer", "peak_rss_mib", "threads"}. --lora-r trains rank-R LoRA adapters (alpha 2R) on the frozen model
(--lora-targets: module names, default PEFT's for the architecture, or all-linear). --device picks where it runs
(default cpu), --autocast runs the forward passes in bf16 autocast over the --dtype weights; with --device the JSON
adds "device", and on CUDA "peak_gpu_mib" / "peak_gpu_reserved_mib" (the caching allocator's peaks over the process).

bench matmul: the matmul ceiling of this machine through libtorch (best of --reps N x N matmuls, fp32 on the CPU
unless --dtype / --device say otherwise); --json prints {"gflops", "ms", "size", "threads", "device", "dtype"}.
bench/compare quotes MFU against it.
`;

export const benchCommand: Command = {
  name: 'bench',
  summary: 'benchmark training steps of a model (bench train) and the matmul ceiling (bench matmul)',
  help: HELP,
  async run(argv: string[], io: CliIo): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'build-model') {
      // `sftkit bench build-model --shape S --out DIR`: a random model directory (also used by bench train in a
      // child process, so that building it does not count in the bench's peak RSS).
      const { values } = parseArgs({ args: rest, strict: true, options: { shape: { type: 'string' }, out: { type: 'string' } } });
      await buildRandomModel(requiredFlag('out', values.out), enumFlag('shape', values.shape, BENCH_SHAPES) as BenchShape);
      return 0;
    }
    if (sub === 'matmul') {
      const { values } = parseArgs({
        args: rest,
        strict: true,
        options: {
          size: { type: 'string' },
          reps: { type: 'string' },
          threads: { type: 'string' },
          device: { type: 'string' },
          dtype: { type: 'string' },
          json: { type: 'boolean', default: false },
        },
      });
      const size = intFlag('size', values.size, 1) ?? 2048;
      const dtype = (enumFlag('dtype', values.dtype, ['float32', 'bfloat16'] as const) ?? 'float32') as 'float32' | 'bfloat16';
      const device = enumFlag('device', values.device, DEVICES) as (typeof DEVICES)[number] | undefined;
      const r = await binding().matmulBench(size, {
        reps: intFlag('reps', values.reps, 1) ?? 5,
        ...(values.threads ? { threads: intFlag('threads', values.threads, 1) as number } : {}),
        ...(device ? { device } : {}),
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
    const { values } = parseArgs({
      args: rest,
      strict: true,
      options: {
        model: { type: 'string' },
        'batch-size': { type: 'string' },
        'seq-len': { type: 'string' },
        steps: { type: 'string' },
        warmup: { type: 'string' },
        threads: { type: 'string' },
        dtype: { type: 'string' },
        'gradient-checkpointing': { type: 'boolean', default: false },
        'lora-r': { type: 'string' },
        'lora-targets': { type: 'string' },
        device: { type: 'string' },
        autocast: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    });
    const model = requiredFlag('model', values.model);
    const loraR = intFlag('lora-r', values['lora-r'], 1);
    if (values['lora-targets'] !== undefined && loraR === undefined) requiredFlag('lora-r', undefined);
    const loraTargets = values['lora-targets']?.split(',').map((t) => t.trim()).filter(Boolean);
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
        batchSize: intFlag('batch-size', requiredFlag('batch-size', values['batch-size']), 1) as number,
        seqLen: intFlag('seq-len', requiredFlag('seq-len', values['seq-len']), 2) as number,
        steps: intFlag('steps', requiredFlag('steps', values.steps), 1) as number,
        warmup: intFlag('warmup', values.warmup, 0) ?? 1,
        ...(values.threads ? { threads: intFlag('threads', values.threads, 1) as number } : {}),
        ...(values['gradient-checkpointing'] ? { gradientCheckpointing: true } : {}),
        ...(loraR !== undefined ? { lora: { r: loraR, alpha: 2 * loraR, ...(loraTargets ? { targets: loraTargets } : {}) } } : {}),
        ...(values.dtype ? { dtype: enumFlag('dtype', values.dtype, ['float32', 'bfloat16'] as const) as 'float32' | 'bfloat16' } : {}),
        ...(values.device ? { device: enumFlag('device', values.device, DEVICES) as (typeof DEVICES)[number] } : {}),
        ...(values.autocast ? { autocast: true } : {}),
      });
      io.stdout.write(
        values.json
          ? `${JSON.stringify(r)}\n`
          : `${r.tokens_per_s.toFixed(1)} tokens/s, ${r.ms_per_step.toFixed(0)} ms/step (forward ${r.ms_forward.toFixed(0)}, backward ${r.ms_backward.toFixed(0)}, optimizer ${r.ms_optimizer.toFixed(0)}), peak RSS ${r.peak_rss_mib.toFixed(0)} MiB, ${r.threads} threads\n`,
      );
      return 0;
    } finally {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }
  },
};

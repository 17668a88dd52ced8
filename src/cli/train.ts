// `sftkit train`: flags / --config -> one validated options object -> train().
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { packageRoot } from '../native/index.ts';
import { train, type TrainHooks, type TrainResult } from '../recipes/sft.ts';
import { acquireRunLock, formatTrainOptionsHelp, launchWorkers, LOCK_ENV, parseTrainArgs } from '../training/index.ts';
import type { CliIo, Command } from './command.ts';

export const trainCommand: Command = {
  name: 'train',
  summary: 'fine-tune a model on a data file (SFT, or pretraining with --format text)',
  get help() {
    return `Usage: sftkit train --model DIR --data FILE --out DIR [options]   (or --config file.json|yaml)

Fine-tunes a Hugging Face causal LM. OUT receives checkpoint-<step>/ directories, the final model (a Hugging Face
directory loadable by transformers), metrics.jsonl, loss.svg/loss.png and data/{train,val,test}.jsonl.
A first Ctrl-C stops after the current step with a checkpoint; --resume continues from it.
One run at a time per OUT: while a run holds OUT/sftkit.lock another is refused, naming it (pid, host, since).
Data parallel: --nproc N starts N workers here (c10d TCPStore on 127.0.0.1; Gloo on the CPU, NCCL on CUDA with one GPU
per rank by LOCAL_RANK when the addon has NCCL; SFTKIT_DIST_BACKEND=gloo|nccl forces one); on several machines start
one process per rank with MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK (and LOCAL_RANK) set, as torchrun does.
--batch-size is then the global batch (divisible by the world size); only rank 0 writes.

${formatTrainOptionsHelp()}`;
  },
  run: (argv: string[], io: CliIo) => runTrainingCommand('train', argv, io, parseTrainArgs(argv), train),
};

/**
 * A training command (train, dpo) once its options are parsed: with --nproc N (and no torchrun environment) the
 * launcher of N workers of this same command, else the run itself; the result as one JSON line, exit 130 when stopped.
 */
export async function runTrainingCommand<O extends { nproc: number; out: string }>(
  name: string,
  argv: string[],
  io: CliIo,
  options: O,
  run: (options: O, hooks: TrainHooks) => Promise<TrainResult>,
): Promise<number> {
  if (options.nproc > 1 && process.env.WORLD_SIZE === undefined) {
    // The launcher: N workers of this same command, each finding its place in the group from the environment. It owns
    // OUT's lock for the whole run; rank 0 finds the token in the environment and uses that lock.
    const out = resolve(options.out);
    await mkdir(out, { recursive: true });
    const lock = await acquireRunLock(out, { command: name, log: (m) => io.stderr.write(`${m}\n`) });
    try {
      const env = { ...process.env, [LOCK_ENV]: lock.holder.token };
      const r = await launchWorkers({ nproc: options.nproc, command: [join(packageRoot, 'bin', 'sftkit.js'), name, ...argv], stdout: io.stdout, stderr: io.stderr, env });
      return r.exitCode;
    } finally {
      lock.release();
    }
  }
  const result = await run(options, { progress: io.stderr, log: (m) => io.stderr.write(`${m}\n`) });
  io.stdout.write(`${JSON.stringify(result)}\n`);
  return result.stopped === 'completed' ? 0 : 130;
}

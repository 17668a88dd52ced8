// `sftkit train --nproc N`: starts N worker processes of this CLI on this machine with the torchrun environment
// (loopback rendezvous on a free port) and supervises them: output of rank 0 passes through, other ranks' lines are
// prefixed; when one rank fails (exit code, signal), the others are stopped after a grace period and the launcher
// exits non-zero naming the lost rank. SIGINT/SIGTERM are forwarded so the workers stop together at a step.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

export interface LaunchOptions {
  nproc: number;
  /** The node script and arguments every worker runs (e.g. [bin/sftkit.js, 'train', ...flags]). */
  command: string[];
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** How long the others get to exit by themselves after one rank failed (ms). */
  graceMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface LaunchResult {
  exitCode: number;
  /** The first rank that failed, if any. */
  failedRank?: number;
  message?: string;
}

/** A free TCP port on the loopback interface for the rendezvous. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

export async function launchWorkers(o: LaunchOptions): Promise<LaunchResult> {
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  const graceMs = o.graceMs ?? 15_000;
  const port = await freePort();
  const children: ChildProcess[] = [];
  let failure: LaunchResult | undefined;
  const exits: Promise<void>[] = [];
  for (let rank = 0; rank < o.nproc; rank++) {
    const child = spawn(process.execPath, o.command, {
      env: {
        ...(o.env ?? process.env),
        WORLD_SIZE: String(o.nproc),
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        LOCAL_WORLD_SIZE: String(o.nproc),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    stderr.write(`sftkit launch: rank ${rank} pid ${child.pid}\n`);
    const prefix = rank === 0 ? '' : `[rank ${rank}] `;
    if (rank === 0) {
      child.stdout?.pipe(stdout, { end: false });
      child.stderr?.pipe(stderr, { end: false });
    } else {
      createInterface({ input: child.stdout! }).on('line', (l) => stdout.write(`${prefix}${l}\n`));
      createInterface({ input: child.stderr! }).on('line', (l) => stderr.write(`${prefix}${l}\n`));
    }
    exits.push(
      new Promise((resolve) => {
        child.on('exit', (code, signal) => {
          if ((code !== 0 || signal) && !failure) {
            failure = { exitCode: 1, failedRank: rank, message: `sftkit launch: rank ${rank} (pid ${child.pid}) ${describeExit(code, signal)}; stopping the other ranks` };
            stderr.write(`${failure.message}\n`);
            const timer = setTimeout(() => {
              for (const other of children) if (other.exitCode === null && other.signalCode === null) other.kill('SIGKILL');
            }, graceMs);
            timer.unref();
          }
          resolve();
        });
      }),
    );
  }
  const forward = (sig: NodeJS.Signals) => () => {
    for (const c of children) if (c.exitCode === null) c.kill(sig);
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    await Promise.all(exits);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
  if (failure) return failure;
  // An interrupted run exits 130 on every rank.
  const codes = children.map((c) => c.exitCode ?? 1);
  return { exitCode: codes.every((c) => c === 0) ? 0 : (codes.find((c) => c !== 0) ?? 1) };
}

// Data-parallel process groups: the torchrun environment (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK),
// the rendezvous through libtorch's c10d (TCPStore + Gloo), and small sum-all-reduces of numbers.
import { invalidParameterError } from '../errors.ts';
import { binding, type NativeProcessGroupHandle } from './binding.ts';
import { withCallerStack } from './call.ts';

export interface DistributedOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Collective/rendezvous timeout: a rank that is gone or stuck longer ends the others with an error. */
  timeoutMs?: number;
  localRank?: number;
}

export const DEFAULT_DIST_TIMEOUT_MS = 300_000;

function int(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw invalidParameterError(name, `an integer in [${lo}, ${hi}]`, v);
  return v;
}

export function validateDistributed(o: unknown): Required<DistributedOptions> {
  if (o === null || typeof o !== 'object') throw invalidParameterError('distributed', 'an object', o);
  const d = o as Partial<DistributedOptions>;
  const worldSize = int('distributed.worldSize', d.worldSize, 1, 65536);
  const rank = int('distributed.rank', d.rank, 0, worldSize - 1);
  if (typeof d.masterAddr !== 'string' || d.masterAddr === '') throw invalidParameterError('distributed.masterAddr', 'a host name or address', d.masterAddr);
  return {
    rank,
    worldSize,
    masterAddr: d.masterAddr,
    masterPort: int('distributed.masterPort', d.masterPort, 1, 65535),
    timeoutMs: d.timeoutMs === undefined ? DEFAULT_DIST_TIMEOUT_MS : int('distributed.timeoutMs', d.timeoutMs, 1, 86_400_000),
    localRank: d.localRank === undefined ? rank : int('distributed.localRank', d.localRank, 0, 65535),
  };
}

/** The torchrun-style environment of this process, or undefined when it is not a worker of a group (> 1). */
export function distributedFromEnv(env: NodeJS.ProcessEnv = process.env): DistributedOptions | undefined {
  if (env.WORLD_SIZE === undefined || env.RANK === undefined) return undefined;
  const worldSize = Number(env.WORLD_SIZE);
  if (!(worldSize > 1)) return undefined;
  return validateDistributed({
    rank: Number(env.RANK),
    worldSize,
    localRank: env.LOCAL_RANK === undefined ? undefined : Number(env.LOCAL_RANK),
    masterAddr: env.MASTER_ADDR ?? '127.0.0.1',
    masterPort: Number(env.MASTER_PORT ?? 29500),
    ...(env.SFTKIT_DIST_TIMEOUT_MS ? { timeoutMs: Number(env.SFTKIT_DIST_TIMEOUT_MS) } : {}),
  });
}

/** A connected group; every rank must make the same calls in the same order. */
export class ProcessGroup {
  constructor(readonly native: NativeProcessGroupHandle) {}

  get rank(): number {
    return this.native.rank;
  }

  get worldSize(): number {
    return this.native.worldSize;
  }

  /** Element-wise sums over the ranks. */
  async allReduce(values: readonly number[]): Promise<number[]> {
    const out = await withCallerStack(() => this.native.allReduce(Float64Array.from(values)));
    return Array.from(out);
  }

  barrier(): Promise<void> {
    return withCallerStack(() => this.native.barrier());
  }

  close(): void {
    this.native.close();
  }
}

/** Rendezvous of `worldSize` processes at masterAddr:masterPort (rank 0 hosts the TCPStore). */
export async function connectProcessGroup(options: DistributedOptions): Promise<ProcessGroup> {
  const o = validateDistributed(options);
  const native = await withCallerStack(() =>
    binding().NativeProcessGroup.connect({ masterAddr: o.masterAddr, masterPort: o.masterPort, rank: o.rank, worldSize: o.worldSize, timeoutMs: o.timeoutMs }),
  );
  return new ProcessGroup(native);
}

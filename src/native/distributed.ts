// Data-parallel process groups: the torchrun environment (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK),
// the rendezvous through libtorch's c10d (TCPStore + Gloo on the CPU, NCCL on one GPU per rank), the choice between
// them, and small sum-all-reduces of numbers.
import { SftkitError, invalidParameterError } from '../errors.ts';
import { binding, type ModelDevice, type NativeProcessGroupHandle, type RuntimeInfo } from './binding.ts';
import { withCallerStack } from './call.ts';

export type DistBackend = 'gloo' | 'nccl';
/** What a run asks for: 'auto' is NCCL when the run is on CUDA and the addon has NCCL, else Gloo. */
export type DistBackendRequest = 'auto' | DistBackend;
export const DIST_BACKENDS: readonly DistBackendRequest[] = ['auto', 'gloo', 'nccl'];

export interface DistributedOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Collective/rendezvous timeout: a rank that is gone or stuck longer ends the others with an error. */
  timeoutMs?: number;
  localRank?: number;
  /** The collective backend (default: SFTKIT_DIST_BACKEND from the environment, else 'auto'); see chooseDistBackend(). */
  backend?: DistBackendRequest;
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
    backend: d.backend === undefined ? distBackendFromEnv() : backendRequest('distributed.backend', d.backend),
  };
}

function backendRequest(name: string, v: unknown): DistBackendRequest {
  if (typeof v !== 'string' || !(DIST_BACKENDS as readonly string[]).includes(v)) throw invalidParameterError(name, "'auto', 'gloo' or 'nccl'", v);
  return v as DistBackendRequest;
}

/** SFTKIT_DIST_BACKEND (auto | gloo | nccl; unset or empty: auto), validated. */
export function distBackendFromEnv(env: NodeJS.ProcessEnv = process.env): DistBackendRequest {
  const v = env.SFTKIT_DIST_BACKEND;
  return v === undefined || v === '' ? 'auto' : backendRequest('SFTKIT_DIST_BACKEND', v);
}

/** Where one rank trains and how its group talks. */
export interface DistPlan {
  backend: DistBackend;
  /** The model's device for this rank: the run's own on the CPU, `cuda:LOCAL_RANK` on CUDA (one GPU per rank). */
  device: ModelDevice;
  /** The CUDA index the group's collectives use (NCCL), else undefined. */
  deviceIndex: number | undefined;
  /** Why, in words (logged by rank 0). */
  note: string;
}

/**
 * The backend and device of one rank. `device` is the run's --device: on CUDA ('cuda', or 'auto' with a GPU visible)
 * every rank takes the GPU of its LOCAL_RANK and the group is NCCL when the addon has it ('auto' falls back to Gloo,
 * which copies CUDA tensors through host memory); on the CPU the group is Gloo. Asking for NCCL where it cannot run is
 * an error that says why.
 */
export function chooseDistBackend(o: {
  requested: DistBackendRequest;
  device: ModelDevice;
  localRank: number;
  runtime: Pick<RuntimeInfo, 'cudaAvailable' | 'cudaDeviceCount'> & { distributed?: { nccl: boolean } };
}): DistPlan {
  const gpus = o.runtime.cudaAvailable ? o.runtime.cudaDeviceCount : 0;
  const nccl = o.runtime.distributed?.nccl === true;
  const onCuda = o.device === 'auto' ? gpus > 0 : o.device !== 'cpu';
  if (!onCuda) {
    if (o.requested === 'nccl') {
      throw new SftkitError('SFTKIT_UNSUPPORTED', `the NCCL backend needs CUDA, and this run is on the CPU (--device ${o.device}${o.device === 'auto' ? ': no GPU visible or a CPU libtorch' : ''}); use gloo`);
    }
    return { backend: 'gloo', device: o.device, deviceIndex: undefined, note: 'Gloo on the CPU' };
  }
  if (gpus === 0) throw new SftkitError('SFTKIT_UNSUPPORTED', `device '${o.device}' requested but this libtorch has no CUDA support (or no GPU is visible)`);
  if (o.localRank >= gpus) {
    throw new SftkitError('SFTKIT_UNSUPPORTED', `LOCAL_RANK ${o.localRank} needs a GPU of its own, and ${gpus} GPU(s) are visible (one GPU per rank: at most --nproc ${gpus})`);
  }
  const device: ModelDevice = `cuda:${o.localRank}`;
  if (o.requested === 'nccl' && !nccl) {
    throw new SftkitError(
      'SFTKIT_UNSUPPORTED',
      'SFTKIT_DIST_BACKEND=nccl, but this addon was built without NCCL (info().distributed.nccl is false): rebuild it against a CUDA libtorch with nccl.h found (README: Data parallelism), or use gloo',
    );
  }
  if (o.requested === 'gloo') return { backend: 'gloo', device, deviceIndex: undefined, note: `Gloo (asked for) on ${device}: gradients go through host memory` };
  if (!nccl) return { backend: 'gloo', device, deviceIndex: undefined, note: `Gloo on ${device}: this addon has no NCCL, so gradients go through host memory` };
  return { backend: 'nccl', device, deviceIndex: o.localRank, note: `NCCL on ${device}` };
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
    backend: distBackendFromEnv(env),
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

  get backend(): DistBackend {
    return this.native.backend;
  }

  /** "cpu" (Gloo) or "cuda:N" (NCCL: where gradients must be to be all-reduced). */
  get device(): string {
    return this.native.device;
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

/**
 * Rendezvous of `worldSize` processes at masterAddr:masterPort (rank 0 hosts the TCPStore). `backend` 'gloo' (the
 * default) or 'nccl' on the GPU `deviceIndex` (default: the local rank); use chooseDistBackend() to pick them.
 */
export async function connectProcessGroup(options: DistributedOptions, how: { backend?: DistBackend; deviceIndex?: number } = {}): Promise<ProcessGroup> {
  const o = validateDistributed(options);
  const backend = how.backend ?? 'gloo';
  if (backend !== 'gloo' && backend !== 'nccl') throw invalidParameterError('backend', "'gloo' or 'nccl'", backend);
  const device = backend === 'nccl' ? int('deviceIndex', how.deviceIndex ?? o.localRank, 0, 1023) : undefined;
  const native = await withCallerStack(() =>
    binding().NativeProcessGroup.connect({
      masterAddr: o.masterAddr,
      masterPort: o.masterPort,
      rank: o.rank,
      worldSize: o.worldSize,
      timeoutMs: o.timeoutMs,
      ...(backend === 'nccl' ? { backend, device } : {}),
    }),
  );
  return new ProcessGroup(native);
}

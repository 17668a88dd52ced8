// The data-parallel backend choice (Gloo on the CPU, NCCL on CUDA with one GPU per rank by LOCAL_RANK) and the
// torchrun environment / SFTKIT_DIST_BACKEND: pure functions, no addon.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { chooseDistBackend, distBackendFromEnv, distributedFromEnv, validateDistributed } from '../../../src/native/distributed.ts';
import { launchWorkers } from '../../../src/training/launch.ts';

const cpuOnly = { cudaAvailable: false, cudaDeviceCount: 0, distributed: { nccl: false } };
const gpus = (n: number, nccl = true) => ({ cudaAvailable: true, cudaDeviceCount: n, distributed: { nccl } });
const code = (c: string, re: RegExp) => (e: Error & { code?: string }) => e.code === c && re.test(e.message);

test('on the CPU: Gloo, the run device untouched; NCCL asked for is an error that says why', () => {
  for (const device of ['cpu', 'auto'] as const) {
    for (const requested of ['auto', 'gloo'] as const) {
      assert.deepEqual(chooseDistBackend({ requested, device, localRank: 1, runtime: cpuOnly }), { backend: 'gloo', device, deviceIndex: undefined, note: 'Gloo on the CPU' });
    }
    assert.throws(() => chooseDistBackend({ requested: 'nccl', device, localRank: 0, runtime: cpuOnly }), code('SFTKIT_UNSUPPORTED', /NCCL backend needs CUDA.*CPU/));
  }
  // --device cpu on a GPU machine stays on the CPU with Gloo, even with NCCL built in.
  assert.equal(chooseDistBackend({ requested: 'auto', device: 'cpu', localRank: 0, runtime: gpus(8) }).backend, 'gloo');
  assert.equal(chooseDistBackend({ requested: 'auto', device: 'cpu', localRank: 0, runtime: gpus(8) }).device, 'cpu');
  assert.throws(() => chooseDistBackend({ requested: 'nccl', device: 'cpu', localRank: 0, runtime: gpus(8) }), code('SFTKIT_UNSUPPORTED', /--device cpu/));
});

test('on CUDA: NCCL on cuda:LOCAL_RANK (one GPU per rank), for --device cuda and for auto with a GPU', () => {
  for (const device of ['cuda', 'auto'] as const) {
    for (const requested of ['auto', 'nccl'] as const) {
      for (const localRank of [0, 1, 3]) {
        const p = chooseDistBackend({ requested, device, localRank, runtime: gpus(4) });
        assert.deepEqual({ backend: p.backend, device: p.device, deviceIndex: p.deviceIndex }, { backend: 'nccl', device: `cuda:${localRank}`, deviceIndex: localRank });
        assert.match(p.note, new RegExp(`NCCL on cuda:${localRank}`));
      }
    }
  }
});

test('on CUDA: Gloo when asked for or when the addon has no NCCL (auto), still one GPU per rank', () => {
  const forced = chooseDistBackend({ requested: 'gloo', device: 'cuda', localRank: 1, runtime: gpus(2) });
  assert.deepEqual({ backend: forced.backend, device: forced.device, deviceIndex: forced.deviceIndex }, { backend: 'gloo', device: 'cuda:1', deviceIndex: undefined });
  assert.match(forced.note, /asked for.*host memory/);
  const fallback = chooseDistBackend({ requested: 'auto', device: 'cuda', localRank: 0, runtime: gpus(2, false) });
  assert.deepEqual({ backend: fallback.backend, device: fallback.device }, { backend: 'gloo', device: 'cuda:0' });
  assert.match(fallback.note, /no NCCL/);
  // An info() of an older addon (no `distributed` field) counts as no NCCL.
  assert.equal(chooseDistBackend({ requested: 'auto', device: 'cuda', localRank: 0, runtime: { cudaAvailable: true, cudaDeviceCount: 1 } }).backend, 'gloo');
  assert.throws(() => chooseDistBackend({ requested: 'nccl', device: 'cuda', localRank: 0, runtime: gpus(2, false) }), code('SFTKIT_UNSUPPORTED', /built without NCCL.*gloo/));
});

test('on CUDA: a LOCAL_RANK without a GPU of its own, or --device cuda without CUDA, is an error', () => {
  assert.throws(() => chooseDistBackend({ requested: 'auto', device: 'cuda', localRank: 2, runtime: gpus(2) }), code('SFTKIT_UNSUPPORTED', /LOCAL_RANK 2 .*2 GPU\(s\).*--nproc 2/));
  assert.throws(() => chooseDistBackend({ requested: 'gloo', device: 'cuda', localRank: 1, runtime: gpus(1) }), code('SFTKIT_UNSUPPORTED', /LOCAL_RANK 1/));
  assert.throws(() => chooseDistBackend({ requested: 'auto', device: 'cuda', localRank: 0, runtime: cpuOnly }), code('SFTKIT_UNSUPPORTED', /no CUDA/));
  // cudaAvailable false with a stale count is no GPU.
  assert.throws(() => chooseDistBackend({ requested: 'auto', device: 'cuda', localRank: 0, runtime: { cudaAvailable: false, cudaDeviceCount: 2 } }), code('SFTKIT_UNSUPPORTED', /no CUDA/));
});

test('SFTKIT_DIST_BACKEND: auto | gloo | nccl, validated; it reaches the torchrun environment and the library default', () => {
  assert.equal(distBackendFromEnv({}), 'auto');
  assert.equal(distBackendFromEnv({ SFTKIT_DIST_BACKEND: '' }), 'auto');
  for (const b of ['auto', 'gloo', 'nccl'] as const) assert.equal(distBackendFromEnv({ SFTKIT_DIST_BACKEND: b }), b);
  assert.throws(() => distBackendFromEnv({ SFTKIT_DIST_BACKEND: 'mpi' }), code('SFTKIT_BAD_ARGUMENT', /SFTKIT_DIST_BACKEND/));
  const env = { WORLD_SIZE: '4', RANK: '5', LOCAL_RANK: '1', MASTER_ADDR: '10.0.0.2', MASTER_PORT: '29400', SFTKIT_DIST_BACKEND: 'nccl' };
  assert.throws(() => distributedFromEnv(env), /distributed.rank/);
  const d = distributedFromEnv({ ...env, RANK: '3' });
  assert.deepEqual(d, { rank: 3, worldSize: 4, localRank: 1, masterAddr: '10.0.0.2', masterPort: 29400, timeoutMs: 300_000, backend: 'nccl' });
  assert.equal(distributedFromEnv({ ...env, RANK: '3', SFTKIT_DIST_BACKEND: undefined })?.backend, 'auto');
  assert.equal(distributedFromEnv({ WORLD_SIZE: '1', RANK: '0' }), undefined);
  // The library's `distributed` option: its own backend, validated; localRank defaults to the rank.
  const lib = validateDistributed({ rank: 1, worldSize: 2, masterAddr: '127.0.0.1', masterPort: 1234, backend: 'gloo' });
  assert.equal(lib.backend, 'gloo');
  assert.equal(lib.localRank, 1);
  assert.throws(() => validateDistributed({ rank: 0, worldSize: 2, masterAddr: 'h', masterPort: 1, backend: 'NCCL' }), code('SFTKIT_BAD_ARGUMENT', /distributed.backend/));
});

test('the launcher gives every rank LOCAL_RANK = rank, which chooseDistBackend maps to cuda:LOCAL_RANK', async () => {
  // launchWorkers (src/training/launch.ts) with workers that print their torchrun environment.
  let text = '';
  const sink = new Writable({ write: (c, _e, done) => ((text += String(c)), done()) });
  const script = 'const e = process.env; console.log(JSON.stringify({ WORLD_SIZE: e.WORLD_SIZE, RANK: e.RANK, LOCAL_RANK: e.LOCAL_RANK, MASTER_ADDR: e.MASTER_ADDR, MASTER_PORT: e.MASTER_PORT }))';
  const r = await launchWorkers({ nproc: 3, command: ['-e', script], stdout: sink, stderr: new Writable({ write: (_c, _e, done) => done() }) });
  assert.equal(r.exitCode, 0);
  const envs = text.split('\n').filter((l) => l.includes('{')).map((l) => JSON.parse(l.slice(l.indexOf('{'))) as NodeJS.ProcessEnv);
  assert.equal(envs.length, 3);
  const devices = envs.map((env) => {
    const d = distributedFromEnv(env)!;
    assert.equal(d.localRank, d.rank);
    return chooseDistBackend({ requested: d.backend!, device: 'cuda', localRank: d.localRank!, runtime: gpus(3) }).device;
  });
  assert.deepEqual(devices.sort(), ['cuda:0', 'cuda:1', 'cuda:2']);
});

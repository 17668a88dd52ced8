// NativeProcessGroup's backends on this build: Gloo always (a group of one here; several ranks in
// test/e2e/distributed.test.ts), NCCL only in an addon built with it (info().distributed.nccl), with clear errors
// where it cannot run; models on `cuda:N` (one GPU per rank) refused without CUDA.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { binding } from '../../src/native/binding.ts';
import { connectProcessGroup } from '../../src/native/distributed.ts';
import { loadModel } from '../../src/native/model.ts';
import { freePort } from '../../src/training/launch.ts';
import { train } from '../../src/recipes/sft.ts';

const tiny = (name: string) => join(import.meta.dirname, '..', 'fixtures', 'models', `tiny-${name}`);
const info = binding().info();

test('info().distributed says which backends the addon has', () => {
  assert.equal(info.distributed.gloo, true);
  assert.equal(typeof info.distributed.nccl, 'boolean');
  if (info.distributed.nccl) assert.match(info.distributed.ncclHeaders ?? '', /^\d+\.\d+\.\d+$/);
  else assert.equal(info.distributed.ncclHeaders, null);
  // A CPU libtorch never has NCCL (CMakeLists.txt compiles that path only against a CUDA libtorch with c10d NCCL).
  if (!/USE_CUDA=(ON|1)/.test(info.torchConfig)) assert.equal(info.distributed.nccl, false);
});

test('a Gloo group of one: backend gloo on the cpu, sums are the values', async () => {
  const g = await connectProcessGroup({ rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await freePort(), timeoutMs: 20_000 });
  try {
    assert.equal(g.backend, 'gloo');
    assert.equal(g.device, 'cpu');
    assert.deepEqual(await g.allReduce([1.5, -2, 3e10]), [1.5, -2, 3e10]);
    await g.barrier();
  } finally {
    g.close();
  }
});

test('connect: backend is validated; nccl without NCCL in the addon (or without a GPU) is SFTKIT_UNSUPPORTED', async () => {
  const Native = binding().NativeProcessGroup;
  const base = { masterAddr: '127.0.0.1', masterPort: await freePort(), rank: 0, worldSize: 1, timeoutMs: 5_000 };
  assert.throws(() => Native.connect({ ...base, backend: 'mpi' as 'gloo' }), { code: 'SFTKIT_BAD_ARGUMENT', message: /backend must be 'gloo' or 'nccl'/ });
  if (!info.distributed.nccl) {
    assert.throws(() => Native.connect({ ...base, backend: 'nccl', device: 0 }), { code: 'SFTKIT_UNSUPPORTED', message: /built without NCCL/ });
  } else if (!info.cudaAvailable || info.cudaDeviceCount === 0) {
    await assert.rejects(Native.connect({ ...base, backend: 'nccl', device: 0 }), { code: 'SFTKIT_UNSUPPORTED', message: /GPU/ });
  } else {
    assert.throws(() => Native.connect({ ...base, backend: 'nccl', device: -1 }), { code: 'SFTKIT_BAD_ARGUMENT' });
  }
});

test('a model on cuda:N: the device string is validated, and refused without that GPU', async () => {
  await assert.rejects(loadModel(tiny('gpt2'), { device: 'cuda:x' as 'cuda' }), { code: 'SFTKIT_BAD_ARGUMENT', message: /'cuda:N'/ });
  await assert.rejects(loadModel(tiny('gpt2'), { device: 'cuda:99999' as 'cuda' }), { code: 'SFTKIT_BAD_ARGUMENT' });
  const gpus = info.cudaAvailable ? info.cudaDeviceCount : 0;
  await assert.rejects(loadModel(tiny('gpt2'), { device: `cuda:${gpus}` }), (e: Error & { code?: string }) => e.code === 'SFTKIT_UNSUPPORTED' && /cuda:\d+/.test(e.message));
});

test('train({ distributed: { backend: "nccl" } }) on the CPU: refused before anything runs, saying NCCL needs CUDA', async () => {
  const fixtures = join(import.meta.dirname, '..', 'fixtures');
  const out = join(tmpdir(), `sftkit-nccl-refused-${process.pid}`);
  await assert.rejects(
    train(
      {
        model: join(fixtures, 'models', 'tinystories-656k'), data: join(fixtures, 'data', 'instruction-data.json'), out, device: 'cpu', maxSteps: 1, batchSize: 2,
        distributed: { rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await freePort(), backend: 'nccl' },
      },
      { progress: { write: () => true }, log: () => {}, handleSignals: false },
    ),
    { code: 'SFTKIT_UNSUPPORTED', message: /NCCL backend needs CUDA.*--device cpu/ },
  );
  assert.equal(existsSync(out), false, 'nothing was written');
});

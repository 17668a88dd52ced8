// The first native function set: runtime info, threads, typed-array round trips, async work and error contract.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { binding } from '../../src/native/binding.ts';
import { withCallerStack } from '../../src/native/call.ts';

const native = binding();

test('info() reports torch 2.13, CPU capability, threads and build flags', () => {
  const info = native.info();
  assert.match(info.torchVersion, /^2\.13\./);
  assert.equal(typeof info.cpu.avx2, 'boolean');
  assert.equal(typeof info.cpu.avx512, 'boolean');
  assert.match(info.cpu.capability, /^(DEFAULT|AVX2|AVX512|[A-Z0-9_]+)$/);
  assert.ok(['isa', 'vendor'].includes(info.mkl.dispatch));
  assert.ok(Number.isInteger(info.mkl.codePath) && info.mkl.codePath >= 0, 'the torch wheel bundles MKL');
  assert.ok(info.numThreads >= 1);
  assert.equal(info.cudaAvailable, false); // CPU libtorch on this machine
  assert.equal(info.build.cxx11Abi, true);
  assert.equal(info.build.napiVersion, 8);
  assert.match(info.build.cxxFlags, /-O3/);
});

test('setNumThreads / getNumThreads, and bad values are coded errors', () => {
  const before = native.getNumThreads();
  native.setNumThreads(1);
  assert.equal(native.getNumThreads(), 1);
  native.setNumThreads(before);
  assert.equal(native.getNumThreads(), before);
  assert.throws(() => native.setNumThreads(0), { code: 'SFTKIT_BAD_ARGUMENT' });
  assert.throws(() => native.setNumThreads(1.5), { code: 'SFTKIT_BAD_ARGUMENT' });
});

test('roundTrip: typed arrays of each dtype come back scaled with their shape', async () => {
  const f = await native.roundTrip(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], { scale: 0.5 });
  assert.ok(f.data instanceof Float32Array);
  assert.deepEqual([...f.data], [0.5, 1, 1.5, 2, 2.5, 3]);
  assert.deepEqual(f.shape, [2, 3]);
  assert.equal(f.sum, 10.5);
  const i = await native.roundTrip(new Int32Array([-100, 7, 2 ** 30]), [3], { scale: 1 });
  assert.ok(i.data instanceof Int32Array);
  assert.deepEqual([...i.data], [-100, 7, 2 ** 30]);
  const u = await native.roundTrip(new Uint8Array([0, 1, 255]), [1, 3]);
  assert.ok(u.data instanceof Uint8Array);
  assert.deepEqual([...u.data], [0, 1, 255]);
  const empty = await native.roundTrip(new Float32Array(0), [0, 4]);
  assert.equal(empty.data.length, 0);
  assert.deepEqual(empty.shape, [0, 4]);
});

test('roundTrip reads a view at a byte offset (subarray) without copying it first', async () => {
  const big = new Float32Array([9, 9, 1, 2, 3, 9]);
  const r = await native.roundTrip(big.subarray(2, 5), [3], { scale: 2 });
  assert.deepEqual([...r.data], [2, 4, 6]);
});

test('the input stays alive while the async call runs, even when JS drops its reference', async () => {
  let pending: Promise<{ sum: number }>;
  {
    const a = new Float32Array(1 << 20).fill(1);
    pending = native.roundTrip(a, [1 << 20], { scale: 3 });
  }
  (globalThis as { gc?: () => void }).gc?.();
  assert.equal((await pending).sum, 3 * (1 << 20));
});

test('shape and type mismatches are SFTKIT_BAD_ARGUMENT errors, raised before any work', () => {
  assert.throws(() => native.roundTrip(new Float32Array(3), [2, 2]), {
    code: 'SFTKIT_BAD_ARGUMENT',
    message: /shape holds 4 elements but the array has 3/,
  });
  assert.throws(() => native.roundTrip([1, 2] as unknown as Float32Array, [2]), { code: 'SFTKIT_BAD_ARGUMENT' });
  assert.throws(() => native.roundTrip(new Float32Array(2), [-2]), { code: 'SFTKIT_BAD_ARGUMENT' });
  assert.throws(() => native.roundTrip(new Float32Array(2), [2], { threads: -1 }), { code: 'SFTKIT_BAD_ARGUMENT' });
});

test('native work runs off the event loop: timers keep ticking during busyWork', async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const started = Date.now();
  const r = await native.busyWork(400, { threads: 1 });
  clearInterval(timer);
  assert.ok(r.iterations > 0);
  assert.ok(r.ms >= 400);
  // A blocked loop would give 0 or 1 tick; a free one about 40.
  assert.ok(ticks >= 10, `only ${ticks} timer ticks in ${Date.now() - started} ms`);
});

test('an error raised on the worker thread rejects with a code and the caller-side stack', async () => {
  async function callerFunctionName(): Promise<void> {
    await withCallerStack(() => native.busyWork(1, { fail: true }));
  }
  await assert.rejects(callerFunctionName(), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'SFTKIT_NATIVE');
    assert.match(e.message, /shapes cannot be multiplied|size mismatch|mat1 and mat2/);
    assert.match(e.stack ?? '', /callerFunctionName/);
    return true;
  });
});

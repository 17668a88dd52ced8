// Boundary self-tests: a tensor round trip through typed arrays and an async busy loop that proves
// the event loop keeps ticking while native work runs on a worker thread.
#pragma once

#include <napi.h>

namespace sft {

// roundTrip(array, shape, { scale, threads }) -> Promise<{ data, shape, sum }>: data = array * scale.
Napi::Value round_trip(const Napi::CallbackInfo& info);
// busyWork(ms, { threads, fail }) -> Promise<{ iterations, ms }>: matmuls on a worker thread for about `ms`;
// fail: true raises a real libtorch error on the worker thread (tests async error delivery).
Napi::Value busy_work(const Napi::CallbackInfo& info);

// matmulBench(n, { reps, threads, device, dtype }) -> Promise<{ size, ms, gflops, threads, device, dtype, checksum }>:
// the best of `reps` n x n matmuls (the matmul ceiling that benches quote MFU against); device 'cpu' (default),
// 'cuda' or 'auto', dtype 'float32' (default) or 'bfloat16'.
Napi::Value matmul_bench(const Napi::CallbackInfo& info);

}  // namespace sft

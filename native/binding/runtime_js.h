// Runtime facts and settings of the native engine for JS: libtorch version, CPU capability, threads, CUDA, build
// flags (engine/runtime.h), the CPU memory pool (engine/cpu_pool.h), the CUDA allocator's memory counters.
#pragma once

#include <napi.h>

namespace sft {

Napi::Value runtime_info(const Napi::CallbackInfo& info);      // info() -> plain object (sync)
Napi::Value set_num_threads(const Napi::CallbackInfo& info);   // setNumThreads(n)
Napi::Value get_num_threads(const Napi::CallbackInfo& info);   // getNumThreads() -> n
Napi::Value set_cpu_pool(const Napi::CallbackInfo& info);      // setCpuPool(enabled): cpu_pool.h
Napi::Value cpu_pool_stats_js(const Napi::CallbackInfo& info); // cpuPoolStats() -> plain object
Napi::Value release_cpu_pool_js(const Napi::CallbackInfo& info); // releaseCpuPool() -> bytes given back
// cudaMemoryStats() -> { available, initialized, allocatedBytes, peakAllocatedBytes, reservedBytes, peakReservedBytes,
// reason? }: the CUDA caching allocator's counters for device 0 (torch.cuda.memory_allocated / max_memory_allocated /
// memory_reserved / max_memory_reserved); zeros with available: false in a CPU build or without a GPU.
Napi::Value cuda_memory_stats_js(const Napi::CallbackInfo& info);
Napi::Value reset_cuda_peak_memory_js(const Napi::CallbackInfo& info);  // resetCudaPeakMemory()

}  // namespace sft

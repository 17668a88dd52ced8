// Runtime facts of the native engine as plain structs: libtorch version, CPU capability, MKL dispatch, threads, CUDA,
// distributed backends, build flags, and the CUDA caching allocator's memory counters. binding/runtime_js.cc hands
// them to JS (info(), cudaMemoryStats()); `sftkit doctor` reports them.
#pragma once

#include <cstdint>
#include <string>

namespace sft {

struct RuntimeFacts {
  std::string torch_version;
  bool avx2 = false, avx512 = false, fma = false;  // what this CPU supports (x86-64; false elsewhere)
  std::string cpu_capability;                      // the kernel set ATen dispatches to ("AVX2", "AVX512", ...)
  std::string mkl_dispatch;                        // "isa" (native/preload/ answers MKL's vendor check) or "vendor"
  int mkl_code_path = -1;                          // MKL's detected code path, -1 without MKL
  int num_threads = 0, num_interop_threads = 0;
  std::string parallel_info;
  bool cuda_available = false;
  int64_t cuda_device_count = 0;
  bool nccl = false;
  std::string nccl_headers;  // nccl.h version the build used ("" without NCCL)
  std::string build_type, compiler, cxx_flags;
  bool cxx11_abi = false;
  std::string torch_config;  // at::show_config()
};
RuntimeFacts runtime_facts();

// The CUDA caching allocator's counters for device 0 (torch.cuda.memory_allocated / max_memory_allocated /
// memory_reserved / max_memory_reserved); zeros with available = false in a CPU build or without a GPU, and `reason`
// says why ("" when available).
struct CudaMemoryStats {
  bool available = false, initialized = false;
  int64_t allocated_bytes = 0, peak_allocated_bytes = 0, reserved_bytes = 0, peak_reserved_bytes = 0;
  std::string reason;
};
CudaMemoryStats cuda_memory_stats();
// Resets the peak counters of device 0 (nothing without CUDA or before its first allocation).
void reset_cuda_peak_memory();

}  // namespace sft

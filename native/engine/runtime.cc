// Implements runtime.h (no N-API): what `sftkit doctor` reports about the native side.
#include "runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
// TORCH_VERSION and TORCH_VERSION_MAJOR/MINOR on every libtorch: from 2.13 this header forwards to
// <torch/headeronly/version.h>, which older ones (2.11 on the GPU machines) may not have.
#include <torch/version.h>

// c10::DeviceAllocator (the device-agnostic face of the CUDA caching allocator, in c10 itself, so a CPU build links
// without libc10_cuda) appeared in libtorch 2.9; older headers get no CUDA memory statistics.
#if (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)) && \
    __has_include(<c10/core/CachingDeviceAllocator.h>)
#include <c10/core/CachingDeviceAllocator.h>
#define SFTKIT_DEVICE_ALLOCATOR_STATS 1
#endif

#include <dlfcn.h>

#include <string>

#include "distributed.h"
#include "errors.h"

namespace sft {
namespace {

// The kernel set ATen dispatches to ("AVX2", "AVX512", "DEFAULT", ...). get_cpu_capability() is not
// exported from libtorch_cpu, so read the line show_config() prints for it.
std::string dispatch_capability(const std::string& config) {
  const std::string key = "CPU capability usage: ";
  auto pos = config.find(key);
  if (pos == std::string::npos) return "UNKNOWN";
  auto end = config.find('\n', pos);
  return config.substr(pos + key.size(), end == std::string::npos ? std::string::npos : end - pos - key.size());
}

// Which library answers MKL's vendor check (mkl_serv_intel_cpu_true), and MKL's detected code path. Both are
// symbols libtorch_cpu exports from its MKL; looked up at run time so a libtorch without MKL just reports -1.
void mkl_info(RuntimeFacts& f) {
  std::string dispatch = "vendor";
  Dl_info where{};
  void* check = dlsym(RTLD_DEFAULT, "mkl_serv_intel_cpu_true");
  if (check != nullptr && dladdr(check, &where) != 0 && where.dli_fname != nullptr &&
      std::string(where.dli_fname).find("libsftkit_mkl_dispatch") != std::string::npos) {
    dispatch = "isa";
  }
  f.mkl_dispatch = dispatch;
  using Detect = int (*)();
  auto detect = reinterpret_cast<Detect>(dlsym(RTLD_DEFAULT, "mkl_serv_cpu_detect"));
  f.mkl_code_path = detect != nullptr ? detect() : -1;
}

}  // namespace

RuntimeFacts runtime_facts() {
  RuntimeFacts f;
  f.torch_version = TORCH_VERSION;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.avx512 = __builtin_cpu_supports("avx512f");
  f.fma = __builtin_cpu_supports("fma");
#endif
  f.torch_config = at::show_config();
  f.cpu_capability = dispatch_capability(f.torch_config);
  mkl_info(f);
  f.num_threads = at::get_num_threads();
  f.num_interop_threads = at::get_num_interop_threads();
  f.parallel_info = at::get_parallel_info();
  f.cuda_available = at::hasCUDA();
  f.cuda_device_count = at::hasCUDA() ? at::getNumGPUs() : 0;
  f.nccl = has_nccl();
  f.nccl_headers = nccl_header_version();
  f.build_type = SFTKIT_BUILD_TYPE;
  f.compiler = SFTKIT_CXX_COMPILER;
  f.cxx_flags = SFTKIT_CXX_FLAGS;
  f.cxx11_abi = static_cast<bool>(_GLIBCXX_USE_CXX11_ABI);
  return f;
}

CudaMemoryStats cuda_memory_stats() {
  CudaMemoryStats out;
  const bool cuda = at::hasCUDA() && at::getNumGPUs() > 0;
  if (!cuda) {
    out.reason = "this libtorch has no CUDA or no GPU is visible";
    return out;
  }
#ifdef SFTKIT_DEVICE_ALLOCATOR_STATS
  out.available = true;
  try {
    // Device 0, where sftkit puts a model (device.h). Before the first CUDA allocation the caching allocator has no
    // devices and answers with an error: nothing has been allocated yet, so the zeros stand.
    const c10::CachingDeviceAllocator::DeviceStats s = c10::getDeviceAllocator(at::kCUDA)->getDeviceStats(0);
    out.initialized = true;
    out.allocated_bytes = s.allocated_bytes[0].current;  // [0]: StatType::AGGREGATE (both pools)
    out.peak_allocated_bytes = s.allocated_bytes[0].peak;
    out.reserved_bytes = s.reserved_bytes[0].current;
    out.peak_reserved_bytes = s.reserved_bytes[0].peak;
  } catch (const c10::Error&) {
  }
#else
  out.reason = std::string("libtorch ") + TORCH_VERSION + " has no c10::DeviceAllocator (needs >= 2.9)";
#endif
  return out;
}

void reset_cuda_peak_memory() {
#ifdef SFTKIT_DEVICE_ALLOCATOR_STATS
  if (at::hasCUDA() && at::getNumGPUs() > 0) {
    try {
      c10::getDeviceAllocator(at::kCUDA)->resetPeakStats(0);
    } catch (const c10::Error&) {
      // Not initialised: no peak to reset.
    }
  }
#endif
}

}  // namespace sft

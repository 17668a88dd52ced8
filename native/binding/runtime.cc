// Implements runtime.h: what `sftkit doctor` reports about the native side.
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

#include "cpu_pool.h"
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
Napi::Object mkl_info(Napi::Env env) {
  Napi::Object mkl = Napi::Object::New(env);
  std::string dispatch = "vendor";
  Dl_info where{};
  void* check = dlsym(RTLD_DEFAULT, "mkl_serv_intel_cpu_true");
  if (check != nullptr && dladdr(check, &where) != 0 && where.dli_fname != nullptr &&
      std::string(where.dli_fname).find("libsftkit_mkl_dispatch") != std::string::npos) {
    dispatch = "isa";
  }
  mkl.Set("dispatch", dispatch);
  using Detect = int (*)();
  auto detect = reinterpret_cast<Detect>(dlsym(RTLD_DEFAULT, "mkl_serv_cpu_detect"));
  mkl.Set("codePath", detect != nullptr ? detect() : -1);
  return mkl;
}

}  // namespace

Napi::Value runtime_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", TORCH_VERSION);
  Napi::Object cpu = Napi::Object::New(env);
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  cpu.Set("avx2", Napi::Boolean::New(env, __builtin_cpu_supports("avx2")));
  cpu.Set("avx512", Napi::Boolean::New(env, __builtin_cpu_supports("avx512f")));
  cpu.Set("fma", Napi::Boolean::New(env, __builtin_cpu_supports("fma")));
#else
  cpu.Set("avx2", false);
  cpu.Set("avx512", false);
  cpu.Set("fma", false);
#endif
  const std::string config = at::show_config();
  cpu.Set("capability", dispatch_capability(config));
  out.Set("cpu", cpu);
  out.Set("mkl", mkl_info(env));
  out.Set("numThreads", at::get_num_threads());
  out.Set("numInteropThreads", at::get_num_interop_threads());
  out.Set("parallelInfo", at::get_parallel_info());
  out.Set("cudaAvailable", at::hasCUDA());
  out.Set("cudaDeviceCount", static_cast<double>(at::hasCUDA() ? at::getNumGPUs() : 0));
  Napi::Object dist = Napi::Object::New(env);
  dist.Set("gloo", true);
  dist.Set("nccl", has_nccl());
  dist.Set("ncclHeaders", has_nccl() ? Napi::Value(Napi::String::New(env, nccl_header_version())) : env.Null());
  out.Set("distributed", dist);
  Napi::Object build = Napi::Object::New(env);
  build.Set("buildType", SFTKIT_BUILD_TYPE);
  build.Set("compiler", SFTKIT_CXX_COMPILER);
  build.Set("cxxFlags", SFTKIT_CXX_FLAGS);
  build.Set("napiVersion", NAPI_VERSION);
  build.Set("cxx11Abi", static_cast<bool>(_GLIBCXX_USE_CXX11_ABI));
  build.Set("torchHeaders", TORCH_VERSION);
  out.Set("build", build);
  out.Set("torchConfig", config);
  return out;
  SFT_NAPI_CATCH(env)
}

Napi::Value set_num_threads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  if (info.Length() < 1 || !info[0].IsNumber()) throw_bad_argument("setNumThreads(n): n must be a positive integer");
  double n = info[0].As<Napi::Number>().DoubleValue();
  if (n < 1 || n > 4096 || n != static_cast<int>(n)) throw_bad_argument("setNumThreads(n): n must be an integer in [1, 4096]");
  at::set_num_threads(static_cast<int>(n));
  return env.Undefined();
  SFT_NAPI_CATCH(env)
}

Napi::Value get_num_threads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  return Napi::Number::New(env, at::get_num_threads());
  SFT_NAPI_CATCH(env)
}

Napi::Value set_cpu_pool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  if (info.Length() < 1 || !info[0].IsBoolean()) throw_bad_argument("setCpuPool(enabled): enabled must be a boolean");
  set_cpu_pool_enabled(info[0].As<Napi::Boolean>().Value());
  return env.Undefined();
  SFT_NAPI_CATCH(env)
}

Napi::Value cpu_pool_stats_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  CpuPoolStats s = cpu_pool_stats();
  Napi::Object out = Napi::Object::New(env);
  auto num = [&](const char* key, std::size_t v) { out.Set(key, Napi::Number::New(env, static_cast<double>(v))); };
  out.Set("installed", Napi::Boolean::New(env, s.installed));
  num("liveBytes", s.live_bytes);
  num("cachedBytes", s.cached_bytes);
  num("unbackedBytes", s.unbacked_bytes);
  num("peakBytes", s.peak_bytes);
  num("peakLiveBytes", s.peak_live_bytes);
  num("reuses", s.reuses);
  num("remaps", s.remaps);
  num("remappedBytes", s.remapped_bytes);
  num("grownBytes", s.grown_bytes);
  return out;
  SFT_NAPI_CATCH(env)
}

Napi::Value release_cpu_pool_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  return Napi::Number::New(env, static_cast<double>(release_cpu_pool()));
  SFT_NAPI_CATCH(env)
}

Napi::Value cuda_memory_stats_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Napi::Object out = Napi::Object::New(env);
  auto num = [&](const char* key, int64_t v) { out.Set(key, Napi::Number::New(env, static_cast<double>(v))); };
  const bool cuda = at::hasCUDA() && at::getNumGPUs() > 0;
  out.Set("available", false);
  out.Set("initialized", false);
  for (const char* k : {"allocatedBytes", "peakAllocatedBytes", "reservedBytes", "peakReservedBytes"}) num(k, 0);
  if (!cuda) {
    out.Set("reason", "this libtorch has no CUDA or no GPU is visible");
    return out;
  }
#ifdef SFTKIT_DEVICE_ALLOCATOR_STATS
  out.Set("available", true);
  try {
    // Device 0, where sftkit puts a model (device.h). Before the first CUDA allocation the caching allocator has no
    // devices and answers with an error: nothing has been allocated yet, so the zeros stand.
    const c10::CachingDeviceAllocator::DeviceStats s = c10::getDeviceAllocator(at::kCUDA)->getDeviceStats(0);
    out.Set("initialized", true);
    num("allocatedBytes", s.allocated_bytes[0].current);  // [0]: StatType::AGGREGATE (both pools)
    num("peakAllocatedBytes", s.allocated_bytes[0].peak);
    num("reservedBytes", s.reserved_bytes[0].current);
    num("peakReservedBytes", s.reserved_bytes[0].peak);
  } catch (const c10::Error&) {
  }
#else
  out.Set("reason", std::string("libtorch ") + TORCH_VERSION + " has no c10::DeviceAllocator (needs >= 2.9)");
#endif
  return out;
  SFT_NAPI_CATCH(env)
}

Napi::Value reset_cuda_peak_memory_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
#ifdef SFTKIT_DEVICE_ALLOCATOR_STATS
  if (at::hasCUDA() && at::getNumGPUs() > 0) {
    try {
      c10::getDeviceAllocator(at::kCUDA)->resetPeakStats(0);
    } catch (const c10::Error&) {
      // Not initialised: no peak to reset.
    }
  }
#endif
  return env.Undefined();
  SFT_NAPI_CATCH(env)
}

}  // namespace sft

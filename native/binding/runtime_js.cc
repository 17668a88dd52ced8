// Implements runtime_js.h: engine/runtime.h's structs and the CPU pool's counters as plain JS objects.
#include "runtime_js.h"

#include <ATen/Parallel.h>

#include <string>

#include "engine/cpu_pool.h"
#include "engine/runtime.h"
#include "js_errors.h"

namespace sft {

Napi::Value runtime_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  const RuntimeFacts f = runtime_facts();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", f.torch_version);
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("avx2", Napi::Boolean::New(env, f.avx2));
  cpu.Set("avx512", Napi::Boolean::New(env, f.avx512));
  cpu.Set("fma", Napi::Boolean::New(env, f.fma));
  cpu.Set("capability", f.cpu_capability);
  out.Set("cpu", cpu);
  Napi::Object mkl = Napi::Object::New(env);
  mkl.Set("dispatch", f.mkl_dispatch);
  mkl.Set("codePath", f.mkl_code_path);
  out.Set("mkl", mkl);
  out.Set("numThreads", f.num_threads);
  out.Set("numInteropThreads", f.num_interop_threads);
  out.Set("parallelInfo", f.parallel_info);
  out.Set("cudaAvailable", f.cuda_available);
  out.Set("cudaDeviceCount", static_cast<double>(f.cuda_device_count));
  Napi::Object dist = Napi::Object::New(env);
  dist.Set("gloo", true);
  dist.Set("nccl", f.nccl);
  dist.Set("ncclHeaders", f.nccl ? Napi::Value(Napi::String::New(env, f.nccl_headers)) : env.Null());
  out.Set("distributed", dist);
  Napi::Object build = Napi::Object::New(env);
  build.Set("buildType", f.build_type);
  build.Set("compiler", f.compiler);
  build.Set("cxxFlags", f.cxx_flags);
  build.Set("napiVersion", NAPI_VERSION);
  build.Set("cxx11Abi", f.cxx11_abi);
  build.Set("torchHeaders", f.torch_version);
  out.Set("build", build);
  out.Set("torchConfig", f.torch_config);
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
  const CudaMemoryStats s = cuda_memory_stats();
  Napi::Object out = Napi::Object::New(env);
  auto num = [&](const char* key, int64_t v) { out.Set(key, Napi::Number::New(env, static_cast<double>(v))); };
  out.Set("available", s.available);
  out.Set("initialized", s.initialized);
  num("allocatedBytes", s.allocated_bytes);
  num("peakAllocatedBytes", s.peak_allocated_bytes);
  num("reservedBytes", s.reserved_bytes);
  num("peakReservedBytes", s.peak_reserved_bytes);
  if (!s.reason.empty()) out.Set("reason", s.reason);
  return out;
  SFT_NAPI_CATCH(env)
}

Napi::Value reset_cuda_peak_memory_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  reset_cuda_peak_memory();
  return env.Undefined();
  SFT_NAPI_CATCH(env)
}

}  // namespace sft

// sftkit native addon: registers the exports. Each exported concern lives in its own binding file (<concern>_js.cc),
// over the engine in native/engine/.
#include <napi.h>

#include "diagnostics_js.h"
#include "distill_js.h"
#include "distributed_js.h"
#include "loss_js.h"
#include "model_js.h"
#include "runtime_js.h"
#include "safetensors_js.h"

namespace sft {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, runtime_info, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, set_num_threads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, get_num_threads, "getNumThreads"));
  exports.Set("setCpuPool", Napi::Function::New(env, set_cpu_pool, "setCpuPool"));
  exports.Set("cpuPoolStats", Napi::Function::New(env, cpu_pool_stats_js, "cpuPoolStats"));
  exports.Set("releaseCpuPool", Napi::Function::New(env, release_cpu_pool_js, "releaseCpuPool"));
  exports.Set("cudaMemoryStats", Napi::Function::New(env, cuda_memory_stats_js, "cudaMemoryStats"));
  exports.Set("resetCudaPeakMemory", Napi::Function::New(env, reset_cuda_peak_memory_js, "resetCudaPeakMemory"));
  exports.Set("roundTrip", Napi::Function::New(env, round_trip, "roundTrip"));
  exports.Set("busyWork", Napi::Function::New(env, busy_work, "busyWork"));
  exports.Set("matmulBench", Napi::Function::New(env, matmul_bench, "matmulBench"));
  exports.Set("NativeModel", define_native_model(env));
  exports.Set("safetensorsInfo", Napi::Function::New(env, safetensors_info, "safetensorsInfo"));
  exports.Set("loadSafetensors", Napi::Function::New(env, load_safetensors, "loadSafetensors"));
  exports.Set("loadSafetensorsDir", Napi::Function::New(env, load_safetensors_dir_js, "loadSafetensorsDir"));
  exports.Set("saveSafetensors", Napi::Function::New(env, save_safetensors_js, "saveSafetensors"));
  exports.Set("NativeProcessGroup", define_native_process_group(env));
  exports.Set("crossEntropy", Napi::Function::New(env, cross_entropy_js, "crossEntropy"));
  exports.Set("adamwSteps", Napi::Function::New(env, adamw_steps_js, "adamwSteps"));
  exports.Set("distillLoss", Napi::Function::New(env, distill_loss_js, "distillLoss"));
  return exports;
}

}  // namespace sft

static Napi::Object InitSftkit(Napi::Env env, Napi::Object exports) { return sft::Init(env, exports); }

NODE_API_MODULE(sftkit, InitSftkit)

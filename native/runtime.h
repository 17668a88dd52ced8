// Runtime facts and settings of the native engine: libtorch version, CPU capability, threads, CUDA, build flags.
#pragma once

#include <napi.h>

namespace sft {

Napi::Value runtime_info(const Napi::CallbackInfo& info);      // info() -> plain object (sync)
Napi::Value set_num_threads(const Napi::CallbackInfo& info);   // setNumThreads(n)
Napi::Value get_num_threads(const Napi::CallbackInfo& info);   // getNumThreads() -> n

}  // namespace sft

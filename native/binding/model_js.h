// NativeModel: the JS object (Napi::ObjectWrap) that owns one model and its AdamW (an engine TrainState,
// engine/steps.h). Heavy methods run on TorchWorkers and return Promises; one operation in flight per model (a second
// concurrent call is rejected with SFTKIT_BAD_ARGUMENT; the TS side queues so that this never happens in normal use).
// No global state: everything lives in the wrapper's ModelState, shared with the workers that run on it.
#pragma once

#include <napi.h>

namespace sft {

// Defines the NativeModel class (constructor takes no arguments; call load(dir, spec, options) next).
Napi::Function define_native_model(Napi::Env env);

}  // namespace sft

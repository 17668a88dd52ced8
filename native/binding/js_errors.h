// The addon's error contract on the JS side: engine failures (sft::Error and any c10::Error / std::exception, mapped
// by engine/errors.h) become JS Errors with a `code` property. Every sync entry point wraps its body in
// SFT_NAPI_TRY / SFT_NAPI_CATCH; async ones run inside a TorchWorker (workers.h), which does the same.
#pragma once

#include <napi.h>

#include "engine/errors.h"

namespace sft {

// Builds a JS Error with `.code`.
Napi::Error make_js_error(Napi::Env env, const ErrorInfo& info);

}  // namespace sft

#define SFT_NAPI_TRY try {
#define SFT_NAPI_CATCH(env)                                                        \
  }                                                                                \
  catch (const Napi::Error&) {                                                     \
    throw;                                                                         \
  }                                                                                \
  catch (...) {                                                                    \
    throw ::sft::make_js_error((env), ::sft::describe_current_exception());        \
  }

// Implements js_errors.h: {code, message} -> a JS Error with `.code`.
#include "js_errors.h"

namespace sft {

Napi::Error make_js_error(Napi::Env env, const ErrorInfo& info) {
  Napi::Error err = Napi::Error::New(env, info.message);
  err.Set("code", Napi::String::New(env, info.code));
  return err;
}

}  // namespace sft

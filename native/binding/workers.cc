// TorchWorker: error capture and thread-count setup shared by all async native operations.
#include "workers.h"

#include <ATen/Parallel.h>

namespace sft {

TorchWorker::TorchWorker(Napi::Env env, const char* resource_name, int num_threads)
    : Napi::AsyncWorker(env, resource_name), deferred_(Napi::Promise::Deferred::New(env)), num_threads_(num_threads) {}

Napi::Promise TorchWorker::start() {
  Napi::Promise p = deferred_.Promise();
  Queue();
  return p;
}

void run_torch_work(ComputeThread* compute, int num_threads, const std::function<void()>& fn) {
  auto body = [&] {
    if (num_threads > 0 && at::get_num_threads() != num_threads) at::set_num_threads(num_threads);
    fn();
  };
  if (compute) compute->run(body);
  else body();
}

void TorchWorker::Execute() {
  try {
    run_torch_work(compute_.get(), num_threads_, [this] { Run(); });
  } catch (...) {
    error_ = describe_current_exception();
    SetError(error_.message);
  }
}

void TorchWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (...) {
    deferred_.Reject(make_js_error(env, describe_current_exception()).Value());
  }
}

void TorchWorker::OnError(const Napi::Error& e) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  ErrorInfo info = error_.code.empty() ? ErrorInfo{kCodeNative, e.Message()} : error_;
  deferred_.Reject(make_js_error(env, info).Value());
}

}  // namespace sft

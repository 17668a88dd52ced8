// Async execution: every long native operation is a TorchWorker (a Napi::AsyncWorker) that returns a Promise.
// Run() executes on a libuv worker thread and must not touch N-API values; Result() runs back on the JS thread.
// The intra-op thread count is per OS thread in libtorch, so it is set at the start of every Execute(), on the thread
// that runs the work (a model's ComputeThread, see compute_thread.h).
#pragma once

#include <napi.h>

#include <memory>

#include "engine/compute_thread.h"
#include "js_errors.h"

namespace sft {

class TorchWorker : public Napi::AsyncWorker {
 public:
  TorchWorker(Napi::Env env, const char* resource_name, int num_threads);
  Napi::Promise promise() { return deferred_.Promise(); }

  // Queues the worker and returns its promise (the worker deletes itself when done).
  Napi::Promise start();
  // Run() then executes on this thread (the model's ComputeThread) while the pool thread waits for it.
  void run_on(std::shared_ptr<ComputeThread> compute) { compute_ = std::move(compute); }

 protected:
  virtual void Run() = 0;                          // worker thread
  virtual Napi::Value Result(Napi::Env env) = 0;  // JS thread, after a successful Run()

 private:
  void Execute() final;
  void OnOK() final;
  void OnError(const Napi::Error& e) final;

  Napi::Promise::Deferred deferred_;
  int num_threads_;
  ErrorInfo error_;
  std::shared_ptr<ComputeThread> compute_;
};

// Runs fn on `compute` when given (else in place) with the intra-op thread count set on the thread that runs it.
void run_torch_work(ComputeThread* compute, int num_threads, const std::function<void()>& fn);

}  // namespace sft

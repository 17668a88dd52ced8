// What the NativeModel binding files share (model_js.cc: loading, parameters, LoRA, saving; train_js.cc: the steps
// and the optimizer; generate_js.cc: generation): the model's state (an engine TrainState plus its compute thread and
// busy flag), the lease that makes one operation in flight per model, a worker from two closures, and the class.
#pragma once

#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>

#include "engine/compute_thread.h"
#include "engine/steps.h"
#include "js_errors.h"
#include "workers.h"

namespace sft {

struct ModelState : TrainState {
  // Every native operation of this model runs on this one thread (one malloc arena: see compute_thread.h).
  std::shared_ptr<ComputeThread> compute = std::make_shared<ComputeThread>();
  int threads = 0;
  std::atomic<bool> busy{false};
  std::atomic<bool> cancel_generation{false};
  bool disposed = false;
};
using StatePtr = std::shared_ptr<ModelState>;

// Marks the model busy for the lifetime of one operation (released on the JS thread when the worker is deleted).
class Lease {
 public:
  explicit Lease(StatePtr s) : s_(std::move(s)) {
    if (s_->disposed) throw_bad_argument("the model has been disposed");
    if (!s_->model) throw_bad_argument("the model is not loaded");
    bool expected = false;
    if (!s_->busy.compare_exchange_strong(expected, true)) {
      throw_bad_argument("another operation is already running on this model (one native operation in flight per "
                         "model: await the previous call)");
    }
  }
  Lease(Lease&& o) noexcept : s_(std::move(o.s_)) {}
  Lease(const Lease&) = delete;
  ~Lease() {
    if (s_) s_->busy.store(false);
  }
  ModelState& state() const { return *s_; }

 private:
  StatePtr s_;
};

// A TorchWorker from two closures: run (worker thread) and result (JS thread). Holds the lease and any pinned inputs.
class FnWorker : public TorchWorker {
 public:
  FnWorker(Napi::Env env, const char* name, int threads, std::shared_ptr<Lease> lease, std::function<void()> run,
           std::function<Napi::Value(Napi::Env)> result)
      : TorchWorker(env, name, threads), lease_(std::move(lease)), run_(std::move(run)), result_(std::move(result)) {
    if (lease_) run_on(lease_->state().compute);
  }

 protected:
  void Run() override { run_(); }
  Napi::Value Result(Napi::Env env) override { return result_ ? result_(env) : env.Undefined(); }

 private:
  std::shared_ptr<Lease> lease_;
  std::function<void()> run_;
  std::function<Napi::Value(Napi::Env)> result_;
};

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit NativeModel(const Napi::CallbackInfo& info);
  // The NativeModel behind a JS value (a teacher passed to distillStep), checked by type tag.
  static StatePtr state_of(const Napi::Value& v, const char* what);

 private:
  // model_js.cc
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value SaveOptimizerState(const Napi::CallbackInfo& info);
  Napi::Value LoadOptimizerState(const Napi::CallbackInfo& info);
  Napi::Value NumParameters(const Napi::CallbackInfo& info);
  Napi::Value BaseStats(const Napi::CallbackInfo& info);
  Napi::Value VocabSize(const Napi::CallbackInfo& info);
  Napi::Value ResizeTokenEmbeddings(const Napi::CallbackInfo& info);
  Napi::Value GradNorms(const Napi::CallbackInfo& info);
  Napi::Value ParameterNames(const Napi::CallbackInfo& info);
  Napi::Value GetParameter(const Napi::CallbackInfo& info);
  Napi::Value GetGradient(const Napi::CallbackInfo& info);
  Napi::Value ParameterOrGrad(const Napi::CallbackInfo& info, bool grad);
  Napi::Value LoraTargetModules(const Napi::CallbackInfo& info);
  Napi::Value AttachLora(const Napi::CallbackInfo& info);
  Napi::Value AdapterOp(Napi::Env env, const char* name, std::function<void(ModelState&, LoraLayers&)> fn);
  Napi::Value LoadAdapter(const Napi::CallbackInfo& info);
  Napi::Value SaveAdapter(const Napi::CallbackInfo& info);
  Napi::Value MergeAdapter(const Napi::CallbackInfo& info);
  Napi::Value NumTrainableParameters(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  // train_js.cc
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value EvalLoss(const Napi::CallbackInfo& info);
  Napi::Value LossCall(const Napi::CallbackInfo& info, bool train);
  Napi::Value SequenceLogps(const Napi::CallbackInfo& info);
  Napi::Value PreferenceStep(const Napi::CallbackInfo& info);
  Napi::Value DistillStep(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value OptimizerStep(const Napi::CallbackInfo& info);
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info);
  Napi::Value AllReduceGrads(const Napi::CallbackInfo& info);
  // generate_js.cc
  Napi::Value Generate(const Napi::CallbackInfo& info);
  Napi::Value CancelGeneration(const Napi::CallbackInfo& info);

  StatePtr state_;
};

}  // namespace sft

// NativeModel's generation (model_state.h): generate() reads prompts and sampling options on the JS thread, runs the
// engine's generate_tokens (engine/generate.h) on the model's compute thread and streams each step's tokens to an
// optional JS listener; cancelGeneration() stops it after the current step.
#include <cmath>
#include <memory>
#include <vector>

#include "args.h"
#include "engine/generate.h"
#include "model_state.h"

namespace sft {
namespace {

// Streams generated tokens to JS (one Int32Array of B ids per step; -1 = row finished).
class GenerateWorker : public Napi::AsyncProgressQueueWorker<int32_t> {
 public:
  GenerateWorker(Napi::Env env, std::shared_ptr<Lease> lease, std::vector<std::vector<int64_t>> prompts,
                 GenerateOptions options, Napi::Value on_step)
      : Napi::AsyncProgressQueueWorker<int32_t>(env, "sftkit.generate"),
        deferred_(Napi::Promise::Deferred::New(env)),
        lease_(std::move(lease)),
        prompts_(std::move(prompts)),
        options_(std::move(options)) {
    if (on_step.IsFunction()) on_step_ = Napi::Persistent(on_step.As<Napi::Function>());
  }
  Napi::Promise start() {
    Napi::Promise p = deferred_.Promise();
    Queue();
    return p;
  }

 protected:
  void Execute(const ExecutionProgress& progress) override {
    try {
      ModelState& s = lease_->state();
      s.cancel_generation.store(false);
      const bool stream = !on_step_.IsEmpty();
      run_torch_work(s.compute.get(), s.threads, [&] {
        AutocastScope cast(s.autocast);
        result_ = generate_tokens(*s.model, prompts_, options_, [&](const std::vector<int64_t>& tokens) {
          if (stream) {
            std::vector<int32_t> t(tokens.begin(), tokens.end());
            progress.Send(t.data(), t.size());  // thread-safe: queued for the JS thread
          }
          return !s.cancel_generation.load();
        });
      });
    } catch (...) {
      error_ = describe_current_exception();
      SetError(error_.message);
    }
  }
  void OnProgress(const int32_t* data, size_t count) override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (on_step_.IsEmpty()) return;
    Napi::Int32Array a = Napi::Int32Array::New(env, count);
    for (size_t i = 0; i < count; ++i) a[i] = data[i];
    try {
      on_step_.Call({a});
    } catch (const Napi::Error&) {
      // A throwing listener must not take the generation down; the TS side never throws here.
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Array rows = Napi::Array::New(env, result_.size());
    for (size_t b = 0; b < result_.size(); ++b) {
      Napi::Int32Array a = Napi::Int32Array::New(env, result_[b].size());
      for (size_t i = 0; i < result_[b].size(); ++i) a[i] = static_cast<int32_t>(result_[b][i]);
      rows.Set(static_cast<uint32_t>(b), a);
    }
    deferred_.Resolve(rows);
  }
  void OnError(const Napi::Error& e) override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    ErrorInfo info = error_.code.empty() ? ErrorInfo{kCodeNative, e.Message()} : error_;
    deferred_.Reject(make_js_error(env, info).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Lease> lease_;
  std::vector<std::vector<int64_t>> prompts_;
  GenerateOptions options_;
  Napi::FunctionReference on_step_;
  std::vector<std::vector<int64_t>> result_;
  ErrorInfo error_;
};

}  // namespace

// generate(prompts: Int32Array[], { maxNewTokens, temperature, topK, topP, seed, stopIds }, onStep?)
//   -> Promise<Int32Array[]>; onStep(Int32Array [B]) per step (-1 = row finished).
Napi::Value NativeModel::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  if (info.Length() < 1 || !info[0].IsArray()) throw_bad_argument("generate: prompts must be an array of Int32Array");
  Napi::Array pa = info[0].As<Napi::Array>();
  std::vector<std::vector<int64_t>> prompts;
  for (uint32_t i = 0; i < pa.Length(); ++i) prompts.push_back(int_list(pa.Get(i), "prompts[i]"));
  Napi::Object o = object_arg(info, 1, "options", true);
  GenerateOptions go;
  go.max_new_tokens = int_field(o, "maxNewTokens", 32);
  go.temperature = num_field(o, "temperature", 0.0);
  go.top_k = int_field(o, "topK", 0);
  go.top_p = num_field(o, "topP", 1.0);
  double seed = num_field(o, "seed", 0.0);
  if (seed < 0 || seed != std::floor(seed)) throw_bad_argument("seed must be a non-negative integer");
  go.seed = static_cast<uint64_t>(seed);
  go.stop_ids = int_list(o.Get("stopIds"), "stopIds");
  if (go.top_k < 0 || go.top_p <= 0 || go.temperature < 0) throw_bad_argument("topK >= 0, topP > 0 and temperature >= 0 are required");
  auto lease = std::make_shared<Lease>(state_);
  Napi::Value on_step = info.Length() > 2 ? info[2] : env.Undefined();
  return (new GenerateWorker(env, lease, std::move(prompts), go, on_step))->start();
  SFT_NAPI_CATCH(env)
}

// cancelGeneration(): asks a running generate to stop after the current step (no lease: it runs beside it).
Napi::Value NativeModel::CancelGeneration(const Napi::CallbackInfo& info) {
  state_->cancel_generation.store(true);
  return info.Env().Undefined();
}

}  // namespace sft

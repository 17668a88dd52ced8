// NativeModel (see model_wrap.h): argument parsing on the JS thread, work on TorchWorkers, results back as plain
// objects and typed arrays. JS-facing names are camelCase; parameter names are the Hugging Face ones.
#include "model_wrap.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cpu_pool.h"
#include "device.h"
#include "errors.h"
#include "generate.h"
#include "model.h"
#include "model_batch.h"
#include "distill_loss.h"
#include "distributed.h"
#include "logprobs.h"
#include "loss.h"
#include "lora.h"
#include "optim.h"
#include "safetensors.h"
#include "tensor_io.h"
#include "workers.h"

namespace sft {
namespace {

struct ModelState {
  // Every native operation of this model runs on this one thread (one malloc arena: see compute_thread.h).
  std::shared_ptr<ComputeThread> compute = std::make_shared<ComputeThread>();
  std::unique_ptr<CausalLM> model;
  std::unique_ptr<AdamW> optim;
  std::vector<std::string> no_decay_patterns;  // empty: the model's default grouping
  AutocastState autocast;                      // bf16 autocast of the forward passes (load option `autocast`)
  LossWorkspace loss_ws;                       // the training loss's buffers, reused across steps (loss.h)
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

Napi::Object object_arg(const Napi::CallbackInfo& info, size_t i, const char* name, bool optional) {
  if (info.Length() <= i || info[i].IsUndefined()) {
    if (optional) return Napi::Object::New(info.Env());
    throw_bad_argument(std::string(name) + " is required");
  }
  if (!info[i].IsObject()) throw_bad_argument(std::string(name) + " must be an object");
  return info[i].As<Napi::Object>();
}

std::string string_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) throw_bad_argument(std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

double num_field(const Napi::Object& o, const char* key, double fallback, bool required = false) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) throw_bad_argument(std::string(key) + " is required");
    return fallback;
  }
  if (!v.IsNumber()) throw_bad_argument(std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw_bad_argument(std::string(key) + " must be finite");
  return d;
}

int64_t int_field(const Napi::Object& o, const char* key, int64_t fallback, bool required = false) {
  double d = num_field(o, key, static_cast<double>(fallback), required);
  if (d != std::floor(d)) throw_bad_argument(std::string(key) + " must be an integer");
  return static_cast<int64_t>(d);
}

bool bool_field(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw_bad_argument(std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::vector<int64_t> int_list(const Napi::Value& v, const char* name) {
  std::vector<int64_t> out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_int32_array) throw_bad_argument(std::string(name) + " must be an Int32Array or an array of integers");
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    for (size_t i = 0; i < a.ElementLength(); ++i) out.push_back(a[i]);
    return out;
  }
  if (!v.IsArray()) throw_bad_argument(std::string(name) + " must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) throw_bad_argument(std::string(name) + " must hold integers");
    double d = x.As<Napi::Number>().DoubleValue();
    if (d != std::floor(d)) throw_bad_argument(std::string(name) + " must hold integers");
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

ModelSpec spec_arg(const Napi::Object& o) {
  ModelSpec s;
  Napi::Value arch = o.Get("arch");
  if (!arch.IsString()) throw_bad_argument("spec.arch must be a string");
  s.arch = arch.As<Napi::String>().Utf8Value();
  s.vocab_size = int_field(o, "vocabSize", 0, true);
  s.hidden_size = int_field(o, "hiddenSize", 0, true);
  s.intermediate_size = int_field(o, "intermediateSize", 0, true);
  s.num_layers = int_field(o, "numLayers", 0, true);
  s.num_heads = int_field(o, "numHeads", 0, true);
  s.num_kv_heads = int_field(o, "numKvHeads", 0, true);
  s.head_dim = int_field(o, "headDim", 0, true);
  s.max_positions = int_field(o, "maxPositions", 0, true);
  s.norm_eps = num_field(o, "normEps", 1e-6, true);
  s.rope_theta = num_field(o, "ropeTheta", 10000.0);
  s.tie_word_embeddings = bool_field(o, "tieWordEmbeddings", false);
  s.qkv_bias = bool_field(o, "qkvBias", false);
  s.o_bias = bool_field(o, "oBias", false);
  s.mlp_bias = bool_field(o, "mlpBias", false);
  s.qk_norm = bool_field(o, "qkNorm", false);
  return s;
}

// The pinned arrays of one batch (created on the JS thread, released with the worker on the JS thread).
struct PinnedBatch {
  PinnedArray ids, labels, mask, pos;
  BatchInput input;
};

std::shared_ptr<PinnedBatch> batch_arg(const Napi::CallbackInfo& info, size_t i, bool with_labels) {
  Napi::Object o = object_arg(info, i, "batch", false);
  std::vector<int64_t> shape = shape_arg(o.Get("shape"), "batch.shape");
  if (shape.size() != 2) throw_bad_argument("batch.shape must be [B, T]");
  auto pb = std::make_shared<PinnedBatch>();
  pb->input.rows = shape[0];
  pb->input.cols = shape[1];
  pb->ids = PinnedArray(o.Get("inputIds"), shape, "batch.inputIds");
  pb->input.input_ids = pb->ids.tensor();
  Napi::Value labels = o.Get("labels");
  if (with_labels || (!labels.IsUndefined() && !labels.IsNull())) {
    pb->labels = PinnedArray(labels, shape, "batch.labels");
    pb->input.labels = pb->labels.tensor();
  }
  Napi::Value mask = o.Get("attentionMask");
  if (!mask.IsUndefined() && !mask.IsNull()) {
    pb->mask = PinnedArray(mask, shape, "batch.attentionMask");
    pb->input.attention_mask = pb->mask.tensor();
  }
  Napi::Value pos = o.Get("positionIds");
  if (!pos.IsUndefined() && !pos.IsNull()) {
    pb->pos = PinnedArray(pos, shape, "batch.positionIds");
    pb->input.position_ids = pb->pos.tensor();
  }
  Napi::Value docs = o.Get("docLengths");
  if (!docs.IsUndefined() && !docs.IsNull()) {
    if (!docs.IsArray()) throw_bad_argument("batch.docLengths must be an array (one Int32Array per row)");
    Napi::Array a = docs.As<Napi::Array>();
    for (uint32_t r = 0; r < a.Length(); ++r) pb->input.doc_lengths.push_back(int_list(a.Get(r), "batch.docLengths[row]"));
  }
  return pb;
}

// What trains: the LoRA adapters when attached (the base is frozen), else every parameter.
std::vector<ParamRef> trainable(ModelState& s) {
  return s.model->lora() ? s.model->lora()->parameters() : s.model->parameters();
}

// Every parameter: the base model's, then the adapters' (PEFT names).
std::vector<ParamRef> all_parameters(ModelState& s) {
  std::vector<ParamRef> out = s.model->parameters();
  if (s.model->lora()) {
    for (ParamRef& p : s.model->lora()->parameters()) out.push_back(p);
  }
  return out;
}

// The model's final hidden states [B, T, C] for a prepared batch, under the model's autocast setting; with
// keep_rows, [1, N, C] for those rows only (CausalLM::hidden_states).
at::Tensor forward_hidden(ModelState& s, const PreparedBatch& pb, const at::Tensor& keep_rows = at::Tensor()) {
  AutocastScope cast(s.autocast);
  return s.model->hidden_states(pb.ids, pb.pos, pb.plan, nullptr, keep_rows);
}

std::vector<ParamEntry> param_entries(ModelState& s) {
  std::vector<ParamEntry> out;
  for (ParamRef& p : trainable(s)) {
    bool no_decay = p.no_decay;
    if (!s.no_decay_patterns.empty()) {
      no_decay = false;
      for (const auto& pat : s.no_decay_patterns) no_decay = no_decay || p.name.find(pat) != std::string::npos;
    }
    out.push_back({p.name, *p.tensor, !no_decay});
  }
  return out;
}

// Optimizer-state entry holding LoraLayers::dropout_calls().
constexpr const char* kLoraDropoutCalls = "lora.dropout_calls";

struct LossOut {
  double sum = 0;
  int64_t count = 0;
  double forward_ms = 0, backward_ms = 0;
};

Napi::Object loss_object(Napi::Env env, double sum, int64_t count) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("lossSum", sum);
  o.Set("tokens", static_cast<double>(count));
  return o;
}

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

// Marks NativeModel objects so a model passed as an argument (a teacher) is recognised safely.
constexpr napi_type_tag kNativeModelTag = {0x5f7a1c3e9b2d4a61ULL, 0x8c0e3f5a7b9d1e24ULL};

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {
                           InstanceMethod<&NativeModel::Load>("load"),
                           InstanceMethod<&NativeModel::Step>("step"),
                           InstanceMethod<&NativeModel::EvalLoss>("evalLoss"),
                           InstanceMethod<&NativeModel::SequenceLogps>("sequenceLogps"),
                           InstanceMethod<&NativeModel::PreferenceStep>("preferenceStep"),
                           InstanceMethod<&NativeModel::DistillStep>("distillStep"),
                           InstanceMethod<&NativeModel::Forward>("forward"),
                           InstanceMethod<&NativeModel::OptimizerStep>("optimizerStep"),
                           InstanceMethod<&NativeModel::ZeroGrad>("zeroGrad"),
                           InstanceMethod<&NativeModel::AllReduceGrads>("allReduceGrads"),
                           InstanceMethod<&NativeModel::Save>("save"),
                           InstanceMethod<&NativeModel::SaveOptimizerState>("saveOptimizerState"),
                           InstanceMethod<&NativeModel::LoadOptimizerState>("loadOptimizerState"),
                           InstanceMethod<&NativeModel::NumParameters>("numParameters"),
                           InstanceMethod<&NativeModel::VocabSize>("vocabSize"),
                           InstanceMethod<&NativeModel::ResizeTokenEmbeddings>("resizeTokenEmbeddings"),
                           InstanceMethod<&NativeModel::GradNorms>("gradNorms"),
                           InstanceMethod<&NativeModel::ParameterNames>("parameterNames"),
                           InstanceMethod<&NativeModel::GetParameter>("getParameter"),
                           InstanceMethod<&NativeModel::GetGradient>("getGradient"),
                           InstanceMethod<&NativeModel::LoraTargetModules>("loraTargetModules"),
                           InstanceMethod<&NativeModel::AttachLora>("attachLora"),
                           InstanceMethod<&NativeModel::LoadAdapter>("loadAdapter"),
                           InstanceMethod<&NativeModel::SaveAdapter>("saveAdapter"),
                           InstanceMethod<&NativeModel::MergeAdapter>("mergeAdapter"),
                           InstanceMethod<&NativeModel::NumTrainableParameters>("numTrainableParameters"),
                           InstanceMethod<&NativeModel::Device>("device"),
                           InstanceMethod<&NativeModel::Generate>("generate"),
                           InstanceMethod<&NativeModel::CancelGeneration>("cancelGeneration"),
                           InstanceMethod<&NativeModel::Dispose>("dispose"),
                       });
  }

  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info), state_(std::make_shared<ModelState>()) {
    info.This().As<Napi::Object>().TypeTag(&kNativeModelTag);
  }

  // The NativeModel behind a JS value (a teacher passed to distillStep), checked by type tag.
  static StatePtr state_of(const Napi::Value& v, const char* what) {
    if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kNativeModelTag)) throw_bad_argument(std::string(what) + " must be a NativeModel");
    return Unwrap(v.As<Napi::Object>())->state_;
  }

 private:
  // load(dir, spec, { dtype: 'float32'|'bfloat16', device: 'auto'|'cpu'|'cuda', autocast, threads,
  //   gradientCheckpointing }) -> Promise<void>
  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    if (state_->model) throw_bad_argument("the model is already loaded");
    if (state_->busy.load()) throw_bad_argument("the model is already loading");
    std::string dir = string_arg(info, 0, "dir");
    ModelSpec spec = spec_arg(object_arg(info, 1, "spec", false));
    Napi::Object opts = object_arg(info, 2, "options", true);
    ModelOptions mo;
    Napi::Value dtype = opts.Get("dtype");
    std::string dt = dtype.IsString() ? dtype.As<Napi::String>().Utf8Value() : "float32";
    if (dt == "float32") mo.dtype = at::kFloat;
    else if (dt == "bfloat16") mo.dtype = at::kBFloat16;
    else throw_bad_argument("options.dtype must be 'float32' or 'bfloat16'");
    Napi::Value device = opts.Get("device");
    mo.device = resolve_device(device.IsString() ? device.As<Napi::String>().Utf8Value() : "cpu");
    // bf16 autocast of the forward passes (matmuls in bf16 over fp32 master weights; the loss stays fp32).
    state_->autocast = AutocastState{mo.device.type(), bool_field(opts, "autocast", false), at::kBFloat16};
    state_->threads = thread_count_arg(opts.Get("threads"), "options.threads");
    const bool checkpoint = bool_field(opts, "gradientCheckpointing", false);
    StatePtr st = state_;
    st->busy.store(true);
    struct Unbusy {
      StatePtr s;
      ~Unbusy() { s->busy.store(false); }
    };
    auto unbusy = std::make_shared<Unbusy>(Unbusy{st});
    auto built = std::make_shared<std::unique_ptr<CausalLM>>();
    FnWorker* worker = new FnWorker(
                env, "sftkit.loadModel", st->threads, nullptr,
                [built, dir, spec, mo, unbusy, checkpoint]() {
                  use_device_on_this_thread(mo.device);  // this model's compute thread keeps it
                  auto model = make_causal_lm(spec, mo);
                  model->set_gradient_checkpointing(checkpoint);
                  TensorDir files = load_safetensors_dir(dir);
                  WeightSource src{std::move(files.tensors), std::move(files.metadata)};
                  model->load(src);
                  *built = std::move(model);
                },
                [built, st](Napi::Env env) -> Napi::Value {
                  st->model = std::move(*built);
                  return env.Undefined();
                });
    worker->run_on(st->compute);
    return worker->start();
    SFT_NAPI_CATCH(env)
  }

  // step(batch, { lossScale }) -> Promise<{ lossSum, tokens }>: forward + fused loss + backward of
  // loss_sum * lossScale (grads accumulate; the trainer passes 1 / label tokens of the whole optimizer step).
  Napi::Value Step(const Napi::CallbackInfo& info) { return LossCall(info, /*train=*/true); }
  // evalLoss(batch) -> Promise<{ lossSum, tokens }> without autograd.
  Napi::Value EvalLoss(const Napi::CallbackInfo& info) { return LossCall(info, /*train=*/false); }

  Napi::Value LossCall(const Napi::CallbackInfo& info, bool train) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    auto lease = std::make_shared<Lease>(state_);
    auto batch = batch_arg(info, 0, /*with_labels=*/true);
    double loss_scale = 1.0;
    if (train && info.Length() > 1 && info[1].IsObject()) {
      Napi::Value v = info[1].As<Napi::Object>().Get("lossScale");
      if (!v.IsUndefined()) {
        if (!v.IsNumber()) throw_bad_argument("step: options.lossScale must be a number");
        loss_scale = v.As<Napi::Number>().DoubleValue();
        if (!std::isfinite(loss_scale) || loss_scale < 0) throw_bad_argument("step: options.lossScale must be a finite number >= 0");
      }
    }
    auto out = std::make_shared<LossOut>();
    ModelState* s = &lease->state();
    return (new FnWorker(
                env, train ? "sftkit.step" : "sftkit.evalLoss", s->threads, lease,
                [s, batch, out, train, loss_scale]() {
                  PreparedBatch pb = unpad_batch(prepare_batch(*s->model, batch->input, /*trim=*/true));  // no padding computed
                  std::unique_ptr<c10::NoGradGuard> guard;
                  if (!train) guard = std::make_unique<c10::NoGradGuard>();
                  LoraLayers::Mode lora_mode(s->model->lora(), /*training=*/train, /*enabled=*/true);
                  const auto t0 = std::chrono::steady_clock::now();
                  // Only the label rows are wanted: the last layer's tail and the final norm run for them alone.
                  const at::Tensor head = s->model->lm_head_weight();
                  const at::Tensor labels = pb.labels.device() == pb.ids.device() ? pb.labels : pb.labels.to(pb.ids.device());
                  const LabelRows lr = labels.size(1) >= 2 ? label_rows(labels, head.size(0)) : LabelRows{};
                  const int64_t n = lr.rows.defined() ? lr.rows.numel() : 0;
                  at::Tensor h = forward_hidden(*s, pb, n > 0 ? lr.rows : at::Tensor());  // [1, N, C]
                  auto t1 = std::chrono::steady_clock::now();
                  if (n == 0) {
                    out->count = 0;  // nothing to learn from: no loss, no backward
                  } else if (train) {
                    // The loss's gradient w.r.t. the head goes straight into its .grad; the body's backward starts
                    // from d(loss_sum * lossScale) / d hidden.
                    LossGradient g = fused_cross_entropy_rows_grad(h.reshape({n, h.size(-1)}), head, lr.targets, loss_scale,
                                                                   /*chunk_rows=*/0, &s->loss_ws);
                    out->sum = g.loss_sum;
                    out->count = g.count;
                    t1 = std::chrono::steady_clock::now();
                    if (h.requires_grad()) h.backward(g.grad_hidden.view(h.sizes()));
                  } else {
                    LossResult r = fused_cross_entropy_rows(h.reshape({n, h.size(-1)}), head, lr.targets);
                    out->sum = r.loss_sum.item<double>();
                    out->count = r.count;
                    t1 = std::chrono::steady_clock::now();
                  }
                  const auto t2 = std::chrono::steady_clock::now();
                  out->forward_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
                  out->backward_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
                },
                [out, train](Napi::Env env) -> Napi::Value {
                  Napi::Object o = loss_object(env, out->sum, out->count);
                  o.Set("forwardMs", out->forward_ms);
                  if (train) o.Set("backwardMs", out->backward_ms);
                  return o;
                }))
        ->start();
    SFT_NAPI_CATCH(env)
  }

  // sequenceLogps(batch, { adapter? }) -> Promise<{ logps: Float64Array [B], tokens: Float64Array [B] }>: per-row
  // sums of the log-probabilities of the labelled tokens, without gradients (reference models, evaluation).
  // adapter: false runs the base model without its LoRA adapters (DPO's reference of a LoRA policy).
  Napi::Value SequenceLogps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    auto lease = std::make_shared<Lease>(state_);
    auto batch = batch_arg(info, 0, /*with_labels=*/true);
    const bool adapter = bool_field(object_arg(info, 1, "options", true), "adapter", true);
    auto out = std::make_shared<std::pair<at::Tensor, at::Tensor>>();
    ModelState* s = &lease->state();
    return (new FnWorker(
                env, "sftkit.sequenceLogps", s->threads, lease,
                [s, batch, out, adapter]() {
                  c10::NoGradGuard no_grad;
                  PreparedBatch pb = prepare_batch(*s->model, batch->input, /*trim=*/true);
                  LoraLayers::Mode lora_mode(s->model->lora(), /*training=*/false, /*enabled=*/adapter);
                  at::Tensor h = forward_hidden(*s, pb);
                  out->first = sequence_logprobs(h, s->model->lm_head_weight(), pb.labels).to(at::kDouble).cpu();
                  out->second = label_counts(pb.labels).to(at::kDouble).cpu();
                },
                [out](Napi::Env env) -> Napi::Value {
                  Napi::Object o = Napi::Object::New(env);
                  o.Set("logps", tensor_to_typed_array(env, out->first));
                  o.Set("tokens", tensor_to_typed_array(env, out->second));
                  return o;
                }))
        ->start();
    SFT_NAPI_CATCH(env)
  }

  // preferenceStep(batch, { refLogps, beta, labelSmoothing, lossType, lossScale }) -> Promise<{ lossSum, pairs,
  //   chosenRewards, rejectedRewards, policyLogps }>: rows are pairs [chosen_0, rejected_0, chosen_1, ...]; the DPO
  // loss of every pair against the frozen reference log-probs, backward of (sum of pair losses) * lossScale.
  Napi::Value PreferenceStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    auto batch = batch_arg(info, 0, /*with_labels=*/true);
    Napi::Object o = object_arg(info, 1, "options", false);
    if (!o.Get("refLogps").IsTypedArray() || o.Get("refLogps").As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      throw_bad_argument("preferenceStep: options.refLogps must be a Float64Array with one value per row");
    }
    Napi::Float64Array ref_js = o.Get("refLogps").As<Napi::Float64Array>();
    auto ref = std::make_shared<std::vector<double>>(ref_js.Data(), ref_js.Data() + ref_js.ElementLength());
    auto num = [&](const char* k, double def) {
      Napi::Value v = o.Get(k);
      if (v.IsUndefined()) return def;
      if (!v.IsNumber()) throw_bad_argument(std::string("preferenceStep: options.") + k + " must be a number");
      return v.As<Napi::Number>().DoubleValue();
    };
    const double beta = num("beta", 0.1), ls = num("labelSmoothing", 0.0), scale = num("lossScale", 1.0);
    if (!(beta > 0)) throw_bad_argument("preferenceStep: beta must be > 0");
    if (!(ls >= 0 && ls < 0.5)) throw_bad_argument("preferenceStep: labelSmoothing must be in [0, 0.5)");
    const PreferenceLoss type = preference_loss_from_string(o.Get("lossType").IsString() ? o.Get("lossType").As<Napi::String>().Utf8Value() : "sigmoid");
    auto lease = std::make_shared<Lease>(state_);
    ModelState* s = &lease->state();
    struct Out { double loss_sum = 0; at::Tensor chosen_rewards, rejected_rewards, logps; int64_t pairs = 0; };
    auto out = std::make_shared<Out>();
    return (new FnWorker(
                env, "sftkit.preferenceStep", s->threads, lease,
                [s, batch, ref, beta, ls, scale, type, out]() {
                  PreparedBatch pb = prepare_batch(*s->model, batch->input, /*trim=*/true);
                  const int64_t B = pb.ids.size(0);
                  if (B % 2 != 0) throw_bad_argument("preferenceStep: the batch must hold pairs of rows (chosen, rejected)");
                  if (static_cast<int64_t>(ref->size()) != B) throw_bad_argument("preferenceStep: refLogps needs one value per row");
                  LoraLayers::Mode lora_mode(s->model->lora(), /*training=*/true, /*enabled=*/true);
                  at::Tensor h = forward_hidden(*s, pb);
                  at::Tensor lp = sequence_logprobs(h, s->model->lm_head_weight(), pb.labels);  // [B]
                  at::Tensor counts = label_counts(pb.labels);
                  at::Tensor refs = at::tensor(*ref, at::TensorOptions().dtype(at::kDouble)).to(at::kFloat).to(lp.device());
                  at::Tensor pc = lp.slice(0, 0, B, 2), pr = lp.slice(0, 1, B, 2);
                  at::Tensor rc = refs.slice(0, 0, B, 2), rr = refs.slice(0, 1, B, 2);
                  at::Tensor ct = counts.slice(0, 0, B, 2), rt = counts.slice(0, 1, B, 2);
                  at::Tensor losses = preference_losses(pc, pr, rc, rr, ct, rt, type, beta, ls);
                  at::Tensor total = losses.sum();
                  if (total.requires_grad()) (scale == 1.0 ? total : total * scale).backward();
                  c10::NoGradGuard no_grad;
                  // Rewards are beta * (policy - reference) log-prob sums for every loss type (TRL >= 1.0; IPO
                  // averages over tokens inside its loss only).
                  at::Tensor dc = pc.detach() - rc, dr = pr.detach() - rr;
                  out->loss_sum = total.item<double>();
                  out->chosen_rewards = (dc * beta).to(at::kDouble).cpu();
                  out->rejected_rewards = (dr * beta).to(at::kDouble).cpu();
                  out->logps = lp.detach().to(at::kDouble).cpu();
                  out->pairs = B / 2;
                },
                [out](Napi::Env env) -> Napi::Value {
                  Napi::Object r = Napi::Object::New(env);
                  r.Set("lossSum", out->loss_sum);
                  r.Set("pairs", static_cast<double>(out->pairs));
                  r.Set("chosenRewards", tensor_to_typed_array(env, out->chosen_rewards));
                  r.Set("rejectedRewards", tensor_to_typed_array(env, out->rejected_rewards));
                  r.Set("policyLogps", tensor_to_typed_array(env, out->logps));
                  return r;
                }))
        ->start();
    SFT_NAPI_CATCH(env)
  }

  // distillStep(batch, teacher: NativeModel, { alpha, temperature, lossScale }) -> Promise<{ lossSum, ceSum, klSum,
  //   tokens }>: the teacher's hidden states without gradients, this model's with them, the fused distillation loss
  // (alpha CE + (1 - alpha) T^2 KL(teacher || student), chunked) and backward of loss_sum * lossScale.
  Napi::Value DistillStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    auto batch = batch_arg(info, 0, /*with_labels=*/true);
    StatePtr teacher_state = state_of(info.Length() > 1 ? info[1] : env.Undefined(), "distillStep: teacher");
    if (teacher_state == state_) throw_bad_argument("distillStep: the teacher must be another model than the student");
    Napi::Object o = object_arg(info, 2, "options", true);
    const double alpha = num_field(o, "alpha", 0.5), tau = num_field(o, "temperature", 1.0), scale = num_field(o, "lossScale", 1.0);
    if (!(alpha >= 0 && alpha <= 1)) throw_bad_argument("distillStep: alpha must be in [0, 1]");
    if (!(tau > 0)) throw_bad_argument("distillStep: temperature must be > 0");
    if (!(scale >= 0)) throw_bad_argument("distillStep: lossScale must be >= 0");
    auto lease = std::make_shared<Lease>(state_);
    auto teacher_lease = std::make_shared<Lease>(teacher_state);
    ModelState* s = &lease->state();
    ModelState* t = &teacher_lease->state();
    auto out = std::make_shared<DistillResult>();
    auto loss = std::make_shared<double>(0);
    return (new FnWorker(
                env, "sftkit.distillStep", s->threads, lease,
                [s, t, batch, out, loss, alpha, tau, scale, teacher_lease]() {
                  at::Tensor th;
                  {
                    c10::NoGradGuard no_grad;
                    PreparedBatch tb = unpad_batch(prepare_batch(*t->model, batch->input, /*trim=*/true));
                    th = forward_hidden(*t, tb);
                  }
                  PreparedBatch pb = unpad_batch(prepare_batch(*s->model, batch->input, /*trim=*/true));
                  LoraLayers::Mode lora_mode(s->model->lora(), /*training=*/true, /*enabled=*/true);
                  at::Tensor h = forward_hidden(*s, pb);
                  *out = fused_distill_loss(h, s->model->lm_head_weight(), th, t->model->lm_head_weight(), pb.labels, alpha, tau);
                  *loss = out->count > 0 ? out->loss_sum.item<double>() : 0.0;
                  if (out->count > 0 && out->loss_sum.requires_grad()) {
                    if (scale == 1.0) out->loss_sum.backward();
                    else (out->loss_sum * scale).backward();
                  }
                },
                [out, loss](Napi::Env env) -> Napi::Value {
                  Napi::Object r = loss_object(env, *loss, out->count);
                  r.Set("ceSum", out->ce_sum);
                  r.Set("klSum", out->kl_sum);
                  return r;
                }))
        ->start();
    SFT_NAPI_CATCH(env)
  }

  // forward(batch) -> Promise<{ logits: Float32Array [B*T*V], shape: [B, T, V] }> (inspection/eval, no grad).
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    auto lease = std::make_shared<Lease>(state_);
    auto batch = batch_arg(info, 0, /*with_labels=*/false);
    auto out = std::make_shared<at::Tensor>();
    ModelState* s = &lease->state();
    return (new FnWorker(
                env, "sftkit.forward", s->threads, lease,
                [s, batch, out]() {
                  PreparedBatch pb = prepare_batch(*s->model, batch->input, /*trim=*/false);
                  c10::NoGradGuard guard;
                  at::Tensor h = forward_hidden(*s, pb);
                  *out = at::linear(h, s->model->lm_head_weight()).to(at::kFloat).cpu().contiguous();
                },
                [out](Napi::Env env) -> Napi::Value {
                  Napi::Object o = Napi::Object::New(env);
                  o.Set("shape", shape_to_js(env, out->sizes()));
                  o.Set("logits", tensor_to_typed_array(env, *out));
                  return o;
                }))
        ->start();
    SFT_NAPI_CATCH(env)
  }

  // optimizerStep({ lr, beta1, beta2, eps, weightDecay, maxGradNorm, noDecay? }) -> Promise<{ gradNorm }>
  Napi::Value OptimizerStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    auto lease = std::make_shared<Lease>(state_);
    Napi::Object o = object_arg(info, 0, "options", false);
    const double lr = num_field(o, "lr", 0, true);
    AdamWOptions ao;
    ao.beta1 = num_field(o, "beta1", 0.9);
    ao.beta2 = num_field(o, "beta2", 0.999);
    ao.eps = num_field(o, "eps", 1e-8);
    ao.weight_decay = num_field(o, "weightDecay", 0.0);
    const double max_norm = num_field(o, "maxGradNorm", 0.0);
    if (lr < 0) throw_bad_argument("lr must be >= 0");
    if (!(ao.beta1 >= 0 && ao.beta1 < 1) || !(ao.beta2 >= 0 && ao.beta2 < 1)) throw_bad_argument("beta1/beta2 must be in [0, 1)");
    if (!(ao.eps > 0) || ao.weight_decay < 0) throw_bad_argument("eps must be > 0 and weightDecay >= 0");
    ModelState* s = &lease->state();
    Napi::Value nd = o.Get("noDecay");
    if (nd.IsArray()) {
      if (s->optim) throw_bad_argument("noDecay can only be given on the first optimizerStep (the optimizer exists)");
      std::vector<std::string> pats;
      Napi::Array a = nd.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) {
        if (!a.Get(i).IsString()) throw_bad_argument("noDecay must be an array of strings");
        pats.push_back(a.Get(i).As<Napi::String>().Utf8Value());
      }
      s->no_decay_patterns = pats;
    }
    auto norm = std::make_shared<double>(0);
    return (new FnWorker(
                env, "sftkit.optimizerStep", s->threads, lease,
                [s, lr, ao, max_norm, norm]() {
                  if (!s->optim) s->optim = std::make_unique<AdamW>(param_entries(*s), ao);
                  s->optim->set_options(ao);
                  *norm = s->optim->clip_grad_norm(max_norm);
                  s->optim->step(lr);
                },
                [norm](Napi::Env env) -> Napi::Value {
                  Napi::Object r = Napi::Object::New(env);
                  r.Set("gradNorm", *norm);
                  return r;
                }))
        ->start();
    SFT_NAPI_CATCH(env)
  }

  // allReduceGrads(group, { bucketMb }) -> Promise<void>: sums every parameter's gradient over the ranks of a
  // NativeProcessGroup (missing grads count as zeros and become defined), in buckets of about bucketMb MiB.
  Napi::Value AllReduceGrads(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    if (info.Length() < 1) throw_bad_argument("allReduceGrads(group, options?) needs a NativeProcessGroup");
    std::shared_ptr<DistGroup> group = unwrap_process_group(info[0]);
    Napi::Object o = object_arg(info, 1, "options", true);
    double mb = o.Get("bucketMb").IsNumber() ? o.Get("bucketMb").As<Napi::Number>().DoubleValue() : 25.0;
    if (!(mb > 0 && mb <= 4096)) throw_bad_argument("allReduceGrads: bucketMb must be in (0, 4096]");
    auto lease = std::make_shared<Lease>(state_);
    ModelState* s = &lease->state();
    const int64_t bucket_bytes = static_cast<int64_t>(mb * 1024 * 1024);
    return (new FnWorker(env, "sftkit.allReduceGrads", s->threads, lease,
                         [s, group, bucket_bytes]() {
                           std::vector<at::Tensor> grads;
                           for (ParamRef& p : trainable(*s)) {
                             if (!p.tensor->requires_grad()) continue;
                             if (!p.tensor->grad().defined()) p.tensor->mutable_grad() = at::zeros_like(*p.tensor);
                             grads.push_back(p.tensor->mutable_grad());
                           }
                           all_reduce_sum(*group, grads, bucket_bytes);
                         },
                         nullptr))
        ->start();
    SFT_NAPI_CATCH(env)
  }

  // zeroGrad(): drops every .grad (sync; cheap). The LM head's buffer is kept for the next step's loss (loss.h).
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    Lease lease(state_);
    state_->loss_ws.release_head_grad(state_->model->lm_head_weight());
    for (ParamRef& p : trainable(*state_)) p.tensor->mutable_grad() = at::Tensor();
    return env.Undefined();
    SFT_NAPI_CATCH(env)
  }

  // save(file) -> Promise<void>: model.safetensors with HF names (config files are written by TS).
  Napi::Value Save(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    auto lease = std::make_shared<Lease>(state_);
    std::string path = string_arg(info, 0, "path");
    ModelState* s = &lease->state();
    return (new FnWorker(env, "sftkit.save", s->threads, lease,
                         [s, path]() { save_safetensors(path, s->model->state_for_save(), {{"format", "pt"}}); }, nullptr))
        ->start();
    SFT_NAPI_CATCH(env)
  }

  Napi::Value SaveOptimizerState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    auto lease = std::make_shared<Lease>(state_);
    std::string path = string_arg(info, 0, "path");
    ModelState* s = &lease->state();
    if (!s->optim) throw_bad_argument("saveOptimizerState: no optimizer state yet (call optimizerStep first)");
    return (new FnWorker(env, "sftkit.saveOptimizerState", s->threads, lease,
                         [s, path]() {
                           auto tensors = s->optim->state_tensors();
                           // With LoRA, the position of the adapter-dropout stream (exact resume).
                           if (s->model->lora()) {
                             tensors.emplace_back(kLoraDropoutCalls, at::scalar_tensor(static_cast<int64_t>(s->model->lora()->dropout_calls()), at::kLong));
                           }
                           save_safetensors(path, tensors, {{"format", "sftkit-adamw"}});
                         },
                         nullptr))
        ->start();
    SFT_NAPI_CATCH(env)
  }

  // loadOptimizerState(path, { noDecay? }): creates the optimizer (default grouping) and restores its state exactly.
  Napi::Value LoadOptimizerState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    auto lease = std::make_shared<Lease>(state_);
    std::string path = string_arg(info, 0, "path");
    ModelState* s = &lease->state();
    return (new FnWorker(env, "sftkit.loadOptimizerState", s->threads, lease,
                         [s, path]() {
                           auto file = SafetensorsFile::open(path);
                           std::map<std::string, at::Tensor> state;
                           for (const auto& n : file->names()) state[n] = file->get(n);
                           auto optim = std::make_unique<AdamW>(param_entries(*s), AdamWOptions{});
                           optim->load_state_tensors(state);
                           auto calls = state.find(kLoraDropoutCalls);
                           if (s->model->lora() && calls != state.end()) {
                             s->model->lora()->set_dropout_calls(static_cast<uint64_t>(calls->second.item<int64_t>()));
                           }
                           s->optim = std::move(optim);
                         },
                         nullptr))
        ->start();
    SFT_NAPI_CATCH(env)
  }

  Napi::Value NumParameters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    Lease lease(state_);
    return Napi::Number::New(env, static_cast<double>(state_->model->num_parameters()));
    SFT_NAPI_CATCH(env)
  }

  Napi::Value VocabSize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    Lease lease(state_);
    return Napi::Number::New(env, static_cast<double>(state_->model->spec().vocab_size));
    SFT_NAPI_CATCH(env)
  }

  // resizeTokenEmbeddings(n): sync; resets the optimizer (its state no longer matches the parameters).
  Napi::Value ResizeTokenEmbeddings(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    Lease lease(state_);
    if (info.Length() < 1 || !info[0].IsNumber()) throw_bad_argument("resizeTokenEmbeddings(n): n must be a number");
    double n = info[0].As<Napi::Number>().DoubleValue();
    if (n != std::floor(n) || n < 1 || n > 1e8) throw_bad_argument("resizeTokenEmbeddings(n): n must be an integer in [1, 1e8]");
    if (state_->model->lora()) throw_unsupported("resizeTokenEmbeddings: the model has LoRA adapters (the new rows would be frozen and not saved in the adapter)");
    state_->model->resize_token_embeddings(static_cast<int64_t>(n));
    state_->optim.reset();
    state_->loss_ws = LossWorkspace();
    return env.Undefined();
    SFT_NAPI_CATCH(env)
  }

  // gradNorms() -> { [hfName]: L2 norm of .grad (fp64) } for the parameters that have a gradient.
  Napi::Value GradNorms(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    Lease lease(state_);
    Napi::Object o = Napi::Object::New(env);
    for (ParamRef& p : all_parameters(*state_)) {
      const at::Tensor& g = p.tensor->grad();
      if (g.defined()) o.Set(p.name, g.to(at::kDouble).norm().item<double>());
    }
    return o;
    SFT_NAPI_CATCH(env)
  }

  Napi::Value ParameterNames(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    Lease lease(state_);
    auto params = all_parameters(*state_);
    Napi::Array a = Napi::Array::New(env, params.size());
    for (size_t i = 0; i < params.size(); ++i) a.Set(static_cast<uint32_t>(i), params[i].name);
    return a;
    SFT_NAPI_CATCH(env)
  }

  // getParameter(hfName) -> { data: Float32Array (HF layout), shape }; adapters under their PEFT names.
  Napi::Value GetParameter(const Napi::CallbackInfo& info) { return ParameterOrGrad(info, /*grad=*/false); }
  // getGradient(hfName) -> { data, shape } of the parameter's .grad (HF layout), or null when it has none.
  Napi::Value GetGradient(const Napi::CallbackInfo& info) { return ParameterOrGrad(info, /*grad=*/true); }

  Napi::Value ParameterOrGrad(const Napi::CallbackInfo& info, bool grad) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    Lease lease(state_);
    std::string name = string_arg(info, 0, "name");
    for (ParamRef& p : all_parameters(*state_)) {
      if (p.name != name) continue;
      at::Tensor t = grad ? p.tensor->grad() : p.tensor->detach();
      if (!t.defined()) return env.Null();
      if (p.transposed) t = t.t();
      t = t.to(at::kFloat).contiguous().cpu().clone();
      Napi::Object o = Napi::Object::New(env);
      o.Set("shape", shape_to_js(env, t.sizes()));
      o.Set("data", tensor_to_typed_array(env, t));
      return o;
    }
    throw_bad_argument(std::string(grad ? "getGradient" : "getParameter") + ": unknown parameter '" + name + "'");
    SFT_NAPI_CATCH(env)
  }

  // ---- LoRA (lora.h) ----

  // loraTargetModules() -> string[]: the HF module names that can take an adapter.
  Napi::Value LoraTargetModules(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    Lease lease(state_);
    auto names = LoraLayers::target_modules(*state_->model);
    Napi::Array a = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) a.Set(static_cast<uint32_t>(i), names[i]);
    return a;
    SFT_NAPI_CATCH(env)
  }

  // attachLora({ modules: [{ module, r, scaling }], dropout, seed }) -> Promise<void>: new adapters (A random, B 0);
  // the base is frozen and the optimizer reset (it only ever holds the adapters).
  Napi::Value AttachLora(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    auto lease = std::make_shared<Lease>(state_);
    ModelState* s = &lease->state();
    if (s->model->lora()) throw_bad_argument("attachLora: the model already has LoRA adapters");
    Napi::Object o = object_arg(info, 0, "options", false);
    LoraConfig config;
    config.dropout = num_field(o, "dropout", 0.0);
    const double seed = num_field(o, "seed", 0.0);
    if (seed < 0 || seed != std::floor(seed)) throw_bad_argument("attachLora: seed must be a non-negative integer");
    config.seed = static_cast<uint64_t>(seed);
    Napi::Value mods = o.Get("modules");
    if (!mods.IsArray()) throw_bad_argument("attachLora: modules must be an array of { module, r, scaling }");
    Napi::Array a = mods.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      if (!a.Get(i).IsObject()) throw_bad_argument("attachLora: modules[i] must be { module, r, scaling }");
      Napi::Object m = a.Get(i).As<Napi::Object>();
      if (!m.Get("module").IsString()) throw_bad_argument("attachLora: modules[i].module must be a string");
      config.modules.push_back({m.Get("module").As<Napi::String>().Utf8Value(), int_field(m, "r", 0, true), num_field(m, "scaling", 0, true)});
    }
    return (new FnWorker(env, "sftkit.attachLora", s->threads, lease,
                         [s, config]() {
                           auto lora = std::make_shared<LoraLayers>(*s->model, config);
                           s->model->set_lora(std::move(lora));
                           s->optim.reset();
                         },
                         nullptr))
        ->start();
    SFT_NAPI_CATCH(env)
  }

  // One operation on the attached adapters, run on the compute thread (name: "sftkit.<method>").
  Napi::Value AdapterOp(Napi::Env env, const char* name, std::function<void(ModelState&, LoraLayers&)> fn) {
    auto lease = std::make_shared<Lease>(state_);
    ModelState* s = &lease->state();
    if (!s->model->lora()) {
      std::string method(name);
      method.erase(0, method.find('.') + 1);  // "sftkit.loadAdapter" -> "loadAdapter"
      throw_bad_argument(method + ": the model has no LoRA adapters (attachLora first)");
    }
    return (new FnWorker(env, name, s->threads, lease, [s, fn]() { fn(*s, *s->model->lora()); }, nullptr))->start();
  }

  // loadAdapter(file) -> Promise<void>: A and B of the attached adapters from a PEFT adapter_model.safetensors.
  Napi::Value LoadAdapter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    std::string path = string_arg(info, 0, "path");
    return AdapterOp(env, "sftkit.loadAdapter", [path](ModelState&, LoraLayers& lora) {
      auto file = SafetensorsFile::open(path);
      std::map<std::string, at::Tensor> tensors;
      for (const auto& n : file->names()) tensors[n] = file->get(n);
      lora.load(tensors, path);
    });
    SFT_NAPI_CATCH(env)
  }

  // saveAdapter(file) -> Promise<void>: adapter_model.safetensors (PEFT names, fp32).
  Napi::Value SaveAdapter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    std::string path = string_arg(info, 0, "path");
    return AdapterOp(env, "sftkit.saveAdapter", [path](ModelState&, LoraLayers& lora) {
      save_safetensors(path, lora.state_for_save(), {{"format", "pt"}});
    });
    SFT_NAPI_CATCH(env)
  }

  // mergeAdapter() -> Promise<void>: W += scaling * B A into the base weights, adapters removed, optimizer reset.
  Napi::Value MergeAdapter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    return AdapterOp(env, "sftkit.mergeAdapter", [](ModelState& s, LoraLayers& lora) {
      lora.merge_into(*s.model);
      s.model->set_lora(nullptr);
      s.optim.reset();
    });
    SFT_NAPI_CATCH(env)
  }

  // numTrainableParameters(): elements that train (the adapters' with LoRA, else numParameters()).
  Napi::Value NumTrainableParameters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    Lease lease(state_);
    LoraLayers* lora = state_->model->lora();
    return Napi::Number::New(env, static_cast<double>(lora ? lora->num_parameters() : state_->model->num_parameters()));
    SFT_NAPI_CATCH(env)
  }

  // device(): where the parameters live ("cpu", "cuda:0").
  Napi::Value Device(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    Lease lease(state_);
    return Napi::String::New(env, state_->model->options().device.str());
    SFT_NAPI_CATCH(env)
  }

  // generate(prompts: Int32Array[], { maxNewTokens, temperature, topK, topP, seed, stopIds }, onStep?)
  //   -> Promise<Int32Array[]>; onStep(Int32Array [B]) per step (-1 = row finished).
  Napi::Value Generate(const Napi::CallbackInfo& info) {
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
  Napi::Value CancelGeneration(const Napi::CallbackInfo& info) {
    state_->cancel_generation.store(true);
    return info.Env().Undefined();
  }

  // dispose(): frees the model and optimizer (the object is unusable afterwards) and gives the CPU pool's cached
  // blocks back to the kernel.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    if (state_->disposed) return env.Undefined();
    if (state_->busy.load()) throw_bad_argument("dispose: an operation is still running on this model");
    state_->optim.reset();
    state_->loss_ws = LossWorkspace();
    state_->model.reset();
    state_->disposed = true;
    release_cpu_pool();  // the freed weights, gradients and moments sit in the pool's cache: back to the kernel
    return env.Undefined();
    SFT_NAPI_CATCH(env)
  }

  StatePtr state_;
};

}  // namespace

Napi::Function define_native_model(Napi::Env env) { return NativeModel::Define(env); }

}  // namespace sft

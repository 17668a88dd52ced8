// Implements loss_js.h: typed arrays in, fresh leaf tensors, the kernels (engine/loss.h, engine/optim.h), typed arrays
// out.
#include "loss_js.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <string>
#include <vector>

#include "args.h"
#include "js_errors.h"
#include "engine/loss.h"
#include "engine/optim.h"
#include "tensor_io.h"
#include "workers.h"

namespace sft {
namespace {

class CrossEntropyWorker : public TorchWorker {
 public:
  CrossEntropyWorker(Napi::Env env, PinnedArray h, PinnedArray w, PinnedArray y, int64_t chunk, bool naive, int threads)
      : TorchWorker(env, "sftkit.crossEntropy", threads), h_(std::move(h)), w_(std::move(w)), y_(std::move(y)), chunk_(chunk), naive_(naive) {}

 protected:
  void Run() override {
    at::Tensor h = h_.tensor().clone().requires_grad_(true);  // [B, T, C]
    at::Tensor w = w_.tensor().clone().requires_grad_(true);  // [V, C]
    at::Tensor y = y_.tensor().to(at::kLong);                 // [B, T]
    LossResult r = naive_ ? naive_masked_cross_entropy(h, w, y) : fused_masked_cross_entropy(h, w, y, chunk_);
    count_ = r.count;
    loss_ = r.loss_sum.item<double>();
    if (r.loss_sum.requires_grad()) r.loss_sum.backward();
    gh_ = h.grad().defined() ? h.grad() : at::zeros_like(h);
    gw_ = w.grad().defined() ? w.grad() : at::zeros_like(w);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("lossSum", loss_);
    o.Set("count", static_cast<double>(count_));
    o.Set("gradHidden", tensor_to_typed_array(env, gh_));
    o.Set("gradWeight", tensor_to_typed_array(env, gw_));
    return o;
  }

 private:
  PinnedArray h_, w_, y_;
  int64_t chunk_;
  bool naive_;
  int64_t count_ = 0;
  double loss_ = 0;
  at::Tensor gh_, gw_;
};

class AdamWWorker : public TorchWorker {
 public:
  AdamWWorker(Napi::Env env, std::vector<PinnedArray> params, std::vector<std::vector<PinnedArray>> grads, std::vector<bool> decay,
              std::vector<double> lr, AdamWOptions options, double max_norm, int threads)
      : TorchWorker(env, "sftkit.adamwSteps", threads), params_(std::move(params)), grads_(std::move(grads)), decay_(std::move(decay)),
        lr_(std::move(lr)), options_(options), max_norm_(max_norm) {}

 protected:
  void Run() override {
    std::vector<ParamEntry> entries;
    for (size_t i = 0; i < params_.size(); ++i) {
      entries.push_back({"p" + std::to_string(i), params_[i].tensor().clone().requires_grad_(true), decay_[i]});
    }
    AdamW opt(entries, options_);
    for (size_t s = 0; s < grads_.size(); ++s) {
      for (size_t i = 0; i < entries.size(); ++i) entries[i].param.mutable_grad() = grads_[s][i].tensor().clone();
      norms_.push_back(opt.clip_grad_norm(max_norm_));
      opt.step(lr_[s]);
    }
    for (auto& e : entries) out_.push_back(e.param.detach());
    for (auto& [name, t] : opt.state_tensors()) {
      if (name.size() > 8 && name.compare(name.size() - 8, 8, ".exp_avg") == 0) m_.push_back(t);
      else if (name.size() > 11 && name.compare(name.size() - 11, 11, ".exp_avg_sq") == 0) v_.push_back(t);
    }
  }
  Napi::Value Result(Napi::Env env) override {
    auto list = [&](const std::vector<at::Tensor>& ts) {
      Napi::Array a = Napi::Array::New(env, ts.size());
      for (size_t i = 0; i < ts.size(); ++i) a.Set(static_cast<uint32_t>(i), tensor_to_typed_array(env, ts[i]));
      return a;
    };
    Napi::Object o = Napi::Object::New(env);
    o.Set("params", list(out_));
    o.Set("expAvg", list(m_));
    o.Set("expAvgSq", list(v_));
    Napi::Array n = Napi::Array::New(env, norms_.size());
    for (size_t i = 0; i < norms_.size(); ++i) n.Set(static_cast<uint32_t>(i), norms_[i]);
    o.Set("gradNorms", n);
    return o;
  }

 private:
  std::vector<PinnedArray> params_;
  std::vector<std::vector<PinnedArray>> grads_;
  std::vector<bool> decay_;
  std::vector<double> lr_;
  AdamWOptions options_;
  double max_norm_;
  std::vector<double> norms_;
  std::vector<at::Tensor> out_, m_, v_;
};

}  // namespace

Napi::Value cross_entropy_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  if (info.Length() < 6) throw_bad_argument("crossEntropy(hidden, hiddenShape, weight, weightShape, labels, labelsShape, options?)");
  PinnedArray h(info[0], shape_arg(info[1], "hiddenShape"), "hidden");
  PinnedArray w(info[2], shape_arg(info[3], "weightShape"), "weight");
  PinnedArray y(info[4], shape_arg(info[5], "labelsShape"), "labels");
  if (h.tensor().scalar_type() != at::kFloat || w.tensor().scalar_type() != at::kFloat) throw_bad_argument("hidden and weight must be Float32Array");
  if (y.tensor().scalar_type() != at::kInt) throw_bad_argument("labels must be an Int32Array");
  Napi::Object o = info.Length() > 6 && info[6].IsObject() ? info[6].As<Napi::Object>() : Napi::Object::New(env);
  const double chunk = number_option(o, "chunkRows", 0, "");
  if (chunk < 0 || chunk != static_cast<int64_t>(chunk)) throw_bad_argument("chunkRows must be an integer >= 0");
  const bool naive = o.Get("naive").ToBoolean().Value();
  return (new CrossEntropyWorker(env, std::move(h), std::move(w), std::move(y), static_cast<int64_t>(chunk), naive,
                                 thread_count_arg(o.Get("threads"), "threads")))
      ->start();
  SFT_NAPI_CATCH(env)
}

Napi::Value adamw_steps_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  if (info.Length() < 1 || !info[0].IsObject()) throw_bad_argument("adamwSteps(options) needs an object");
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Array params = o.Get("params").As<Napi::Array>();
  Napi::Array shapes = o.Get("shapes").As<Napi::Array>();
  Napi::Array grads = o.Get("grads").As<Napi::Array>();
  Napi::Array decay = o.Get("decay").As<Napi::Array>();
  Napi::Array lr = o.Get("lr").As<Napi::Array>();
  if (!o.Get("params").IsArray() || !o.Get("shapes").IsArray() || !o.Get("grads").IsArray() || !o.Get("decay").IsArray() || !o.Get("lr").IsArray()) {
    throw_bad_argument("adamwSteps: params, shapes, grads, decay and lr must be arrays");
  }
  if (shapes.Length() != params.Length() || decay.Length() != params.Length() || lr.Length() != grads.Length()) {
    throw_bad_argument("adamwSteps: params/shapes/decay and grads/lr lengths differ");
  }
  std::vector<PinnedArray> p;
  std::vector<std::vector<int64_t>> sh;
  std::vector<bool> dec;
  for (uint32_t i = 0; i < params.Length(); ++i) {
    sh.push_back(shape_arg(shapes.Get(i), "shapes[i]"));
    p.emplace_back(params.Get(i), sh.back(), "params[i]");
    dec.push_back(decay.Get(i).ToBoolean().Value());
  }
  std::vector<std::vector<PinnedArray>> g(grads.Length());
  std::vector<double> rates;
  for (uint32_t s = 0; s < grads.Length(); ++s) {
    Napi::Array step = grads.Get(s).As<Napi::Array>();
    if (!grads.Get(s).IsArray() || step.Length() != params.Length()) throw_bad_argument("adamwSteps: grads[s] must hold one array per param");
    for (uint32_t i = 0; i < step.Length(); ++i) g[s].emplace_back(step.Get(i), sh[i], "grads[s][i]");
    if (!lr.Get(s).IsNumber()) throw_bad_argument("adamwSteps: lr[s] must be a number");
    rates.push_back(lr.Get(s).As<Napi::Number>().DoubleValue());
  }
  AdamWOptions ao;
  ao.beta1 = number_option(o, "beta1", 0.9, "");
  ao.beta2 = number_option(o, "beta2", 0.999, "");
  ao.eps = number_option(o, "eps", 1e-8, "");
  ao.weight_decay = number_option(o, "weightDecay", 0.0, "");
  return (new AdamWWorker(env, std::move(p), std::move(g), std::move(dec), std::move(rates), ao, number_option(o, "maxGradNorm", 0.0, ""),
                          thread_count_arg(o.Get("threads"), "threads")))
      ->start();
  SFT_NAPI_CATCH(env)
}

}  // namespace sft

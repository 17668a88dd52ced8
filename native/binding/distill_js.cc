// Implements distill_js.h: typed arrays in, fresh leaf tensors, the fused (or naive) distillation loss and its
// backward, typed arrays out.
#include "distill_js.h"

#include <ATen/ATen.h>

#include <string>

#include "engine/distill_loss.h"
#include "args.h"
#include "js_errors.h"
#include "tensor_io.h"
#include "workers.h"

namespace sft {
namespace {

class DistillWorker : public TorchWorker {
 public:
  DistillWorker(Napi::Env env, PinnedArray h, PinnedArray w, PinnedArray ht, PinnedArray wt, PinnedArray y, double alpha, double tau,
                int64_t chunk, bool naive, int threads)
      : TorchWorker(env, "sftkit.distillLoss", threads), h_(std::move(h)), w_(std::move(w)), ht_(std::move(ht)), wt_(std::move(wt)),
        y_(std::move(y)), alpha_(alpha), tau_(tau), chunk_(chunk), naive_(naive) {}

 protected:
  void Run() override {
    at::Tensor h = h_.tensor().clone().requires_grad_(true);  // [B, T, C]
    at::Tensor w = w_.tensor().clone().requires_grad_(true);  // [V, C]
    at::Tensor ht = ht_.tensor().clone();                     // [B, T, Ct]
    at::Tensor wt = wt_.tensor().clone();                     // [V, Ct]
    at::Tensor y = y_.tensor().to(at::kLong);                 // [B, T]
    r_ = naive_ ? naive_distill_loss(h, w, ht, wt, y, alpha_, tau_) : fused_distill_loss(h, w, ht, wt, y, alpha_, tau_, chunk_);
    loss_ = r_.loss_sum.item<double>();
    if (r_.loss_sum.requires_grad()) r_.loss_sum.backward();
    gh_ = h.grad().defined() ? h.grad() : at::zeros_like(h);
    gw_ = w.grad().defined() ? w.grad() : at::zeros_like(w);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("lossSum", loss_);
    o.Set("ceSum", r_.ce_sum);
    o.Set("klSum", r_.kl_sum);
    o.Set("count", static_cast<double>(r_.count));
    o.Set("gradHidden", tensor_to_typed_array(env, gh_));
    o.Set("gradWeight", tensor_to_typed_array(env, gw_));
    return o;
  }

 private:
  PinnedArray h_, w_, ht_, wt_, y_;
  double alpha_, tau_;
  int64_t chunk_;
  bool naive_;
  DistillResult r_;
  double loss_ = 0;
  at::Tensor gh_, gw_;
};

}  // namespace

Napi::Value distill_loss_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  if (info.Length() < 10) {
    throw_bad_argument("distillLoss(hidden, hiddenShape, weight, weightShape, teacherHidden, teacherHiddenShape, teacherWeight, teacherWeightShape, labels, labelsShape, options?)");
  }
  PinnedArray h(info[0], shape_arg(info[1], "hiddenShape"), "hidden");
  PinnedArray w(info[2], shape_arg(info[3], "weightShape"), "weight");
  PinnedArray ht(info[4], shape_arg(info[5], "teacherHiddenShape"), "teacherHidden");
  PinnedArray wt(info[6], shape_arg(info[7], "teacherWeightShape"), "teacherWeight");
  PinnedArray y(info[8], shape_arg(info[9], "labelsShape"), "labels");
  for (const PinnedArray* a : {&h, &w, &ht, &wt}) {
    if (a->tensor().scalar_type() != at::kFloat) throw_bad_argument("distillLoss: hidden states and weights must be Float32Array");
  }
  if (y.tensor().scalar_type() != at::kInt) throw_bad_argument("distillLoss: labels must be an Int32Array");
  Napi::Object o = info.Length() > 10 && info[10].IsObject() ? info[10].As<Napi::Object>() : Napi::Object::New(env);
  const double chunk = number_option(o, "chunkRows", 0, "distillLoss: ");
  if (chunk < 0 || chunk != static_cast<int64_t>(chunk)) throw_bad_argument("distillLoss: chunkRows must be an integer >= 0");
  return (new DistillWorker(env, std::move(h), std::move(w), std::move(ht), std::move(wt), std::move(y), number_option(o, "alpha", 0.5, "distillLoss: "),
                            number_option(o, "temperature", 1.0, "distillLoss: "), static_cast<int64_t>(chunk), o.Get("naive").ToBoolean().Value(),
                            thread_count_arg(o.Get("threads"), "threads")))
      ->start();
  SFT_NAPI_CATCH(env)
}

}  // namespace sft

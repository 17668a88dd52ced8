// NativeModel's training surface (model_state.h): step, evalLoss, sequenceLogps, preferenceStep, distillStep,
// forward, optimizerStep, zeroGrad, allReduceGrads. Each reads its arguments on the JS thread (args.h), runs the
// engine's step function (engine/steps.h) on the model's compute thread and returns a plain object.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "distributed_js.h"
#include "model_state.h"
#include "tensor_io.h"

namespace sft {
namespace {

Napi::Object loss_object(Napi::Env env, double sum, int64_t count) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("lossSum", sum);
  o.Set("tokens", static_cast<double>(count));
  return o;
}

}  // namespace

// step(batch, { lossScale }) -> Promise<{ lossSum, tokens, forwardMs, backwardMs }>: forward + fused loss + backward
// of loss_sum * lossScale (grads accumulate; the trainer passes 1 / label tokens of the whole optimizer step).
Napi::Value NativeModel::Step(const Napi::CallbackInfo& info) { return LossCall(info, /*train=*/true); }

// evalLoss(batch) -> Promise<{ lossSum, tokens, forwardMs }> without autograd.
Napi::Value NativeModel::EvalLoss(const Napi::CallbackInfo& info) { return LossCall(info, /*train=*/false); }

Napi::Value NativeModel::LossCall(const Napi::CallbackInfo& info, bool train) {
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
  auto out = std::make_shared<LossStepResult>();
  ModelState* s = &lease->state();
  return (new FnWorker(
              env, train ? "sftkit.step" : "sftkit.evalLoss", s->threads, lease,
              [s, batch, out, train, loss_scale]() {
                *out = train ? sft_step(*s, batch->input, loss_scale) : eval_loss(*s, batch->input);
              },
              [out, train](Napi::Env env) -> Napi::Value {
                Napi::Object o = loss_object(env, out->loss_sum, out->tokens);
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
Napi::Value NativeModel::SequenceLogps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  auto lease = std::make_shared<Lease>(state_);
  auto batch = batch_arg(info, 0, /*with_labels=*/true);
  const bool adapter = bool_field(object_arg(info, 1, "options", true), "adapter", true);
  auto out = std::make_shared<SequenceLogpsResult>();
  ModelState* s = &lease->state();
  return (new FnWorker(
              env, "sftkit.sequenceLogps", s->threads, lease,
              [s, batch, out, adapter]() { *out = sequence_logps(*s, batch->input, adapter); },
              [out](Napi::Env env) -> Napi::Value {
                Napi::Object o = Napi::Object::New(env);
                o.Set("logps", tensor_to_typed_array(env, out->logps));
                o.Set("tokens", tensor_to_typed_array(env, out->tokens));
                return o;
              }))
      ->start();
  SFT_NAPI_CATCH(env)
}

// preferenceStep(batch, { refLogps, beta, labelSmoothing, lossType, lossScale }) -> Promise<{ lossSum, pairs,
//   chosenRewards, rejectedRewards, policyLogps }>: rows are pairs [chosen_0, rejected_0, chosen_1, ...]; the DPO
// loss of every pair against the frozen reference log-probs, backward of (sum of pair losses) * lossScale.
Napi::Value NativeModel::PreferenceStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  auto batch = batch_arg(info, 0, /*with_labels=*/true);
  Napi::Object o = object_arg(info, 1, "options", false);
  if (!o.Get("refLogps").IsTypedArray() || o.Get("refLogps").As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw_bad_argument("preferenceStep: options.refLogps must be a Float64Array with one value per row");
  }
  Napi::Float64Array ref_js = o.Get("refLogps").As<Napi::Float64Array>();
  PreferenceStepOptions po;
  po.ref_logps.assign(ref_js.Data(), ref_js.Data() + ref_js.ElementLength());
  po.beta = number_option(o, "beta", 0.1, "preferenceStep: options.");
  po.label_smoothing = number_option(o, "labelSmoothing", 0.0, "preferenceStep: options.");
  po.loss_scale = number_option(o, "lossScale", 1.0, "preferenceStep: options.");
  if (!(po.beta > 0)) throw_bad_argument("preferenceStep: beta must be > 0");
  if (!(po.label_smoothing >= 0 && po.label_smoothing < 0.5)) throw_bad_argument("preferenceStep: labelSmoothing must be in [0, 0.5)");
  po.loss_type = preference_loss_from_string(o.Get("lossType").IsString() ? o.Get("lossType").As<Napi::String>().Utf8Value() : "sigmoid");
  auto lease = std::make_shared<Lease>(state_);
  ModelState* s = &lease->state();
  auto out = std::make_shared<PreferenceStepResult>();
  return (new FnWorker(
              env, "sftkit.preferenceStep", s->threads, lease,
              [s, batch, po, out]() { *out = preference_step(*s, batch->input, po); },
              [out](Napi::Env env) -> Napi::Value {
                Napi::Object r = Napi::Object::New(env);
                r.Set("lossSum", out->loss_sum);
                r.Set("pairs", static_cast<double>(out->pairs));
                r.Set("chosenRewards", tensor_to_typed_array(env, out->chosen_rewards));
                r.Set("rejectedRewards", tensor_to_typed_array(env, out->rejected_rewards));
                r.Set("policyLogps", tensor_to_typed_array(env, out->policy_logps));
                return r;
              }))
      ->start();
  SFT_NAPI_CATCH(env)
}

// distillStep(batch, teacher: NativeModel, { alpha, temperature, lossScale }) -> Promise<{ lossSum, ceSum, klSum,
//   tokens }>: the teacher's hidden states without gradients, this model's with them, the fused distillation loss
// (alpha CE + (1 - alpha) T^2 KL(teacher || student), chunked) and backward of loss_sum * lossScale.
Napi::Value NativeModel::DistillStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  auto batch = batch_arg(info, 0, /*with_labels=*/true);
  StatePtr teacher_state = state_of(info.Length() > 1 ? info[1] : env.Undefined(), "distillStep: teacher");
  if (teacher_state == state_) throw_bad_argument("distillStep: the teacher must be another model than the student");
  Napi::Object o = object_arg(info, 2, "options", true);
  DistillStepOptions d;
  d.alpha = num_field(o, "alpha", 0.5);
  d.temperature = num_field(o, "temperature", 1.0);
  d.loss_scale = num_field(o, "lossScale", 1.0);
  if (!(d.alpha >= 0 && d.alpha <= 1)) throw_bad_argument("distillStep: alpha must be in [0, 1]");
  if (!(d.temperature > 0)) throw_bad_argument("distillStep: temperature must be > 0");
  if (!(d.loss_scale >= 0)) throw_bad_argument("distillStep: lossScale must be >= 0");
  auto lease = std::make_shared<Lease>(state_);
  auto teacher_lease = std::make_shared<Lease>(teacher_state);
  ModelState* s = &lease->state();
  ModelState* t = &teacher_lease->state();
  auto out = std::make_shared<DistillStepResult>();
  return (new FnWorker(
              env, "sftkit.distillStep", s->threads, lease,
              [s, t, batch, out, d, teacher_lease]() { *out = distill_step(*s, *t, batch->input, d); },
              [out](Napi::Env env) -> Napi::Value {
                Napi::Object r = loss_object(env, out->loss_sum, out->tokens);
                r.Set("ceSum", out->ce_sum);
                r.Set("klSum", out->kl_sum);
                return r;
              }))
      ->start();
  SFT_NAPI_CATCH(env)
}

// forward(batch) -> Promise<{ logits: Float32Array [B*T*V], shape: [B, T, V] }> (inspection/eval, no grad).
Napi::Value NativeModel::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  auto lease = std::make_shared<Lease>(state_);
  auto batch = batch_arg(info, 0, /*with_labels=*/false);
  auto out = std::make_shared<at::Tensor>();
  ModelState* s = &lease->state();
  return (new FnWorker(
              env, "sftkit.forward", s->threads, lease,
              [s, batch, out]() { *out = forward_logits(*s, batch->input); },
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
Napi::Value NativeModel::OptimizerStep(const Napi::CallbackInfo& info) {
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
              [s, lr, ao, max_norm, norm]() { *norm = optimizer_step(*s, lr, ao, max_norm); },
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
Napi::Value NativeModel::AllReduceGrads(const Napi::CallbackInfo& info) {
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
                       [s, group, bucket_bytes]() { all_reduce_grads(*s, *group, bucket_bytes); }, nullptr))
      ->start();
  SFT_NAPI_CATCH(env)
}

// zeroGrad(): drops every .grad (sync; cheap). The LM head's buffer is kept for the next step's loss (loss.h).
Napi::Value NativeModel::ZeroGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Lease lease(state_);
  zero_grad(*state_);
  return env.Undefined();
  SFT_NAPI_CATCH(env)
}

}  // namespace sft

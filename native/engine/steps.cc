// Implements steps.h: the SFT, evaluation, sequence log-prob, DPO and distillation steps, logits, the optimizer step
// and the model's save/restore, as plain functions (moved out of the N-API model class, binding/model_js.cc).
#include "steps.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>
#include <malloc.h>
#include <map>

#include "cpu_pool.h"
#include "distill_loss.h"
#include "errors.h"
#include "lora.h"
#include "safetensors.h"

namespace sft {
namespace {

// Optimizer-state entry holding LoraLayers::dropout_calls().
constexpr const char* kLoraDropoutCalls = "lora.dropout_calls";

// The model's final hidden states [B, T, C] for a prepared batch, under the model's autocast setting; with
// keep_rows, [1, N, C] for those rows only (CausalLM::hidden_states).
at::Tensor forward_hidden(TrainState& s, const PreparedBatch& pb, const at::Tensor& keep_rows = at::Tensor()) {
  AutocastScope cast(s.autocast);
  return s.model->hidden_states(pb.ids, pb.pos, pb.plan, nullptr, keep_rows);
}

// Sequence log-probs (DPO) and distillation compute their own logits: refused for final-logit softcapping (Gemma 2)
// rather than computed without it.
void refuse_softcap(const TrainState& s, const char* what) {
  if (s.model->final_softcap() > 0) {
    throw_unsupported(std::string(what) + " is not implemented for models with final_logit_softcapping (" +
                      s.model->spec().arch + ")");
  }
}

// A frozen base (baseDtype other than float32) trains through LoRA adapters only.
void require_adapters(const TrainState& s, const char* what) {
  if (s.model->frozen() && !s.model->lora()) {
    throw_bad_argument(std::string(what) + ": the base is frozen in baseDtype " + base_dtype_name(s.model->frozen()->format().dtype) +
                       "; training it needs LoRA adapters (full fine-tuning needs baseDtype float32)");
  }
}

std::vector<ParamEntry> param_entries(TrainState& s) {
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

// The fused masked cross-entropy over the batch's label rows; with `train`, its backward of loss_sum * loss_scale.
LossStepResult loss_step(TrainState& s, const BatchInput& batch, bool train, double loss_scale) {
  if (train) require_adapters(s, "trainStep");
  LossStepResult out;
  PreparedBatch pb = prepare_batch(*s.model, batch, /*trim=*/true);
  std::unique_ptr<c10::NoGradGuard> guard;
  if (!train) guard = std::make_unique<c10::NoGradGuard>();
  LoraLayers::Mode lora_mode(s.model->lora(), /*training=*/train, /*enabled=*/true);
  const auto t0 = std::chrono::steady_clock::now();
  // Only the label rows are wanted: the last layer's tail and the final norm run for them alone.
  const at::Tensor head = s.model->lm_head_weight();
  const at::Tensor labels = pb.labels.device() == pb.ids.device() ? pb.labels : pb.labels.to(pb.ids.device());
  const LabelRows lr = labels.size(1) >= 2 ? label_rows(labels, head.size(0)) : LabelRows{};
  const int64_t n = lr.rows.defined() ? lr.rows.numel() : 0;
  at::Tensor h = forward_hidden(s, pb, n > 0 ? lr.rows : at::Tensor());  // [1, N, C]
  auto t1 = std::chrono::steady_clock::now();
  const FrozenWeight* frozen_head = s.model->frozen_weight(head);
  if (n == 0) {
    out.tokens = 0;  // nothing to learn from: no loss, no backward
  } else if (frozen_head) {
    // A frozen low-precision head: read in dequantised slices of vocabulary rows (never a whole fp32 copy).
    FrozenBase* base = s.model->frozen();
    HeadRows rows;
    rows.vocab = frozen_head->rows;
    rows.cols = frozen_head->cols;
    rows.slice_rows = std::max<int64_t>(1, (int64_t{16} << 20) / std::max<int64_t>(1, rows.cols));
    rows.rows = [base, frozen_head](int64_t v0, int64_t m) { return base->workspace_rows(*frozen_head, v0, m); };
    const bool grad = train && h.requires_grad();
    LossGradient g = cross_entropy_rows_sliced_head(h.reshape({n, h.size(-1)}), rows, lr.targets, loss_scale, grad,
                                                    /*chunk_rows=*/0, &s.loss_ws, s.model->final_softcap());
    out.loss_sum = g.loss_sum;
    out.tokens = g.count;
    t1 = std::chrono::steady_clock::now();
    if (grad) h.backward(g.grad_hidden.view(h.sizes()));
  } else if (train) {
    // The loss's gradient w.r.t. the head goes straight into its .grad; the body's backward starts from
    // d(loss_sum * lossScale) / d hidden.
    LossGradient g = fused_cross_entropy_rows_grad(h.reshape({n, h.size(-1)}), head, lr.targets, loss_scale,
                                                   /*chunk_rows=*/0, &s.loss_ws, s.model->final_softcap());
    out.loss_sum = g.loss_sum;
    out.tokens = g.count;
    t1 = std::chrono::steady_clock::now();
    if (h.requires_grad()) h.backward(g.grad_hidden.view(h.sizes()));
  } else {
    LossResult r = fused_cross_entropy_rows(h.reshape({n, h.size(-1)}), head, lr.targets, 0, s.model->final_softcap());
    out.loss_sum = r.loss_sum.item<double>();
    out.tokens = r.count;
    t1 = std::chrono::steady_clock::now();
  }
  const auto t2 = std::chrono::steady_clock::now();
  out.forward_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  out.backward_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
  return out;
}

}  // namespace

std::unique_ptr<CausalLM> load_causal_lm(const std::string& dir, const ModelSpec& spec, const ModelOptions& options,
                                         bool gradient_checkpointing) {
  use_device_on_this_thread(options.device);  // this model's compute thread keeps it
  auto model = make_causal_lm(spec, options);
  model->set_gradient_checkpointing(gradient_checkpointing);
  TensorDir files = load_safetensors_dir(dir);
  // Each tensor's mapped pages are dropped once copied: the weights are resident once, not twice, while loading.
  WeightSource src{files.tensors, files.metadata, [&files](const at::Tensor& t) { release_view_pages(files, t); }};
  model->load(src);
  if (options.base.frozen()) {
    // The quantisation's temporaries (chunks of fp32, codes) are not needed again: their pages go back now, not at
    // the first step's peak.
    if (cpu_pool_installed()) release_cpu_pool();
    malloc_trim(0);
  }
  return model;
}

std::vector<ParamRef> trainable(TrainState& s) {
  return s.model->lora() ? s.model->lora()->parameters() : s.model->parameters();
}

std::vector<ParamRef> all_parameters(TrainState& s) {
  std::vector<ParamRef> out = s.model->parameters();
  if (s.model->lora()) {
    for (ParamRef& p : s.model->lora()->parameters()) out.push_back(p);
  }
  return out;
}

LossStepResult sft_step(TrainState& s, const BatchInput& batch, double loss_scale) {
  return loss_step(s, batch, /*train=*/true, loss_scale);
}

LossStepResult eval_loss(TrainState& s, const BatchInput& batch) { return loss_step(s, batch, /*train=*/false, 1.0); }

SequenceLogpsResult sequence_logps(TrainState& s, const BatchInput& batch, bool adapter) {
  refuse_softcap(s, "sequenceLogps");
  c10::NoGradGuard no_grad;
  PreparedBatch pb = prepare_batch(*s.model, batch, /*trim=*/true);
  LoraLayers::Mode lora_mode(s.model->lora(), /*training=*/false, /*enabled=*/adapter);
  at::Tensor h = forward_hidden(s, pb);
  SequenceLogpsResult out;
  out.logps = sequence_logprobs(h, s.model->head_weight(), pb.labels).to(at::kDouble).cpu();
  out.tokens = label_counts(pb.labels).to(at::kDouble).cpu();
  return out;
}

PreferenceStepResult preference_step(TrainState& s, const BatchInput& batch, const PreferenceStepOptions& o) {
  refuse_softcap(s, "preferenceStep");
  require_adapters(s, "preferenceStep");
  PreparedBatch pb = prepare_batch(*s.model, batch, /*trim=*/true);
  const int64_t B = pb.ids.size(0);
  if (B % 2 != 0) throw_bad_argument("preferenceStep: the batch must hold pairs of rows (chosen, rejected)");
  if (static_cast<int64_t>(o.ref_logps.size()) != B) throw_bad_argument("preferenceStep: refLogps needs one value per row");
  LoraLayers::Mode lora_mode(s.model->lora(), /*training=*/true, /*enabled=*/true);
  at::Tensor h = forward_hidden(s, pb);
  at::Tensor lp = sequence_logprobs(h, s.model->head_weight(), pb.labels);  // [B]
  at::Tensor counts = label_counts(pb.labels);
  at::Tensor refs = at::tensor(o.ref_logps, at::TensorOptions().dtype(at::kDouble)).to(at::kFloat).to(lp.device());
  at::Tensor pc = lp.slice(0, 0, B, 2), pr = lp.slice(0, 1, B, 2);
  at::Tensor rc = refs.slice(0, 0, B, 2), rr = refs.slice(0, 1, B, 2);
  at::Tensor ct = counts.slice(0, 0, B, 2), rt = counts.slice(0, 1, B, 2);
  at::Tensor losses = preference_losses(pc, pr, rc, rr, ct, rt, o.loss_type, o.beta, o.label_smoothing);
  at::Tensor total = losses.sum();
  if (total.requires_grad()) (o.loss_scale == 1.0 ? total : total * o.loss_scale).backward();
  c10::NoGradGuard no_grad;
  // Rewards are beta * (policy - reference) log-prob sums for every loss type (TRL >= 1.0; IPO averages over tokens
  // inside its loss only).
  at::Tensor dc = pc.detach() - rc, dr = pr.detach() - rr;
  PreferenceStepResult out;
  out.loss_sum = total.item<double>();
  out.chosen_rewards = (dc * o.beta).to(at::kDouble).cpu();
  out.rejected_rewards = (dr * o.beta).to(at::kDouble).cpu();
  out.policy_logps = lp.detach().to(at::kDouble).cpu();
  out.pairs = B / 2;
  return out;
}

DistillStepResult distill_step(TrainState& student, TrainState& teacher, const BatchInput& batch,
                               const DistillStepOptions& o) {
  refuse_softcap(student, "distillStep");
  refuse_softcap(teacher, "distillStep (teacher)");
  require_adapters(student, "distillStep");
  at::Tensor th;
  {
    c10::NoGradGuard no_grad;
    PreparedBatch tb = prepare_batch(*teacher.model, batch, /*trim=*/true);
    th = forward_hidden(teacher, tb);
  }
  PreparedBatch pb = prepare_batch(*student.model, batch, /*trim=*/true);
  LoraLayers::Mode lora_mode(student.model->lora(), /*training=*/true, /*enabled=*/true);
  at::Tensor h = forward_hidden(student, pb);
  DistillResult r = fused_distill_loss(h, student.model->head_weight(), th, teacher.model->head_weight(), pb.labels,
                                       o.alpha, o.temperature);
  DistillStepResult out;
  out.loss_sum = r.count > 0 ? r.loss_sum.item<double>() : 0.0;
  out.ce_sum = r.ce_sum;
  out.kl_sum = r.kl_sum;
  out.tokens = r.count;
  if (r.count > 0 && r.loss_sum.requires_grad()) {
    if (o.loss_scale == 1.0) r.loss_sum.backward();
    else (r.loss_sum * o.loss_scale).backward();
  }
  return out;
}

at::Tensor forward_logits(TrainState& s, const BatchInput& batch) {
  PreparedBatch pb = prepare_batch(*s.model, batch, /*trim=*/false);
  c10::NoGradGuard guard;
  at::Tensor h = forward_hidden(s, pb);
  at::Tensor logits = at::linear(h, s.model->head_weight());
  const double cap = s.model->final_softcap();
  if (cap > 0) logits = at::tanh(logits / cap) * cap;
  return logits.to(at::kFloat).cpu().contiguous();
}

double optimizer_step(TrainState& s, double lr, const AdamWOptions& options, double max_grad_norm) {
  if (!s.optim) s.optim = std::make_unique<AdamW>(param_entries(s), options);
  s.optim->set_options(options);
  const double norm = s.optim->clip_grad_norm(max_grad_norm);
  s.optim->step(lr);
  return norm;
}

void zero_grad(TrainState& s) {
  s.loss_ws.release_head_grad(s.model->lm_head_weight());
  for (ParamRef& p : trainable(s)) p.tensor->mutable_grad() = at::Tensor();
}

void all_reduce_grads(TrainState& s, DistGroup& group, int64_t bucket_bytes) {
  std::vector<at::Tensor> grads;
  for (ParamRef& p : trainable(s)) {
    if (!p.tensor->requires_grad()) continue;
    if (!p.tensor->grad().defined()) p.tensor->mutable_grad() = at::zeros_like(*p.tensor);
    grads.push_back(p.tensor->mutable_grad());
  }
  all_reduce_sum(group, grads, bucket_bytes);
}

std::vector<std::pair<std::string, double>> grad_norms(TrainState& s) {
  std::vector<std::pair<std::string, double>> out;
  for (ParamRef& p : all_parameters(s)) {
    const at::Tensor& g = p.tensor->grad();
    if (g.defined()) out.emplace_back(p.name, g.to(at::kDouble).norm().item<double>());
  }
  return out;
}

void save_model(TrainState& s, const std::string& path) {
  save_safetensors(path, s.model->state_for_save(), {{"format", "pt"}});
}

void save_optimizer_state(TrainState& s, const std::string& path) {
  auto tensors = s.optim->state_tensors();
  // With LoRA, the position of the adapter-dropout stream (exact resume).
  if (s.model->lora()) {
    tensors.emplace_back(kLoraDropoutCalls, at::scalar_tensor(static_cast<int64_t>(s.model->lora()->dropout_calls()), at::kLong));
  }
  save_safetensors(path, tensors, {{"format", "sftkit-adamw"}});
}

void load_optimizer_state(TrainState& s, const std::string& path) {
  auto file = SafetensorsFile::open(path);
  std::map<std::string, at::Tensor> state;
  for (const auto& n : file->names()) state[n] = file->get(n);
  auto optim = std::make_unique<AdamW>(param_entries(s), AdamWOptions{});
  optim->load_state_tensors(state);
  auto calls = state.find(kLoraDropoutCalls);
  if (s.model->lora() && calls != state.end()) {
    s.model->lora()->set_dropout_calls(static_cast<uint64_t>(calls->second.item<int64_t>()));
  }
  s.optim = std::move(optim);
}

}  // namespace sft

// The steps of one model as plain functions over a TrainState (the model, its optimizer, the loss's buffers, its
// autocast setting): a batch struct in (BatchInput, model_batch.h), a result struct out. No N-API and no threads:
// binding/train_js.cc and binding/model_js.cc read the JS arguments and run these on the model's compute thread;
// native/tests/engine_tests.cc calls them directly.
//
// Shapes: B rows, T tokens per row, C hidden, V vocabulary. Labels are unshifted (position t predicts labels[t + 1];
// -100 = ignore); a loss step returns the loss SUM and the label-token COUNT, gradients accumulate into .grad.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "device.h"
#include "distributed.h"
#include "logprobs.h"
#include "loss.h"
#include "model.h"
#include "model_batch.h"
#include "optim.h"

namespace sft {

struct TrainState {
  std::unique_ptr<CausalLM> model;
  std::unique_ptr<AdamW> optim;                 // made by the first optimizer_step (or load_optimizer_state)
  std::vector<std::string> no_decay_patterns;  // empty: the model's default grouping
  AutocastState autocast;                      // bf16 autocast of the forward passes
  LossWorkspace loss_ws;                       // the training loss's buffers, reused across steps (loss.h)
};

// A model built from `spec` and the safetensors weights of `dir` (model.safetensors or an index + shards). Call on
// the thread that will run the model (a CUDA device becomes that thread's current one).
std::unique_ptr<CausalLM> load_causal_lm(const std::string& dir, const ModelSpec& spec, const ModelOptions& options,
                                         bool gradient_checkpointing);

// What trains: the LoRA adapters when attached (the base is frozen), else every parameter.
std::vector<ParamRef> trainable(TrainState& s);
// Every parameter: the base model's, then the adapters' (PEFT names).
std::vector<ParamRef> all_parameters(TrainState& s);

struct LossStepResult {
  double loss_sum = 0;
  int64_t tokens = 0;  // label tokens
  double forward_ms = 0, backward_ms = 0;
};
// SFT step: forward on the label rows only, the fused cross-entropy whose gradient w.r.t. the head goes straight into
// its .grad, backward of loss_sum * loss_scale (the trainer passes 1 / label tokens of the whole optimizer step).
// The batch is computed in the layout it comes in: the caller sends loss batches in the padding-free document
// layout when padding is worth removing (TypeScript's collateForLoss), padded rows otherwise.
LossStepResult sft_step(TrainState& s, const BatchInput& batch, double loss_scale);
// The same loss without autograd (validation).
LossStepResult eval_loss(TrainState& s, const BatchInput& batch);

// Per row: the sum of the log-probabilities of the labelled tokens, and their count; [B] fp64 on the CPU, without
// gradients. adapter = false runs the base model without its LoRA adapters (DPO's reference of a LoRA policy).
struct SequenceLogpsResult {
  at::Tensor logps;   // [B] fp64
  at::Tensor tokens;  // [B] fp64
};
SequenceLogpsResult sequence_logps(TrainState& s, const BatchInput& batch, bool adapter);

// DPO step: rows are pairs [chosen_0, rejected_0, chosen_1, ...]; the preference loss of every pair against the
// frozen reference log-probs (one per row), backward of (sum of pair losses) * loss_scale.
struct PreferenceStepOptions {
  std::vector<double> ref_logps;  // [B]
  double beta = 0.1, label_smoothing = 0.0, loss_scale = 1.0;
  PreferenceLoss loss_type = PreferenceLoss::Sigmoid;
};
struct PreferenceStepResult {
  double loss_sum = 0;
  int64_t pairs = 0;
  at::Tensor chosen_rewards, rejected_rewards;  // [B/2] fp64: beta * (policy - reference) log-prob sums
  at::Tensor policy_logps;                      // [B] fp64
};
PreferenceStepResult preference_step(TrainState& s, const BatchInput& batch, const PreferenceStepOptions& options);

// Distillation step: the teacher's hidden states without gradients, the student's with them, the fused distillation
// loss (alpha CE + (1 - alpha) T^2 KL(teacher || student), distill_loss.h) and backward of loss_sum * loss_scale.
struct DistillStepOptions {
  double alpha = 0.5, temperature = 1.0, loss_scale = 1.0;
};
struct DistillStepResult {
  double loss_sum = 0, ce_sum = 0, kl_sum = 0;
  int64_t tokens = 0;
};
DistillStepResult distill_step(TrainState& student, TrainState& teacher, const BatchInput& batch,
                               const DistillStepOptions& options);

// Logits [B, T, V] fp32 on the CPU, without gradients (inspection, parity).
at::Tensor forward_logits(TrainState& s, const BatchInput& batch);

// One AdamW step at `lr` (the optimizer is made on the first call, grouped by no_decay_patterns); gradients clipped
// to max_grad_norm when > 0. Returns the global gradient norm before clipping.
double optimizer_step(TrainState& s, double lr, const AdamWOptions& options, double max_grad_norm);
// Drops every .grad; the LM head's buffer is kept for the next step's loss (loss.h).
void zero_grad(TrainState& s);
// Sums every trainable gradient over the ranks of `group` (missing grads count as zeros and become defined).
void all_reduce_grads(TrainState& s, DistGroup& group, int64_t bucket_bytes);
// L2 norm (fp64) of every parameter's .grad, for those that have one, in all_parameters order.
std::vector<std::pair<std::string, double>> grad_norms(TrainState& s);

// model.safetensors with HF names (config files are written by TS).
void save_model(TrainState& s, const std::string& path);
// The optimizer's state (and the LoRA dropout stream's position) as safetensors; restored exactly by the load.
void save_optimizer_state(TrainState& s, const std::string& path);
void load_optimizer_state(TrainState& s, const std::string& path);

}  // namespace sft

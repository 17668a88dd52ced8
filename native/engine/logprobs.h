// Per-sequence log-probabilities over the labelled tokens and the DPO preference loss on top of them, chunked like
// the fused cross-entropy: the [B*T, V] logits are never materialised.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace sft {

// Shapes: B rows, T time, C hidden, V vocabulary. hidden [B, T, C], weight [V, C], labels [B, T] unshifted (-100 =
// ignore). Returns [B] fp32: for each row the sum over its labelled positions of log softmax(h_t W^T)[labels_{t+1}],
// differentiable w.r.t. hidden and weight. Backward recomputes each chunk's logits (no [N, V] buffer is kept).
at::Tensor sequence_logprobs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels, int64_t chunk_rows = 0);

// The same through full logits and log_softmax (reference for tests).
at::Tensor sequence_logprobs_naive(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels);

// The labelled positions of hidden [B, T, C] (targets labels[b, t + 1] != -100), validated against weight [V, C]:
// flat_rows [N] indices into hidden viewed as [B*T, C], targets [N] in [0, V), seq [N] the row b of each.
struct LabelledRows {
  at::Tensor flat_rows;
  at::Tensor targets;
  at::Tensor seq;
};
LabelledRows select_labelled(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels);

// Number of labelled positions (after the shift) of each row: [B] int64.
at::Tensor label_counts(const at::Tensor& labels);

enum class PreferenceLoss { Sigmoid, Ipo };
PreferenceLoss preference_loss_from_string(const std::string& name);

// Shapes: P pairs. policy/reference chosen and rejected log-probs [P] (reference without grad), token counts [P]
// (IPO averages log-probs over tokens, as TRL does). Returns per-pair losses [P]:
//   sigmoid: -(1 - ls) * logsigmoid(beta * m) - ls * logsigmoid(-beta * m),  m = (pc - rc) - (pr - rr)
//   ipo:     (m' - 1 / (2 * beta))^2 with m' computed from token-averaged log-probs.
at::Tensor preference_losses(const at::Tensor& pc, const at::Tensor& pr, const at::Tensor& rc, const at::Tensor& rr,
                             const at::Tensor& chosen_tokens, const at::Tensor& rejected_tokens, PreferenceLoss type,
                             double beta, double label_smoothing);

}  // namespace sft

// Logit-level knowledge distillation loss, fused and chunked like the masked cross-entropy (loss.h): the logits of
// student and teacher are computed chunk by chunk over the labelled rows, never as full [N, V] tensors.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sft {

// Shapes: B batch, T time, C student hidden, Ct teacher hidden, V vocabulary (shared), N labelled rows.
// hidden [B, T, C] and weight [V, C]: the student's final hidden states and LM head (differentiable); teacher_hidden
// [B, T, Ct] and teacher_weight [V, Ct]: the teacher's (constants); labels [B, T] unshifted (-100 = ignore).
// Per labelled position with temperature tau:
//   loss = alpha * CE(z_s, y) + (1 - alpha) * tau^2 * KL(softmax(z_t / tau) || softmax(z_s / tau))
// loss_sum: 0-dim fp32, the sum over positions (differentiable w.r.t. hidden and weight; the gradient is computed in
// the forward pass chunk by chunk, as in the fused CE); ce_sum and kl_sum: the unweighted sums; count: N.
struct DistillResult {
  at::Tensor loss_sum;
  double ce_sum = 0;
  double kl_sum = 0;
  int64_t count = 0;
};
DistillResult fused_distill_loss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& teacher_hidden,
                                 const at::Tensor& teacher_weight, const at::Tensor& labels, double alpha,
                                 double temperature, int64_t chunk_rows = 0);

// The same through full logits, log_softmax and autograd, in float64 (reference for tests).
DistillResult naive_distill_loss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& teacher_hidden,
                                 const at::Tensor& teacher_weight, const at::Tensor& labels, double alpha,
                                 double temperature);

}  // namespace sft

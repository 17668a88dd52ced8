// Fused masked cross-entropy (Hugging Face label convention) that never materialises the [B*T, V] logits.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sft {

// Shapes: B batch, T time, C hidden, V vocabulary, N label rows (targets != -100 after the shift).
// hidden [B, T, C] final hidden states (after the final norm), weight [V, C] LM head, labels [B, T] integer,
// unshifted: position t predicts labels[t + 1]; -100 = ignore.
// Selects the N rows with a target, then walks them in chunks of `chunk_rows` (0 = auto): logits = h @ W^T,
// logsumexp, loss, and in the same pass d loss / d h and d loss / d W (softmax - onehot), kept for backward,
// which only scales them by the incoming gradient (a custom autograd Function).
// loss_sum: 0-dim fp32, differentiable w.r.t. hidden and weight; count: N. No target: loss_sum 0, count 0.
struct LossResult {
  at::Tensor loss_sum;
  int64_t count;
};
LossResult fused_masked_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                                      int64_t chunk_rows = 0);

// The training form of the same loss, without an autograd node: the loss sum over the N label rows and, in the same
// chunked pass, grad_hidden [B, T, C] = scale * d loss / d hidden (zeros where there is no target) while
// scale * d loss / d weight is ADDED to weight.grad() (allocated when undefined; fp32 weights get it without any
// [V, C] buffer beside it). The caller continues with hidden.backward(grad_hidden). count 0: nothing is touched.
struct LossGradient {
  double loss_sum = 0;
  int64_t count = 0;
  at::Tensor grad_hidden;  // undefined when count == 0
};
LossGradient fused_masked_cross_entropy_grad(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                                             double scale, int64_t chunk_rows = 0);

// The same loss through full logits and at::cross_entropy (reference for tests and benches).
LossResult naive_masked_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels);

// Rows per chunk for vocabulary V when chunk_rows is 0: about 32M logits (128 MiB fp32) per chunk.
int64_t auto_chunk_rows(int64_t vocab, int64_t rows);

}  // namespace sft

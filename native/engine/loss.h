// Fused masked cross-entropy (Hugging Face label convention) that never materialises the [B*T, V] logits.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>

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
// softcap > 0 (here and below): the logits are softcap * tanh(logits / softcap) (Gemma 2's final softcapping).
LossResult fused_masked_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                                      int64_t chunk_rows = 0, double softcap = 0);

// The training form of the same loss (fused_cross_entropy_rows_grad below), without an autograd node: the loss sum
// over the N label rows and, in the same chunked pass, grad_hidden [N, C] = scale * d loss / d hidden_rows while
// scale * d loss / d weight is ADDED to weight.grad() (allocated when undefined; fp32 weights get it without any
// [V, C] buffer beside it). The caller continues with backward from the rows. count 0: nothing is touched.
struct LossGradient {
  double loss_sum = 0;
  int64_t count = 0;
  at::Tensor grad_hidden;  // undefined when count == 0
};
// Buffers the training loss reuses from one step to the next (owned by one model; used by one thread at a time): the
// [chunk, V] logits and a spare LM-head gradient (release_head_grad parks weight.grad here instead of freeing it).
// Both are over the 32 MiB mmap threshold of glibc malloc, so a fresh allocation each step is fresh pages each step:
// a page fault plus zeroing per 4 KiB, measured ~5 us a page on this VM (GPT-2: ~0.4 s of a 7 s step). With the CPU
// pool (cpu_pool.h) installed the logits are not kept: the pool caches the block itself, and kept here it stayed
// live through the step's memory peak.
struct LossWorkspace {
  at::Tensor logits;     // flat fp32, >= chunk * V elements
  at::Tensor head_grad;  // [V, C] or undefined
  bool head_grad_lent = false;  // weight.grad is the buffer the loss put there (not one autograd made, e.g. DPO's)
  // weight.grad = undefined, keeping its buffer for the next step when the loss put it there and nothing else
  // references it.
  void release_head_grad(const at::Tensor& weight);
};
// The label rows of labels [B, T] (the shift applied): rows [N] flat indices into B * T of the positions that have
// a target, targets [N] int64 (validated against the vocabulary V). The forward pass can compute its last layer's
// tail for these rows only (CausalLM::hidden_states' keep_rows) and hand the loss the [N, C] rows.
struct LabelRows {
  at::Tensor rows;
  at::Tensor targets;
};
LabelRows label_rows(const at::Tensor& labels, int64_t vocab);

// The LM head as the loss can also read it: slices of vocabulary rows produced on demand (a frozen low-precision
// head, frozen_weights.h, dequantised slice by slice into a reused buffer), never the whole [V, C] in fp32.
// rows(v0, n) -> fp32 [n, C], valid until the next call.
struct HeadRows {
  int64_t vocab = 0, cols = 0, slice_rows = 0;
  std::function<at::Tensor(int64_t v0, int64_t n)> rows;
};
// The loss sum over hidden_rows [N, C] against such a head, and with want_grad grad_hidden [N, C] = scale * d loss /
// d hidden_rows (the head is frozen: no head gradient). Same chunked pass and numbers as the dense forms.
LossGradient cross_entropy_rows_sliced_head(const at::Tensor& hidden_rows, const HeadRows& head, const at::Tensor& targets,
                                            double scale, bool want_grad, int64_t chunk_rows = 0,
                                            LossWorkspace* workspace = nullptr, double softcap = 0);

// The losses on rows already selected: hidden_rows [N, C] (the final hidden states of label_rows' rows), targets [N].
LossResult fused_cross_entropy_rows(const at::Tensor& hidden_rows, const at::Tensor& weight, const at::Tensor& targets,
                                    int64_t chunk_rows = 0, double softcap = 0);
LossGradient fused_cross_entropy_rows_grad(const at::Tensor& hidden_rows, const at::Tensor& weight, const at::Tensor& targets,
                                           double scale, int64_t chunk_rows = 0, LossWorkspace* workspace = nullptr,
                                           double softcap = 0);

// The same loss through full logits and at::cross_entropy (reference for tests and benches).
LossResult naive_masked_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels);

// Rows per chunk for vocabulary V when chunk_rows is 0: about 32M logits (128 MiB fp32) per chunk.
int64_t auto_chunk_rows(int64_t vocab, int64_t rows);

}  // namespace sft

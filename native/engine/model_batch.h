// Training/eval batches at the boundary: validation of token ids, labels, padding masks and packed-document layouts
// (all checked before any kernel runs), and their conversion to model inputs + an AttentionPlan.
//
// Shapes: B rows, T tokens per row. Labels are unshifted (HF): position t predicts labels[t + 1]; -100 = ignore.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "model.h"

namespace sft {

inline constexpr int64_t kIgnoreIndex = -100;

struct BatchInput {
  int64_t rows = 0, cols = 0;                    // B, T
  at::Tensor input_ids;                          // [B, T] int32
  at::Tensor labels;                             // [B, T] int32 or undefined (forward only)
  at::Tensor attention_mask;                     // [B, T] uint8, right padding, or undefined
  at::Tensor position_ids;                       // [B, T] int32 (packed rows), or undefined
  std::vector<std::vector<int64_t>> doc_lengths; // packed rows: per row, document lengths (sum <= T)
};

struct PreparedBatch {
  at::Tensor ids;     // [B, T'] int64 on the model device
  at::Tensor pos;     // [B, T'] int64
  at::Tensor labels;  // [B, T'] int64 (undefined without labels)
  AttentionPlan plan;
  int64_t cols = 0;   // T' (<= T: trailing all-padding columns dropped when trimming)
};

// Throws SFTKIT_BAD_ARGUMENT naming the first offending element. `trim`: drop trailing columns that are padding in
// every row (exact: padding never influences earlier positions and carries no label).
PreparedBatch prepare_batch(const CausalLM& model, const BatchInput& in, bool trim);

}  // namespace sft

// Autoregressive generation with a KV cache: greedy or sampled (temperature, top-k, top-p) with a per-call seeded
// generator (reproducible), stop token ids, max new tokens, batched prompts of different lengths (left padding).
//
// Shapes: B prompts, P longest prompt, S = P + generated so far, V vocabulary.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model.h"

namespace sft {

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  double temperature = 0.0;  // <= 0: greedy
  int64_t top_k = 0;         // 0: off
  double top_p = 1.0;        // >= 1: off
  uint64_t seed = 0;
  std::vector<int64_t> stop_ids;
};

// Called after every step with one token per row (-1 for rows that already stopped). Return false to stop early.
using GenerateStepFn = std::function<bool(const std::vector<int64_t>& tokens)>;

// Returns, per row, the generated ids (a stop id, when hit, is included and ends the row).
// Invalid prompts/options -> SFTKIT_BAD_ARGUMENT before any kernel runs.
std::vector<std::vector<int64_t>> generate_tokens(CausalLM& model, const std::vector<std::vector<int64_t>>& prompts,
                                                  const GenerateOptions& options, const GenerateStepFn& on_step);

}  // namespace sft

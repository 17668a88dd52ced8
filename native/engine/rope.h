// Rotary position embeddings of every supported kind (transformers 5.x modeling_rope_utils): default, linear,
// dynamic NTK, llama3, yarn, longrope (Phi-3), with partial rotary dims. The tables are fp32 like transformers'.
// Static kinds compute their inverse frequencies once; dynamic and longrope choose them per forward call from the
// largest position in the call (seq_len = max(pos) + 1), as transformers does.
//
// Shapes: B batch, T tokens of the call, H heads, D head dim, R rotary dims (<= D, even).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sft {

// Mirror of RopeSpec in src/native/model-config.ts (defaults resolved there: factor, original length, attention
// factor, Phi-3's longrope aliases).
struct RopeSpec {
  std::string type = "default";  // default | linear | dynamic | llama3 | yarn | longrope
  double theta = 10000.0;
  int64_t rotary_dim = 0;  // R; 0: the head dim
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_positions = 0;                     // llama3, yarn, longrope
  double attention_factor = 1.0;                          // yarn, longrope: cos/sin multiplier
  double beta_fast = 32.0, beta_slow = 1.0;               // yarn
  bool truncate = true;                                   // yarn
  std::vector<double> short_factor, long_factor;          // longrope, R/2 each
};

class Rope {
 public:
  // max_positions: the model's max_position_embeddings (dynamic's reference length).
  Rope(const RopeSpec& spec, int64_t head_dim, int64_t max_positions, const at::Device& device);
  int64_t rotary_dim() const { return rotary_dim_; }
  // True when the frequencies depend on the call's largest position (dynamic, longrope).
  bool per_call() const { return spec_.type == "dynamic" || spec_.type == "longrope"; }
  const RopeSpec& spec() const { return spec_; }
  // Inverse frequencies [R/2] fp32 for a call whose largest position is seq_len - 1.
  at::Tensor inv_freq(int64_t seq_len) const;
  // pos [B, T] int64 -> cos, sin [B, 1, T, R] in `dtype` (the attention factor applied).
  std::pair<at::Tensor, at::Tensor> tables(const at::Tensor& pos, int64_t seq_len, at::ScalarType dtype) const;

 private:
  at::Tensor compute(int64_t seq_len) const;
  RopeSpec spec_;
  int64_t head_dim_, rotary_dim_, max_positions_;
  at::Device device_;
  at::Tensor static_inv_;  // static kinds
};

// x [B, H, T, D] -> RoPE (rotate_half layout) on the first R dims, the rest unchanged; cos/sin [B, 1, T, R].
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace sft

// TEMPORARY stand-in (deleted when branch native-loss is merged): the agreed loss.h / optim.h interfaces with a naive
// implementation, so that model_wrap.cc compiles and can be tested before the real fused kernels land.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace sft {
struct LossResult { at::Tensor loss_sum; int64_t count; };
LossResult fused_masked_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                                      int64_t chunk_rows = 0);
struct AdamWOptions { double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0; };
struct ParamEntry { std::string name; at::Tensor param; bool decay; };
class AdamW {
 public:
  AdamW(std::vector<ParamEntry> params, AdamWOptions options);
  double clip_grad_norm(double max_norm);
  void step(double lr);
  void set_options(const AdamWOptions& o) { o_ = o; }
  int64_t step_count() const { return t_; }
  std::vector<std::pair<std::string, at::Tensor>> state_tensors() const;
  void load_state_tensors(const std::map<std::string, at::Tensor>& state);
 private:
  std::vector<ParamEntry> p_;
  std::vector<at::Tensor> m_, v_;
  AdamWOptions o_;
  int64_t t_ = 0;
};
}  // namespace sft


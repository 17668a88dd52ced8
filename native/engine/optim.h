// AdamW with decoupled weight decay, global-norm gradient clipping and exact state save/restore.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace sft {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

// One trainable parameter; decay = false for biases, norms and embeddings (the caller decides).
struct ParamEntry {
  std::string name;
  at::Tensor param;
  bool decay;
};

// The update is ATen's fused AdamW kernel (at::_fused_adamw_: one vectorised, multi-threaded pass per parameter
// over param, grad and both moments), called once per group of parameters that share the weight decay.
class AdamW {
 public:
  AdamW(std::vector<ParamEntry> params, AdamWOptions options);
  // Global L2 norm over all gradients (fp32 accumulation per tensor). When larger than max_norm, the next step()
  // scales the gradients to max_norm inside the fused kernel (its grad_scale), which saves a pass over every
  // gradient. Returns the pre-clip norm; max_norm <= 0 only measures.
  double clip_grad_norm(double max_norm);
  // One step at learning rate lr for every parameter that has a gradient (clipped as the last clip_grad_norm said).
  void step(double lr);
  void set_options(const AdamWOptions& o) { options_ = o; }
  int64_t step_count() const { return step_; }
  // "<name>.exp_avg", "<name>.exp_avg_sq" and "step" (0-dim int64).
  std::vector<std::pair<std::string, at::Tensor>> state_tensors() const;
  void load_state_tensors(const std::map<std::string, at::Tensor>& state);

 private:
  std::vector<ParamEntry> params_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_, steps_;
  AdamWOptions options_;
  int64_t step_ = 0;
  double clip_coef_ = 1.0;  // from clip_grad_norm, consumed by the next step
};

}  // namespace sft

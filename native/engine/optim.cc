// Implements optim.h on top of at::_fused_adamw_ and the foreach norm kernels.
#include "optim.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <optional>

#include "errors.h"

namespace sft {

AdamW::AdamW(std::vector<ParamEntry> params, AdamWOptions options) : params_(std::move(params)), options_(options) {
  c10::NoGradGuard no_grad;
  for (const auto& e : params_) {
    exp_avg_.push_back(at::zeros_like(e.param, at::MemoryFormat::Contiguous));
    exp_avg_sq_.push_back(at::zeros_like(e.param, at::MemoryFormat::Contiguous));
    // The fused kernel reads the step from a float tensor per parameter.
    steps_.push_back(at::zeros({}, e.param.options().dtype(at::kFloat)));
  }
}

double AdamW::clip_grad_norm(double max_norm) {
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (const auto& e : params_) {
    if (e.param.grad().defined()) grads.push_back(e.param.grad());
  }
  clip_coef_ = 1.0;
  if (grads.empty()) return 0.0;
  // Shapes: per-tensor norms [P] -> global norm (fp32 per tensor, combined in fp64).
  std::vector<at::Tensor> norms = at::_foreach_norm(grads, 2, at::kFloat);
  const double norm = at::stack(norms).to(at::kDouble).norm().item<double>();
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) clip_coef_ = max_norm / (norm + 1e-6);
  return norm;
}

void AdamW::step(double lr) {
  c10::NoGradGuard no_grad;
  ++step_;
  // Two groups (decay / no decay): the kernel takes one weight decay per call.
  for (bool decay : {true, false}) {
    std::vector<at::Tensor> p, g, m, v, s;
    for (size_t i = 0; i < params_.size(); ++i) {
      const auto& e = params_[i];
      if (e.decay != decay || !e.param.grad().defined()) continue;
      steps_[i].fill_(static_cast<double>(step_));
      p.push_back(e.param);
      g.push_back(e.param.grad());
      m.push_back(exp_avg_[i]);
      v.push_back(exp_avg_sq_[i]);
      s.push_back(steps_[i]);
    }
    if (p.empty()) continue;
    // Clipping: the kernel divides each gradient by grad_scale (as it unscales AMP gradients).
    std::optional<at::Tensor> grad_scale;
    if (clip_coef_ != 1.0) grad_scale = at::scalar_tensor(1.0 / clip_coef_, p[0].options().dtype(at::kFloat));
    at::_fused_adamw_(p, g, m, v, /*max_exp_avg_sqs=*/{}, s, lr, options_.beta1, options_.beta2,
                      decay ? options_.weight_decay : 0.0, options_.eps, /*amsgrad=*/false, /*maximize=*/false,
                      grad_scale);
  }
  clip_coef_ = 1.0;
}

std::vector<std::pair<std::string, at::Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back(params_[i].name + ".exp_avg", exp_avg_[i]);
    out.emplace_back(params_[i].name + ".exp_avg_sq", exp_avg_sq_[i]);
  }
  out.emplace_back("step", at::scalar_tensor(step_, at::kLong));
  return out;
}

void AdamW::load_state_tensors(const std::map<std::string, at::Tensor>& state) {
  c10::NoGradGuard no_grad;
  auto get = [&](const std::string& key, const at::Tensor& like) -> at::Tensor {
    auto it = state.find(key);
    if (it == state.end()) throw_io("optimizer state: missing tensor " + key);
    if (!like.sizes().equals(it->second.sizes())) throw_io("optimizer state: " + key + " has another shape than the parameter");
    return it->second;
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    exp_avg_[i].copy_(get(params_[i].name + ".exp_avg", exp_avg_[i]));
    exp_avg_sq_[i].copy_(get(params_[i].name + ".exp_avg_sq", exp_avg_sq_[i]));
  }
  auto it = state.find("step");
  if (it == state.end() || it->second.numel() != 1) throw_io("optimizer state: missing scalar \"step\"");
  step_ = it->second.to(at::kLong).item<int64_t>();
  for (auto& s : steps_) s.fill_(static_cast<double>(step_));
}

}  // namespace sft

// TEMPORARY stand-in (deleted when branch native-loss is merged): naive loss and AdamW, see model_standin.h.
#include "model_standin.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <cmath>

#include "errors.h"

namespace sft {

LossResult fused_masked_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels, int64_t) {
  at::Tensor logits = at::linear(hidden.narrow(1, 0, hidden.size(1) - 1), weight).to(at::kFloat);
  at::Tensor tgt = labels.narrow(1, 1, labels.size(1) - 1).reshape({-1});
  int64_t count = tgt.ne(-100).sum().item<int64_t>();
  if (count == 0) return {(hidden.sum() * 0).to(at::kFloat), 0};
  at::Tensor loss = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), tgt, {}, at::Reduction::Sum, -100);
  return {loss, count};
}

AdamW::AdamW(std::vector<ParamEntry> params, AdamWOptions options) : p_(std::move(params)), o_(options) {
  for (auto& e : p_) { m_.push_back(at::zeros_like(e.param.detach())); v_.push_back(at::zeros_like(e.param.detach())); }
}

double AdamW::clip_grad_norm(double max_norm) {
  double sq = 0;
  for (auto& e : p_) if (e.param.grad().defined()) sq += e.param.grad().to(at::kDouble).pow(2).sum().item<double>();
  double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm) {
    double c = max_norm / (norm + 1e-6);
    for (auto& e : p_) if (e.param.grad().defined()) e.param.mutable_grad().mul_(c);
  }
  return norm;
}

void AdamW::step(double lr) {
  c10::NoGradGuard g;
  ++t_;
  double bc1 = 1 - std::pow(o_.beta1, t_), bc2 = 1 - std::pow(o_.beta2, t_);
  for (size_t i = 0; i < p_.size(); ++i) {
    at::Tensor p = p_[i].param, gr = p.grad();
    if (!gr.defined()) continue;
    if (p_[i].decay) p.mul_(1 - lr * o_.weight_decay);
    m_[i].mul_(o_.beta1).add_(gr, 1 - o_.beta1);
    v_[i].mul_(o_.beta2).addcmul_(gr, gr, 1 - o_.beta2);
    at::Tensor denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(o_.eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
}

std::vector<std::pair<std::string, at::Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < p_.size(); ++i) { out.emplace_back(p_[i].name + ".exp_avg", m_[i]); out.emplace_back(p_[i].name + ".exp_avg_sq", v_[i]); }
  out.emplace_back("step", at::scalar_tensor(t_, at::kLong));
  return out;
}

void AdamW::load_state_tensors(const std::map<std::string, at::Tensor>& s) {
  for (size_t i = 0; i < p_.size(); ++i) { m_[i].copy_(s.at(p_[i].name + ".exp_avg")); v_[i].copy_(s.at(p_[i].name + ".exp_avg_sq")); }
  t_ = s.at("step").item<int64_t>();
}

}  // namespace sft

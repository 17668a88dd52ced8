// Implements distill_loss.h: one custom autograd Function that walks the labelled rows in chunks, computing student
// and teacher logits for the chunk, CE + tau^2 KL, and the gradient w.r.t. the student's hidden rows and LM head.
#include "distill_loss.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <string>

#include "errors.h"
#include "logprobs.h"
#include "loss.h"

namespace sft {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Shapes: h [N, C] student rows, w [V, C], ht [N, Ct] teacher rows, wt [V, Ct], y [N]. Returns [3] fp64:
// (loss sum, CE sum, KL sum); only the first carries a gradient.
struct ChunkedDistill : public torch::autograd::Function<ChunkedDistill> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w, const at::Tensor& ht,
                            const at::Tensor& wt, const at::Tensor& y, double alpha, double tau, int64_t chunk) {
    const bool need_h = h.requires_grad();
    const bool need_w = w.requires_grad();
    at::Tensor hf = h.to(at::kFloat), wf = w.to(at::kFloat);
    at::Tensor htf = ht.to(at::kFloat), wtf = wt.to(at::kFloat);
    const int64_t n = hf.size(0);
    at::Tensor grad_h = need_h ? at::empty_like(hf) : at::Tensor();
    at::Tensor grad_w = need_w ? at::zeros_like(wf) : at::Tensor();
    at::Tensor ce = at::zeros({}, hf.options().dtype(at::kDouble));
    at::Tensor kl = at::zeros({}, hf.options().dtype(at::kDouble));
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t rows = std::min(chunk, n - start);
      at::Tensor hc = hf.narrow(0, start, rows);
      at::Tensor yc = y.narrow(0, start, rows).unsqueeze(1);  // [r, 1]
      at::Tensor zs = at::mm(hc, wf.t());                      // [r, V] student logits
      at::Tensor log_p = at::log_softmax(at::mm(htf.narrow(0, start, rows), wtf.t()).div_(tau), 1);  // teacher, tau
      at::Tensor lse = at::logsumexp(zs, {1}, /*keepdim=*/true);
      ce.add_((lse - zs.gather(1, yc)).sum(at::kDouble));
      at::Tensor log_q = tau == 1.0 ? zs - lse : at::log_softmax(zs / tau, 1);  // student, tau
      at::Tensor p = log_p.exp();
      kl.add_((p * (log_p - log_q)).sum(at::kDouble));
      if (!need_h && !need_w) continue;
      // d/dz_s: alpha (softmax(z_s) - onehot) + (1 - alpha) tau (softmax(z_s / tau) - p), built in the zs buffer.
      at::Tensor d = zs.sub_(lse).exp_().mul_(alpha);
      d.scatter_add_(1, yc, at::full({rows, 1}, -alpha, d.options()));
      d.add_(log_q.exp_().sub_(p), (1.0 - alpha) * tau);
      if (need_h) {
        at::Tensor gh = grad_h.narrow(0, start, rows);
        at::mm_out(gh, d, wf);
      }
      if (need_w) grad_w.addmm_(d.t(), hc);
    }
    ctx->save_for_backward({grad_h, grad_w});
    ctx->saved_data["h_dtype"] = static_cast<int64_t>(h.scalar_type());
    ctx->saved_data["w_dtype"] = static_cast<int64_t>(w.scalar_type());
    at::Tensor loss = ce * alpha + kl * ((1.0 - alpha) * tau * tau);
    return at::stack({loss, ce, kl});
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    at::Tensor g = grad_out[0].select(0, 0).to(at::kFloat);
    auto scaled = [&](const at::Tensor& t, const char* key) -> at::Tensor {
      if (!t.defined()) return at::Tensor();
      at::Tensor r = t.mul_(g);  // backward runs once (the graph is freed after it): scale the saved buffer in place
      auto dtype = static_cast<at::ScalarType>(ctx->saved_data[key].toInt());
      return r.scalar_type() == dtype ? r : r.to(dtype);
    };
    return {scaled(saved[0], "h_dtype"), scaled(saved[1], "w_dtype"), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

void check_teacher(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& teacher_hidden, const at::Tensor& teacher_weight,
                   double alpha, double temperature) {
  if (teacher_hidden.dim() != 3 || teacher_weight.dim() != 2) throw_bad_argument("distill: teacher hidden [B, T, Ct] and weight [V, Ct] expected");
  if (teacher_hidden.size(0) != hidden.size(0) || teacher_hidden.size(1) != hidden.size(1)) {
    throw_bad_argument("distill: teacher and student hidden states cover different [B, T]");
  }
  if (teacher_weight.size(0) != weight.size(0)) {
    throw_bad_argument("distill: the teacher's vocabulary (" + std::to_string(teacher_weight.size(0)) + ") differs from the student's (" +
                       std::to_string(weight.size(0)) + "): both must share the tokenizer");
  }
  if (teacher_hidden.size(2) != teacher_weight.size(1)) throw_bad_argument("distill: teacher hidden size and LM head columns differ");
  if (!(alpha >= 0 && alpha <= 1)) throw_bad_argument("distill: alpha must be in [0, 1]");
  if (!(temperature > 0)) throw_bad_argument("distill: temperature must be > 0");
}

DistillResult empty_result(const at::Tensor& hidden) {
  DistillResult r;
  r.loss_sum = (hidden.sum() * 0.0).abs().to(at::kFloat);
  return r;
}

}  // namespace

DistillResult fused_distill_loss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& teacher_hidden,
                                 const at::Tensor& teacher_weight, const at::Tensor& labels, double alpha, double temperature,
                                 int64_t chunk_rows) {
  check_teacher(hidden, weight, teacher_hidden, teacher_weight, alpha, temperature);
  if (chunk_rows < 0) throw_bad_argument("distill: chunk_rows must be >= 0");
  const int64_t B = hidden.size(0), T = hidden.size(1), C = hidden.size(2), V = weight.size(0);
  if (T < 2) return empty_result(hidden);
  LabelledRows s = select_labelled(hidden, weight, labels.device() == hidden.device() ? labels : labels.to(hidden.device()));
  const int64_t n = s.flat_rows.numel();
  if (n == 0) return empty_result(hidden);
  at::Tensor h = hidden.reshape({B * T, C}).index_select(0, s.flat_rows);  // [N, C], autograd-tracked gather
  at::Tensor ht;
  {
    c10::NoGradGuard no_grad;
    ht = teacher_hidden.reshape({B * T, teacher_hidden.size(2)}).index_select(0, s.flat_rows.to(teacher_hidden.device())).to(hidden.device());
  }
  // About six [rows, V] fp32 buffers live per chunk: a sixth of the cross-entropy's logit budget each.
  const int64_t chunk = chunk_rows > 0 ? std::min(chunk_rows, n) : std::max<int64_t>(1, auto_chunk_rows(V, n) / 6);
  at::Tensor out = ChunkedDistill::apply(h, weight, ht, teacher_weight.detach().to(hidden.device()), s.targets, alpha, temperature, chunk);
  DistillResult r;
  r.loss_sum = out.select(0, 0).to(at::kFloat);
  at::Tensor parts = out.detach().cpu();
  r.ce_sum = parts[1].item<double>();
  r.kl_sum = parts[2].item<double>();
  r.count = n;
  return r;
}

DistillResult naive_distill_loss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& teacher_hidden,
                                 const at::Tensor& teacher_weight, const at::Tensor& labels, double alpha, double temperature) {
  check_teacher(hidden, weight, teacher_hidden, teacher_weight, alpha, temperature);
  const int64_t T = hidden.size(1);
  if (T < 2) return empty_result(hidden);
  LabelledRows s = select_labelled(hidden, weight, labels);  // validates
  if (s.flat_rows.numel() == 0) return empty_result(hidden);
  // In float64: the reference must be the accurate side of a comparison. In fp32 its KL sum (terms of both signs
  // over every logit) moved by 1.5e-5 relative between processes with MKL's AVX-512 sgemm, whose rounding depends on
  // the buffers' alignment; the fused loss accumulates in double and stayed put.
  const auto f64 = [](const at::Tensor& t) { return t.to(at::kDouble); };
  at::Tensor zs = at::linear(f64(hidden.narrow(1, 0, T - 1)), f64(weight));                                  // [B, T-1, V]
  at::Tensor zt = at::linear(f64(teacher_hidden.narrow(1, 0, T - 1)), f64(teacher_weight)).detach();          // [B, T-1, V]
  at::Tensor tgt = labels.narrow(1, 1, T - 1).to(at::kLong);
  at::Tensor mask = tgt.ne(-100).to(at::kDouble);
  at::Tensor ce = (at::cross_entropy_loss(zs.flatten(0, 1), tgt.flatten(), {}, at::Reduction::None, -100)).sum();
  at::Tensor log_q = at::log_softmax(zs / temperature, -1), log_p = at::log_softmax(zt / temperature, -1);
  at::Tensor kl = ((log_p.exp() * (log_p - log_q)).sum(-1) * mask).sum();
  DistillResult r;
  r.loss_sum = ce * alpha + kl * ((1.0 - alpha) * temperature * temperature);
  r.ce_sum = ce.item<double>();
  r.kl_sum = kl.item<double>();
  r.count = s.flat_rows.numel();
  return r;
}

}  // namespace sft

// Implements fused_ops.h as custom autograd Functions over ATen's vectorised kernels.
#include "fused_ops.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

namespace sft {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Shapes: x [..., N] -> rstd [..., 1] fp32.
at::Tensor inverse_rms(const at::Tensor& xf, double eps) { return at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps); }

struct RmsNormFn : public torch::autograd::Function<RmsNormFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, double eps) {
    at::Tensor xf = x.to(at::kFloat);
    at::Tensor rstd = inverse_rms(xf, eps);
    ctx->save_for_backward({x, w, rstd});
    return w * (xf * rstd).to(x.scalar_type());
  }

  // y = w * xhat, xhat = x * r, r = (mean(x^2) + eps)^-1/2:
  // dx = r * (g - xhat * mean(g * xhat)) with g = dy * w;  dw = sum over rows of dy * xhat.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &rstd = saved[2];
    const at::Tensor& dy = grads[0];
    at::Tensor xhat = x.to(at::kFloat) * rstd;
    at::Tensor dyf = dy.to(at::kFloat);
    at::Tensor dx, dw;
    if (w.requires_grad()) {
      // The forward rounded xhat to x's dtype before the weight multiplied it.
      at::Tensor xh = xhat.to(x.scalar_type()).to(at::kFloat);
      dw = (dyf * xh).reshape({-1, w.size(0)}).sum(0).to(w.scalar_type());
    }
    if (x.requires_grad()) {
      at::Tensor g = dyf * w.to(at::kFloat);
      dx = (rstd * (g - xhat * (g * xhat).mean(-1, /*keepdim=*/true))).to(x.scalar_type());
    }
    return {dx, dw, at::Tensor()};
  }
};

struct SwigluFn : public torch::autograd::Function<SwigluFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    ctx->save_for_backward({gate, up});
    return at::silu(gate) * up;
  }

  // d up = dy * silu(g); d gate = silu'(g) * dy * up (ATen's fused silu_backward).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &gate = saved[0], &up = saved[1];
    const at::Tensor& dy = grads[0];
    at::Tensor dgate, dup;
    if (up.requires_grad()) dup = dy * at::silu(gate);
    if (gate.requires_grad()) dgate = at::silu_backward(dy * up, gate);
    return {dgate, dup};
  }
};

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  if (!c10::GradMode::is_enabled() || !(x.requires_grad() || w.requires_grad())) {
    at::Tensor xf = x.to(at::kFloat);
    return w * (xf * inverse_rms(xf, eps)).to(x.scalar_type());
  }
  return RmsNormFn::apply(x, w, eps);
}

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
  if (!c10::GradMode::is_enabled() || !(gate.requires_grad() || up.requires_grad())) return at::silu(gate) * up;
  return SwigluFn::apply(gate, up);
}

}  // namespace sft

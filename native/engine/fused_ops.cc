// Implements fused_ops.h as custom autograd Functions over ATen's vectorised kernels.
#include "fused_ops.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <array>
#include <functional>

#include "device.h"

namespace sft {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The matmul Functions below run at::linear in forward, which autocast casts to bf16 (fp32 master weights, bf16
// activations), and at::mm in backward, where no autocast scope is active any more (the step's scope ends before
// backward; CUDA runs backward on its device threads): mm(bf16 dy, fp32 w) is an error. As torch.amp.custom_fwd /
// custom_bwd do, the forward's autocast state goes into ctx and the backward re-enters it, so the backward matmuls
// run in the dtype the forward's did (autograd casts each gradient back to its input's dtype).
void save_autocast(AutogradContext* ctx, const at::Tensor& like) {
  const AutocastState s = AutocastState::current(like.device().type());
  ctx->saved_data["autocast"] = s.enabled;
  ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(s.dtype);
}

AutocastState saved_autocast(AutogradContext* ctx, const at::Tensor& like) {
  AutocastState s;
  s.device = like.device().type();
  s.enabled = ctx->saved_data["autocast"].toBool();
  s.dtype = static_cast<at::ScalarType>(ctx->saved_data["autocast_dtype"].toInt());
  return s;
}

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

// Backward of y = a @ w^T for an activation a recomputed here (autograd Function inputs must be defined tensors, so
// the bias is added outside the Function). Shapes: dy [..., C], w [C, I] -> dw [C, I] (when w needs it) and
// da [..., I] shaped as `like` (when the activation's inputs need it).
std::pair<at::Tensor, at::Tensor> down_projection_grads(const at::Tensor& dy_in, const at::Tensor& w, const at::Tensor& like,
                                                        bool need_input, const std::function<at::Tensor()>& recompute) {
  const int64_t C = w.size(0), I = w.size(1);
  at::Tensor dy = dy_in.reshape({-1, C});                                           // [N, C]
  at::Tensor dw = w.requires_grad() ? at::mm(dy.t(), recompute().reshape({-1, I})) : at::Tensor();  // [C, I]
  at::Tensor da = need_input ? at::mm(dy, w).view(like.sizes()) : at::Tensor();   // [..., I]
  return {dw, da};
}

// Shapes: pre [..., I], w [C, I] -> [..., C] = gelu_tanh(pre) @ w^T; keeps pre (not the activation) for backward.
struct GeluTanhLinearFn : public torch::autograd::Function<GeluTanhLinearFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& pre, const at::Tensor& w) {
    ctx->save_for_backward({pre, w});
    save_autocast(ctx, w);
    return at::linear(at::gelu(pre, "tanh"), w);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &pre = saved[0], &w = saved[1];
    AutocastScope cast(saved_autocast(ctx, w));
    auto [dw, da] = down_projection_grads(grads[0], w, pre, pre.requires_grad(), [&] { return at::gelu(pre, "tanh"); });
    return {da.defined() ? at::gelu_backward(da.to(pre.scalar_type()), pre, "tanh") : at::Tensor(), dw};
  }
};

// Shapes: gate [..., I], up [..., I], w [C, I] -> [..., C] = (silu(gate) * up) @ w^T; keeps gate and up.
struct SwigluLinearFn : public torch::autograd::Function<SwigluLinearFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up, const at::Tensor& w) {
    ctx->save_for_backward({gate, up, w});
    save_autocast(ctx, w);
    return at::linear(at::silu(gate) * up, w);
  }
  // d up = da * silu(gate); d gate = silu'(gate) * da * up.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &gate = saved[0], &up = saved[1], &w = saved[2];
    AutocastScope cast(saved_autocast(ctx, w));
    const bool need_gate = gate.requires_grad(), need_up = up.requires_grad();
    at::Tensor sg = at::silu(gate);  // [..., I], for the weight gradient and d up alike
    auto [dw, da_mm] = down_projection_grads(grads[0], w, gate, need_gate || need_up, [&] { return sg * up; });
    const at::Tensor da = da_mm.defined() ? da_mm.to(gate.scalar_type()) : da_mm;
    at::Tensor dgate = need_gate ? at::silu_backward(da * up, gate) : at::Tensor();
    at::Tensor dup = need_up ? da * sg : at::Tensor();
    return {dgate, dup, dw};
  }
};

// Shapes: x [..., C], g [C], beta [C], w [O, C] -> [..., O] = layer_norm(x) @ w^T; keeps x (not the normalised x).
struct LayerNormLinearFn : public torch::autograd::Function<LayerNormLinearFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& g, const at::Tensor& beta,
                            const at::Tensor& w, double eps) {
    ctx->save_for_backward({x, g, beta, w});
    ctx->saved_data["eps"] = eps;
    save_autocast(ctx, w);
    return at::linear(std::get<0>(at::native_layer_norm(x, {x.size(-1)}, g, beta, eps)), w);
  }
  // The LayerNorm runs again (same kernel, same values) for the normalised rows and the statistics its backward needs.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &g = saved[1], &beta = saved[2], &w = saved[3];
    AutocastScope cast(saved_autocast(ctx, w));
    const int64_t C = x.size(-1);
    auto [xn, mean, rstd] = at::native_layer_norm(x, {C}, g, beta, ctx->saved_data["eps"].toDouble());
    const std::array<bool, 3> mask{x.requires_grad(), g.requires_grad(), beta.requires_grad()};
    const bool need_norm = mask[0] || mask[1] || mask[2];
    auto [dw, dxn] = down_projection_grads(grads[0], w, xn, need_norm, [&] { return xn; });
    if (!need_norm) return {at::Tensor(), at::Tensor(), at::Tensor(), dw, at::Tensor()};
    // The normalised rows were in x's dtype (fp32 under autocast): their gradient too.
    auto [dx, dg, db] = at::native_layer_norm_backward(dxn.to(xn.scalar_type()), x, {C}, mean, rstd, g, beta, mask);
    return {dx, dg, db, dw, at::Tensor()};
  }
};

// Whether autograd records an op over these inputs (undefined ones, e.g. an absent bias, are skipped).
bool needs_graph(std::initializer_list<at::Tensor> ts) {
  if (!c10::GradMode::is_enabled()) return false;
  for (const at::Tensor& t : ts) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

at::Tensor plus_bias(at::Tensor y, const at::Tensor& b) { return b.defined() ? y.add_(b) : y; }

}  // namespace

at::Tensor gelu_tanh_linear(const at::Tensor& pre, const at::Tensor& w, const at::Tensor& b) {
  if (!needs_graph({pre, w, b})) return at::linear(at::gelu(pre, "tanh"), w, b);
  return plus_bias(GeluTanhLinearFn::apply(pre, w), b);
}

at::Tensor swiglu_linear(const at::Tensor& gate, const at::Tensor& up, const at::Tensor& w, const at::Tensor& b) {
  if (!needs_graph({gate, up, w, b})) return at::linear(at::silu(gate) * up, w, b);
  return plus_bias(SwigluLinearFn::apply(gate, up, w), b);
}

at::Tensor layer_norm_linear(const at::Tensor& x, const at::Tensor& g, const at::Tensor& beta, double eps,
                             const at::Tensor& w, const at::Tensor& b) {
  if (!needs_graph({x, g, beta, w, b}) || !g.defined() || !beta.defined()) {
    return at::linear(at::layer_norm(x, {x.size(-1)}, g, beta, eps), w, b);
  }
  return plus_bias(LayerNormLinearFn::apply(x, g, beta, w, eps), b);
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  if (!needs_graph({x, w})) {
    at::Tensor xf = x.to(at::kFloat);
    return w * (xf * inverse_rms(xf, eps)).to(x.scalar_type());
  }
  return RmsNormFn::apply(x, w, eps);
}

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
  if (!needs_graph({gate, up})) return at::silu(gate) * up;
  return SwigluFn::apply(gate, up);
}

}  // namespace sft

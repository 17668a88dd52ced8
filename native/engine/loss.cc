// Implements loss.h: the chunked forward/backward of the masked cross-entropy as one custom autograd Function.
#include "loss.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <string>

#include "cpu_pool.h"
#include "errors.h"

namespace sft {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The chunk walk shared by the autograd Function and the training path. Shapes: hf [N, C] fp32, wf [V, C] fp32,
// y [N] int64 in [0, V). Returns the loss sum (fp64 accumulation). When given, grad_h [N, C] is overwritten with
// scale * d loss / d h and grad_w [V, C] is incremented by scale * d loss / d W. Never more than one chunk of logits
// [chunk, V] exists at a time; the softmax gradient is formed in place in that buffer.
// softcap > 0 (Gemma 2): the logits are cap * tanh(logits / cap) and the gradient is chained through the tanh.
// With `sliced` (and wf undefined), the head comes in slices of vocabulary rows (HeadRows) and has no gradient.
double ce_chunks(const at::Tensor& hf, const at::Tensor& wf, const at::Tensor& y, int64_t chunk, double scale,
                 at::Tensor* grad_h, at::Tensor* grad_w, at::Tensor* logits_buffer = nullptr, double softcap = 0,
                 const HeadRows* sliced = nullptr) {
  const int64_t n = hf.size(0), V = sliced ? sliced->vocab : wf.size(0);
  at::Tensor buffer;  // flat fp32 [>= chunk * V], reused by every chunk (and by the next call when given)
  if (logits_buffer && logits_buffer->defined() && logits_buffer->numel() >= std::min(chunk, n) * V &&
      logits_buffer->device() == hf.device()) {
    buffer = *logits_buffer;
  } else {
    buffer = at::empty({std::min(chunk, n) * V}, hf.options());
    if (logits_buffer) *logits_buffer = buffer;
  }
  at::Tensor total = at::zeros({}, hf.options().dtype(at::kDouble));
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t rows = std::min(chunk, n - start);
    at::Tensor hc = hf.narrow(0, start, rows);                      // [r, C]
    at::Tensor yc = y.narrow(0, start, rows).unsqueeze(1);          // [r, 1]
    at::Tensor logits = buffer.narrow(0, 0, rows * V).view({rows, V});  // [r, V]
    if (sliced) {
      for (int64_t v0 = 0; v0 < V; v0 += sliced->slice_rows) {
        const int64_t m = std::min(sliced->slice_rows, V - v0);
        at::Tensor part = logits.narrow(1, v0, m);  // [r, m], row stride V
        at::mm_out(part, hc, sliced->rows(v0, m).t());
      }
    } else {
      at::mm_out(logits, hc, wf.t());
    }
    at::Tensor th;  // tanh(raw / cap), kept for the chain rule
    if (softcap > 0) {
      logits.div_(softcap).tanh_();
      if (grad_h || grad_w) th = logits.clone();
      logits.mul_(softcap);
    }
    at::Tensor target = logits.gather(1, yc);                       // [r, 1]
    // logsumexp in place (no second [r, V] buffer): exp(logits - max) overwrites the logits, then its row sums.
    at::Tensor rmax = std::get<0>(logits.max(1, /*keepdim=*/true));  // [r, 1]
    at::Tensor e = logits.sub_(rmax).exp_();
    at::Tensor rsum = e.sum(1, /*keepdim=*/true);                   // [r, 1]
    total.add_((rmax + rsum.log() - target).sum(at::kDouble));
    if (!grad_h && !grad_w) continue;
    // d loss / d logits = softmax - onehot, in place over the same buffer.
    at::Tensor probs = e.div_(rsum);
    probs.scatter_add_(1, yc, at::full({rows, 1}, -1.0f, probs.options()));
    if (th.defined()) probs.mul_(th.mul_(th).neg_().add_(1.0));  // d capped / d raw = 1 - tanh^2
    if (grad_h) {
      at::Tensor gh = grad_h->narrow(0, start, rows);
      if (sliced) {
        gh.zero_();
        for (int64_t v0 = 0; v0 < V; v0 += sliced->slice_rows) {
          const int64_t m = std::min(sliced->slice_rows, V - v0);
          gh.addmm_(probs.narrow(1, v0, m), sliced->rows(v0, m));  // [r, C]
        }
      } else {
        at::mm_out(gh, probs, wf);  // [r, C]
      }
      if (scale != 1.0) gh.mul_(scale);
    }
    if (grad_w) grad_w->addmm_(probs.t(), hc, /*beta=*/1.0, /*alpha=*/scale);  // [V, C]
  }
  return total.item<double>();
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Shapes: h [N, C], w [V, C], y [N] int64 in [0, V). Returns the 0-dim fp32 loss sum.
struct ChunkedCrossEntropy : public torch::autograd::Function<ChunkedCrossEntropy> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w, const at::Tensor& y, int64_t chunk,
                            double softcap) {
    const bool need_h = h.requires_grad();
    const bool need_w = w.requires_grad();
    at::Tensor hf = h.scalar_type() == at::kFloat ? h : h.to(at::kFloat);
    at::Tensor wf = w.scalar_type() == at::kFloat ? w : w.to(at::kFloat);
    at::Tensor grad_h = need_h ? at::empty_like(hf) : at::Tensor();
    at::Tensor grad_w = need_w ? at::zeros_like(wf) : at::Tensor();
    const double total = ce_chunks(hf, wf, y, chunk, 1.0, need_h ? &grad_h : nullptr, need_w ? &grad_w : nullptr, nullptr, softcap);
    ctx->save_for_backward({grad_h, grad_w});
    ctx->saved_data["h_dtype"] = static_cast<int64_t>(h.scalar_type());
    ctx->saved_data["w_dtype"] = static_cast<int64_t>(w.scalar_type());
    return at::scalar_tensor(total, hf.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& g = grad_out[0];
    // The saved gradients are scaled in place (backward runs once: the graph is freed after it), which saves a
    // [V, C] buffer for the LM head.
    auto scaled = [&](const at::Tensor& t, const char* key) -> at::Tensor {
      if (!t.defined()) return at::Tensor();
      at::Tensor r = t.mul_(g);
      auto dtype = static_cast<at::ScalarType>(ctx->saved_data[key].toInt());
      return r.scalar_type() == dtype ? r : r.to(dtype);
    };
    return {scaled(saved[0], "h_dtype"), scaled(saved[1], "w_dtype"), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

void check_inputs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels) {
  if (hidden.dim() != 3) throw_bad_argument("loss: hidden must be [B, T, C], got " + std::to_string(hidden.dim()) + " dims");
  if (weight.dim() != 2) throw_bad_argument("loss: weight must be [V, C]");
  if (labels.dim() != 2) throw_bad_argument("loss: labels must be [B, T]");
  if (hidden.size(2) != weight.size(1)) {
    throw_bad_argument("loss: hidden size " + std::to_string(hidden.size(2)) + " != weight columns " + std::to_string(weight.size(1)));
  }
  if (hidden.size(0) != labels.size(0) || hidden.size(1) != labels.size(1)) throw_bad_argument("loss: hidden [B, T] and labels [B, T] differ");
  if (at::isFloatingType(labels.scalar_type())) throw_bad_argument("loss: labels must be integers");
}

// The rows forms: hidden_rows [N, C] against weight [V, C], targets [N].
void check_rows(const at::Tensor& hidden_rows, const at::Tensor& weight, const at::Tensor& targets) {
  if (hidden_rows.dim() != 2 || weight.dim() != 2 || targets.dim() != 1) throw_bad_argument("loss: hidden rows [N, C], weight [V, C] and targets [N] expected");
  if (hidden_rows.size(1) != weight.size(1)) {
    throw_bad_argument("loss: hidden size " + std::to_string(hidden_rows.size(1)) + " != weight columns " + std::to_string(weight.size(1)));
  }
  if (hidden_rows.size(0) != targets.size(0)) throw_bad_argument("loss: hidden rows and targets differ in number");
}

}  // namespace

// Flat row indices (into hidden viewed as [B*T, C]) of the positions with a target, and those targets.

LabelRows label_rows(const at::Tensor& labels, int64_t vocab) {
  const int64_t T = labels.size(1);
  at::Tensor tgt = labels.narrow(1, 1, T - 1).to(at::kLong);  // [B, T-1]
  at::Tensor nz = tgt.ne(-100).nonzero();                      // [N, 2]
  at::Tensor rows = nz.select(1, 0) * T + nz.select(1, 1);
  at::Tensor y = tgt.reshape({-1}).index_select(0, nz.select(1, 0) * (T - 1) + nz.select(1, 1));
  if (y.numel() > 0) {
    const int64_t lo = y.min().item<int64_t>();
    const int64_t hi = y.max().item<int64_t>();
    if (lo < 0 || hi >= vocab) {
      throw_bad_argument("loss: label id " + std::to_string(lo < 0 ? lo : hi) + " is outside the vocabulary [0, " +
                         std::to_string(vocab) + ") (and not -100)");
    }
  }
  return {rows, y};
}

int64_t auto_chunk_rows(int64_t vocab, int64_t rows) {
  // 32M logits (128 MiB fp32) per chunk: thinner chunks make the [V, C] weight-gradient accumulation memory-bound
  // (measured at V = 151936: 55 rows 7.4 s, 128 rows 5.9 s, 256 rows 5.4 s, one chunk 5.2 s for 1024 rows).
  const int64_t budget = int64_t{32} << 20;
  return std::max<int64_t>(1, std::min<int64_t>(std::max<int64_t>(16, budget / std::max<int64_t>(1, vocab)), rows));
}

LossResult fused_masked_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels, int64_t chunk_rows,
                                      double softcap) {
  check_inputs(hidden, weight, labels);
  if (chunk_rows < 0) throw_bad_argument("loss: chunk_rows must be >= 0");
  const int64_t B = hidden.size(0), T = hidden.size(1), C = hidden.size(2), V = weight.size(0);
  if (T < 2) return {(hidden.sum() * 0.0).abs().to(at::kFloat), 0};
  auto [rows, y] = label_rows(labels.device() == hidden.device() ? labels : labels.to(hidden.device()), V);
  if (rows.numel() == 0) return {(hidden.sum() * 0.0).abs().to(at::kFloat), 0};
  return fused_cross_entropy_rows(hidden.reshape({B * T, C}).index_select(0, rows), weight, y, chunk_rows, softcap);  // autograd-tracked gather
}

LossResult fused_cross_entropy_rows(const at::Tensor& hidden_rows, const at::Tensor& weight, const at::Tensor& targets,
                                    int64_t chunk_rows, double softcap) {
  check_rows(hidden_rows, weight, targets);
  if (chunk_rows < 0) throw_bad_argument("loss: chunk_rows must be >= 0");
  const int64_t n = hidden_rows.size(0), V = weight.size(0);
  if (n == 0) return {(hidden_rows.sum() * 0.0).abs().to(at::kFloat), 0};
  const int64_t chunk = chunk_rows > 0 ? std::min(chunk_rows, n) : auto_chunk_rows(V, n);
  return {ChunkedCrossEntropy::apply(hidden_rows, weight, targets, chunk, softcap), n};
}

LossGradient fused_cross_entropy_rows_grad(const at::Tensor& hidden_rows, const at::Tensor& weight, const at::Tensor& targets,
                                           double scale, int64_t chunk_rows, LossWorkspace* workspace, double softcap) {
  check_rows(hidden_rows, weight, targets);
  if (chunk_rows < 0) throw_bad_argument("loss: chunk_rows must be >= 0");
  if (!weight.is_leaf()) throw_bad_argument("loss: the LM head weight must be a leaf tensor (a parameter)");
  const int64_t n = hidden_rows.size(0), V = weight.size(0);
  LossGradient out;
  out.count = n;
  if (n == 0) return out;
  c10::NoGradGuard no_grad;
  at::Tensor h = hidden_rows.detach().to(at::kFloat);  // [N, C]
  at::Tensor wf = weight.detach().to(at::kFloat);
  const int64_t chunk = chunk_rows > 0 ? std::min(chunk_rows, n) : auto_chunk_rows(V, n);
  at::Tensor grad_rows = at::empty_like(h);
  const bool need_w = weight.requires_grad();
  // fp32 weights: the head gradient goes straight into weight.grad (no [V, C] buffer beside it).
  at::Tensor& wgrad = weight.mutable_grad();
  const bool direct = need_w && weight.scalar_type() == at::kFloat;
  if (direct && !wgrad.defined()) {
    at::Tensor* spare = workspace ? &workspace->head_grad : nullptr;
    if (spare && spare->defined() && spare->sizes() == weight.sizes() && spare->scalar_type() == weight.scalar_type() &&
        spare->device() == weight.device()) {
      wgrad = std::move(*spare);
      wgrad.zero_();
    } else {
      wgrad = at::zeros_like(weight);
    }
    if (workspace) workspace->head_grad_lent = true;
  }
  at::Tensor buffer = need_w && !direct ? at::zeros_like(wf) : at::Tensor();
  at::Tensor* gw = !need_w ? nullptr : direct ? &wgrad : &buffer;
  // With the CPU pool the logits go back to its cache after the loss (the next step's loss gets the same block back,
  // and backward can use its pages meanwhile); kept across steps they were live through the step's memory peak.
  const bool keep_logits = workspace && !(h.device().is_cpu() && cpu_pool_installed());
  out.loss_sum = ce_chunks(h, wf, targets, chunk, scale, &grad_rows, gw, keep_logits ? &workspace->logits : nullptr, softcap);
  if (buffer.defined()) {
    if (wgrad.defined()) wgrad.add_(buffer.to(weight.scalar_type()));
    else wgrad = buffer.to(weight.scalar_type());
  }
  out.grad_hidden = grad_rows.to(hidden_rows.scalar_type());
  return out;
}

LossGradient cross_entropy_rows_sliced_head(const at::Tensor& hidden_rows, const HeadRows& head, const at::Tensor& targets,
                                            double scale, bool want_grad, int64_t chunk_rows, LossWorkspace* workspace,
                                            double softcap) {
  if (hidden_rows.dim() != 2 || targets.dim() != 1 || hidden_rows.size(1) != head.cols || hidden_rows.size(0) != targets.size(0)) {
    throw_bad_argument("loss: hidden rows [N, C] and targets [N] expected against the head's C columns");
  }
  if (chunk_rows < 0 || head.slice_rows < 1) throw_bad_argument("loss: chunk_rows must be >= 0 and slices >= 1 row");
  const int64_t n = hidden_rows.size(0);
  LossGradient out;
  out.count = n;
  if (n == 0) return out;
  c10::NoGradGuard no_grad;
  at::Tensor h = hidden_rows.detach().to(at::kFloat);  // [N, C]
  // Each row chunk dequantises the whole head twice (logits, then grad_hidden): chunks of up to 128M logits (512 MiB)
  // here, four times the dense form's, so that a 512-token row of a 152K vocabulary reads the head once each way.
  const int64_t big = std::max<int64_t>(16, (int64_t{128} << 20) / std::max<int64_t>(1, head.vocab));
  const int64_t chunk = chunk_rows > 0 ? std::min(chunk_rows, n) : std::min(n, std::max(big, auto_chunk_rows(head.vocab, n)));
  at::Tensor grad_rows = want_grad ? at::empty_like(h) : at::Tensor();
  const bool keep_logits = workspace && !(h.device().is_cpu() && cpu_pool_installed());
  out.loss_sum = ce_chunks(h, at::Tensor(), targets, chunk, scale, want_grad ? &grad_rows : nullptr, nullptr,
                           keep_logits ? &workspace->logits : nullptr, softcap, &head);
  if (want_grad) out.grad_hidden = grad_rows.to(hidden_rows.scalar_type());
  return out;
}

void LossWorkspace::release_head_grad(const at::Tensor& weight) {
  at::Tensor& g = weight.mutable_grad();
  // Parked only when weight.grad is the buffer's one owner: a grad someone still holds must never be zeroed later.
  if (g.defined() && head_grad_lent && g.use_count() == 1) head_grad = std::move(g);
  g = at::Tensor();
  head_grad_lent = false;
}

LossResult naive_masked_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels) {
  check_inputs(hidden, weight, labels);
  const int64_t T = hidden.size(1), V = weight.size(0);
  if (T < 2) return {(hidden.sum() * 0.0).abs().to(at::kFloat), 0};
  auto [rows, y] = label_rows(labels, V);  // validates ids
  const int64_t n = rows.numel();
  if (n == 0) return {(hidden.sum() * 0.0).abs().to(at::kFloat), 0};
  at::Tensor logits = at::linear(hidden.narrow(1, 0, T - 1), weight).to(at::kFloat);  // [B, T-1, V]
  at::Tensor tgt = labels.narrow(1, 1, T - 1).reshape({-1}).to(at::kLong);
  at::Tensor loss = at::cross_entropy_loss(logits.reshape({-1, V}), tgt, {}, at::Reduction::Sum, -100);
  return {loss, n};
}

}  // namespace sft

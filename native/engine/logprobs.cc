// Implements logprobs.h: a chunked custom autograd Function for per-row log-probability sums, and the DPO losses.
#include "logprobs.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

#include "errors.h"
#include "loss.h"

namespace sft {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Shapes: h [N, C] labelled rows, w [V, C], y [N] targets, row [N] int64 sequence index of each labelled row.
// Returns [B] sums of log-probabilities per sequence.
struct ChunkedSequenceLogprobs : public torch::autograd::Function<ChunkedSequenceLogprobs> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w, const at::Tensor& y,
                            const at::Tensor& row, int64_t batch, int64_t chunk) {
    at::Tensor hf = h.to(at::kFloat), wf = w.to(at::kFloat);
    const int64_t n = hf.size(0);
    at::Tensor out = at::zeros({batch}, hf.options().dtype(at::kDouble));
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t rows = std::min(chunk, n - start);
      at::Tensor logits = at::mm(hf.narrow(0, start, rows), wf.t());                    // [r, V]
      at::Tensor lp = logits.gather(1, y.narrow(0, start, rows).unsqueeze(1)).squeeze(1) - at::logsumexp(logits, {1});
      out.index_add_(0, row.narrow(0, start, rows), lp.to(at::kDouble));
    }
    ctx->save_for_backward({h, w, y, row});
    ctx->saved_data["chunk"] = chunk;
    return out.to(at::kFloat);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& h = saved[0];
    const at::Tensor& w = saved[1];
    const at::Tensor& y = saved[2];
    const at::Tensor& row = saved[3];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    at::Tensor hf = h.to(at::kFloat), wf = w.to(at::kFloat);
    at::Tensor g = grad_out[0].to(at::kFloat).index_select(0, row);  // [N]: d out[row_n] for each labelled row
    const int64_t n = hf.size(0);
    at::Tensor gh = at::empty_like(hf);
    // A frozen head (LoRA) needs no [V, C] gradient: skip its buffer and the matmul per chunk.
    const bool need_w = ctx->needs_input_grad(1);
    at::Tensor gw = need_w ? at::zeros_like(wf) : at::Tensor();
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t rows = std::min(chunk, n - start);
      at::Tensor hc = hf.narrow(0, start, rows);
      at::Tensor logits = at::mm(hc, wf.t());
      // d logp / d logits = onehot - softmax, scaled by the incoming gradient of the row's sum.
      at::Tensor d = at::softmax(logits, 1).neg_();
      d.scatter_add_(1, y.narrow(0, start, rows).unsqueeze(1), at::ones({rows, 1}, d.options()));
      d.mul_(g.narrow(0, start, rows).unsqueeze(1));
      at::Tensor ghc = gh.narrow(0, start, rows);
      at::mm_out(ghc, d, wf);
      if (need_w) gw.addmm_(d.t(), hc);
    }
    return {gh.to(h.scalar_type()), need_w ? gw.to(w.scalar_type()) : at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};


}  // namespace

LabelledRows select_labelled(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels) {
  if (hidden.dim() != 3 || weight.dim() != 2 || labels.dim() != 2) throw_bad_argument("logprobs: hidden [B, T, C], weight [V, C], labels [B, T] expected");
  if (hidden.size(0) != labels.size(0) || hidden.size(1) != labels.size(1) || hidden.size(2) != weight.size(1)) {
    throw_bad_argument("logprobs: shapes of hidden, weight and labels disagree");
  }
  const int64_t T = labels.size(1), V = weight.size(0);
  at::Tensor tgt = labels.narrow(1, 1, T - 1).to(at::kLong);
  at::Tensor nz = tgt.ne(-100).nonzero();
  at::Tensor b = nz.select(1, 0), t = nz.select(1, 1);
  at::Tensor y = tgt.reshape({-1}).index_select(0, b * (T - 1) + t);
  if (y.numel() > 0 && (y.min().item<int64_t>() < 0 || y.max().item<int64_t>() >= V)) {
    throw_bad_argument("logprobs: a label id is outside the vocabulary [0, " + std::to_string(V) + ")");
  }
  return {b * T + t, y, b};
}

at::Tensor label_counts(const at::Tensor& labels) {
  const int64_t T = labels.size(1);
  if (T < 2) return at::zeros({labels.size(0)}, labels.options().dtype(at::kLong));
  return labels.narrow(1, 1, T - 1).ne(-100).sum(1);
}

at::Tensor sequence_logprobs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels, int64_t chunk_rows) {
  const int64_t B = hidden.size(0), T = hidden.size(1), C = hidden.size(2);
  if (T < 2) return (hidden.sum() * 0.0).abs().expand({B}).to(at::kFloat);
  LabelledRows s = select_labelled(hidden, weight, labels);
  const int64_t n = s.flat_rows.numel();
  if (n == 0) return (hidden.sum() * 0.0).abs().expand({B}).to(at::kFloat);
  at::Tensor h = hidden.reshape({B * T, C}).index_select(0, s.flat_rows);
  const int64_t chunk = chunk_rows > 0 ? std::min(chunk_rows, n) : auto_chunk_rows(weight.size(0), n);
  return ChunkedSequenceLogprobs::apply(h, weight, s.targets, s.seq, B, chunk);
}

at::Tensor sequence_logprobs_naive(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels) {
  const int64_t T = hidden.size(1);
  select_labelled(hidden, weight, labels);  // validates
  at::Tensor logp = at::log_softmax(at::linear(hidden.narrow(1, 0, T - 1), weight).to(at::kFloat), -1);  // [B, T-1, V]
  at::Tensor tgt = labels.narrow(1, 1, T - 1).to(at::kLong);
  at::Tensor mask = tgt.ne(-100);
  at::Tensor picked = logp.gather(2, tgt.clamp_min(0).unsqueeze(2)).squeeze(2);
  return (picked * mask).sum(1);
}

PreferenceLoss preference_loss_from_string(const std::string& name) {
  if (name == "sigmoid") return PreferenceLoss::Sigmoid;
  if (name == "ipo") return PreferenceLoss::Ipo;
  throw_bad_argument("lossType must be \"sigmoid\" or \"ipo\", got \"" + name + "\"");
}

at::Tensor preference_losses(const at::Tensor& pc, const at::Tensor& pr, const at::Tensor& rc, const at::Tensor& rr,
                             const at::Tensor& chosen_tokens, const at::Tensor& rejected_tokens, PreferenceLoss type,
                             double beta, double label_smoothing) {
  if (type == PreferenceLoss::Ipo) {
    at::Tensor ct = chosen_tokens.to(at::kFloat).clamp_min(1), rt = rejected_tokens.to(at::kFloat).clamp_min(1);
    at::Tensor m = (pc / ct - rc / ct) - (pr / rt - rr / rt);
    return (m - 1.0 / (2.0 * beta)).pow(2);
  }
  at::Tensor m = (pc - rc) - (pr - rr);
  return -(1.0 - label_smoothing) * at::log_sigmoid(beta * m) - label_smoothing * at::log_sigmoid(-beta * m);
}

}  // namespace sft

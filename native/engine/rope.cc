// Rotary embedding tables (see rope.h). Every formula follows test/fixtures/models/NEW-ARCHITECTURES.md, in fp32
// tensors where transformers uses tensors and in double where it uses Python floats.
#include "rope.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "errors.h"

namespace sft {

Rope::Rope(const RopeSpec& spec, int64_t head_dim, int64_t max_positions, const at::Device& device)
    : spec_(spec), head_dim_(head_dim), rotary_dim_(spec.rotary_dim > 0 ? spec.rotary_dim : head_dim),
      max_positions_(max_positions), device_(device) {
  const std::string& t = spec_.type;
  if (t != "default" && t != "linear" && t != "dynamic" && t != "llama3" && t != "yarn" && t != "longrope") {
    throw_unsupported("RoPE type '" + t + "' is not supported (default, linear, dynamic, llama3, yarn, longrope)");
  }
  if (rotary_dim_ % 2 != 0 || rotary_dim_ > head_dim_) throw_bad_argument("model spec: rotary dims must be even and <= headDim");
  if (t == "longrope" && (static_cast<int64_t>(spec_.short_factor.size()) != rotary_dim_ / 2 ||
                          static_cast<int64_t>(spec_.long_factor.size()) != rotary_dim_ / 2)) {
    throw_bad_argument("model spec: longrope short/long factors must hold rotary dims / 2 values each");
  }
  if ((t == "llama3" || t == "yarn" || t == "longrope") && spec_.original_max_positions <= 0) {
    throw_bad_argument("model spec: RoPE type '" + t + "' needs originalMaxPositions");
  }
  if (t == "dynamic" && rotary_dim_ <= 2) throw_bad_argument("model spec: dynamic RoPE needs more than 2 rotary dims");
  if (!per_call()) static_inv_ = compute(0).to(device_);
}

at::Tensor Rope::compute(int64_t seq_len) const {
  const int64_t d = rotary_dim_;
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  // exps = arange(0, d, 2, int64).float() / d; inv = 1 / theta ** exps (fp32, as transformers)
  const at::Tensor exps = at::arange(0, d, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / static_cast<double>(d);
  const at::Tensor inv = 1.0 / at::pow(spec_.theta, exps);
  const std::string& t = spec_.type;
  const double factor = spec_.factor;
  if (t == "default") return inv;
  if (t == "linear") return inv / factor;
  if (t == "dynamic") {
    const double mpe = static_cast<double>(max_positions_);
    const double L = static_cast<double>(std::max(seq_len, max_positions_));
    const double base = spec_.theta * std::pow((factor * L / mpe) - (factor - 1.0), static_cast<double>(d) / (d - 2));
    return 1.0 / at::pow(base, exps);
  }
  if (t == "llama3") {
    const double old = static_cast<double>(spec_.original_max_positions);
    const double lo = spec_.low_freq_factor, hi = spec_.high_freq_factor;
    const at::Tensor wl = 2 * M_PI / inv;
    const at::Tensor out = at::where(wl > old / lo, inv / factor, inv);
    const at::Tensor smooth = (old / wl - lo) / (hi - lo);
    const at::Tensor smoothed = (1 - smooth) * out / factor + smooth * out;
    const at::Tensor medium = (wl < old / hi).logical_not() & (wl > old / lo).logical_not();
    return at::where(medium, smoothed, out);
  }
  if (t == "yarn") {
    const double orig = static_cast<double>(spec_.original_max_positions);
    auto corr = [&](double rot) { return d * std::log(orig / (rot * 2 * M_PI)) / (2 * std::log(spec_.theta)); };
    double low = corr(spec_.beta_fast), high = corr(spec_.beta_slow);
    if (spec_.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(d - 1));
    if (low == high) high += 0.001;
    const at::Tensor ramp = ((at::arange(d / 2, f32) - low) / (high - low)).clamp(0, 1);
    const at::Tensor extra = 1 - ramp;  // weight of the unscaled frequency
    return inv / factor * (1 - extra) + inv * extra;
  }
  // longrope
  const std::vector<double>& f = seq_len > spec_.original_max_positions ? spec_.long_factor : spec_.short_factor;
  const at::Tensor ext = at::tensor(f, at::TensorOptions().dtype(at::kDouble)).to(at::kFloat);
  return 1.0 / (ext * at::pow(spec_.theta, exps));
}

at::Tensor Rope::inv_freq(int64_t seq_len) const { return per_call() ? compute(seq_len).to(device_) : static_inv_; }

std::pair<at::Tensor, at::Tensor> Rope::tables(const at::Tensor& pos, int64_t seq_len, at::ScalarType dtype) const {
  at::Tensor freqs = pos.to(at::kFloat).unsqueeze(-1) * inv_freq(seq_len);  // [B, T, R/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  at::Tensor cos = emb.cos(), sin = emb.sin();
  if (spec_.attention_factor != 1.0) {
    cos = cos * spec_.attention_factor;
    sin = sin * spec_.attention_factor;
  }
  return {cos.to(dtype).unsqueeze(1), sin.to(dtype).unsqueeze(1)};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t r = cos.size(-1), half = r / 2;
  if (r == x.size(-1)) {
    return x * cos + at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1) * sin;
  }
  const at::Tensor xr = x.narrow(-1, 0, r);
  const at::Tensor rot = xr * cos + at::cat({-xr.narrow(-1, half, half), xr.narrow(-1, 0, half)}, -1) * sin;
  return at::cat({rot, x.narrow(-1, r, x.size(-1) - r)}, -1);
}

}  // namespace sft

// Architecture-independent parts of CausalLM: weight loading (aliases, tied names, dtype/device), HF-layout export,
// embedding resize, KV cache allocation, and the attention dispatch over at::scaled_dot_product_attention.
#include "model.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

#include <cmath>
#include <limits>
#include <optional>
#include <sstream>
#include <vector>

#include "device.h"
#include "errors.h"

namespace sft {
namespace {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

// Repeats key/value heads for grouped-query attention: [B, Hkv, S, D] -> [B, Hkv * rep, S, D] (HF repeat_kv order).
at::Tensor repeat_kv(const at::Tensor& x, int64_t rep) {
  if (rep == 1) return x;
  auto s = x.sizes();
  return x.unsqueeze(2).expand({s[0], s[1], rep, s[2], s[3]}).reshape({s[0], s[1] * rep, s[2], s[3]});
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Shapes: weight [V, C], ids [...] int64 -> [..., C].
struct EmbeddingIntoGrad : public torch::autograd::Function<EmbeddingIntoGrad> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& weight, const at::Tensor& ids) {
    ctx->save_for_backward({weight, ids});  // weight is a leaf: saved as itself, so its .grad is reachable
    return at::embedding(weight, ids);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& w = saved[0];
    const at::Tensor& g = grads[0];
    if (g.defined()) {
      at::Tensor& wg = w.mutable_grad();
      if (!wg.defined()) wg = at::zeros_like(w);
      wg.index_add_(0, saved[1].reshape({-1}), g.reshape({-1, w.size(1)}).to(w.scalar_type()));
    }
    return {at::Tensor(), at::Tensor()};
  }
};

// The backward node of checkpointed(): recomputes fn from the saved input and backpropagates through it.
struct CheckpointBackward final : public torch::autograd::Node {
  std::function<at::Tensor(const at::Tensor&)> fn;
  at::Tensor input;  // detached
  bool input_requires_grad = false;
  AutocastState autocast;  // the forward's autocast state, restored for the recomputation (backward may run on
                           // another thread, e.g. CUDA's device threads, and autocast state is thread-local)

  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined()) return {at::Tensor()};
    at::Tensor x = input.detach().requires_grad_(input_requires_grad);
    at::Tensor y;
    {
      at::AutoGradMode enable(true);
      AutocastScope cast(autocast);
      y = fn(x);
    }
    torch::autograd::backward({y}, {grads[0]});
    return {input_requires_grad ? x.grad() : at::Tensor()};
  }
  void release_variables() override {
    input.reset();
    fn = nullptr;
  }
  std::string name() const override { return "sft::CheckpointBackward"; }
};

}  // namespace

at::Tensor embedding_lookup(const at::Tensor& weight, const at::Tensor& ids) {
  if (!c10::GradMode::is_enabled() || !weight.requires_grad() || !weight.is_leaf()) return at::embedding(weight, ids);
  return EmbeddingIntoGrad::apply(weight, ids);
}

at::Tensor select_rows(const at::Tensor& x, const at::Tensor& rows) {
  if (!rows.defined()) return x;
  return x.reshape({-1, x.size(-1)}).index_select(0, rows).unsqueeze(0);
}

at::Tensor checkpointed(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& x) {
  if (!c10::GradMode::is_enabled()) return fn(x);
  at::Tensor y;
  {
    c10::NoGradGuard no_grad;
    y = fn(x);
  }
  auto node = c10::make_intrusive<CheckpointBackward>();
  node->fn = fn;
  node->input = x.detach();
  node->input_requires_grad = x.requires_grad();
  node->autocast = AutocastState::current(x.device().type());
  node->set_next_edges(torch::autograd::collect_next_edges(x));
  torch::autograd::set_history(y, node);
  return y;
}

at::Tensor CausalLM::run_layer(const std::function<at::Tensor(const at::Tensor&)>& layer, const at::Tensor& x,
                               const KVCache* cache) const {
  if (checkpoint_layers_ && cache == nullptr && c10::GradMode::is_enabled()) return checkpointed(layer, x);
  return layer(x);
}

at::TensorOptions parameter_options(const ModelOptions& options) {
  return at::TensorOptions().dtype(options.dtype).device(options.base.frozen() ? at::Device(at::kMeta) : options.device);
}

CausalLM::CausalLM(ModelSpec spec, ModelOptions options) : spec_(std::move(spec)), options_(options) {}

void CausalLM::load(const WeightSource& source) {
  auto resolve = [&](const std::string& name) -> const at::Tensor* {
    std::vector<std::string> candidates{name};
    if (spec_.arch == "gpt2" && name.rfind("transformer.", 0) == 0) candidates.push_back(name.substr(12));
    if (spec_.tie_word_embeddings && name == embedding_name()) candidates.push_back("lm_head.weight");
    for (const auto& c : candidates) {
      auto it = source.tensors.find(c);
      if (it != source.tensors.end()) return &it->second;
      auto alias = source.metadata.find(c);  // e.g. {"model.embed_tokens.weight": "lm_head.weight"}
      if (alias != source.metadata.end()) {
        auto jt = source.tensors.find(alias->second);
        if (jt != source.tensors.end()) return &jt->second;
      }
    }
    return nullptr;
  };
  const auto opts = at::TensorOptions().dtype(options_.dtype).device(options_.device);
  const BaseFormat base = options_.base;
  if (base.double_quant && base.dtype != BaseDtype::kNf4) throw_bad_argument("doubleQuant needs baseDtype nf4");
  if (base.frozen()) {
    if (options_.dtype != at::kFloat) {
      throw_bad_argument("baseDtype " + base_dtype_name(base.dtype) +
                         " computes in float32: load the model with dtype float32 (on CUDA, autocast gives bf16 compute)");
    }
    frozen_ = std::make_unique<FrozenBase>(base);
  }
  for (ParamRef& p : parameters()) {
    const at::Tensor* src = resolve(p.name);
    if (!src) throw_io("model weights: tensor '" + p.name + "' is missing");
    at::Tensor t = *src;
    if (!t.is_floating_point()) throw_io("model weights: tensor '" + p.name + "' is not floating point");
    if (p.transposed) {
      if (t.dim() != 2) throw_io("model weights: tensor '" + p.name + "' must be 2-D, found " + shape_str(t.sizes()));
      t = t.t();
    }
    if (t.sizes() != p.tensor->sizes()) {
      throw_io("model weights: tensor '" + p.name + "' has shape " + shape_str(src->sizes()) + ", expected " +
               shape_str(p.transposed ? p.tensor->t().sizes() : p.tensor->sizes()));
    }
    if (frozen_ && p.tensor->dim() == 2) {
      // Quantised from the source (a mapped file) into the frozen store, on the model's device.
      FrozenWeight fw = quantize_weight(t, base, /*aten_only=*/false, source.copied);  // pages dropped chunk by chunk
      if (fw.data.device() != options_.device) {
        for (at::Tensor* part : {&fw.data, &fw.scales, &fw.scales2}) {
          if (part->defined()) *part = part->to(options_.device);
        }
      }
      *p.tensor = at::empty(t.sizes(), at::TensorOptions().dtype(at::kFloat).device(at::kMeta));  // shape only
      frozen_->add(*p.tensor, std::move(fw));
      if (source.copied) source.copied(*src);
      continue;
    }
    // Copied into the parameter's own storage (never a view of the source: it may be an mmap'd file), in place, so
    // that no second tensor of this size exists while it is copied (the embedding of a 128K vocabulary is 1 GiB).
    if (p.tensor->defined() && p.tensor->is_contiguous() && p.tensor->scalar_type() == options_.dtype &&
        p.tensor->device() == options_.device) {
      c10::NoGradGuard no_grad;
      p.tensor->requires_grad_(false);
      p.tensor->copy_(t);
      p.tensor->requires_grad_(true);
    } else {
      *p.tensor = t.to(opts, /*non_blocking=*/false, /*copy=*/true).contiguous().requires_grad_(true);
    }
    if (source.copied) source.copied(*src);
  }
}

at::Tensor CausalLM::dense_parameter(const at::Tensor& member) const {
  const FrozenWeight* fw = frozen_weight(member);
  return fw ? frozen_->dense(*fw) : member.detach();
}

at::Tensor CausalLM::head_weight() const {
  const at::Tensor head = lm_head_weight();
  const FrozenWeight* fw = frozen_weight(head);
  return fw ? frozen_->dense(*fw) : head;  // the parameter itself (not detached: DPO and distillation train it)
}

at::Tensor CausalLM::embed(const at::Tensor& weight, const at::Tensor& ids) const {
  const FrozenWeight* fw = frozen_weight(weight);
  return fw ? frozen_->embedding(*fw, ids) : embedding_lookup(weight, ids);
}

std::vector<std::pair<std::string, at::Tensor>> CausalLM::state_for_save() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (ParamRef& p : parameters()) {
    at::Tensor t = dense_parameter(*p.tensor);
    if (p.transposed) t = t.t();
    out.emplace_back(p.name, t.contiguous().cpu());
  }
  return out;
}

at::Tensor CausalLM::parameter_hf(const std::string& name) {
  for (ParamRef& p : parameters()) {
    if (p.name != name) continue;
    at::Tensor t = dense_parameter(*p.tensor);
    if (p.transposed) t = t.t();
    return t.contiguous().cpu().clone();
  }
  return at::Tensor();
}

int64_t CausalLM::num_parameters() {
  int64_t n = 0;
  for (ParamRef& p : parameters()) n += p.tensor->numel();
  return n;
}

void CausalLM::resize_token_embeddings(int64_t new_vocab) {
  if (new_vocab <= 0) throw_bad_argument("resizeTokenEmbeddings: the new vocabulary size must be positive");
  const int64_t old_vocab = spec_.vocab_size;
  if (new_vocab == old_vocab) return;
  if (frozen_) {
    throw_unsupported("resizeTokenEmbeddings: the embeddings are frozen in baseDtype " + base_dtype_name(frozen_->format().dtype) +
                      " (new rows could not be trained); use baseDtype float32");
  }
  std::vector<std::string> names{embedding_name()};
  if (!spec_.tie_word_embeddings) names.push_back(lm_head_name());
  for (ParamRef& p : parameters()) {
    bool match = false;
    for (const auto& n : names) match = match || (p.name == n);
    if (!match) continue;
    at::Tensor old = p.tensor->detach();  // [V, C]
    at::Tensor grown;
    if (new_vocab < old_vocab) {
      grown = old.narrow(0, 0, new_vocab).clone();
    } else {
      // New rows: the mean of the existing rows (computed in fp32).
      at::Tensor mean = old.to(at::kFloat).mean(0, /*keepdim=*/true).to(old.scalar_type());
      grown = at::cat({old, mean.expand({new_vocab - old_vocab, old.size(1)})}, 0).contiguous();
    }
    *p.tensor = grown.requires_grad_(true);
  }
  spec_.vocab_size = new_vocab;
}

KVCache CausalLM::new_cache(int64_t batch, int64_t capacity) const {
  KVCache c;
  c.capacity = capacity;
  const auto opts = at::TensorOptions().dtype(options_.dtype).device(options_.device);
  for (int64_t l = 0; l < spec_.num_layers; ++l) {
    c.k.push_back(at::empty({batch, spec_.num_kv_heads, capacity, spec_.head_dim}, opts));
    c.v.push_back(at::empty({batch, spec_.num_kv_heads, capacity, spec_.head_dim}, opts));
  }
  return c;
}

std::pair<at::Tensor, at::Tensor> cache_append(KVCache* cache, int64_t layer, const at::Tensor& k,
                                               const at::Tensor& v) {
  if (!cache) return {k, v};
  const int64_t t = k.size(2);
  if (cache->length + t > cache->capacity) throw_bad_argument("KV cache capacity exceeded");
  cache->k[layer].narrow(2, cache->length, t).copy_(k);
  cache->v[layer].narrow(2, cache->length, t).copy_(v);
  return {cache->k[layer].narrow(2, 0, cache->length + t), cache->v[layer].narrow(2, 0, cache->length + t)};
}

namespace {

// Shapes: src [K, ...], idx [K] (distinct rows of [0, n)) -> [n, ...]: row idx[k] = src[k], zeros elsewhere. Backward
// gathers the rows back and keeps only idx: at::index_copy's derivative keeps `src` too (it reads its shape), which
// for the varlen attention below was four [tokens, C] tensors per layer that nothing needed.
at::Tensor rows_into_zeros(const at::Tensor& src, const at::Tensor& idx, int64_t n) {
  std::vector<int64_t> sizes = src.sizes().vec();
  sizes[0] = n;
  return at::zeros(sizes, src.options()).index_copy_(0, idx, src);
}

struct ScatterRowsFn : public torch::autograd::Function<ScatterRowsFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& src, const at::Tensor& idx, int64_t n) {
    ctx->save_for_backward({idx});
    return rows_into_zeros(src, idx, n);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const at::Tensor idx = ctx->get_saved_variables()[0];
    return {grads[0].index_select(0, idx), at::Tensor(), at::Tensor()};
  }
};

at::Tensor scatter_rows(const at::Tensor& src, const at::Tensor& idx, int64_t n) {
  if (!c10::GradMode::is_enabled() || !src.requires_grad()) return rows_into_zeros(src, idx, n);
  return ScatterRowsFn::apply(src, idx, n);
}

}  // namespace

namespace {

// [t, s] bool: query i (at absolute index s - t + i) may see key j: j <= qi and, with a window, j > qi - window.
at::Tensor band_mask(int64_t t, int64_t s, int64_t window, const at::Device& dev) {
  const auto i64 = at::TensorOptions().dtype(at::kLong).device(dev);
  at::Tensor qi = at::arange(s - t, s, i64).unsqueeze(1);
  at::Tensor ki = at::arange(0, s, i64).unsqueeze(0);
  at::Tensor m = ki.le(qi);
  if (window > 0) m = m & ki.gt(qi - window);
  return m;
}

// One attention call: q [*, H, T, D], k/v [*, H, S, D] (heads repeated), mask bool broadcastable to [*, H, T, S] or
// undefined, causal: the plain causal mask (T == S). SDPA unless softcapping needs the eager form (transformers'
// eager: scores * scale, tanh cap, mask, fp32 softmax, cast back).
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, bool causal,
                  const AttentionOptions& o) {
  const std::optional<double> scale = o.scale > 0 ? std::optional<double>(o.scale) : std::nullopt;
  if (o.softcap <= 0) {
    if (mask.defined()) return at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, scale);
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal, scale);
  }
  const double sc = o.scale > 0 ? o.scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * sc;
  scores = at::tanh(scores / o.softcap) * o.softcap;
  at::Tensor m = causal ? band_mask(q.size(-2), k.size(-2), 0, q.device()) : mask;
  if (m.defined()) scores = scores.masked_fill(m.logical_not(), -std::numeric_limits<double>::infinity());
  return at::matmul(scores.to(at::kFloat).softmax(-1).to(q.scalar_type()), v);
}

}  // namespace

at::Tensor attention_forward(const at::Tensor& q, const at::Tensor& k_in, const at::Tensor& v_in,
                             const AttentionPlan& plan, const AttentionOptions& opt) {
  const int64_t rep = q.size(1) / k_in.size(1);
  at::Tensor k = repeat_kv(k_in, rep);
  at::Tensor v = repeat_kv(v_in, rep);
  const int64_t t = q.size(2), s = k.size(2);
  const bool plain = opt.plain();
  // A window only binds when some query has more than W keys to its left (itself included).
  const int64_t window = opt.window > 0 && opt.window < s ? opt.window : 0;
  switch (plan.kind) {
    case AttentionPlan::Kind::kCausal:
      if (plain) {
        if (s == t) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
        if (t == 1) return at::scaled_dot_product_attention(q, k, v);
        {
          // T new queries at absolute positions s-t .. s-1 over s keys.
          at::Tensor qi = at::arange(s - t, s, at::TensorOptions().dtype(at::kLong).device(q.device())).unsqueeze(1);
          at::Tensor ki = at::arange(0, s, at::TensorOptions().dtype(at::kLong).device(q.device())).unsqueeze(0);
          return at::scaled_dot_product_attention(q, k, v, ki.le(qi));
        }
      }
      if (s == t && window == 0) return attend(q, k, v, at::Tensor(), /*causal=*/true, opt);
      if (t == 1 && window == 0) return attend(q, k, v, at::Tensor(), false, opt);
      return attend(q, k, v, band_mask(t, s, window, q.device()), false, opt);
    case AttentionPlan::Kind::kMasked:
      if (plain) return at::scaled_dot_product_attention(q, k, v, plan.mask);
      return attend(q, k, v, window > 0 ? plan.mask & band_mask(t, s, window, q.device()) : plan.mask, false, opt);
    case AttentionPlan::Kind::kVarlen: {
      // Each bucket: its tokens gathered into the zero-padded layout [seqs, H, len, D] (zeros at padding, which no
      // real token attends to: padding follows every sequence), one batched causal SDPA, the outputs scattered back.
      // A sliding window is the same band in every sequence (each starts at slot 0 of its row).
      if (s != t) throw_bad_argument("varlen attention does not combine with a KV cache");
      const int64_t B = q.size(0), H = q.size(1), D = q.size(3), N = q.size(0) * q.size(2);
      auto flat = [&](const at::Tensor& x) { return x.transpose(1, 2).reshape({N, H, D}); };
      const at::Tensor qf = flat(q), kf = flat(k), vf = flat(v);
      std::vector<at::Tensor> outs, tokens;  // per bucket: its tokens' outputs [count, H, D] and their flat rows
      for (const VarlenBucket& bk : plan.buckets) {
        auto padded = [&](const at::Tensor& xf) {
          at::Tensor x = bk.identity ? xf : scatter_rows(xf.index_select(0, bk.tokens), bk.slots, bk.seqs * bk.len);
          return x.view({bk.seqs, bk.len, H, D}).transpose(1, 2);
        };
        at::Tensor o;
        if (plain) {
          o = at::scaled_dot_product_attention(padded(qf), padded(kf), padded(vf), {}, 0.0, /*is_causal=*/true);
        } else if (opt.window > 0 && opt.window < bk.len) {
          o = attend(padded(qf), padded(kf), padded(vf), band_mask(bk.len, bk.len, opt.window, q.device()), false, opt);
        } else {
          o = attend(padded(qf), padded(kf), padded(vf), at::Tensor(), /*causal=*/true, opt);
        }
        o = o.transpose(1, 2).reshape({bk.seqs * bk.len, H, D});
        if (bk.identity && plan.buckets.size() == 1) return o.view({B, t, H, D}).transpose(1, 2);
        outs.push_back(bk.identity ? o : o.index_select(0, bk.slots));
        tokens.push_back(bk.tokens);
      }
      // The buckets partition the tokens: one scatter of their outputs in bucket order.
      at::Tensor out = scatter_rows(outs.size() == 1 ? outs[0] : at::cat(outs), tokens.size() == 1 ? tokens[0] : at::cat(tokens), N);
      return out.view({B, t, H, D}).transpose(1, 2);
    }
  }
  throw_bad_argument("unknown attention plan");
}

void layer_ropes(const ModelSpec& spec, const at::Device& device, std::vector<std::unique_ptr<Rope>>& ropes_out,
                 std::vector<const Rope*>& per_layer) {
  ropes_out.clear();
  per_layer.clear();
  std::vector<RopeSpec> specs = spec.ropes;
  if (specs.empty()) {
    RopeSpec r;
    r.theta = spec.rope_theta;
    specs.push_back(r);
  }
  for (const RopeSpec& r : specs) ropes_out.push_back(std::make_unique<Rope>(r, spec.head_dim, spec.max_positions, device));
  if (!spec.layer_rope.empty() && static_cast<int64_t>(spec.layer_rope.size()) != spec.num_layers) {
    throw_bad_argument("model spec: layerRope must hold one entry per layer");
  }
  for (int64_t i = 0; i < spec.num_layers; ++i) {
    const int64_t r = spec.layer_rope.empty() ? 0 : spec.layer_rope[i];
    if (r < -1 || r >= static_cast<int64_t>(ropes_out.size())) throw_bad_argument("model spec: layerRope entries must be -1 or index ropes");
    per_layer.push_back(r < 0 ? nullptr : ropes_out[r].get());
  }
}

std::vector<std::pair<at::Tensor, at::Tensor>> rope_tables(const std::vector<std::unique_ptr<Rope>>& ropes,
                                                           const at::Tensor& pos, at::ScalarType dtype) {
  int64_t seq_len = 0;
  for (const auto& r : ropes) {
    if (r->per_call()) {
      seq_len = pos.max().item<int64_t>() + 1;  // one host sync, only for dynamic / longrope
      break;
    }
  }
  std::vector<std::pair<at::Tensor, at::Tensor>> out;
  for (const auto& r : ropes) out.push_back(r->tables(pos, seq_len, dtype));
  return out;
}

std::unique_ptr<CausalLM> make_causal_lm(const ModelSpec& s, const ModelOptions& options) {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw_bad_argument(std::string("model spec: ") + name + " must be positive");
  };
  positive(s.vocab_size, "vocabSize");
  positive(s.hidden_size, "hiddenSize");
  positive(s.intermediate_size, "intermediateSize");
  positive(s.num_layers, "numLayers");
  positive(s.num_heads, "numHeads");
  positive(s.num_kv_heads, "numKvHeads");
  positive(s.head_dim, "headDim");
  positive(s.max_positions, "maxPositions");
  if (s.num_heads % s.num_kv_heads != 0) throw_bad_argument("model spec: numHeads must be a multiple of numKvHeads");
  if (s.arch == "gpt2") {
    if (s.head_dim * s.num_heads != s.hidden_size) throw_bad_argument("model spec: gpt2 needs headDim * numHeads == hiddenSize");
    return make_gpt2(s, options);
  }
  if (s.sliding_window < 0) throw_bad_argument("model spec: slidingWindow must be >= 0");
  if (!s.sliding_layers.empty() && static_cast<int64_t>(s.sliding_layers.size()) != s.num_layers) {
    throw_bad_argument("model spec: slidingLayers must hold one entry per layer");
  }
  if (s.arch == "llama" || s.arch == "qwen2" || s.arch == "qwen3" || s.arch == "mistral" || s.arch == "smollm3" ||
      s.arch == "phi3") {
    if (s.head_dim % 2 != 0) throw_bad_argument("model spec: headDim must be even for RoPE");
    return make_llama(s, options);
  }
  if (s.arch == "gemma2" || s.arch == "gemma3_text") {
    if (s.head_dim % 2 != 0) throw_bad_argument("model spec: headDim must be even for RoPE");
    return make_gemma(s, options);
  }
  throw_unsupported("model architecture '" + s.arch + "' is not supported");
}

}  // namespace sft

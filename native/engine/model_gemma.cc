// Gemma family (HF Gemma2ForCausalLM, Gemma3ForCausalLM text-only): Gemma RMSNorm (1 + w, multiplied in fp32 before
// the cast back), the embedding scaled by sqrt(hidden) rounded to the weight dtype, four norms per block (input,
// post-attention, pre- and post-feedforward), per-head q/k norms (gemma3), per-layer RoPE (gemma3: local and global
// bases) and sliding windows (layer_types), the attention scale query_pre_attn_scalar ** -0.5, tanh softcapping of the
// attention scores (gemma2: the eager path of attention_forward) and of the final logits (CausalLM::final_softcap,
// applied by the loss, logits and generation), a gelu-tanh gated MLP and a tied head. Math follows transformers'
// modeling_gemma2/gemma3 (test/fixtures/models/NEW-ARCHITECTURES.md). Projections go through CausalLM::project (LoRA).
//
// Shapes: B batch, T tokens, C hidden, H heads, Hkv kv heads, D head dim, I intermediate, V vocab.
#include <ATen/ATen.h>

#include <cmath>
#include <tuple>

#include "errors.h"
#include "model.h"

namespace sft {
namespace {

// x [..., N], w [N] -> [..., N]: (xf * rsqrt(mean(xf^2) + eps) * (1 + w.float())).to(x.dtype), xf = x.float().
at::Tensor gemma_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor y = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps) * (w.to(at::kFloat) + 1.0);
  return y.to(x.scalar_type());
}

struct GemmaLayer {
  at::Tensor in_norm, post_attn_norm, pre_ff_norm, post_ff_norm;  // [C]
  at::Tensor q_w, k_w, v_w, o_w;                                  // [H*D, C], [Hkv*D, C], [Hkv*D, C], [C, H*D]
  at::Tensor q_b, k_b, v_b, o_b;                                  // optional (attention_bias)
  at::Tensor q_norm, k_norm;                                      // [D] (gemma3)
  at::Tensor gate_w, up_w, down_w;                                // [I, C], [I, C], [C, I]
};

class GemmaModel final : public CausalLM {
 public:
  GemmaModel(const ModelSpec& s, const ModelOptions& o) : CausalLM(s, o) {
    const auto opts = parameter_options(o);  // filled by load()
    const int64_t C = s.hidden_size, D = s.head_dim, H = s.num_heads, Hkv = s.num_kv_heads, I = s.intermediate_size;
    embed_ = at::empty({s.vocab_size, C}, opts);
    norm_ = at::empty({C}, opts);
    if (!s.tie_word_embeddings) head_ = at::empty({s.vocab_size, C}, opts);
    layers_.resize(s.num_layers);
    for (auto& L : layers_) {
      L.in_norm = at::empty({C}, opts);
      L.post_attn_norm = at::empty({C}, opts);
      L.pre_ff_norm = at::empty({C}, opts);
      L.post_ff_norm = at::empty({C}, opts);
      L.q_w = at::empty({H * D, C}, opts);
      L.k_w = at::empty({Hkv * D, C}, opts);
      L.v_w = at::empty({Hkv * D, C}, opts);
      L.o_w = at::empty({C, H * D}, opts);
      if (s.qkv_bias) {
        L.q_b = at::empty({H * D}, opts);
        L.k_b = at::empty({Hkv * D}, opts);
        L.v_b = at::empty({Hkv * D}, opts);
      }
      if (s.o_bias) L.o_b = at::empty({C}, opts);
      if (s.qk_norm) {
        L.q_norm = at::empty({D}, opts);
        L.k_norm = at::empty({D}, opts);
      }
      L.gate_w = at::empty({I, C}, opts);
      L.up_w = at::empty({I, C}, opts);
      L.down_w = at::empty({C, I}, opts);
    }
    layer_ropes(s, o.device, ropes_, layer_rope_);
    for (int64_t i = 0; i < s.num_layers; ++i) {
      const bool slide = !s.sliding_layers.empty() && s.sliding_layers[i] && s.sliding_window > 0;
      window_.push_back(slide ? s.sliding_window : 0);
    }
    if (!(s.query_pre_attn_scalar > 0)) throw_bad_argument("model spec: gemma needs queryPreAttnScalar > 0");
  }

  std::vector<ParamRef> parameters() override {
    std::vector<ParamRef> out;
    out.push_back({"model.embed_tokens.weight", &embed_, false, true});
    for (size_t i = 0; i < layers_.size(); ++i) {
      auto& L = layers_[i];
      const std::string p = "model.layers." + std::to_string(i) + ".";
      out.push_back({p + "input_layernorm.weight", &L.in_norm, false, true});
      out.push_back({p + "self_attn.q_proj.weight", &L.q_w, false, false});
      if (L.q_b.defined()) out.push_back({p + "self_attn.q_proj.bias", &L.q_b, false, true});
      out.push_back({p + "self_attn.k_proj.weight", &L.k_w, false, false});
      if (L.k_b.defined()) out.push_back({p + "self_attn.k_proj.bias", &L.k_b, false, true});
      out.push_back({p + "self_attn.v_proj.weight", &L.v_w, false, false});
      if (L.v_b.defined()) out.push_back({p + "self_attn.v_proj.bias", &L.v_b, false, true});
      out.push_back({p + "self_attn.o_proj.weight", &L.o_w, false, false});
      if (L.o_b.defined()) out.push_back({p + "self_attn.o_proj.bias", &L.o_b, false, true});
      if (L.q_norm.defined()) {
        out.push_back({p + "self_attn.q_norm.weight", &L.q_norm, false, true});
        out.push_back({p + "self_attn.k_norm.weight", &L.k_norm, false, true});
      }
      out.push_back({p + "post_attention_layernorm.weight", &L.post_attn_norm, false, true});
      out.push_back({p + "pre_feedforward_layernorm.weight", &L.pre_ff_norm, false, true});
      out.push_back({p + "post_feedforward_layernorm.weight", &L.post_ff_norm, false, true});
      out.push_back({p + "mlp.gate_proj.weight", &L.gate_w, false, false});
      out.push_back({p + "mlp.up_proj.weight", &L.up_w, false, false});
      out.push_back({p + "mlp.down_proj.weight", &L.down_w, false, false});
    }
    out.push_back({"model.norm.weight", &norm_, false, true});
    if (head_.defined()) out.push_back({"lm_head.weight", &head_, false, false});
    return out;
  }

  std::string embedding_name() const override { return "model.embed_tokens.weight"; }
  std::string lm_head_name() const override { return spec_.tie_word_embeddings ? "" : "lm_head.weight"; }
  at::Tensor lm_head_weight() const override { return head_.defined() ? head_ : embed_; }

  at::Tensor hidden_states(const at::Tensor& ids, const at::Tensor& pos, const AttentionPlan& plan,
                           KVCache* cache, const at::Tensor& keep_rows) override {
    const int64_t B = ids.size(0), T = ids.size(1), H = spec_.num_heads, Hkv = spec_.num_kv_heads, D = spec_.head_dim;
    const double eps = spec_.norm_eps;
    // sqrt(hidden) as an fp32 tensor cast to the weight dtype (bf16: 2304 -> 48.0), as transformers.
    const at::Tensor scale = at::scalar_tensor(std::sqrt(static_cast<double>(spec_.hidden_size)),
                                               at::TensorOptions().dtype(at::kFloat))
                                 .to(options_.dtype)
                                 .to(options_.device);  // (embed_ is a meta tensor when frozen)
    at::Tensor x = embed(embed_, ids) * scale;  // [B, T, C]
    const std::vector<std::pair<at::Tensor, at::Tensor>> tables = rope_tables(ropes_, pos, x.scalar_type());
    for (size_t li = 0; li < layers_.size(); ++li) {
      const auto& L = layers_[li];
      const at::Tensor keep = li + 1 == layers_.size() ? keep_rows : at::Tensor();
      at::Tensor cos, sin;
      for (size_t r = 0; r < ropes_.size(); ++r) {
        if (layer_rope_[li] == ropes_[r].get()) std::tie(cos, sin) = tables[r];
      }
      AttentionOptions attn;
      attn.window = window_[li];
      attn.scale = 1.0 / std::sqrt(spec_.query_pre_attn_scalar);
      attn.softcap = spec_.attn_softcap;
      auto layer = [this, &L, li, B, T, H, Hkv, D, eps, cos, sin, attn, &plan, cache, keep](const at::Tensor& x_in) -> at::Tensor {
        at::Tensor h = gemma_rms_norm(x_in, L.in_norm, eps);
        at::Tensor q = project(h, L.q_w, L.q_b).view({B, T, H, D});
        at::Tensor k = project(h, L.k_w, L.k_b).view({B, T, Hkv, D});
        at::Tensor v = project(h, L.v_w, L.v_b).view({B, T, Hkv, D}).transpose(1, 2);
        if (L.q_norm.defined()) {
          q = gemma_rms_norm(q, L.q_norm, eps);
          k = gemma_rms_norm(k, L.k_norm, eps);
        }
        q = q.transpose(1, 2);  // [B, H, T, D]
        k = k.transpose(1, 2);  // [B, Hkv, T, D]
        if (cos.defined()) {
          q = apply_rope(q, cos, sin);
          k = apply_rope(k, cos, sin);
        }
        auto [k_all, v_all] = cache_append(cache, static_cast<int64_t>(li), k, v);
        at::Tensor a = attention_forward(q, k_all, v_all, plan, attn);  // [B, H, T, D]
        a = a.transpose(1, 2).reshape({B, T, H * D});
        a = gemma_rms_norm(project(select_rows(a, keep), L.o_w, L.o_b), L.post_attn_norm, eps);
        at::Tensor y = select_rows(x_in, keep) + a;  // [B, T, C] or [1, N, C]
        h = gemma_rms_norm(y, L.pre_ff_norm, eps);
        at::Tensor m = project(at::gelu(project(h, L.gate_w, at::Tensor()), "tanh") * project(h, L.up_w, at::Tensor()),
                               L.down_w, at::Tensor());
        return y + gemma_rms_norm(m, L.post_ff_norm, eps);
      };
      x = run_layer(layer, x, cache);
    }
    return gemma_rms_norm(x, norm_, eps);
  }

 private:
  at::Tensor embed_, norm_, head_;
  std::vector<GemmaLayer> layers_;
  std::vector<std::unique_ptr<Rope>> ropes_;  // the RoPE kinds (gemma3: global, local)
  std::vector<const Rope*> layer_rope_;       // per layer
  std::vector<int64_t> window_;               // per layer sliding window (0: full attention)
};

}  // namespace

std::unique_ptr<CausalLM> make_gemma(const ModelSpec& spec, const ModelOptions& options) {
  return std::make_unique<GemmaModel>(spec, options);
}

}  // namespace sft

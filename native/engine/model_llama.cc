// Llama family (HF LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM): RMSNorm, RoPE in the rotate_half layout,
// grouped-query attention, SwiGLU MLP. qwen2 adds q/k/v biases; qwen3 adds per-head q_norm/k_norm and an explicit
// head_dim. Math follows transformers' modeling_llama/qwen2/qwen3 (fp32 RoPE tables, RMSNorm in fp32); RMSNorm and
// SwiGLU are the fused blocks of fused_ops.h. Projections go through CausalLM::project (LoRA adapters, lora.h).
//
// Shapes: B batch, T tokens, C hidden, H heads, Hkv kv heads, D head dim, I intermediate, V vocab.
#include <ATen/ATen.h>

#include "errors.h"
#include "fused_ops.h"
#include "model.h"

namespace sft {
namespace {

// [..., D] -> cat(-x2, x1)
at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

struct LlamaLayer {
  at::Tensor in_norm, post_norm;        // [C]
  at::Tensor q_w, k_w, v_w, o_w;        // [H*D, C], [Hkv*D, C], [Hkv*D, C], [C, H*D]
  at::Tensor q_b, k_b, v_b, o_b;        // optional
  at::Tensor q_norm, k_norm;            // [D] (qwen3)
  at::Tensor gate_w, up_w, down_w;      // [I, C], [I, C], [C, I]
  at::Tensor gate_b, up_b, down_b;      // optional (llama mlp_bias)
};

class LlamaModel final : public CausalLM {
 public:
  LlamaModel(const ModelSpec& s, const ModelOptions& o) : CausalLM(s, o) {
    const auto opts = at::TensorOptions().dtype(o.dtype).device(o.device);
    const int64_t C = s.hidden_size, D = s.head_dim, H = s.num_heads, Hkv = s.num_kv_heads, I = s.intermediate_size;
    embed_ = at::zeros({s.vocab_size, C}, opts);
    norm_ = at::zeros({C}, opts);
    if (!s.tie_word_embeddings) head_ = at::zeros({s.vocab_size, C}, opts);
    layers_.resize(s.num_layers);
    for (auto& L : layers_) {
      L.in_norm = at::zeros({C}, opts);
      L.post_norm = at::zeros({C}, opts);
      L.q_w = at::zeros({H * D, C}, opts);
      L.k_w = at::zeros({Hkv * D, C}, opts);
      L.v_w = at::zeros({Hkv * D, C}, opts);
      L.o_w = at::zeros({C, H * D}, opts);
      if (s.qkv_bias) {
        L.q_b = at::zeros({H * D}, opts);
        L.k_b = at::zeros({Hkv * D}, opts);
        L.v_b = at::zeros({Hkv * D}, opts);
      }
      if (s.o_bias) L.o_b = at::zeros({C}, opts);
      if (s.qk_norm) {
        L.q_norm = at::zeros({D}, opts);
        L.k_norm = at::zeros({D}, opts);
      }
      L.gate_w = at::zeros({I, C}, opts);
      L.up_w = at::zeros({I, C}, opts);
      L.down_w = at::zeros({C, I}, opts);
      if (s.mlp_bias) {
        L.gate_b = at::zeros({I}, opts);
        L.up_b = at::zeros({I}, opts);
        L.down_b = at::zeros({C}, opts);
      }
    }
    // inv_freq exactly as HF: 1 / theta ** (arange(0, D, 2, int64).float() / D), in fp32.
    at::Tensor exps = at::arange(0, D, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / static_cast<double>(D);
    inv_freq_ = (1.0 / at::pow(s.rope_theta, exps)).to(o.device);
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
      out.push_back({p + "post_attention_layernorm.weight", &L.post_norm, false, true});
      out.push_back({p + "mlp.gate_proj.weight", &L.gate_w, false, false});
      if (L.gate_b.defined()) out.push_back({p + "mlp.gate_proj.bias", &L.gate_b, false, true});
      out.push_back({p + "mlp.up_proj.weight", &L.up_w, false, false});
      if (L.up_b.defined()) out.push_back({p + "mlp.up_proj.bias", &L.up_b, false, true});
      out.push_back({p + "mlp.down_proj.weight", &L.down_w, false, false});
      if (L.down_b.defined()) out.push_back({p + "mlp.down_proj.bias", &L.down_b, false, true});
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
    at::Tensor x = embedding_lookup(embed_, ids);  // [B, T, C]
    // RoPE tables [B, 1, T, D] in fp32 (HF autocast-free path), then the compute dtype.
    at::Tensor freqs = pos.to(at::kFloat).unsqueeze(-1) * inv_freq_;  // [B, T, D/2]
    at::Tensor emb = at::cat({freqs, freqs}, -1);
    at::Tensor cos = emb.cos().to(x.scalar_type()).unsqueeze(1);
    at::Tensor sin = emb.sin().to(x.scalar_type()).unsqueeze(1);
    for (size_t li = 0; li < layers_.size(); ++li) {
      const auto& L = layers_[li];
      const at::Tensor keep = li + 1 == layers_.size() ? keep_rows : at::Tensor();
      auto layer = [this, &L, li, B, T, H, Hkv, D, cos, sin, &plan, cache, keep](const at::Tensor& x_in) -> at::Tensor {
        at::Tensor h = rms_norm(x_in, L.in_norm, spec_.norm_eps);
        at::Tensor q = project(h, L.q_w, L.q_b).view({B, T, H, D});
        at::Tensor k = project(h, L.k_w, L.k_b).view({B, T, Hkv, D});
        at::Tensor v = project(h, L.v_w, L.v_b).view({B, T, Hkv, D}).transpose(1, 2);
        if (L.q_norm.defined()) {
          q = rms_norm(q, L.q_norm, spec_.norm_eps);
          k = rms_norm(k, L.k_norm, spec_.norm_eps);
        }
        q = q.transpose(1, 2);  // [B, H, T, D]
        k = k.transpose(1, 2);  // [B, Hkv, T, D]
        q = q * cos + rotate_half(q) * sin;
        k = k * cos + rotate_half(k) * sin;
        auto [k_all, v_all] = cache_append(cache, static_cast<int64_t>(li), k, v);
        at::Tensor a = attention_forward(q, k_all, v_all, plan);  // [B, H, T, D]
        a = a.transpose(1, 2).reshape({B, T, H * D});
        at::Tensor y = select_rows(x_in, keep) + project(select_rows(a, keep), L.o_w, L.o_b);  // [B, T, C] or [1, N, C]
        h = rms_norm(y, L.post_norm, spec_.norm_eps);
        return y + project_swiglu(project(h, L.gate_w, L.gate_b), project(h, L.up_w, L.up_b), L.down_w, L.down_b);
      };
      // The layer closure captures values and stable references only: a checkpointed layer runs again in backward.
      x = run_layer(layer, x, cache);
    }
    return rms_norm(x, norm_, spec_.norm_eps);
  }

 private:
  at::Tensor embed_, norm_, head_;
  std::vector<LlamaLayer> layers_;
  at::Tensor inv_freq_;  // [D/2] fp32
};

}  // namespace

std::unique_ptr<CausalLM> make_llama(const ModelSpec& spec, const ModelOptions& options) {
  return std::make_unique<LlamaModel>(spec, options);
}

}  // namespace sft

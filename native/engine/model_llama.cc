// Llama family (HF LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, MistralForCausalLM, SmolLM3ForCausalLM,
// Phi3ForCausalLM): RMSNorm, RoPE in the rotate_half layout (every kind of rope.h, per layer: SmolLM3's NoPE layers
// have none), grouped-query attention with optional sliding windows per layer, SwiGLU MLP. qwen2 adds q/k/v biases;
// qwen3 adds per-head q_norm/k_norm and an explicit head_dim; phi3 keeps its fused qkv_proj and gate_up_proj (so that
// saving round-trips and LoRA targets them as PEFT does) and may rotate only part of each head. Math follows
// transformers' modeling_llama/qwen2/qwen3/mistral/smollm3/phi3 (fp32 RoPE tables, RMSNorm in fp32); RMSNorm and
// SwiGLU are the fused blocks of fused_ops.h. Projections go through CausalLM::project (LoRA adapters, lora.h).
//
// Shapes: B batch, T tokens, C hidden, H heads, Hkv kv heads, D head dim, I intermediate, V vocab.
#include <ATen/ATen.h>

#include <tuple>

#include "errors.h"
#include "fused_ops.h"
#include "model.h"

namespace sft {
namespace {

struct LlamaLayer {
  at::Tensor in_norm, post_norm;        // [C]
  at::Tensor q_w, k_w, v_w, o_w;        // [H*D, C], [Hkv*D, C], [Hkv*D, C], [C, H*D]; phi3: q_w = qkv [(H+2Hkv)*D, C]
  at::Tensor q_b, k_b, v_b, o_b;        // optional
  at::Tensor q_norm, k_norm;            // [D] (qwen3)
  at::Tensor gate_w, up_w, down_w;      // [I, C], [I, C], [C, I]; phi3: gate_w = gate_up [2I, C]
  at::Tensor gate_b, up_b, down_b;      // optional (llama mlp_bias)
};

class LlamaModel final : public CausalLM {
 public:
  LlamaModel(const ModelSpec& s, const ModelOptions& o) : CausalLM(s, o) {
    const auto opts = parameter_options(o);  // filled by load()
    const int64_t C = s.hidden_size, D = s.head_dim, H = s.num_heads, Hkv = s.num_kv_heads, I = s.intermediate_size;
    embed_ = at::empty({s.vocab_size, C}, opts);
    norm_ = at::empty({C}, opts);
    if (!s.tie_word_embeddings) head_ = at::empty({s.vocab_size, C}, opts);
    fused_ = s.arch == "phi3";
    layers_.resize(s.num_layers);
    for (auto& L : layers_) {
      L.in_norm = at::empty({C}, opts);
      L.post_norm = at::empty({C}, opts);
      if (fused_) {
        L.q_w = at::empty({(H + 2 * Hkv) * D, C}, opts);
      } else {
        L.q_w = at::empty({H * D, C}, opts);
        L.k_w = at::empty({Hkv * D, C}, opts);
        L.v_w = at::empty({Hkv * D, C}, opts);
      }
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
      if (fused_) {
        L.gate_w = at::empty({2 * I, C}, opts);
      } else {
        L.gate_w = at::empty({I, C}, opts);
        L.up_w = at::empty({I, C}, opts);
      }
      L.down_w = at::empty({C, I}, opts);
      if (s.mlp_bias) {
        L.gate_b = at::empty({I}, opts);
        L.up_b = at::empty({I}, opts);
        L.down_b = at::empty({C}, opts);
      }
    }
    layer_ropes(s, o.device, ropes_, layer_rope_);
    for (int64_t i = 0; i < s.num_layers; ++i) {
      const bool slide = !s.sliding_layers.empty() && s.sliding_layers[i] && s.sliding_window > 0;
      window_.push_back(slide ? s.sliding_window : 0);
    }
  }

  int64_t rope_switch_length() const override {
    for (const auto& r : ropes_) {
      if (r->spec().type == "longrope") return r->spec().original_max_positions;
    }
    return 0;
  }

  std::vector<ParamRef> parameters() override {
    std::vector<ParamRef> out;
    out.push_back({"model.embed_tokens.weight", &embed_, false, true});
    for (size_t i = 0; i < layers_.size(); ++i) {
      auto& L = layers_[i];
      const std::string p = "model.layers." + std::to_string(i) + ".";
      out.push_back({p + "input_layernorm.weight", &L.in_norm, false, true});
      if (fused_) {
        out.push_back({p + "self_attn.qkv_proj.weight", &L.q_w, false, false});
      } else {
        out.push_back({p + "self_attn.q_proj.weight", &L.q_w, false, false});
        if (L.q_b.defined()) out.push_back({p + "self_attn.q_proj.bias", &L.q_b, false, true});
        out.push_back({p + "self_attn.k_proj.weight", &L.k_w, false, false});
        if (L.k_b.defined()) out.push_back({p + "self_attn.k_proj.bias", &L.k_b, false, true});
        out.push_back({p + "self_attn.v_proj.weight", &L.v_w, false, false});
        if (L.v_b.defined()) out.push_back({p + "self_attn.v_proj.bias", &L.v_b, false, true});
      }
      out.push_back({p + "self_attn.o_proj.weight", &L.o_w, false, false});
      if (L.o_b.defined()) out.push_back({p + "self_attn.o_proj.bias", &L.o_b, false, true});
      if (L.q_norm.defined()) {
        out.push_back({p + "self_attn.q_norm.weight", &L.q_norm, false, true});
        out.push_back({p + "self_attn.k_norm.weight", &L.k_norm, false, true});
      }
      out.push_back({p + "post_attention_layernorm.weight", &L.post_norm, false, true});
      if (fused_) {
        out.push_back({p + "mlp.gate_up_proj.weight", &L.gate_w, false, false});
      } else {
        out.push_back({p + "mlp.gate_proj.weight", &L.gate_w, false, false});
        if (L.gate_b.defined()) out.push_back({p + "mlp.gate_proj.bias", &L.gate_b, false, true});
        out.push_back({p + "mlp.up_proj.weight", &L.up_w, false, false});
        if (L.up_b.defined()) out.push_back({p + "mlp.up_proj.bias", &L.up_b, false, true});
      }
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
    at::Tensor x = embed(embed_, ids);  // [B, T, C]
    // RoPE tables [B, 1, T, R] per RoPE kind, in fp32 (HF autocast-free path), then the compute dtype.
    const std::vector<std::pair<at::Tensor, at::Tensor>> tables = rope_tables(ropes_, pos, x.scalar_type());
    for (size_t li = 0; li < layers_.size(); ++li) {
      const auto& L = layers_[li];
      const at::Tensor keep = li + 1 == layers_.size() ? keep_rows : at::Tensor();
      at::Tensor cos, sin;  // undefined: a NoPE layer
      for (size_t r = 0; r < ropes_.size(); ++r) {
        if (layer_rope_[li] == ropes_[r].get()) std::tie(cos, sin) = tables[r];
      }
      AttentionOptions attn;
      attn.window = window_[li];
      auto layer = [this, &L, li, B, T, H, Hkv, D, cos, sin, attn, &plan, cache, keep](const at::Tensor& x_in) -> at::Tensor {
        at::Tensor h = rms_norm(x_in, L.in_norm, spec_.norm_eps);
        at::Tensor q, k, v;
        if (fused_) {
          at::Tensor qkv = project(h, L.q_w, L.q_b);  // [B, T, (H + 2 Hkv) D]
          q = qkv.narrow(-1, 0, H * D).view({B, T, H, D});
          k = qkv.narrow(-1, H * D, Hkv * D).view({B, T, Hkv, D});
          v = qkv.narrow(-1, (H + Hkv) * D, Hkv * D).view({B, T, Hkv, D}).transpose(1, 2);
        } else {
          q = project(h, L.q_w, L.q_b).view({B, T, H, D});
          k = project(h, L.k_w, L.k_b).view({B, T, Hkv, D});
          v = project(h, L.v_w, L.v_b).view({B, T, Hkv, D}).transpose(1, 2);
        }
        if (L.q_norm.defined()) {
          q = rms_norm(q, L.q_norm, spec_.norm_eps);
          k = rms_norm(k, L.k_norm, spec_.norm_eps);
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
        at::Tensor y = select_rows(x_in, keep) + project(select_rows(a, keep), L.o_w, L.o_b);  // [B, T, C] or [1, N, C]
        h = rms_norm(y, L.post_norm, spec_.norm_eps);
        if (fused_) {
          at::Tensor gu = project(h, L.gate_w, L.gate_b);  // [.., 2I]: gate, up
          const int64_t I = spec_.intermediate_size;
          return y + project_swiglu(gu.narrow(-1, 0, I), gu.narrow(-1, I, I), L.down_w, L.down_b);
        }
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
  bool fused_ = false;                       // phi3: qkv_proj and gate_up_proj
  std::vector<std::unique_ptr<Rope>> ropes_;  // the RoPE kinds
  std::vector<const Rope*> layer_rope_;       // per layer (nullptr: NoPE)
  std::vector<int64_t> window_;               // per layer sliding window (0: full attention)
};

}  // namespace

std::unique_ptr<CausalLM> make_llama(const ModelSpec& spec, const ModelOptions& options) {
  return std::make_unique<LlamaModel>(spec, options);
}

}  // namespace sft

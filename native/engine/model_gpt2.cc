// GPT-2 (HF GPT2LMHeadModel): learned token + position embeddings, pre-LayerNorm blocks, fused q/k/v projection,
// gelu_new (tanh approximation) MLP, tied LM head. HF stores Conv1D weights as [in, out]; they are kept here as
// [out, in] for at::linear (transposed on load, transposed back on save: ParamRef::transposed). Projections go
// through CausalLM::project (LoRA adapters, lora.h).
//
// Shapes: B batch, T tokens, C hidden, H heads, D head dim (C / H), I inner (4C), V vocab, P max positions.
#include <ATen/ATen.h>

#include "errors.h"
#include "model.h"

namespace sft {
namespace {

struct Gpt2Block {
  at::Tensor ln1_w, ln1_b, ln2_w, ln2_b;  // [C]
  at::Tensor attn_w, attn_b;              // [3C, C], [3C]
  at::Tensor proj_w, proj_b;              // [C, C], [C]
  at::Tensor fc_w, fc_b;                  // [I, C], [I]
  at::Tensor mlp_proj_w, mlp_proj_b;      // [C, I], [C]
};

class Gpt2Model final : public CausalLM {
 public:
  Gpt2Model(const ModelSpec& s, const ModelOptions& o) : CausalLM(s, o) {
    const auto opts = parameter_options(o);  // filled by load()
    const int64_t C = s.hidden_size, I = s.intermediate_size;
    wte_ = at::empty({s.vocab_size, C}, opts);
    wpe_ = at::empty({s.max_positions, C}, opts);
    lnf_w_ = at::empty({C}, opts);
    lnf_b_ = at::empty({C}, opts);
    if (!s.tie_word_embeddings) head_ = at::empty({s.vocab_size, C}, opts);
    blocks_.resize(s.num_layers);
    for (auto& b : blocks_) {
      b.ln1_w = at::empty({C}, opts);
      b.ln1_b = at::empty({C}, opts);
      b.ln2_w = at::empty({C}, opts);
      b.ln2_b = at::empty({C}, opts);
      b.attn_w = at::empty({3 * C, C}, opts);
      b.attn_b = at::empty({3 * C}, opts);
      b.proj_w = at::empty({C, C}, opts);
      b.proj_b = at::empty({C}, opts);
      b.fc_w = at::empty({I, C}, opts);
      b.fc_b = at::empty({I}, opts);
      b.mlp_proj_w = at::empty({C, I}, opts);
      b.mlp_proj_b = at::empty({C}, opts);
    }
  }

  std::vector<ParamRef> parameters() override {
    std::vector<ParamRef> out;
    out.push_back({"transformer.wte.weight", &wte_, false, true});
    out.push_back({"transformer.wpe.weight", &wpe_, false, true});
    for (size_t i = 0; i < blocks_.size(); ++i) {
      auto& b = blocks_[i];
      const std::string p = "transformer.h." + std::to_string(i) + ".";
      out.push_back({p + "ln_1.weight", &b.ln1_w, false, true});
      out.push_back({p + "ln_1.bias", &b.ln1_b, false, true});
      out.push_back({p + "attn.c_attn.weight", &b.attn_w, true, false});
      out.push_back({p + "attn.c_attn.bias", &b.attn_b, false, true});
      out.push_back({p + "attn.c_proj.weight", &b.proj_w, true, false});
      out.push_back({p + "attn.c_proj.bias", &b.proj_b, false, true});
      out.push_back({p + "ln_2.weight", &b.ln2_w, false, true});
      out.push_back({p + "ln_2.bias", &b.ln2_b, false, true});
      out.push_back({p + "mlp.c_fc.weight", &b.fc_w, true, false});
      out.push_back({p + "mlp.c_fc.bias", &b.fc_b, false, true});
      out.push_back({p + "mlp.c_proj.weight", &b.mlp_proj_w, true, false});
      out.push_back({p + "mlp.c_proj.bias", &b.mlp_proj_b, false, true});
    }
    out.push_back({"transformer.ln_f.weight", &lnf_w_, false, true});
    out.push_back({"transformer.ln_f.bias", &lnf_b_, false, true});
    if (head_.defined()) out.push_back({"lm_head.weight", &head_, false, false});
    return out;
  }

  std::string embedding_name() const override { return "transformer.wte.weight"; }
  std::string lm_head_name() const override { return spec_.tie_word_embeddings ? "" : "lm_head.weight"; }
  at::Tensor lm_head_weight() const override { return head_.defined() ? head_ : wte_; }
  bool learned_positions() const override { return true; }

  at::Tensor hidden_states(const at::Tensor& ids, const at::Tensor& pos, const AttentionPlan& plan,
                           KVCache* cache, const at::Tensor& keep_rows) override {
    const int64_t B = ids.size(0), T = ids.size(1), C = spec_.hidden_size, H = spec_.num_heads, D = spec_.head_dim;
    const double eps = spec_.norm_eps;
    at::Tensor x = embed(wte_, ids) + embed(wpe_, pos);  // [B, T, C]
    for (size_t li = 0; li < blocks_.size(); ++li) {
      const auto& b = blocks_[li];
      const at::Tensor keep = li + 1 == blocks_.size() ? keep_rows : at::Tensor();
      auto layer = [this, &b, li, B, T, C, H, D, eps, &plan, cache, keep](const at::Tensor& x_in) -> at::Tensor {
        at::Tensor qkv = project_layer_norm(x_in, b.ln1_w, b.ln1_b, eps, b.attn_w, b.attn_b);  // [B, T, 3C]
        auto parts = qkv.split(C, -1);
        at::Tensor q = parts[0].view({B, T, H, D}).transpose(1, 2);
        at::Tensor k = parts[1].view({B, T, H, D}).transpose(1, 2);
        at::Tensor v = parts[2].view({B, T, H, D}).transpose(1, 2);
        auto [k_all, v_all] = cache_append(cache, static_cast<int64_t>(li), k, v);
        at::Tensor a = attention_forward(q, k_all, v_all, plan).transpose(1, 2).reshape({B, T, C});
        at::Tensor y = select_rows(x_in, keep) + project(select_rows(a, keep), b.proj_w, b.proj_b);  // [B, T, C] or [1, N, C]
        at::Tensor fc = project_layer_norm(y, b.ln2_w, b.ln2_b, eps, b.fc_w, b.fc_b);  // [B, T, 4C]
        return y + project_gelu_tanh(fc, b.mlp_proj_w, b.mlp_proj_b);
      };
      // The layer closure captures values and stable references only: a checkpointed layer runs again in backward.
      x = run_layer(layer, x, cache);
    }
    return at::layer_norm(x, {C}, lnf_w_, lnf_b_, eps);
  }

 private:
  at::Tensor wte_, wpe_, lnf_w_, lnf_b_, head_;
  std::vector<Gpt2Block> blocks_;
};

}  // namespace

std::unique_ptr<CausalLM> make_gpt2(const ModelSpec& spec, const ModelOptions& options) {
  return std::make_unique<Gpt2Model>(spec, options);
}

}  // namespace sft

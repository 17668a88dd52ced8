// Causal language models (Hugging Face layouts) over libtorch: the spec, the parameter registry with HF names,
// the attention plan (causal / packed documents / explicit mask), the KV cache and the CausalLM interface that the
// architectures (model_gpt2.cc, model_llama.cc) implement.
//
// Shape legend: B batch, T tokens of this call, S tokens attended to (cache + T), C hidden, H query heads,
// Hkv key/value heads, D head dim, V vocabulary, I MLP inner size.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frozen_weights.h"
#include "rope.h"

namespace sft {

// Mirror of ModelSpec in src/native/model-config.ts (validated there, re-checked here).
struct ModelSpec {
  std::string arch;  // gpt2 | llama | qwen2 | qwen3 | mistral | smollm3 | phi3 | gemma2 | gemma3_text
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_layers = 0, num_heads = 0, num_kv_heads = 0,
          head_dim = 0, max_positions = 0;
  double norm_eps = 1e-6, rope_theta = 10000.0;
  bool tie_word_embeddings = false, qkv_bias = false, o_bias = false, mlp_bias = false, qk_norm = false;
  // RoPE kinds and which one each layer uses (-1: none, a NoPE layer). Empty ropes: one default RoPE of rope_theta
  // on every layer. Empty layer_rope: every layer uses ropes[0].
  std::vector<RopeSpec> ropes;
  std::vector<int64_t> layer_rope;
  // Sliding-window attention: a query at t sees keys t - W < s <= t on the layers marked in sliding_layers.
  int64_t sliding_window = 0;
  std::vector<bool> sliding_layers;
  // Gemma: attention scale query_pre_attn_scalar ** -0.5 (0: head_dim ** -0.5), tanh softcapping of the attention
  // scores and of the final logits (0: none).
  double query_pre_attn_scalar = 0, attn_softcap = 0, final_softcap = 0;
};

// One bucket of a kVarlen plan: `seqs` sequences of at most `len` tokens run as one batched causal SDPA over the
// zero-padded layout [seqs, H, len, D]; tokens [n] are the flat indices (into the call's B * T tokens, row-major) of
// the bucket's tokens and slots [n] their places in the [seqs * len] layout. identity: tokens == slots == 0..n-1.
struct VarlenBucket {
  at::Tensor tokens, slots;
  int64_t seqs = 0, len = 0;
  bool identity = false;
};

// How the tokens of one forward call attend to each other.
struct AttentionPlan {
  enum class Kind {
    kCausal,  // plain causal over the T new tokens (+ everything in the cache); right padding needs nothing more
    kMasked,  // explicit boolean mask [B, 1, T, S] (true = attend); used by generation with left padding
    kVarlen,  // sequences that attend causally within themselves only: the documents of packed rows (also the
              // padding-free loss batch: its examples as the documents of one row [1, N]); similar lengths share a bucket
  };
  Kind kind = Kind::kCausal;
  at::Tensor mask;                    // kMasked
  std::vector<VarlenBucket> buckets;  // kVarlen: every token of the call in exactly one bucket
};

// Per-layer attention options (attention_forward): window 0 = no sliding window, scale 0 = 1/sqrt(D), softcap 0 =
// none (softcapping runs the eager path: SDPA has no score hook).
struct AttentionOptions {
  int64_t window = 0;
  double scale = 0, softcap = 0;
  bool plain() const { return window == 0 && scale == 0 && softcap == 0; }
};

// Preallocated per-layer key/value buffers [B, Hkv, capacity, D]; `length` tokens are filled.
struct KVCache {
  std::vector<at::Tensor> k, v;
  int64_t length = 0;
  int64_t capacity = 0;
};

// One trainable tensor with its Hugging Face name. `transposed`: stored here as [out, in] but [in, out] in HF files
// (GPT-2 Conv1D). `no_decay`: bias, norm or embedding (default AdamW grouping).
struct ParamRef {
  std::string name;
  at::Tensor* tensor;
  bool transposed;
  bool no_decay;
};

// Weights as stored in a model directory (name -> tensor as on disk) plus the merged safetensors __metadata__.
struct WeightSource {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> metadata;
  // Called with each source tensor once the model holds its own copy (the loader drops the file's mapped pages, so
  // the weights are never resident twice); may be empty.
  std::function<void(const at::Tensor&)> copied;
};

class LoraLayers;  // lora.h

struct ModelOptions {
  at::ScalarType dtype = at::kFloat;  // compute/parameter dtype
  at::Device device = at::Device(at::kCPU);
  // How the 2-D weights (projections, embeddings, LM head) are kept: float32 = as parameters of `dtype`; any other
  // format freezes them in that small form (frozen_weights.h; needs dtype float32: compute stays fp32).
  BaseFormat base;
};

class CausalLM {
 public:
  CausalLM(ModelSpec spec, ModelOptions options);
  virtual ~CausalLM() = default;
  CausalLM(const CausalLM&) = delete;
  CausalLM& operator=(const CausalLM&) = delete;

  const ModelSpec& spec() const { return spec_; }
  const ModelOptions& options() const { return options_; }

  // ids [B, T] int64 (validated), pos [B, T] int64 -> final hidden states [B, T, C] (after the final norm).
  // With a cache, the new keys/values are appended at cache->length (the caller advances length afterwards).
  // keep_rows [N] int64 (flat indices into B * T), when defined: only those rows are wanted (the loss's label rows),
  // so the last layer runs its attention for every position (they are its keys and values) and everything after it
  // (output projection, MLP, final norm) for the N rows only -> [1, N, C]. Every other layer is unchanged, and the
  // kept rows are the same numbers the full pass gives (each of those ops works row by row).
  virtual at::Tensor hidden_states(const at::Tensor& ids, const at::Tensor& pos, const AttentionPlan& plan,
                                   KVCache* cache, const at::Tensor& keep_rows = at::Tensor()) = 0;
  // LM head weight [V, C] (the embedding when tied).
  virtual at::Tensor lm_head_weight() const = 0;
  // Every trainable tensor once (a tied head is listed under the embedding's name), in a stable order.
  virtual std::vector<ParamRef> parameters() = 0;
  // Name of the input embedding parameter and of the untied head (empty when tied).
  virtual std::string embedding_name() const = 0;
  virtual std::string lm_head_name() const = 0;
  // Learned absolute positions (gpt2) limit the positions to max_positions.
  virtual bool learned_positions() const { return false; }
  // Longrope (Phi-3): the length past which the long factors apply (generation re-encodes the whole sequence when it
  // first grows past it, transformers' intended rule); 0: none.
  virtual int64_t rope_switch_length() const { return 0; }
  // Tanh softcapping of the final logits (Gemma 2), 0: none. Every consumer of lm_head_weight() applies it.
  double final_softcap() const { return spec_.final_softcap; }

  // Loads weights (converted to the model dtype/device; aliases and tied names resolved). Missing or misshapen
  // tensors -> SFTKIT_IO naming the tensor. Makes every parameter a leaf with requires_grad. With a frozen base
  // format, each 2-D weight is quantised straight from the source into the frozen store and its member becomes a
  // meta tensor of its shape (no fp32 copy of the model ever exists); the rest stay fp32 parameters.
  void load(const WeightSource& source);
  // The frozen base (null: base float32, every weight a parameter).
  FrozenBase* frozen() const { return frozen_.get(); }
  // The frozen form of a parameter member, or nullptr.
  const FrozenWeight* frozen_weight(const at::Tensor& member) const { return frozen_ ? frozen_->find(member) : nullptr; }
  // The LM head as a dense tensor [V, C]: lm_head_weight() itself (gradients flow), or its frozen form dequantised
  // into a new fp32 tensor.
  at::Tensor head_weight() const;
  // A parameter member as a dense tensor (dequantised when frozen), detached.
  at::Tensor dense_parameter(const at::Tensor& member) const;
  // Tensors in HF layout and names for model.safetensors (contiguous, CPU, model dtype).
  std::vector<std::pair<std::string, at::Tensor>> state_for_save();
  // One parameter in HF layout (CPU, detached), or an undefined tensor when the name is unknown.
  at::Tensor parameter_hf(const std::string& name);
  int64_t num_parameters();
  // Grows/shrinks the vocabulary; new rows = mean of the existing rows (embedding and untied head).
  void resize_token_embeddings(int64_t new_vocab);
  // New empty KV cache for B rows and up to `capacity` positions.
  KVCache new_cache(int64_t batch, int64_t capacity) const;
  // Activation checkpointing of every layer in training forwards (see checkpointed()): less memory, one more
  // forward of the layers in backward.
  void set_gradient_checkpointing(bool on) { checkpoint_layers_ = on; }
  bool gradient_checkpointing() const { return checkpoint_layers_; }
  // LoRA adapters on the projections (lora.h; null: none). Defined in lora.cc.
  void set_lora(std::shared_ptr<LoraLayers> lora);
  LoraLayers* lora() const { return lora_.get(); }

 protected:
  // Runs one layer x -> layer(x): checkpointed when enabled, in grad mode and without a KV cache.
  at::Tensor run_layer(const std::function<at::Tensor(const at::Tensor&)>& layer, const at::Tensor& x, const KVCache* cache) const;
  // An embedding lookup weight [V, C], ids [B, T] -> [B, T, C] (embedding_lookup, or the frozen rows dequantised).
  at::Tensor embed(const at::Tensor& weight, const at::Tensor& ids) const;
  // A projection: x [..., in] @ w [out, in]^T + b (w frozen: dequantised just in time, frozen_weights.h), plus the LoRA adapter attached to the parameter `w` (a member of
  // the architecture, the tensor its ParamRef points to) when there is one. Defined in lora.cc.
  at::Tensor project(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const;
  // project(gelu_tanh(pre), w, b) and project(silu(gate) * up, w, b): the fused forms of fused_ops.h (activation
  // recomputed in backward) unless `w` carries a LoRA adapter, which needs the activation itself.
  at::Tensor project_gelu_tanh(const at::Tensor& pre, const at::Tensor& w, const at::Tensor& b) const;
  at::Tensor project_swiglu(const at::Tensor& gate, const at::Tensor& up, const at::Tensor& w, const at::Tensor& b) const;
  // project(layer_norm(x; g, beta, eps), w, b), fused (fused_ops.h) unless an adapter sits on `w`.
  at::Tensor project_layer_norm(const at::Tensor& x, const at::Tensor& g, const at::Tensor& beta, double eps,
                                const at::Tensor& w, const at::Tensor& b) const;

  ModelSpec spec_;
  ModelOptions options_;
  bool checkpoint_layers_ = false;
  std::shared_ptr<LoraLayers> lora_;
  std::unique_ptr<FrozenBase> frozen_;
};

std::unique_ptr<CausalLM> make_gpt2(const ModelSpec& spec, const ModelOptions& options);
std::unique_ptr<CausalLM> make_llama(const ModelSpec& spec, const ModelOptions& options);
std::unique_ptr<CausalLM> make_gemma(const ModelSpec& spec, const ModelOptions& options);

// The RoPE of each layer of `spec` (nullptr: NoPE) over a shared list (ropes_out owns them); layer_sliding: the
// AttentionOptions window per layer. Validates the per-layer lists' lengths.
void layer_ropes(const ModelSpec& spec, const at::Device& device, std::vector<std::unique_ptr<Rope>>& ropes_out,
                 std::vector<const Rope*>& per_layer);
// Per-call cos/sin [B, 1, T, R] of each rope (index into ropes), computed once per forward.
std::vector<std::pair<at::Tensor, at::Tensor>> rope_tables(const std::vector<std::unique_ptr<Rope>>& ropes,
                                                           const at::Tensor& pos, at::ScalarType dtype);
// Where the architectures allocate their parameters before load(): the model's dtype and device, or with a frozen
// base format the meta device (no storage: load() quantises the 2-D weights into the frozen store and gives the
// others fresh fp32 storage, so no fp32 copy of the model is ever allocated; the CPU pool would back it with pages).
at::TensorOptions parameter_options(const ModelOptions& options);
// Validates the spec and builds the architecture (parameters allocated, not loaded).
std::unique_ptr<CausalLM> make_causal_lm(const ModelSpec& spec, const ModelOptions& options);

// ---- building blocks shared by the architectures (model.cc) ----

// weight [V, C], ids [B, T] int64 -> [B, T, C]. In grad mode the backward adds the rows' gradients straight into
// weight.grad() (index_add_), without the dense [V, C] gradient that at::embedding's backward allocates beside it.
at::Tensor embedding_lookup(const at::Tensor& weight, const at::Tensor& ids);

// x [B, T, C], rows [N] int64 flat indices into B * T -> [1, N, C] (autograd-tracked gather); undefined rows: x.
at::Tensor select_rows(const at::Tensor& x, const at::Tensor& rows);

// fn(x) without keeping fn's intermediate activations: the forward runs without a graph, the backward recomputes
// fn(x) with one and backpropagates through it (reentrant activation checkpointing; parameters' gradients
// accumulate as usual). fn must be deterministic (LoRA dropout is: its masks are seeded per call, lora.h); the
// forward's autocast state is restored for the recomputation. Outside grad mode it is just fn(x).
at::Tensor checkpointed(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& x);

// q [B, H, T, D], k/v [B, Hkv, S, D] -> [B, H, T, D] through at::scaled_dot_product_attention (GQA: k/v heads
// repeated). Causal plans with a cache (S > T) align the T queries to the last T keys.
// Options (sliding window, scale, softcapping) apply per layer; default options take exactly the plain SDPA calls.
at::Tensor attention_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionPlan& plan,
                             const AttentionOptions& options = AttentionOptions());
// Appends k/v [B, Hkv, T, D] to the cache of `layer` (when cache != nullptr) and returns all keys/values so far.
std::pair<at::Tensor, at::Tensor> cache_append(KVCache* cache, int64_t layer, const at::Tensor& k, const at::Tensor& v);

}  // namespace sft

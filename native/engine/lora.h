// LoRA (low-rank adaptation, as Python `peft` defines it) on the linear projections of a CausalLM. A target module
// with base weight W [out, in] (the layout at::linear takes; GPT-2's Conv1D weights are stored transposed here, so
// the same holds for them and PEFT's fan_in_fan_out only matters in its files' merge) computes
//   y = x W^T + b + scaling * dropout(x) A^T B^T,   A [r, in], B [out, r]
// as two small matmuls: the merged weight is never formed. A and B are fp32 leaves (PEFT's autocast_adapter_dtype:
// the adapter path runs in fp32 and its sum with the base output is cast back to the model dtype). Attaching freezes
// every base parameter (requires_grad false: no gradient, no optimizer state).
//
// Dropout acts on the adapter input only, in training steps only. Its mask for (step call, module) is drawn from a
// generator seeded by (seed, call counter, module index), so a checkpointed layer recomputed in backward draws the
// same mask, and a resumed run continues the same sequence once the counter is restored.
//
// Shapes: N leading dims of x (B, T), in/out features of the module, r rank.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model.h"

namespace sft {

struct LoraModuleSpec {
  std::string module;    // HF module name, e.g. "model.layers.0.self_attn.q_proj" or "transformer.h.1.attn.c_attn"
  int64_t r = 8;
  double scaling = 1.0;  // lora_alpha / r (rsLoRA: lora_alpha / sqrt(r))
};

struct LoraConfig {
  std::vector<LoraModuleSpec> modules;
  double dropout = 0.0;
  uint64_t seed = 0;
};

class LoraLayers {
 public:
  // Modules that can take an adapter: the 2-D weights of the layers' projections (not the embeddings, norms or the
  // LM head), named as the HF module (the parameter name without ".weight"), in the model's parameter order.
  static std::vector<std::string> target_modules(CausalLM& model);

  // Adapters on config.modules: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)) from config.seed in
  // module order, B = 0 (the model's output is unchanged until B trains). Freezes every base parameter. An unknown
  // module, a duplicate or r < 1 -> SFTKIT_BAD_ARGUMENT (the message lists the valid modules).
  LoraLayers(CausalLM& model, const LoraConfig& config);

  // y = project(x, weight, b) without the adapter; returns y plus the adapter's term when `weight` carries one (and
  // adapters are enabled).
  at::Tensor add_delta(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& y) const;
  // Whether add_delta would add a term for `weight` now.
  bool adapts(const at::Tensor& weight) const { return enabled_ && by_weight_.count(&weight) > 0; }

  // A and B of every module under PEFT's file names: "base_model.model.<module>.lora_A.weight" / "...lora_B.weight".
  std::vector<ParamRef> parameters();
  int64_t num_parameters() const;
  // The same tensors for adapter_model.safetensors (contiguous CPU fp32 copies).
  std::vector<std::pair<std::string, at::Tensor>> state_for_save() const;
  // Restores A and B from tensors named as in parameters() (PEFT's "<...>.lora_A.default.weight" spelling is
  // accepted too). A missing tensor, a wrong shape or a tensor that belongs to no adapter -> SFTKIT_IO naming `file`.
  void load(const std::map<std::string, at::Tensor>& tensors, const std::string& file);
  // W += scaling * B A for every module (computed in fp32, stored in W's dtype) and unfreezes the base parameters;
  // the caller detaches the adapters afterwards.
  void merge_into(CausalLM& model);

  double dropout() const { return dropout_; }
  // Training forward calls made so far (the dropout stream position; saved with the optimizer state).
  uint64_t dropout_calls() const { return calls_; }
  void set_dropout_calls(uint64_t n) { calls_ = n; }

  // For the duration of one operation: `training` turns dropout on (and advances the call counter once);
  // `enabled` false runs the base model alone (e.g. DPO's reference log-probs). Restores the previous mode.
  class Mode {
   public:
    Mode(LoraLayers* lora, bool training, bool enabled);
    ~Mode();
    Mode(const Mode&) = delete;
    Mode& operator=(const Mode&) = delete;

   private:
    LoraLayers* lora_;
    bool training_ = false, enabled_ = true;
  };

 private:
  struct Adapter {
    std::string module;
    at::Tensor* weight;  // the base weight [out, in] of the module
    at::Tensor a, b;     // [r, in], [out, r] fp32
    double scaling;
  };
  at::Tensor dropout_input(const at::Tensor& x, size_t index) const;

  std::vector<Adapter> adapters_;
  std::unordered_map<const at::Tensor*, size_t> by_weight_;
  double dropout_ = 0.0;
  uint64_t seed_ = 0;
  uint64_t calls_ = 0;
  bool training_ = false;
  bool enabled_ = true;
};

}  // namespace sft

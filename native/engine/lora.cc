// Implements lora.h, and CausalLM::project / set_lora (the one place the architectures meet the adapters).
#include "lora.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <mutex>
#include <set>
#include <sstream>

#include "errors.h"
#include "fused_ops.h"

namespace sft {
namespace {

constexpr const char* kPrefix = "base_model.model.";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << s;  // c10::ArrayRef prints "[4, 32]"
  return o.str();
}

// "model.layers.0.self_attn.q_proj, ..." shortened to the distinct last components ("q_proj, k_proj, ...").
std::string valid_names(const std::vector<std::string>& modules) {
  std::vector<std::string> seen;
  for (const auto& m : modules) {
    std::string last = m.substr(m.rfind('.') + 1);
    bool dup = false;
    for (const auto& s : seen) dup = dup || s == last;
    if (!dup) seen.push_back(last);
  }
  std::string out;
  for (const auto& s : seen) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

at::Tensor CausalLM::project(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const {
  const FrozenWeight* fw = frozen_weight(w);
  at::Tensor y = fw ? frozen_->linear(x, *fw, b) : at::linear(x, w, b);
  return lora_ ? lora_->add_delta(x, w, y) : y;
}

// The fused forms below take a dense weight: an adapter (which needs the activation itself) or a frozen weight
// (dequantised by project) takes the plain path.
at::Tensor CausalLM::project_gelu_tanh(const at::Tensor& pre, const at::Tensor& w, const at::Tensor& b) const {
  if ((lora_ && lora_->adapts(w)) || frozen_weight(w)) return project(at::gelu(pre, "tanh"), w, b);
  return gelu_tanh_linear(pre, w, b);
}

at::Tensor CausalLM::project_swiglu(const at::Tensor& gate, const at::Tensor& up, const at::Tensor& w, const at::Tensor& b) const {
  if ((lora_ && lora_->adapts(w)) || frozen_weight(w)) return project(swiglu(gate, up), w, b);
  return swiglu_linear(gate, up, w, b);
}

at::Tensor CausalLM::project_layer_norm(const at::Tensor& x, const at::Tensor& g, const at::Tensor& beta, double eps,
                                        const at::Tensor& w, const at::Tensor& b) const {
  if ((lora_ && lora_->adapts(w)) || frozen_weight(w)) return project(at::layer_norm(x, {x.size(-1)}, g, beta, eps), w, b);
  return layer_norm_linear(x, g, beta, eps, w, b);
}

void CausalLM::set_lora(std::shared_ptr<LoraLayers> lora) { lora_ = std::move(lora); }

std::vector<std::string> LoraLayers::target_modules(CausalLM& model) {
  std::vector<std::string> out;
  const std::string head = model.lm_head_name();
  for (ParamRef& p : model.parameters()) {
    if (p.no_decay || p.tensor->dim() != 2 || p.name == head || p.name == model.embedding_name()) continue;
    if (!ends_with(p.name, ".weight")) continue;
    out.push_back(p.name.substr(0, p.name.size() - 7));
  }
  return out;
}

LoraLayers::LoraLayers(CausalLM& model, const LoraConfig& config) : dropout_(config.dropout), seed_(config.seed) {
  if (!(config.dropout >= 0.0 && config.dropout < 1.0)) throw_bad_argument("lora: dropout must be in [0, 1)");
  if (config.modules.empty()) throw_bad_argument("lora: no target module given");
  const std::vector<std::string> valid = target_modules(model);
  std::map<std::string, at::Tensor*> weights;
  for (ParamRef& p : model.parameters()) weights[p.name] = p.tensor;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(config.seed);
  const auto dev = model.options().device;
  adapters_.reserve(config.modules.size());  // stable addresses for the ParamRefs handed out later
  for (const LoraModuleSpec& spec : config.modules) {
    bool ok = false;
    for (const auto& v : valid) ok = ok || v == spec.module;
    if (!ok) {
      throw_bad_argument("lora: '" + spec.module + "' is not a projection of this " + model.spec().arch +
                         " model that can take an adapter (valid modules: " + valid_names(valid) + ")");
    }
    if (spec.r < 1) throw_bad_argument("lora: r must be >= 1 (module '" + spec.module + "')");
    if (!std::isfinite(spec.scaling)) throw_bad_argument("lora: scaling must be finite (module '" + spec.module + "')");
    at::Tensor* w = weights.at(spec.module + ".weight");
    if (by_weight_.count(w)) throw_bad_argument("lora: module '" + spec.module + "' is listed twice");
    const int64_t out = w->size(0), in = w->size(1);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));  // kaiming_uniform_(a = sqrt(5)) on [r, in]
    Adapter ad;
    ad.module = spec.module;
    ad.weight = w;
    ad.scaling = spec.scaling;
    ad.a = at::empty({spec.r, in}, at::kFloat).uniform_(-bound, bound, gen).to(dev).requires_grad_(true);
    ad.b = at::zeros({out, spec.r}, at::TensorOptions().dtype(at::kFloat).device(dev)).requires_grad_(true);
    by_weight_[w] = adapters_.size();
    adapters_.push_back(std::move(ad));
  }
  for (ParamRef& p : model.parameters()) {
    p.tensor->mutable_grad() = at::Tensor();
    p.tensor->requires_grad_(false);
  }
}

at::Tensor LoraLayers::dropout_input(const at::Tensor& x, size_t index) const {
  // Not conditioned on grad mode: a checkpointed layer's forward runs without a graph and must draw the same masks.
  if (!training_ || dropout_ <= 0.0) return x;
  const uint64_t seed = splitmix64(seed_ ^ splitmix64(calls_ * 0x100000001B3ULL + index));
  at::Generator gen = x.is_cuda() ? at::detail::getCUDAHooks().getNewGenerator(x.device().index())
                                  : at::make_generator<at::CPUGeneratorImpl>(seed);
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
  at::Tensor keep = at::empty_like(x).bernoulli_(1.0 - dropout_, gen);
  return x * keep * (1.0 / (1.0 - dropout_));
}

at::Tensor LoraLayers::add_delta(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& y) const {
  if (!enabled_) return y;
  auto it = by_weight_.find(&weight);
  if (it == by_weight_.end()) return y;
  const Adapter& ad = adapters_[it->second];
  at::Tensor in = dropout_input(x, it->second);
  if (in.scalar_type() != at::kFloat) in = in.to(at::kFloat);
  at::Tensor delta = at::linear(at::linear(in, ad.a), ad.b) * ad.scaling;  // [N, r] then [N, out]
  if (y.scalar_type() == delta.scalar_type()) return y + delta;
  return (y.to(at::kFloat) + delta.to(at::kFloat)).to(y.scalar_type());
}

std::vector<ParamRef> LoraLayers::parameters() {
  std::vector<ParamRef> out;
  for (Adapter& ad : adapters_) {
    out.push_back({kPrefix + ad.module + ".lora_A.weight", &ad.a, false, false});
    out.push_back({kPrefix + ad.module + ".lora_B.weight", &ad.b, false, false});
  }
  return out;
}

int64_t LoraLayers::num_parameters() const {
  int64_t n = 0;
  for (const Adapter& ad : adapters_) n += ad.a.numel() + ad.b.numel();
  return n;
}

std::vector<std::pair<std::string, at::Tensor>> LoraLayers::state_for_save() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const Adapter& ad : adapters_) {
    out.emplace_back(kPrefix + ad.module + ".lora_A.weight", ad.a.detach().contiguous().cpu());
    out.emplace_back(kPrefix + ad.module + ".lora_B.weight", ad.b.detach().contiguous().cpu());
  }
  return out;
}

void LoraLayers::load(const std::map<std::string, at::Tensor>& tensors, const std::string& file) {
  std::map<std::string, const at::Tensor*> given;
  for (const auto& [name, t] : tensors) {
    std::string key = name;
    for (const char* part : {".lora_A", ".lora_B"}) {
      const std::string spelled = std::string(part) + ".default.weight";
      if (ends_with(key, spelled)) key = key.substr(0, key.size() - spelled.size()) + part + ".weight";
    }
    given[key] = &t;
  }
  c10::NoGradGuard no_grad;
  std::set<std::string> used;
  for (ParamRef& p : parameters()) {
    auto it = given.find(p.name);
    if (it == given.end()) throw_io(file + ": tensor '" + p.name + "' is missing (the adapter_config.json targets this module)");
    const at::Tensor& t = *it->second;
    if (!t.is_floating_point()) throw_io(file + ": tensor '" + p.name + "' is not floating point");
    if (t.sizes() != p.tensor->sizes()) {
      throw_io(file + ": tensor '" + p.name + "' has shape " + shape_str(t.sizes()) + ", expected " +
               shape_str(p.tensor->sizes()) + " (r and the module's features from adapter_config.json)");
    }
    p.tensor->copy_(t);
    used.insert(p.name);
  }
  for (const auto& [key, t] : given) {
    if (!used.count(key)) throw_io(file + ": tensor '" + key + "' belongs to no adapter of adapter_config.json's target_modules");
  }
}

void LoraLayers::merge_into(CausalLM& model) {
  if (model.frozen()) {
    throw_unsupported("lora: merging needs the base in full precision (the base is frozen in " +
                      base_dtype_name(model.frozen()->format().dtype) + "); load it with baseDtype float32 to merge");
  }
  c10::NoGradGuard no_grad;
  for (Adapter& ad : adapters_) {
    at::Tensor delta = at::mm(ad.b.detach(), ad.a.detach()).mul_(ad.scaling);  // [out, in] fp32
    at::Tensor& w = *ad.weight;
    if (w.scalar_type() == at::kFloat) w.add_(delta);
    else w.copy_((w.to(at::kFloat) + delta).to(w.scalar_type()));
  }
  for (ParamRef& p : model.parameters()) p.tensor->requires_grad_(true);
}

LoraLayers::Mode::Mode(LoraLayers* lora, bool training, bool enabled) : lora_(lora) {
  if (!lora_) return;
  training_ = lora_->training_;
  enabled_ = lora_->enabled_;
  lora_->training_ = training;
  lora_->enabled_ = enabled;
  if (training) ++lora_->calls_;
}

LoraLayers::Mode::~Mode() {
  if (!lora_) return;
  lora_->training_ = training_;
  lora_->enabled_ = enabled_;
}

}  // namespace sft

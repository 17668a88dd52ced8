// Generation loop (see generate.h): prefill of the left-padded prompts, then one token per step through the cache.
#include "generate.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <limits>

#include "errors.h"

namespace sft {
namespace {

// logits [B, V] fp32 -> next ids [B] int64 (CPU).
at::Tensor pick_next(const at::Tensor& logits_in, const GenerateOptions& o, at::Generator& gen) {
  at::Tensor logits = logits_in.to(at::kFloat).cpu();
  if (o.temperature <= 0) return logits.argmax(-1);
  at::Tensor l = logits / o.temperature;
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (o.top_k > 0 && o.top_k < l.size(-1)) {
    at::Tensor kth = std::get<0>(l.topk(o.top_k, -1)).narrow(-1, o.top_k - 1, 1);  // [B, 1]
    l = l.masked_fill(l < kth, neg_inf);
  }
  if (o.top_p < 1.0) {
    auto [sorted, idx] = l.sort(-1, /*descending=*/true);
    at::Tensor probs = sorted.softmax(-1);
    at::Tensor before = probs.cumsum(-1) - probs;  // mass strictly before each token: the first always stays
    sorted = sorted.masked_fill(before > o.top_p, neg_inf);
    l = at::empty_like(l).scatter_(-1, idx, sorted);
  }
  return at::multinomial(l.softmax(-1), 1, /*replacement=*/false, gen).squeeze(-1);
}

}  // namespace

std::vector<std::vector<int64_t>> generate_tokens(CausalLM& model, const std::vector<std::vector<int64_t>>& prompts,
                                                  const GenerateOptions& o, const GenerateStepFn& on_step) {
  const ModelSpec& spec = model.spec();
  const int64_t B = static_cast<int64_t>(prompts.size());
  if (B == 0) throw_bad_argument("generate: at least one prompt is needed");
  if (o.max_new_tokens < 0) throw_bad_argument("generate: maxNewTokens must be >= 0");
  int64_t P = 0;
  for (int64_t b = 0; b < B; ++b) {
    if (prompts[b].empty()) throw_bad_argument("generate: prompt " + std::to_string(b) + " is empty");
    for (int64_t id : prompts[b]) {
      if (id < 0 || id >= spec.vocab_size) {
        throw_bad_argument("generate: prompt " + std::to_string(b) + " holds token id " + std::to_string(id) +
                           " outside the model vocabulary [0, " + std::to_string(spec.vocab_size) + ")");
      }
    }
    P = std::max<int64_t>(P, prompts[b].size());
  }
  const int64_t capacity = P + std::max<int64_t>(o.max_new_tokens, 1);
  if (model.learned_positions() && capacity - 1 > spec.max_positions) {
    throw_bad_argument("generate: prompt + maxNewTokens (" + std::to_string(capacity - 1) + ") exceeds the model's " +
                       std::to_string(spec.max_positions) + " positions");
  }
  std::vector<std::vector<int64_t>> out(B);
  if (o.max_new_tokens == 0) return out;

  c10::NoGradGuard no_grad;
  const at::Device dev = model.options().device;
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  // Left-padded prompt ids and validity.
  at::Tensor ids = at::zeros({B, P}, i64);
  at::Tensor valid = at::zeros({B, P}, at::TensorOptions().dtype(at::kBool));
  bool padded = false;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = prompts[b].size(), off = P - n;
    padded = padded || off > 0;
    auto acc = ids.accessor<int64_t, 2>();
    auto vacc = valid.accessor<bool, 2>();
    for (int64_t i = 0; i < n; ++i) {
      acc[b][off + i] = prompts[b][i];
      vacc[b][off + i] = true;
    }
  }
  ids = ids.to(dev);
  valid = valid.to(dev);
  // HF: position_ids = cumsum(mask) - 1, padding positions set to 1.
  at::Tensor pos = valid.to(at::kLong).cumsum(-1) - 1;
  pos = pos.masked_fill(valid.logical_not(), 1);

  AttentionPlan plan;
  if (padded) {
    // [B, 1, P, P]: causal AND key is a real token; the diagonal stays open so padding rows never go all -inf.
    at::Tensor causal = at::ones({P, P}, at::TensorOptions().dtype(at::kBool).device(dev)).tril();
    at::Tensor eye = at::eye(P, at::TensorOptions().dtype(at::kBool).device(dev));
    plan.kind = AttentionPlan::Kind::kMasked;
    plan.mask = (causal.unsqueeze(0) & valid.unsqueeze(1)) | eye.unsqueeze(0);
    plan.mask = plan.mask.unsqueeze(1);
  }
  KVCache cache = model.new_cache(B, capacity);
  at::Tensor weight = model.head_weight();  // dense (a frozen head dequantised once per call)
  const double cap = model.final_softcap();
  auto head = [&](const at::Tensor& rows) {  // [B, C] -> [B, V] (Gemma 2: tanh softcapping)
    at::Tensor l = at::linear(rows, weight);
    return cap > 0 ? at::tanh(l / cap) * cap : l;
  };
  at::Tensor h = model.hidden_states(ids, pos, plan, &cache);
  cache.length = P;
  at::Tensor logits = head(h.select(1, P - 1));  // [B, V]
  at::Tensor last_pos = pos.select(1, P - 1);    // [B]
  // Longrope (Phi-3): when the sequence (left padding included) first grows past the switch length, everything is
  // encoded again with the long factors (transformers' intended rule), then the cache goes on as usual.
  const int64_t switch_len = model.rope_switch_length();
  const bool reprefill = switch_len > 0 && P <= switch_len;
  at::Tensor all_ids = reprefill ? ids : at::Tensor();  // [B, S]

  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  std::vector<bool> done(B, false);
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    at::Tensor next = pick_next(logits, o, gen).contiguous();  // [B] CPU int64
    const int64_t* nx = next.data_ptr<int64_t>();
    std::vector<int64_t> emitted(B, -1);
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      emitted[b] = nx[b];
      out[b].push_back(nx[b]);
      if (std::find(o.stop_ids.begin(), o.stop_ids.end(), nx[b]) != o.stop_ids.end()) done[b] = true;
      all_done = all_done && done[b];
    }
    const bool keep_going = on_step ? on_step(emitted) : true;
    if (all_done || !keep_going || step + 1 == o.max_new_tokens) break;
    // Feed the new token of every row (finished rows too: their output is ignored).
    last_pos = last_pos + 1;
    if (reprefill) all_ids = at::cat({all_ids, next.to(dev).view({B, 1})}, 1);
    if (reprefill && cache.length == switch_len) {
      const int64_t S = cache.length + 1;
      valid = at::cat({valid, at::ones({B, 1}, valid.options())}, 1);
      at::Tensor all_pos = valid.to(at::kLong).cumsum(-1) - 1;
      all_pos = all_pos.masked_fill(valid.logical_not(), 1);
      AttentionPlan full;
      if (padded) {
        at::Tensor causal = at::ones({S, S}, at::TensorOptions().dtype(at::kBool).device(dev)).tril();
        at::Tensor eye = at::eye(S, at::TensorOptions().dtype(at::kBool).device(dev));
        full.kind = AttentionPlan::Kind::kMasked;
        full.mask = ((causal.unsqueeze(0) & valid.unsqueeze(1)) | eye.unsqueeze(0)).unsqueeze(1);
      }
      cache.length = 0;
      h = model.hidden_states(all_ids, all_pos, full, &cache);
      cache.length = S;
      logits = head(h.select(1, S - 1));
      continue;
    }
    AttentionPlan step_plan;  // kCausal with T = 1 attends to the whole cache
    if (padded || reprefill) valid = at::cat({valid, at::ones({B, 1}, valid.options())}, 1);
    if (padded) {
      step_plan.kind = AttentionPlan::Kind::kMasked;
      step_plan.mask = valid.view({B, 1, 1, -1});
    }
    h = model.hidden_states(next.to(dev).view({B, 1}), last_pos.view({B, 1}), step_plan, &cache);
    cache.length += 1;
    logits = head(h.select(1, 0));
  }
  return out;
}

}  // namespace sft

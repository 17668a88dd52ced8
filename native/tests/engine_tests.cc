// The engine checked without Node, in llm.c's spirit: the step functions (engine/steps.h) and the kernels against the
// golden fixtures of scripts/gen-fixtures (test/fixtures/, read with the engine's own safetensors and JSON readers),
// at the tolerances test/parity/ states. Usage: engine_tests <repository root>; prints one line per check
// ("ok   ..." / "FAIL ...") and exits 1 when any check fails, 2 when a fixture cannot be read.
//
// Shapes in the fixtures: B rows, T tokens, C hidden, V vocabulary (labels unshifted, -100 = ignore).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <cstdlib>
#include <tuple>
#include <unistd.h>
#include <vector>

#include "engine/distill_loss.h"
#include "engine/errors.h"
#include "engine/frozen_weights.h"
#include "engine/generate.h"
#include "engine/json.h"
#include "engine/loss.h"
#include "engine/safetensors.h"
#include "engine/steps.h"

namespace sft {
namespace {

// ---- checks: a count and one line each ----------------------------------------------------------------

struct Checks {
  int passed = 0, failed = 0;
};

// One line per check: "ok   <what>" or "FAIL <what>: <detail>".
void check(Checks& c, bool ok, const std::string& what, const std::string& detail) {
  if (ok) ++c.passed;
  else ++c.failed;
  if (ok) std::printf("ok   %s\n", what.c_str());
  else std::printf("FAIL %s%s%s\n", what.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  std::fflush(stdout);
}

std::string num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", x);
  return buf;
}

// |actual - expected| / max(|expected|, 1e-12) <= rel (test/parity/models.test.ts's relClose).
bool rel_close(double actual, double expected, double rel) {
  return std::abs(actual - expected) / std::max(std::abs(expected), 1e-12) <= rel;
}
// |actual - expected| <= rel * max(|expected|, scale) (test/parity/dpo.test.ts's close).
bool close_scaled(double actual, double expected, double rel, double scale = 1e-3) {
  return std::abs(actual - expected) <= rel * std::max(std::abs(expected), scale);
}
// Worst element error against max(|b_i|, 1e-3 * max|b|) (test/parity/loss-optim.test.ts's maxRel).
double max_rel(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(at::kDouble).flatten(), y = b.to(at::kDouble).flatten();
  const double scale = y.abs().max().item<double>();
  at::Tensor den = at::clamp_min(y.abs(), std::max(1e-3 * scale, 1e-12));
  return ((x - y).abs() / den).max().item<double>();
}
// ||a - b|| / ||b|| (test/parity/dpo.test.ts's distillation gradients).
double rel_l2(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(at::kDouble).flatten(), y = b.to(at::kDouble).flatten();
  return ((x - y).norm() / y.norm()).item<double>();
}

// ---- fixtures through the engine's JSON reader --------------------------------------------------------------------

JsonValue read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_io(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  try {
    return parse_json(text.data(), text.size());
  } catch (const JsonError& e) {
    throw_io(path + ": " + e.what());
  }
}

const JsonValue& at_key(const JsonValue& v, const std::string& key) {
  const JsonValue* f = v.find(key);
  if (f == nullptr) throw_io("fixture: no key '" + key + "'");
  return *f;
}

// Numbers of a (nested) JSON array, flattened in order.
void flatten(const JsonValue& v, std::vector<double>& out) {
  if (v.is_array()) {
    for (const auto& x : v.array) flatten(x, out);
  } else if (v.kind == JsonValue::Kind::Number) {
    out.push_back(v.number);
  } else {
    throw_io("fixture: expected numbers");
  }
}
std::vector<double> numbers(const JsonValue& v) {
  std::vector<double> out;
  flatten(v, out);
  return out;
}
std::vector<int64_t> ints(const JsonValue& v) {
  std::vector<int64_t> out;
  for (double d : numbers(v)) out.push_back(static_cast<int64_t>(d));
  return out;
}
at::Tensor tensor_of(const JsonValue& v, at::ScalarType dtype, const std::vector<int64_t>& shape) {
  std::vector<double> xs = numbers(v);
  return at::tensor(xs, at::TensorOptions().dtype(at::kDouble)).to(dtype).reshape(shape);
}

// The engine's ModelSpec from a Hugging Face config.json (src/native/model-config.ts, for the fixtures' families).
ModelSpec spec_from_config(const std::string& dir) {
  const JsonValue c = read_json(dir + "/config.json");
  auto get = [&](const char* k, double fallback) {
    const JsonValue* v = c.find(k);
    return v != nullptr && v->kind == JsonValue::Kind::Number ? v->number : fallback;
  };
  auto flag = [&](const char* k, bool fallback) {
    const JsonValue* v = c.find(k);
    return v != nullptr && v->kind == JsonValue::Kind::Bool ? v->boolean : fallback;
  };
  ModelSpec s;
  s.arch = at_key(c, "model_type").string;
  s.vocab_size = static_cast<int64_t>(get("vocab_size", 0));
  if (s.arch == "gpt2") {
    s.hidden_size = static_cast<int64_t>(get("n_embd", 0));
    s.intermediate_size = static_cast<int64_t>(get("n_inner", 4.0 * s.hidden_size));
    s.num_layers = static_cast<int64_t>(get("n_layer", 0));
    s.num_heads = s.num_kv_heads = static_cast<int64_t>(get("n_head", 0));
    s.head_dim = s.hidden_size / s.num_heads;
    s.max_positions = static_cast<int64_t>(get("n_positions", 0));
    s.norm_eps = get("layer_norm_epsilon", 1e-5);
    s.rope_theta = 0;
    s.tie_word_embeddings = flag("tie_word_embeddings", true);
    s.qkv_bias = s.o_bias = s.mlp_bias = true;
    return s;
  }
  s.hidden_size = static_cast<int64_t>(get("hidden_size", 0));
  s.intermediate_size = static_cast<int64_t>(get("intermediate_size", 0));
  s.num_layers = static_cast<int64_t>(get("num_hidden_layers", 0));
  s.num_heads = static_cast<int64_t>(get("num_attention_heads", 0));
  s.num_kv_heads = static_cast<int64_t>(get("num_key_value_heads", static_cast<double>(s.num_heads)));
  s.head_dim = static_cast<int64_t>(get("head_dim", static_cast<double>(s.hidden_size / s.num_heads)));
  s.max_positions = static_cast<int64_t>(get("max_position_embeddings", 2048));
  s.norm_eps = get("rms_norm_eps", 1e-6);
  s.rope_theta = get("rope_theta", 10000.0);
  if (const JsonValue* rp = c.find("rope_parameters"); rp != nullptr && rp->is_object()) {
    if (const JsonValue* t = rp->find("rope_theta"); t != nullptr && t->kind == JsonValue::Kind::Number) s.rope_theta = t->number;
  }
  s.tie_word_embeddings = flag("tie_word_embeddings", false);
  const bool attention_bias = flag("attention_bias", false);
  s.qkv_bias = s.arch == "qwen2" ? true : attention_bias;
  s.o_bias = s.arch == "qwen2" ? false : attention_bias;
  s.mlp_bias = s.arch == "llama" ? flag("mlp_bias", false) : false;
  s.qk_norm = s.arch == "qwen3";
  return s;
}

TrainState load_model(const std::string& dir) {
  TrainState s;
  s.model = load_causal_lm(dir, spec_from_config(dir), ModelOptions{}, /*gradient_checkpointing=*/false);
  return s;
}

// A parity.json case (test/parity/model-fixture.ts's batchOfCase) as the engine's batch.
BatchInput batch_of_case(const JsonValue& c) {
  const std::vector<int64_t> shape = ints(at_key(c, "shape"));
  BatchInput b;
  b.rows = shape[0];
  b.cols = shape[1];
  b.input_ids = tensor_of(at_key(c, "inputIds"), at::kInt, shape);
  b.labels = tensor_of(at_key(c, "labels"), at::kInt, shape);
  if (const JsonValue* m = c.find("attentionMask")) b.attention_mask = tensor_of(*m, at::kByte, shape);
  if (const JsonValue* p = c.find("positionIds")) b.position_ids = tensor_of(*p, at::kInt, shape);
  if (const JsonValue* d = c.find("docLengths")) {
    for (const auto& row : d->array) b.doc_lengths.push_back(ints(row));
  }
  return b;
}

// Right-padded rows (src/collate/batch.ts's collate with padId 0): ids, labels (-100 on padding), attention mask.
BatchInput collate(const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>>& rows) {
  int64_t T = 1;
  for (const auto& r : rows) T = std::max<int64_t>(T, static_cast<int64_t>(r.first.size()));
  const int64_t B = static_cast<int64_t>(rows.size());
  at::Tensor ids = at::zeros({B, T}, at::kInt), labels = at::full({B, T}, -100, at::kInt), mask = at::zeros({B, T}, at::kByte);
  for (int64_t b = 0; b < B; ++b) {
    for (size_t t = 0; t < rows[b].first.size(); ++t) {
      ids[b][t] = rows[b].first[t];
      labels[b][t] = rows[b].second[t];
      mask[b][t] = 1;
    }
  }
  BatchInput in;
  in.rows = B;
  in.cols = T;
  in.input_ids = ids;
  in.labels = labels;
  in.attention_mask = mask;
  return in;
}

// ---- the checks ---------------------------------------------------------------------------------------------------

// SFT: loss sums and counts of padded and packed batches (eval and step, rel 1e-5), per-parameter gradient norms of
// one step (rel 1e-4), logits (atol 1e-4), greedy generation (exact): test/parity/models.test.ts.
void check_model(Checks& ck, const std::string& root, const std::string& name) {
  const std::string dir = root + "/test/fixtures/models/" + name;
  const JsonValue ref = read_json(dir + "/parity.json");
  TrainState s = load_model(dir);
  for (const char* which : {"padded", "packed"}) {
    const JsonValue& c = at_key(ref, which);
    const BatchInput batch = batch_of_case(c);
    const double want = at_key(c, "lossSum").number;
    const int64_t tokens = at_key(c, "tokens").integer;
    const LossStepResult e = eval_loss(s, batch);
    check(ck, e.tokens == tokens && rel_close(e.loss_sum, want, 1e-5), name + " " + which + ": eval loss sum and count (rel 1e-5)",
          num(e.loss_sum) + " vs " + num(want) + ", " + std::to_string(e.tokens) + " vs " + std::to_string(tokens));
    at::Tensor logits = forward_logits(s, batch);  // [B, T, V]
    const JsonValue& rows = at_key(c, "logits");
    double worst = 0;
    for (size_t b = 0; b < rows.array.size(); ++b) {
      for (size_t t = 0; t < rows.array[b].array.size(); ++t) {
        const JsonValue& r = rows.array[b].array[t];
        if (r.is_null()) continue;
        at::Tensor want_row = tensor_of(r, at::kFloat, {static_cast<int64_t>(r.array.size())});
        worst = std::max(worst, (logits[b][t] - want_row).abs().max().item<double>());
      }
    }
    check(ck, worst <= 1e-4, name + " " + which + ": logits (atol 1e-4)", "max |logits - HF| = " + num(worst));
  }
  // One SFT step on the padded case: the loss, then the gradients it left.
  const JsonValue& padded = at_key(ref, "padded");
  const LossStepResult r = sft_step(s, batch_of_case(padded), 1.0);
  const double want = at_key(padded, "lossSum").number;
  check(ck, r.tokens == at_key(padded, "tokens").integer && rel_close(r.loss_sum, want, 1e-5),
        name + " padded: SFT step loss sum and count (rel 1e-5)", num(r.loss_sum) + " vs " + num(want));
  std::map<std::string, double> got;
  for (const auto& [n, g] : grad_norms(s)) got[n] = g;
  const JsonValue& norms = at_key(ref, "gradNorms");
  bool same = got.size() == norms.object.size();
  std::string detail = same ? "" : std::to_string(got.size()) + " gradients vs " + std::to_string(norms.object.size());
  for (const auto& [n, g] : norms.object) {
    auto it = got.find(n);
    if (it == got.end() || !rel_close(it->second, g.number, 1e-4)) {
      same = false;
      detail = n + ": " + (it == got.end() ? std::string("missing") : num(it->second)) + " vs " + num(g.number);
      break;
    }
  }
  check(ck, same, name + " padded: SFT step gradient norms, " + std::to_string(norms.object.size()) + " parameters (rel 1e-4)", detail);
  zero_grad(s);
  // Greedy generation: a single prompt and a left-padded batch.
  const JsonValue& gen = at_key(ref, "generate");
  for (const char* which : {"single", "batch"}) {
    const JsonValue& g = at_key(gen, which);
    std::vector<std::vector<int64_t>> prompts;
    std::vector<std::vector<int64_t>> want_ids;
    if (std::string(which) == "single") {
      prompts.push_back(ints(at_key(g, "prompt")));
      want_ids.push_back(ints(at_key(g, "output")));
    } else {
      for (const auto& p : at_key(g, "prompts").array) prompts.push_back(ints(p));
      for (const auto& o : at_key(g, "output").array) want_ids.push_back(ints(o));
    }
    GenerateOptions go;
    go.max_new_tokens = at_key(g, "maxNewTokens").integer;
    c10::NoGradGuard no_grad;
    const auto out = generate_tokens(*s.model, prompts, go, [](const std::vector<int64_t>&) { return true; });
    check(ck, out == want_ids, name + ": greedy generation, " + which + " (exact)", "ids differ");
  }
}

// The fused masked cross-entropy and its gradients against torch.nn.functional.cross_entropy (loss rel 1e-5, gradients
// rel 1e-4): test/parity/loss-optim.test.ts.
void check_cross_entropy(Checks& ck, const std::string& root) {
  const JsonValue f = read_json(root + "/test/fixtures/loss-optim/loss.json");
  at::Tensor h = tensor_of(at_key(f, "hidden"), at::kFloat, ints(at_key(f, "hiddenShape"))).requires_grad_(true);  // [B, T, C]
  at::Tensor w = tensor_of(at_key(f, "weight"), at::kFloat, ints(at_key(f, "weightShape"))).requires_grad_(true);  // [V, C]
  at::Tensor y = tensor_of(at_key(f, "labels"), at::kLong, ints(at_key(f, "labelsShape")));                          // [B, T]
  LossResult r = fused_masked_cross_entropy(h, w, y, /*chunk_rows=*/4);
  const double loss = r.loss_sum.item<double>(), want = at_key(f, "lossSum").number;
  r.loss_sum.backward();
  check(ck, r.count == at_key(f, "count").integer && rel_close(loss, want, 1e-5), "fused cross-entropy: loss sum and count (rel 1e-5)",
        num(loss) + " vs " + num(want));
  const double gh = max_rel(h.grad(), tensor_of(at_key(f, "gradHidden"), at::kFloat, {h.numel()}).view(h.sizes()));
  const double gw = max_rel(w.grad(), tensor_of(at_key(f, "gradWeight"), at::kFloat, {w.numel()}).view(w.sizes()));
  check(ck, gh <= 1e-4 && gw <= 1e-4, "fused cross-entropy: gradients of hidden and weight (rel 1e-4)",
        "hidden " + num(gh) + ", weight " + num(gw));
}

// The fused distillation loss (alpha CE + (1 - alpha) T^2 KL) and its gradients against F.cross_entropy + F.kl_div
// (rel 1e-5): test/parity/dpo.test.ts.
void check_distillation(Checks& ck, const std::string& root) {
  const JsonValue kd = read_json(root + "/test/fixtures/dpo/kd.json");
  for (const auto& c : at_key(kd, "cases").array) {
    const double alpha = at_key(c, "alpha").number, tau = at_key(c, "temperature").number;
    at::Tensor h = tensor_of(at_key(c, "hidden"), at::kFloat, ints(at_key(c, "hiddenShape"))).requires_grad_(true);
    at::Tensor w = tensor_of(at_key(c, "weight"), at::kFloat, ints(at_key(c, "weightShape"))).requires_grad_(true);
    at::Tensor ht = tensor_of(at_key(c, "teacherHidden"), at::kFloat, ints(at_key(c, "teacherHiddenShape")));
    at::Tensor wt = tensor_of(at_key(c, "teacherWeight"), at::kFloat, ints(at_key(c, "teacherWeightShape")));
    at::Tensor y = tensor_of(at_key(c, "labels"), at::kLong, ints(at_key(c, "labelsShape")));
    DistillResult r = fused_distill_loss(h, w, ht, wt, y, alpha, tau, /*chunk_rows=*/4);
    const double loss = r.loss_sum.item<double>();
    r.loss_sum.backward();
    const std::string what = "distillation loss (alpha " + num(alpha) + ", T " + num(tau) + ")";
    const bool sums = r.count == at_key(c, "count").integer && close_scaled(loss, at_key(c, "lossSum").number, 1e-5) &&
                      close_scaled(r.ce_sum, at_key(c, "ceSum").number, 1e-5) && close_scaled(r.kl_sum, at_key(c, "klSum").number, 1e-5);
    check(ck, sums, what + ": loss, CE and KL sums, count (rel 1e-5)",
          num(loss) + " vs " + num(at_key(c, "lossSum").number) + ", ce " + num(r.ce_sum) + ", kl " + num(r.kl_sum));
    const double gh = rel_l2(h.grad(), tensor_of(at_key(c, "gradHidden"), at::kFloat, {h.numel()}).view(h.sizes()));
    const double gw = rel_l2(w.grad(), tensor_of(at_key(c, "gradWeight"), at::kFloat, {w.numel()}).view(w.sizes()));
    check(ck, gh <= 1e-5 && gw <= 1e-5, what + ": gradients (rel 1e-5)", "hidden " + num(gh) + ", weight " + num(gw));
  }
}

// DPO against TRL (policy tiny-llama, reference tiny-llama-untied): per-row log-prob sums (rel 1e-5), then the
// preference step's loss, mean rewards (rel 1e-5) and the policy's gradient norms (rel 1e-4) for every recorded loss
// type, and label smoothing: test/parity/dpo.test.ts.
void check_dpo(Checks& ck, const std::string& root) {
  const JsonValue f = read_json(root + "/test/fixtures/dpo/trl-dpo.json");
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> rows;
  std::vector<double> counts;
  for (const auto& p : at_key(f, "pairs").array) {
    const std::vector<int64_t> prompt = ints(at_key(p, "prompt_ids"));
    for (const char* side : {"chosen_ids", "rejected_ids"}) {
      const std::vector<int64_t> answer = ints(at_key(p, side));
      std::vector<int64_t> ids = prompt, labels(prompt.size(), -100);
      ids.insert(ids.end(), answer.begin(), answer.end());
      labels.insert(labels.end(), answer.begin(), answer.end());
      rows.emplace_back(ids, labels);
      counts.push_back(static_cast<double>(answer.size()));
    }
  }
  const BatchInput batch = collate(rows);
  const int64_t P = static_cast<int64_t>(rows.size() / 2);
  auto interleave = [&](const JsonValue& x) {
    std::vector<double> c = numbers(at_key(x, "chosen")), r = numbers(at_key(x, "rejected")), out;
    for (size_t i = 0; i < c.size(); ++i) {
      out.push_back(c[i]);
      out.push_back(r[i]);
    }
    return out;
  };
  const std::string models = root + "/test/fixtures/models/";
  TrainState policy = load_model(models + at_key(f, "policy").string);
  TrainState reference = load_model(models + at_key(f, "reference").string);
  std::vector<double> ref_logps;
  for (auto [name, state, expected] : {std::make_tuple("policy", &policy, interleave(at_key(f, "policyLogps"))),
                                       std::make_tuple("reference", &reference, interleave(at_key(f, "referenceLogps")))}) {
    const SequenceLogpsResult r = sequence_logps(*state, batch, /*adapter=*/true);
    bool ok = r.logps.numel() == static_cast<int64_t>(expected.size());
    std::string detail;
    for (int64_t i = 0; ok && i < r.logps.numel(); ++i) {
      const double got = r.logps[i].item<double>();
      if (!close_scaled(got, expected[i], 1e-5) || r.tokens[i].item<double>() != counts[i]) {
        ok = false;
        detail = "row " + std::to_string(i) + ": " + num(got) + " vs " + num(expected[i]);
      }
    }
    check(ck, ok, std::string("DPO: sequence log-probs of the ") + name + " (rel 1e-5) and label counts", detail);
    if (state == &reference) ref_logps.assign(r.logps.data_ptr<double>(), r.logps.data_ptr<double>() + r.logps.numel());
  }
  double logp_scale = 0;
  for (double x : interleave(at_key(f, "policyLogps"))) logp_scale = std::max(logp_scale, std::abs(x));
  for (const auto& t : at_key(f, "trl").array) {
    PreferenceStepOptions o;
    o.ref_logps = ref_logps;
    o.beta = at_key(t, "beta").number;
    o.loss_type = preference_loss_from_string(at_key(t, "lossType").string);
    o.loss_scale = 1.0 / static_cast<double>(P);  // TRL's loss is the mean over the pairs
    const PreferenceStepResult r = preference_step(policy, batch, o);
    const std::string what = "DPO " + at_key(t, "lossType").string + " beta " + num(o.beta);
    const double rs = o.beta * logp_scale;
    const double chosen = r.chosen_rewards.mean().item<double>(), rejected = r.rejected_rewards.mean().item<double>();
    const bool ok = close_scaled(r.loss_sum / P, at_key(t, "loss").number, 1e-5) &&
                    close_scaled(chosen, at_key(t, "rewardsChosen").number, 1e-5, rs) &&
                    close_scaled(rejected, at_key(t, "rewardsRejected").number, 1e-5, rs);
    check(ck, ok, what + ": loss and mean rewards (rel 1e-5)",
          "loss " + num(r.loss_sum / P) + " vs " + num(at_key(t, "loss").number) + ", rewards " + num(chosen) + " / " + num(rejected));
    if (const JsonValue* norms = t.find("gradNorms")) {
      std::map<std::string, double> got;
      for (const auto& [n, g] : grad_norms(policy)) got[n] = g;
      bool same = true;
      std::string detail;
      for (const auto& [n, g] : norms->object) {
        auto it = got.find(n);
        if (it == got.end() || !close_scaled(it->second, g.number, 1e-4)) {
          same = false;
          detail = n + ": " + (it == got.end() ? std::string("missing") : num(it->second)) + " vs " + num(g.number);
          break;
        }
      }
      check(ck, same, what + ": policy gradient norms (rel 1e-4)", detail);
    }
    zero_grad(policy);
  }
  const JsonValue& ls = at_key(f, "labelSmoothing");
  PreferenceStepOptions o;
  o.ref_logps = ref_logps;
  o.beta = at_key(ls, "beta").number;
  o.label_smoothing = at_key(ls, "labelSmoothing").number;
  const PreferenceStepResult r = preference_step(policy, batch, o);
  check(ck, close_scaled(r.loss_sum / P, at_key(ls, "loss").number, 1e-5), "DPO sigmoid with label smoothing: loss (rel 1e-5)",
        num(r.loss_sum / P) + " vs " + num(at_key(ls, "loss").number));
}

// A file written by Python's safetensors (every dtype) read, written back by the engine and read again: same names,
// dtypes, shapes, bytes and metadata.
void check_safetensors(Checks& ck, const std::string& root) {
  const std::string src = root + "/test/fixtures/safetensors/python-all-dtypes.safetensors";
  auto in = SafetensorsFile::open(src);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& e : in->entries()) tensors.emplace_back(e.name, in->get(e.name));
  char tmpl[] = "/tmp/sftkit-engine-tests-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (dir == nullptr) throw_io("mkdtemp failed");
  const std::string out = std::string(dir) + "/round-trip.safetensors";
  save_safetensors(out, tensors, in->metadata());
  auto again = SafetensorsFile::open(out);
  bool same = again->entries().size() == in->entries().size() && again->metadata() == in->metadata();
  std::string detail = same ? "" : "entry count or metadata differ";
  for (const auto& e : in->entries()) {
    if (!same) break;
    if (!again->has(e.name)) {
      same = false;
      detail = e.name + " missing";
      break;
    }
    const auto& f = again->entry(e.name);
    const at::Tensor a = in->get(e.name), b = again->get(e.name);
    if (f.dtype != e.dtype || f.shape != e.shape || !at::equal(a, b)) {
      same = false;
      detail = e.name + " differs";
    }
  }
  std::remove(out.c_str());
  rmdir(dir);
  check(ck, same, "safetensors round trip: " + std::to_string(in->entries().size()) + " tensors of every dtype, and metadata", detail);
}

// Frozen base formats (engine/frozen_weights.h) against scripts/gen-fixtures/base_dtype.py: the stored form of every
// 2-D weight of tiny-llama and tiny-gpt2 (engine [out, in] layout) and of two synthetic weights (over 256 blocks; a
// zero row and a zero block) bit for bit, the codebooks, and the dequantised weights of the CPU loops, the ATen
// twin and the embedding gather all equal to the reference's.
void check_frozen_formats(Checks& ck, const std::string& root) {
  auto ref = SafetensorsFile::open(root + "/test/fixtures/base-dtype/quantized.safetensors");
  const auto& code = nf4_codebook();
  const auto& map8 = dynamic_map8();
  check(ck, at::equal(ref->get("nf4_codebook"), at::tensor(at::ArrayRef<float>(code.data(), 16))) &&
                at::equal(ref->get("dynamic_map"), at::tensor(at::ArrayRef<float>(map8.data(), 256))),
        "frozen formats: the NF4 codebook (QLoRA's) and the dynamic 8-bit map equal the reference's", "");
  std::vector<std::pair<std::string, at::Tensor>> weights;  // fixture prefix -> source [out, in]
  for (const char* model : {"tiny-llama", "tiny-gpt2"}) {
    const std::string dir = root + "/test/fixtures/models/" + model;
    auto m = load_causal_lm(dir, spec_from_config(dir), ModelOptions{}, false);
    for (ParamRef& p : m->parameters()) {
      if (p.tensor->dim() == 2) weights.emplace_back(std::string(model).substr(5) + "/" + p.name, p.tensor->detach().clone());
    }
  }
  for (const char* name : {"synthetic/big.weight", "synthetic/zeros.weight"}) {
    weights.emplace_back(name, ref->get(std::string(name) + ".source"));
  }
  int stored_same = 0, dequant_same = 0;
  std::string detail;
  auto same = [&](const at::Tensor& a, const std::string& key) {
    const at::Tensor b = ref->get(key);
    const bool eq = a.sizes() == b.reshape(a.sizes()).sizes() && at::equal(a.contiguous().view(-1), b.contiguous().view(-1));
    if (!eq && detail.empty()) detail = key + " differs";
    return eq;
  };
  for (const auto& [prefix, w] : weights) {
    const FrozenWeight i8 = quantize_weight(w, {BaseDtype::kInt8, false});
    const FrozenWeight n4 = quantize_weight(w, {BaseDtype::kNf4, false});
    const FrozenWeight dq = quantize_weight(w, {BaseDtype::kNf4, true});
    bool ok = same(i8.data, prefix + ".int8.q") & same(i8.scales, prefix + ".int8.scale") & same(n4.data, prefix + ".nf4.q") &
              same(n4.scales, prefix + ".nf4.absmax") & same(dq.data, prefix + ".nf4dq.q") &
              same(dq.scales, prefix + ".nf4dq.absmax_q") & same(dq.scales2, prefix + ".nf4dq.absmax2") &
              same(at::full({1}, dq.offset, at::kFloat), prefix + ".nf4dq.offset");
    for (bool dq_on : {false, true}) {  // the ATen form of the nf4 quantisation gives the same bits
      const FrozenWeight a = quantize_weight(w, {BaseDtype::kNf4, dq_on}, /*aten_only=*/true);
      const FrozenWeight& c = dq_on ? dq : n4;
      const bool eq = at::equal(a.data, c.data) && at::equal(a.scales, c.scales) &&
                      (!dq_on || (at::equal(a.scales2, c.scales2) && a.offset == c.offset));
      if (!eq && detail.empty()) detail = prefix + ": the ATen nf4 quantisation differs from the CPU loop";
      ok = ok && eq;
    }
    stored_same += ok;
    // Dequantised: the CPU loops, the ATen twin and gather_rows agree bitwise; nf4 + double quant equals the
    // reference's dequantised weight; int8 and nf4 equal q * scale computed here from the stored form.
    bool dok = true;
    for (const FrozenWeight* f : {&i8, &n4, &dq}) {
      at::Tensor a = at::empty({f->rows, f->cols}), b = at::empty({f->rows, f->cols});
      dequantize_rows(*f, 0, f->rows, a);
      dequantize_rows_aten(*f, 0, f->rows, b);
      at::Tensor rows = at::arange(f->rows - 1, -1, -1, at::kLong);  // every row, reversed
      dok = dok && at::equal(a, b) && at::equal(gather_rows(*f, rows), a.flip(0));
      // Every kernel of this CPU, fp32 and bf16 out (bf16: the fp32 values rounded to nearest even), whole and a slice.
      for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
        const at::Tensor want = a.to(t);
        for (const std::string& kernel : f == &i8 ? std::vector<std::string>{""} : nf4_cpu_kernels(t)) {
          at::Tensor h = at::empty({f->rows, f->cols}, t);
          dequantize_rows(*f, 0, f->rows, h, kernel);
          dok = dok && at::equal(h, want);
          if (f->rows > 3) {
            at::Tensor part = at::empty({2, f->cols}, t);
            dequantize_rows(*f, 1, 2, part, kernel);
            dok = dok && at::equal(part, want.narrow(0, 1, 2));
          }
        }
      }
      if (f == &dq) dok = dok && same(a, prefix + ".nf4dq.dequant");
      if (f == &i8) dok = dok && at::equal(a, i8.data.to(at::kFloat) * i8.scales.unsqueeze(1));
    }
    dequant_same += dok;
    if (!dok && detail.empty()) detail = prefix + ": dequantised weights differ";
  }
  const std::string n = std::to_string(weights.size());
  std::string kernels;
  for (const std::string& k : nf4_cpu_kernels(at::kFloat)) kernels += (kernels.empty() ? "" : ", ") + k;
  std::printf("     (nf4 CPU kernels here: %s)\n", kernels.c_str());
  check(ck, stored_same == static_cast<int>(weights.size()), "frozen formats: int8 / nf4 / nf4 + double quant of " + n + " weights equal the reference bit for bit (nf4: CPU loop and ATen ops)", detail);
  check(ck, dequant_same == static_cast<int>(weights.size()), "frozen formats: dequantised weights (CPU loops, every nf4 kernel of this CPU, ATen, row gather; bf16: the fp32 values rounded) of " + n + " weights agree bitwise", detail);
}

}  // namespace
}  // namespace sft

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <repository root>\n", argv[0]);
    return 2;
  }
  const std::string root = argv[1];
  at::manual_seed(0);
  sft::Checks ck;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    sft::check_safetensors(ck, root);
    sft::check_cross_entropy(ck, root);
    sft::check_distillation(ck, root);
    sft::check_model(ck, root, "tiny-llama");
    sft::check_model(ck, root, "tiny-gpt2");
    sft::check_dpo(ck, root);
    sft::check_frozen_formats(ck, root);
  } catch (...) {
    const sft::ErrorInfo e = sft::describe_current_exception();
    std::printf("FAIL %s: %s\n", e.code.c_str(), e.message.c_str());
    return 2;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("engine: %d passed, %d failed (%.1f s)\n", ck.passed, ck.failed, s);
  return ck.failed == 0 ? 0 : 1;
}

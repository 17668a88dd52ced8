// Implements args.h: the argument readers shared by every binding file (they were scattered over the model, loss,
// safetensors, diagnostics, workers, distributed and typed-array files), and the model spec and batch readers.
#include "args.h"

#include <cmath>

#include "engine/errors.h"

namespace sft {

Napi::Object object_arg(const Napi::CallbackInfo& info, size_t i, const char* name, bool optional) {
  if (info.Length() <= i || info[i].IsUndefined()) {
    if (optional) return Napi::Object::New(info.Env());
    throw_bad_argument(std::string(name) + " is required");
  }
  if (!info[i].IsObject()) throw_bad_argument(std::string(name) + " must be an object");
  return info[i].As<Napi::Object>();
}

Napi::Object options_arg(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || info[index].IsUndefined()) return Napi::Object::New(info.Env());
  if (!info[index].IsObject()) throw_bad_argument("options must be an object");
  return info[index].As<Napi::Object>();
}

std::string string_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) throw_bad_argument(std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

std::string nonempty_string(const Napi::Value& v, const char* name) {
  if (!v.IsString()) throw_bad_argument(std::string(name) + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.empty()) throw_bad_argument(std::string(name) + " must not be empty");
  return s;
}

double num_field(const Napi::Object& o, const char* key, double fallback, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) throw_bad_argument(std::string(key) + " is required");
    return fallback;
  }
  if (!v.IsNumber()) throw_bad_argument(std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw_bad_argument(std::string(key) + " must be finite");
  return d;
}

int64_t int_field(const Napi::Object& o, const char* key, int64_t fallback, bool required) {
  double d = num_field(o, key, static_cast<double>(fallback), required);
  if (d != std::floor(d)) throw_bad_argument(std::string(key) + " must be an integer");
  return static_cast<int64_t>(d);
}

bool bool_field(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw_bad_argument(std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

double number_option(const Napi::Object& o, const char* key, double fallback, const std::string& prefix) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw_bad_argument(prefix + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

int64_t ranged_int(const Napi::Object& o, const char* key, double lo, double hi, const std::string& prefix) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw_bad_argument(prefix + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < lo || d > hi || d != static_cast<int64_t>(d)) throw_bad_argument(prefix + key + " out of range");
  return static_cast<int64_t>(d);
}

std::string string_option(const Napi::Object& o, const char* key, const std::string& fallback) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw_bad_argument(std::string("options.") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> int_list(const Napi::Value& v, const char* name) {
  std::vector<int64_t> out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_int32_array) throw_bad_argument(std::string(name) + " must be an Int32Array or an array of integers");
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    for (size_t i = 0; i < a.ElementLength(); ++i) out.push_back(a[i]);
    return out;
  }
  if (!v.IsArray()) throw_bad_argument(std::string(name) + " must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) throw_bad_argument(std::string(name) + " must hold integers");
    double d = x.As<Napi::Number>().DoubleValue();
    if (d != std::floor(d)) throw_bad_argument(std::string(name) + " must hold integers");
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

std::vector<int64_t> shape_arg(const Napi::Value& v, const char* name) {
  if (!v.IsArray()) throw_bad_argument(std::string(name) + " must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> shape;
  shape.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value d = a.Get(i);
    if (!d.IsNumber()) throw_bad_argument(std::string(name) + "[" + std::to_string(i) + "] must be a number");
    double x = d.As<Napi::Number>().DoubleValue();
    if (x < 0 || x != static_cast<double>(static_cast<int64_t>(x)))
      throw_bad_argument(std::string(name) + "[" + std::to_string(i) + "] must be a non-negative integer");
    shape.push_back(static_cast<int64_t>(x));
  }
  return shape;
}

int thread_count_arg(const Napi::Value& v, const char* name) {
  if (v.IsUndefined() || v.IsNull()) return 0;
  if (!v.IsNumber()) throw_bad_argument(std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<int>(d) || d < 0 || d > 4096) throw_bad_argument(std::string(name) + " must be an integer in [0, 4096]");
  return static_cast<int>(d);
}

int threads_option(const Napi::CallbackInfo& info, size_t index) {
  return thread_count_arg(options_arg(info, index).Get("threads"), "options.threads");
}

namespace {

std::vector<double> number_list(const Napi::Value& v, const char* name) {
  std::vector<double> out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsArray()) throw_bad_argument(std::string(name) + " must be an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) throw_bad_argument(std::string(name) + " must hold numbers");
    out.push_back(x.As<Napi::Number>().DoubleValue());
  }
  return out;
}

// spec.ropes[i] (src/native/model-config.ts RopeSpec).
RopeSpec rope_arg(const Napi::Value& v) {
  if (!v.IsObject()) throw_bad_argument("spec.ropes must hold objects");
  Napi::Object o = v.As<Napi::Object>();
  RopeSpec r;
  r.type = string_option(o, "type", "default");
  r.theta = num_field(o, "theta", 10000.0);
  r.rotary_dim = int_field(o, "rotaryDim", 0);
  r.factor = num_field(o, "factor", 1.0);
  r.low_freq_factor = num_field(o, "lowFreqFactor", 1.0);
  r.high_freq_factor = num_field(o, "highFreqFactor", 4.0);
  r.original_max_positions = int_field(o, "originalMaxPositions", 0);
  r.attention_factor = num_field(o, "attentionFactor", 1.0);
  r.beta_fast = num_field(o, "betaFast", 32.0);
  r.beta_slow = num_field(o, "betaSlow", 1.0);
  r.truncate = bool_field(o, "truncate", true);
  r.short_factor = number_list(o.Get("shortFactor"), "spec.ropes[].shortFactor");
  r.long_factor = number_list(o.Get("longFactor"), "spec.ropes[].longFactor");
  return r;
}

}  // namespace

ModelSpec spec_arg(const Napi::Object& o) {
  ModelSpec s;
  Napi::Value arch = o.Get("arch");
  if (!arch.IsString()) throw_bad_argument("spec.arch must be a string");
  s.arch = arch.As<Napi::String>().Utf8Value();
  s.vocab_size = int_field(o, "vocabSize", 0, true);
  s.hidden_size = int_field(o, "hiddenSize", 0, true);
  s.intermediate_size = int_field(o, "intermediateSize", 0, true);
  s.num_layers = int_field(o, "numLayers", 0, true);
  s.num_heads = int_field(o, "numHeads", 0, true);
  s.num_kv_heads = int_field(o, "numKvHeads", 0, true);
  s.head_dim = int_field(o, "headDim", 0, true);
  s.max_positions = int_field(o, "maxPositions", 0, true);
  s.norm_eps = num_field(o, "normEps", 1e-6, true);
  s.rope_theta = num_field(o, "ropeTheta", 10000.0);
  s.tie_word_embeddings = bool_field(o, "tieWordEmbeddings", false);
  s.qkv_bias = bool_field(o, "qkvBias", false);
  s.o_bias = bool_field(o, "oBias", false);
  s.mlp_bias = bool_field(o, "mlpBias", false);
  s.qk_norm = bool_field(o, "qkNorm", false);
  Napi::Value ropes = o.Get("ropes");
  if (!ropes.IsUndefined() && !ropes.IsNull()) {
    if (!ropes.IsArray()) throw_bad_argument("spec.ropes must be an array");
    Napi::Array a = ropes.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) s.ropes.push_back(rope_arg(a.Get(i)));
  }
  s.layer_rope = int_list(o.Get("layerRope"), "spec.layerRope");
  s.sliding_window = int_field(o, "slidingWindow", 0);
  Napi::Value sliding = o.Get("slidingLayers");
  if (!sliding.IsUndefined() && !sliding.IsNull()) {
    if (!sliding.IsArray()) throw_bad_argument("spec.slidingLayers must be an array of booleans");
    Napi::Array a = sliding.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value x = a.Get(i);
      if (!x.IsBoolean()) throw_bad_argument("spec.slidingLayers must hold booleans");
      s.sliding_layers.push_back(x.As<Napi::Boolean>().Value());
    }
  }
  s.query_pre_attn_scalar = num_field(o, "queryPreAttnScalar", 0.0);
  s.attn_softcap = num_field(o, "attnSoftcap", 0.0);
  s.final_softcap = num_field(o, "finalSoftcap", 0.0);
  return s;
}

std::shared_ptr<PinnedBatch> batch_arg(const Napi::CallbackInfo& info, size_t i, bool with_labels) {
  Napi::Object o = object_arg(info, i, "batch", false);
  std::vector<int64_t> shape = shape_arg(o.Get("shape"), "batch.shape");
  if (shape.size() != 2) throw_bad_argument("batch.shape must be [B, T]");
  auto pb = std::make_shared<PinnedBatch>();
  pb->input.rows = shape[0];
  pb->input.cols = shape[1];
  pb->ids = PinnedArray(o.Get("inputIds"), shape, "batch.inputIds");
  pb->input.input_ids = pb->ids.tensor();
  Napi::Value labels = o.Get("labels");
  if (with_labels || (!labels.IsUndefined() && !labels.IsNull())) {
    pb->labels = PinnedArray(labels, shape, "batch.labels");
    pb->input.labels = pb->labels.tensor();
  }
  Napi::Value mask = o.Get("attentionMask");
  if (!mask.IsUndefined() && !mask.IsNull()) {
    pb->mask = PinnedArray(mask, shape, "batch.attentionMask");
    pb->input.attention_mask = pb->mask.tensor();
  }
  Napi::Value pos = o.Get("positionIds");
  if (!pos.IsUndefined() && !pos.IsNull()) {
    pb->pos = PinnedArray(pos, shape, "batch.positionIds");
    pb->input.position_ids = pb->pos.tensor();
  }
  Napi::Value docs = o.Get("docLengths");
  if (!docs.IsUndefined() && !docs.IsNull()) {
    if (!docs.IsArray()) throw_bad_argument("batch.docLengths must be an array (one Int32Array per row)");
    Napi::Array a = docs.As<Napi::Array>();
    for (uint32_t r = 0; r < a.Length(); ++r) pb->input.doc_lengths.push_back(int_list(a.Get(r), "batch.docLengths[row]"));
  }
  return pb;
}

}  // namespace sft

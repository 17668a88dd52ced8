// The one set of JS argument readers every binding file uses: objects, strings, numbers, integers, booleans, integer
// lists, shapes and thread counts, read on the JS thread before any work is queued. Each throws SFTKIT_BAD_ARGUMENT
// (an sft::Error, engine/errors.h) with the message named at the reader, so every entry point keeps its exact wording.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/model_batch.h"
#include "tensor_io.h"

namespace sft {

// info[i] as an object: missing/undefined -> an empty object when optional, else "<name> is required"; anything else
// than an object -> "<name> must be an object".
Napi::Object object_arg(const Napi::CallbackInfo& info, size_t i, const char* name, bool optional);
// info[index] as an options object: missing/undefined -> an empty object; not an object -> "options must be an object".
Napi::Object options_arg(const Napi::CallbackInfo& info, size_t index);
// info[i] as a string: "<name> must be a string".
std::string string_arg(const Napi::CallbackInfo& info, size_t i, const char* name);
// v as a non-empty string: "<name> must be a string" / "<name> must not be empty".
std::string nonempty_string(const Napi::Value& v, const char* name);

// o[key] as a finite number: undefined/null -> fallback (or "<key> is required"); "<key> must be a number";
// "<key> must be finite".
double num_field(const Napi::Object& o, const char* key, double fallback, bool required = false);
// num_field, then "<key> must be an integer".
int64_t int_field(const Napi::Object& o, const char* key, int64_t fallback, bool required = false);
// o[key] as a boolean: undefined/null -> fallback; "<key> must be a boolean".
bool bool_field(const Napi::Object& o, const char* key, bool fallback);
// o[key] as a number (no range check): undefined -> fallback; anything else than a number ->
// "<prefix><key> must be a number".
double number_option(const Napi::Object& o, const char* key, double fallback, const std::string& prefix);
// o[key] as an integer in [lo, hi]: "<prefix><key> must be a number" / "<prefix><key> out of range".
int64_t ranged_int(const Napi::Object& o, const char* key, double lo, double hi, const std::string& prefix);
// o[key] as a string: undefined -> fallback; "options.<key> must be a string".
std::string string_option(const Napi::Object& o, const char* key, const std::string& fallback);

// An Int32Array or an array of integers (undefined/null -> empty): "<name> must be an Int32Array or an array of
// integers" / "<name> must be an array of integers" / "<name> must hold integers".
std::vector<int64_t> int_list(const Napi::Value& v, const char* name);
// A shape: an array of non-negative integers ("<name> must be an array of integers", "<name>[i] must be a number",
// "<name>[i] must be a non-negative integer").
std::vector<int64_t> shape_arg(const Napi::Value& v, const char* name);
// A thread count (undefined/null or 0 = keep the current setting): "<name> must be a number" / "<name> must be an
// integer in [0, 4096]".
int thread_count_arg(const Napi::Value& v, const char* name);
// options_arg(info, index).threads as a thread count named "options.threads".
int threads_option(const Napi::CallbackInfo& info, size_t index);

// A model spec { arch, vocabSize, hiddenSize, ... } (src/native/model-config.ts's ModelSpec) as the engine's ModelSpec.
ModelSpec spec_arg(const Napi::Object& o);

// The pinned arrays of one batch (created on the JS thread, released with the worker on the JS thread) and the
// engine's view of them.
struct PinnedBatch {
  PinnedArray ids, labels, mask, pos;
  BatchInput input;
};
// info[i] as a batch { shape: [B, T], inputIds, labels?, attentionMask?, positionIds?, docLengths? }; labels are
// required when with_labels. Typed arrays are pinned zero-copy; the engine validates values (model_batch.h).
std::shared_ptr<PinnedBatch> batch_arg(const Napi::CallbackInfo& info, size_t i, bool with_labels);

}  // namespace sft

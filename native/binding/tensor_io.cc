// Conversions between JS typed arrays and tensors (see tensor_io.h).
#include "tensor_io.h"

#include <ATen/ops/from_blob.h>

#include <string>

#include "engine/errors.h"

namespace sft {
namespace {

at::ScalarType scalar_type_of(napi_typedarray_type t, const char* name) {
  switch (t) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_int32_array: return at::kInt;
    case napi_uint8_array: return at::kByte;
    case napi_int8_array: return at::kChar;
    case napi_int16_array: return at::kShort;
    case napi_bigint64_array: return at::kLong;
    default: throw_bad_argument(std::string(name) + ": unsupported typed array type");
  }
}

}  // namespace

PinnedArray::PinnedArray(const Napi::Value& value, const std::vector<int64_t>& shape, const char* name) {
  if (!value.IsTypedArray()) throw_bad_argument(std::string(name) + " must be a typed array");
  Napi::TypedArray ta = value.As<Napi::TypedArray>();
  at::ScalarType st = scalar_type_of(ta.TypedArrayType(), name);
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (numel != static_cast<int64_t>(ta.ElementLength())) {
    throw_bad_argument(std::string(name) + ": shape holds " + std::to_string(numel) + " elements but the array has " +
                       std::to_string(ta.ElementLength()));
  }
  ref_ = Napi::Persistent(ta.As<Napi::Object>());
  uint8_t* base = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  // Typed arrays are always aligned to their element size, so a zero-copy view is safe.
  tensor_ = at::from_blob(base, shape, at::TensorOptions().dtype(st));
}

Napi::Value tensor_to_typed_array(Napi::Env env, at::Tensor t) {
  t = t.contiguous();
  napi_typedarray_type type;
  switch (t.scalar_type()) {
    case at::kFloat: type = napi_float32_array; break;
    case at::kDouble: type = napi_float64_array; break;
    case at::kInt: type = napi_int32_array; break;
    case at::kByte: type = napi_uint8_array; break;
    case at::kBool: t = t.to(at::kByte); type = napi_uint8_array; break;
    case at::kChar: type = napi_int8_array; break;
    case at::kShort: type = napi_int16_array; break;
    case at::kLong: type = napi_bigint64_array; break;
    default: t = t.to(at::kFloat); type = napi_float32_array; break;
  }
  if (!t.device().is_cpu()) t = t.cpu();
  const size_t bytes = t.numel() * t.element_size();
  Napi::ArrayBuffer buffer;
  if (bytes == 0) {
    buffer = Napi::ArrayBuffer::New(env, 0);
  } else {
    auto* holder = new at::Tensor(t);
    buffer = Napi::ArrayBuffer::New(env, holder->data_ptr(), bytes,
                                    [](Napi::Env, void*, at::Tensor* h) { delete h; }, holder);
  }
  napi_value out;
  NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, type, t.numel(), buffer, 0, &out), Napi::Value());
  return Napi::Value(env, out);
}

Napi::Array shape_to_js(Napi::Env env, at::IntArrayRef shape) {
  Napi::Array a = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(shape[i])));
  return a;
}

}  // namespace sft

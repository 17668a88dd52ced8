// Typed arrays <-> at::Tensor at the N-API boundary (shapes are read by args.h).
// Inputs are wrapped zero-copy (at::from_blob) while a Napi::Reference keeps the JS buffer alive;
// outputs hand a contiguous tensor's storage to JS as an external ArrayBuffer (the tensor is freed by the GC).
#pragma once

#include <ATen/core/Tensor.h>
#include <napi.h>

#include <cstdint>
#include <vector>

namespace sft {

// A JS typed array pinned for the lifetime of this object, viewed as a tensor of `shape`.
// Create and destroy on the JS thread; the tensor may be read from a worker thread meanwhile.
class PinnedArray {
 public:
  PinnedArray() = default;
  PinnedArray(const Napi::Value& value, const std::vector<int64_t>& shape, const char* name);
  const at::Tensor& tensor() const { return tensor_; }
  bool empty() const { return !tensor_.defined(); }

 private:
  Napi::ObjectReference ref_;
  at::Tensor tensor_;
};

// Copy-free conversion of a tensor to the matching JS typed array (made contiguous first).
Napi::Value tensor_to_typed_array(Napi::Env env, at::Tensor t);

// Shape of a tensor as a JS array.
Napi::Array shape_to_js(Napi::Env env, at::IntArrayRef shape);

}  // namespace sft

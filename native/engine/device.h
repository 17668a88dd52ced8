// Device placement shared by every entry point: resolving "auto" | "cpu" | "cuda", host -> device copies of batches
// (pinned host memory and non-blocking copies on CUDA), and bf16 autocast scopes (thread-local state, so set on the
// thread that runs the work and captured/restored by code that recomputes later, e.g. checkpointed()).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>

namespace sft {

// "cpu" | "cuda" | "cuda:N" | "auto" (cuda when this libtorch has CUDA and a device is visible, else cpu; "cuda" is
// cuda:0). CUDA without CUDA, or N past the visible GPUs -> SFTKIT_UNSUPPORTED; anything else -> SFTKIT_BAD_ARGUMENT.
at::Device resolve_device(const std::string& name);

// Makes a CUDA `device` the calling thread's current one (a model's compute thread on cuda:N, so that nothing of it
// opens a context on GPU 0); nothing for the CPU.
void use_device_on_this_thread(at::Device device);

// t on `device`. A CPU tensor bound for CUDA goes through pinned (page-locked) host memory with a non-blocking copy
// (ordered on the current stream, so later kernels see it); CPU -> CPU returns t itself.
at::Tensor to_device(const at::Tensor& t, at::Device device);

// Autocast (mixed precision) state of one device type on the calling thread.
struct AutocastState {
  at::DeviceType device = at::kCPU;
  bool enabled = false;
  at::ScalarType dtype = at::kBFloat16;
  static AutocastState current(at::DeviceType device);
};

// Enables `state` on this thread for the scope (when state.enabled; otherwise nothing changes) and restores the
// previous state afterwards; the cast cache is cleared when the outermost scope ends.
class AutocastScope {
 public:
  explicit AutocastScope(const AutocastState& state);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  AutocastState previous_;
  bool active_ = false;
};

}  // namespace sft

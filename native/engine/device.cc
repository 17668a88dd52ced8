// Implements device.h over ATen's context, pinned-memory allocator and autocast TLS.
#include "device.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <string>

#include "errors.h"

namespace sft {

at::Device resolve_device(const std::string& name) {
  if (name == "cpu") return at::Device(at::kCPU);
  const bool cuda = at::hasCUDA() && at::getNumGPUs() > 0;
  if (name == "auto") return cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  if (name == "cuda") {
    if (!cuda) throw_unsupported("device 'cuda' requested but this libtorch has no CUDA support (or no GPU is visible)");
    return at::Device(at::kCUDA, 0);
  }
  // "cuda:N": one GPU of several (a data-parallel rank's, by LOCAL_RANK).
  if (name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() <= 9 &&
      name.find_first_not_of("0123456789", 5) == std::string::npos) {
    const int index = std::stoi(name.substr(5));
    if (!cuda) throw_unsupported("device '" + name + "' requested but this libtorch has no CUDA support (or no GPU is visible)");
    if (index >= static_cast<int>(at::getNumGPUs())) {
      throw_unsupported("device '" + name + "' requested but " + std::to_string(at::getNumGPUs()) + " GPU(s) are visible");
    }
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw_bad_argument("options.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got '" + name + "'");
}

void use_device_on_this_thread(at::Device device) {
  if (!device.is_cuda()) return;
  c10::impl::getDeviceGuardImpl(device.type())->setDevice(device);
}

at::Tensor to_device(const at::Tensor& t, at::Device device) {
  if (t.device() == device) return t;
  if (t.is_cpu() && device.is_cuda()) return t.contiguous().pin_memory().to(device, /*non_blocking=*/true);
  return t.to(device);
}

AutocastState AutocastState::current(at::DeviceType device) {
  AutocastState s;
  s.device = device;
  s.enabled = at::autocast::is_autocast_enabled(device);
  s.dtype = at::autocast::get_autocast_dtype(device);
  return s;
}

AutocastScope::AutocastScope(const AutocastState& state) {
  if (!state.enabled) return;
  previous_ = AutocastState::current(state.device);
  at::autocast::set_autocast_enabled(state.device, true);
  at::autocast::set_autocast_dtype(state.device, state.dtype);
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(previous_.device, previous_.enabled);
  at::autocast::set_autocast_dtype(previous_.device, previous_.dtype);
}

}  // namespace sft

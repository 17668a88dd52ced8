// NativeProcessGroup, the JS face of one c10d group (engine/distributed.h): static connect({ masterAddr, masterPort,
// rank, worldSize, timeoutMs, backend, device }) -> Promise<NativeProcessGroup> (backend 'gloo' (default) or 'nccl'
// with `device` the CUDA index of this rank), then allReduce(Float64Array) -> Promise<Float64Array> (sum over ranks),
// barrier() -> Promise, rank / worldSize / backend / device getters, close().
#pragma once

#include <napi.h>

#include <memory>

#include "engine/distributed.h"

namespace sft {

// Defines the NativeProcessGroup class.
Napi::Function define_native_process_group(Napi::Env env);

// The group behind a NativeProcessGroup object (throws SFTKIT_BAD_ARGUMENT for anything else).
std::shared_ptr<DistGroup> unwrap_process_group(const Napi::Value& v);

}  // namespace sft

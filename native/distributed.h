// Data-parallel communication on libtorch's own c10d: a TCPStore rendezvous and a ProcessGroupGloo (CPU).
// The JS object NativeProcessGroup owns one group; models all-reduce their gradients through it in buckets.
#pragma once

#include <ATen/core/Tensor.h>
#include <napi.h>

#include <memory>
#include <vector>

namespace sft {

struct DistGroup;  // defined in distributed.cc (holds the c10d objects; Gloo types stay out of other TUs)

// Defines NativeProcessGroup: static connect({ masterAddr, masterPort, rank, worldSize, timeoutMs, threads })
// -> Promise<NativeProcessGroup>, then allReduce(Float64Array) -> Promise<Float64Array> (sum over ranks),
// barrier() -> Promise, rank / worldSize getters, close().
Napi::Function define_native_process_group(Napi::Env env);

// The group behind a NativeProcessGroup object (throws SFTKIT_BAD_ARGUMENT for anything else).
std::shared_ptr<DistGroup> unwrap_process_group(const Napi::Value& v);

// Shapes: any. Sums `tensors` in place over all ranks, flattened into fp32/same-dtype buckets of about
// `bucket_bytes` each (one all-reduce per bucket). Runs on a worker thread; throws on failure or timeout.
void all_reduce_sum(DistGroup& group, std::vector<at::Tensor>& tensors, int64_t bucket_bytes);

}  // namespace sft

// Data-parallel communication on libtorch's own c10d: a TCPStore rendezvous and a ProcessGroupGloo (CPU), or a
// ProcessGroupNCCL on one GPU per rank when the addon was built with NCCL (SFTKIT_WITH_NCCL: a CUDA libtorch with
// c10d NCCL and nccl.h found by CMakeLists.txt). The JS object NativeProcessGroup owns one group; models all-reduce
// their gradients through it in buckets.
#pragma once

#include <ATen/core/Tensor.h>
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

namespace sft {

struct DistGroup;  // defined in distributed.cc (holds the c10d objects; Gloo/NCCL types stay out of other TUs)

// Whether this build has the NCCL path (ProcessGroupNCCL), and the nccl.h version it was compiled against ("" if not).
bool has_nccl();
std::string nccl_header_version();

// Defines NativeProcessGroup: static connect({ masterAddr, masterPort, rank, worldSize, timeoutMs, backend, device })
// -> Promise<NativeProcessGroup> (backend 'gloo' (default) or 'nccl' with `device` the CUDA index of this rank), then
// allReduce(Float64Array) -> Promise<Float64Array> (sum over ranks), barrier() -> Promise, rank / worldSize /
// backend / device getters, close().
Napi::Function define_native_process_group(Napi::Env env);

// The group behind a NativeProcessGroup object (throws SFTKIT_BAD_ARGUMENT for anything else).
std::shared_ptr<DistGroup> unwrap_process_group(const Napi::Value& v);

// Shapes: any. Sums `tensors` in place over all ranks, flattened into fp32/same-dtype buckets of about
// `bucket_bytes` each (one all-reduce per bucket). Runs on a worker thread; throws on failure or timeout. On an NCCL
// group the tensors must be on the group's GPU; the buckets stay there (ordered on the current stream, the host does
// not wait for them).
void all_reduce_sum(DistGroup& group, std::vector<at::Tensor>& tensors, int64_t bucket_bytes);

}  // namespace sft

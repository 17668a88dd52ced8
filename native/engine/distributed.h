// Data-parallel communication on libtorch's own c10d: a TCPStore rendezvous and a ProcessGroupGloo (CPU), or a
// ProcessGroupNCCL on one GPU per rank when the addon was built with NCCL (SFTKIT_WITH_NCCL: a CUDA libtorch with
// c10d NCCL and nccl.h found by CMakeLists.txt, set on this file's .cc alone). A DistGroup is one group; models
// all-reduce their gradients through it in buckets. The JS object NativeProcessGroup (binding/distributed_js.cc)
// owns one.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sft {

struct DistGroup;  // defined in distributed.cc (holds the c10d objects; Gloo/NCCL types stay out of other TUs)

// Whether this build has the NCCL path (ProcessGroupNCCL), and the nccl.h version it was compiled against ("" if not).
bool has_nccl();
std::string nccl_header_version();

struct ConnectOptions {
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int rank = 0;
  int world_size = 1;
  int64_t timeout_ms = 60000;
  bool nccl = false;
  int device = 0;  // NCCL: this rank's CUDA device index
};

// Rendezvous at master_addr:master_port and the group (Gloo, or NCCL on cuda:device with its communicator made
// now). Blocks until every rank has arrived or the timeout; throws SFTKIT_NATIVE / SFTKIT_UNSUPPORTED with the rank.
std::shared_ptr<DistGroup> connect_group(const ConnectOptions& options);

// What a group is: its rank, size, backend and where its collectives' tensors live.
struct GroupInfo {
  int rank = 0;
  int world_size = 1;
  bool nccl = false;
  at::Device device{at::kCPU};
};
GroupInfo group_info(const DistGroup& group);

// Shape [N] (any dtype Gloo/NCCL reduce): the sum over ranks, a new CPU tensor (values is not modified).
at::Tensor all_reduce_values(DistGroup& group, const at::Tensor& values);

// Waits for every rank (at most the group's timeout).
void barrier(DistGroup& group);

// Shapes: any. Sums `tensors` in place over all ranks, flattened into fp32/same-dtype buckets of about
// `bucket_bytes` each (one all-reduce per bucket). Runs on a worker thread; throws on failure or timeout. On an NCCL
// group the tensors must be on the group's GPU; the buckets stay there (ordered on the current stream, the host does
// not wait for them).
void all_reduce_sum(DistGroup& group, std::vector<at::Tensor>& tensors, int64_t bucket_bytes);

}  // namespace sft

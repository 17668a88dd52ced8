// Implements distributed.h (no N-API) with c10d::TCPStore + c10d::ProcessGroupGloo, and c10d::ProcessGroupNCCL where
// the build has it (SFTKIT_WITH_NCCL, set on this file alone by CMakeLists.txt). libuv is disabled for the store
// (libtorch's exported libuv clashes with Node's), and Gloo/NCCL objects are only held through c10d::Backend.
#include "distributed.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef SFTKIT_WITH_NCCL
#include <nccl.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <string>

#include "errors.h"

namespace sft {

struct DistGroup {
  int rank = 0;
  int world_size = 1;
  std::chrono::milliseconds timeout{60000};
  bool nccl = false;
  at::Device device{at::kCPU};  // where the collectives' tensors live: the CPU (Gloo) or this rank's GPU (NCCL)
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> pg;

  DistGroup() = default;
  DistGroup(const DistGroup&) = delete;
  DistGroup& operator=(const DistGroup&) = delete;
  ~DistGroup() {
    // ProcessGroupNCCL wants an explicit shutdown (its communicators and watchdog) before it is destroyed.
    if (nccl && pg) {
      try {
        pg->shutdown();
      } catch (...) {
      }
    }
  }
};

bool has_nccl() {
#ifdef SFTKIT_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::string nccl_header_version() {
#ifdef SFTKIT_WITH_NCCL
  return std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) + "." + std::to_string(NCCL_PATCH);
#else
  return "";
#endif
}

namespace {


bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

std::shared_ptr<DistGroup> connect_group(const ConnectOptions& o) {
  auto g = std::make_shared<DistGroup>();
  g->rank = o.rank;
  g->world_size = o.world_size;
  g->timeout = std::chrono::milliseconds(o.timeout_ms);
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(o.master_port);
  so.isServer = o.rank == 0;
  so.numWorkers = static_cast<std::size_t>(o.world_size);
  so.waitWorkers = true;
  so.timeout = g->timeout;
  so.useLibUV = false;
  try {
    g->store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
  } catch (const std::exception& e) {
    throw Error(kCodeNative, "rank " + std::to_string(o.rank) + ": rendezvous at " + o.master_addr + ":" +
                                 std::to_string(o.master_port) + " failed (" + e.what() + ")");
  }
  if (o.nccl) {
#ifdef SFTKIT_WITH_NCCL
    if (!at::hasCUDA() || o.device >= static_cast<int>(at::getNumGPUs())) {
      throw Error(kCodeUnsupported, "rank " + std::to_string(o.rank) + ": NCCL on cuda:" + std::to_string(o.device) + " but " +
                                        std::to_string(at::hasCUDA() ? at::getNumGPUs() : 0) + " GPU(s) are visible");
    }
    g->nccl = true;
    g->device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(o.device));
    auto nopts = c10d::ProcessGroupNCCL::Options::create();
    nopts->timeout = g->timeout;
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, o.rank, o.world_size, nopts);
    pg->setBoundDeviceId(g->device);
    g->pg = pg;
    try {
      // The communicator now (its unique id goes through the store), so that a failure shows here, not mid-step.
      g->pg->eagerConnectSingleDevice(g->device);
    } catch (const std::exception& e) {
      throw Error(kCodeNative, "rank " + std::to_string(o.rank) + ": NCCL communicator on cuda:" + std::to_string(o.device) +
                                   " failed (" + e.what() + ")");
    }
    return g;
#else
    throw Error(kCodeUnsupported, "this addon was built without NCCL (a CUDA libtorch with c10d NCCL and nccl.h are needed at build time)");
#endif
  }
  auto opts = c10d::ProcessGroupGloo::Options::create(g->timeout);
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifname != nullptr && *ifname != '\0') {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  } else if (is_loopback(o.master_addr)) {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  opts->threads = 1;
  g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, o.rank, o.world_size, opts);
  return g;
}

namespace {

void run_all_reduce(DistGroup& g, std::vector<at::Tensor>& one) {
  c10d::AllreduceOptions ao;
  ao.reduceOp = c10d::ReduceOp::SUM;
  ao.timeout = g.timeout;
  auto work = g.pg->allreduce(one, ao);
  try {
    // NCCL: the current stream waits for the collective and the host goes on (a hang is ended by ProcessGroupNCCL's
    // watchdog after the timeout). Gloo: the host waits, at most the timeout.
    if (g.nccl) {
      work->wait();
    } else {
      work->wait(g.timeout);
    }
  } catch (const std::exception& e) {
    throw Error(kCodeNative, "rank " + std::to_string(g.rank) + " of " + std::to_string(g.world_size) +
                                 ": all-reduce failed — another rank is gone or timed out (" + e.what() + ")");
  }
}

}  // namespace

GroupInfo group_info(const DistGroup& g) { return GroupInfo{g.rank, g.world_size, g.nccl, g.device}; }

at::Tensor all_reduce_values(DistGroup& g, const at::Tensor& values) {
  // NCCL reduces device tensors: the numbers go to this rank's GPU and back (small: counts and sums of a step).
  std::vector<at::Tensor> one{g.nccl ? values.to(g.device) : values.clone()};
  run_all_reduce(g, one);
  return g.nccl ? one[0].to(at::kCPU) : one[0];
}

void barrier(DistGroup& g) {
  c10d::BarrierOptions bo;
  bo.timeout = g.timeout;
  if (g.nccl) bo.device_ids = {g.device.index()};
  auto work = g.pg->barrier(bo);
  work->wait(g.timeout);
}

void all_reduce_sum(DistGroup& g, std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  c10::NoGradGuard no_grad;
  // A Gloo group of one has nothing to do; an NCCL group of one still runs its collectives (bench/device/check.ts's
  // --nproc 1 over NCCL proves the path that way on one GPU).
  if ((g.world_size == 1 && !g.nccl) || tensors.empty()) return;
  if (g.nccl) {
    for (const auto& t : tensors) {
      if (t.device() != g.device) {
        throw Error(kCodeBadArgument, "all-reduce over NCCL on " + g.device.str() + ": a tensor is on " + t.device().str() +
                                          " (load the model with device '" + g.device.str() + "')");
      }
    }
  }
  size_t i = 0;
  while (i < tensors.size()) {
    // One bucket: consecutive tensors of one dtype up to bucket_bytes (at least one tensor).
    std::vector<at::Tensor> bucket{tensors[i]};
    int64_t bytes = tensors[i].numel() * tensors[i].element_size();
    size_t j = i + 1;
    while (j < tensors.size() && tensors[j].scalar_type() == tensors[i].scalar_type() &&
           bytes + tensors[j].numel() * tensors[j].element_size() <= bucket_bytes) {
      bytes += tensors[j].numel() * tensors[j].element_size();
      bucket.push_back(tensors[j++]);
    }
    std::vector<at::Tensor> parts;
    for (auto& t : bucket) parts.push_back(t.reshape({-1}));
    std::vector<at::Tensor> flat{at::cat(parts)};
    run_all_reduce(g, flat);
    int64_t off = 0;
    for (auto& t : bucket) {
      t.copy_(flat[0].narrow(0, off, t.numel()).view(t.sizes()));
      off += t.numel();
    }
    i = j;
  }
}

}  // namespace sft

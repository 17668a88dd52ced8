// Implements distributed.h with c10d::TCPStore + c10d::ProcessGroupGloo, and c10d::ProcessGroupNCCL where the build
// has it (SFTKIT_WITH_NCCL, set by CMakeLists.txt). libuv is disabled for the store (libtorch's exported libuv
// clashes with Node's), and Gloo/NCCL objects are only held through c10d::Backend.
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
#include "tensor_io.h"
#include "workers.h"

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

struct ConnectOptions {
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int rank = 0;
  int world_size = 1;
  int64_t timeout_ms = 60000;
  bool nccl = false;
  int device = 0;  // NCCL: this rank's CUDA device index
};

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

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

class ProcessGroupWrap : public Napi::ObjectWrap<ProcessGroupWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeProcessGroup",
                       {StaticMethod<&ProcessGroupWrap::Connect>("connect"),
                        InstanceMethod<&ProcessGroupWrap::AllReduce>("allReduce"),
                        InstanceMethod<&ProcessGroupWrap::Barrier>("barrier"),
                        InstanceMethod<&ProcessGroupWrap::Close>("close"),
                        InstanceAccessor<&ProcessGroupWrap::Rank>("rank"),
                        InstanceAccessor<&ProcessGroupWrap::WorldSize>("worldSize"),
                        InstanceAccessor<&ProcessGroupWrap::Backend>("backend"),
                        InstanceAccessor<&ProcessGroupWrap::Device>("device")});
  }

  explicit ProcessGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroupWrap>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) {
      throw make_js_error(info.Env(), {kCodeBadArgument, "use NativeProcessGroup.connect(options)"});
    }
    group_ = *info[0].As<Napi::External<std::shared_ptr<DistGroup>>>().Data();
  }

  std::shared_ptr<DistGroup> group() const {
    if (!group_) throw_bad_argument("the process group is closed");
    return group_;
  }

  static Napi::FunctionReference* constructor(Napi::Env env) { return env.GetInstanceData<Napi::FunctionReference>(); }

 private:
  class ConnectWorker : public TorchWorker {
   public:
    ConnectWorker(Napi::Env env, ConnectOptions o, Napi::Function ctor)
        : TorchWorker(env, "sftkit.processGroupConnect", 0), o_(std::move(o)), ctor_(Napi::Persistent(ctor)) {}

   protected:
    void Run() override { group_ = connect_group(o_); }
    Napi::Value Result(Napi::Env env) override {
      auto* holder = new std::shared_ptr<DistGroup>(group_);
      auto ext = Napi::External<std::shared_ptr<DistGroup>>::New(env, holder, [](Napi::Env, std::shared_ptr<DistGroup>* p) { delete p; });
      return ctor_.New({ext});
    }

   private:
    ConnectOptions o_;
    Napi::FunctionReference ctor_;
    std::shared_ptr<DistGroup> group_;
  };

  class AllReduceWorker : public TorchWorker {
   public:
    AllReduceWorker(Napi::Env env, std::shared_ptr<DistGroup> g, PinnedArray values, bool barrier)
        : TorchWorker(env, "sftkit.allReduce", 0), g_(std::move(g)), values_(std::move(values)), barrier_(barrier) {}

   protected:
    void Run() override {
      if (barrier_) {
        c10d::BarrierOptions bo;
        bo.timeout = g_->timeout;
        if (g_->nccl) bo.device_ids = {g_->device.index()};
        auto work = g_->pg->barrier(bo);
        work->wait(g_->timeout);
        return;
      }
      // NCCL reduces device tensors: the numbers go to this rank's GPU and back (small: counts and sums of a step).
      std::vector<at::Tensor> one{g_->nccl ? values_.tensor().to(g_->device) : values_.tensor().clone()};
      run_all_reduce(*g_, one);
      out_ = g_->nccl ? one[0].to(at::kCPU) : one[0];
    }
    Napi::Value Result(Napi::Env env) override { return barrier_ ? env.Undefined() : tensor_to_typed_array(env, out_); }

   private:
    std::shared_ptr<DistGroup> g_;
    PinnedArray values_;
    bool barrier_;
    at::Tensor out_;
  };

  static Napi::Value Connect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    if (info.Length() < 1 || !info[0].IsObject()) throw_bad_argument("connect(options) needs an object");
    Napi::Object o = info[0].As<Napi::Object>();
    ConnectOptions c;
    auto num = [&](const char* k, double lo, double hi) {
      Napi::Value v = o.Get(k);
      if (!v.IsNumber()) throw_bad_argument(std::string("connect: ") + k + " must be a number");
      double d = v.As<Napi::Number>().DoubleValue();
      if (d < lo || d > hi || d != static_cast<int64_t>(d)) throw_bad_argument(std::string("connect: ") + k + " out of range");
      return static_cast<int64_t>(d);
    };
    if (!o.Get("masterAddr").IsString()) throw_bad_argument("connect: masterAddr must be a string");
    c.master_addr = o.Get("masterAddr").As<Napi::String>().Utf8Value();
    c.master_port = static_cast<int>(num("masterPort", 1, 65535));
    c.world_size = static_cast<int>(num("worldSize", 1, 65536));
    c.rank = static_cast<int>(num("rank", 0, c.world_size - 1));
    c.timeout_ms = o.Get("timeoutMs").IsUndefined() ? 60000 : num("timeoutMs", 1, 86400000);
    Napi::Value backend = o.Get("backend");
    if (!backend.IsUndefined()) {
      const std::string b = backend.IsString() ? backend.As<Napi::String>().Utf8Value() : "";
      if (b != "gloo" && b != "nccl") throw_bad_argument("connect: backend must be 'gloo' or 'nccl'");
      c.nccl = b == "nccl";
    }
    if (c.nccl) {
      if (!has_nccl()) throw_unsupported("connect: backend 'nccl' but this addon was built without NCCL (info().distributed.nccl is false)");
      c.device = static_cast<int>(num("device", 0, 1023));
    }
    return (new ConnectWorker(env, std::move(c), constructor(env)->Value()))->start();
    SFT_NAPI_CATCH(env)
  }

  Napi::Value AllReduce(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      throw_bad_argument("allReduce(values): values must be a Float64Array");
    }
    std::vector<int64_t> shape{static_cast<int64_t>(info[0].As<Napi::TypedArray>().ElementLength())};
    return (new AllReduceWorker(env, group(), PinnedArray(info[0], shape, "values"), false))->start();
    SFT_NAPI_CATCH(env)
  }

  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SFT_NAPI_TRY
    return (new AllReduceWorker(env, group(), PinnedArray(), true))->start();
    SFT_NAPI_CATCH(env)
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    group_.reset();
    return info.Env().Undefined();
  }
  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), group()->rank); }
  Napi::Value WorldSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), group()->world_size); }
  Napi::Value Backend(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), group()->nccl ? "nccl" : "gloo"); }
  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), group()->device.str()); }

  std::shared_ptr<DistGroup> group_;
};

}  // namespace

Napi::Function define_native_process_group(Napi::Env env) {
  Napi::Function f = ProcessGroupWrap::Define(env);
  env.SetInstanceData<Napi::FunctionReference>(new Napi::FunctionReference(Napi::Persistent(f)));
  return f;
}

std::shared_ptr<DistGroup> unwrap_process_group(const Napi::Value& v) {
  Napi::Env env = v.Env();
  auto* ctor = ProcessGroupWrap::constructor(env);
  if (!v.IsObject() || ctor == nullptr || !v.As<Napi::Object>().InstanceOf(ctor->Value())) {
    throw_bad_argument("expected a NativeProcessGroup");
  }
  return ProcessGroupWrap::Unwrap(v.As<Napi::Object>())->group();
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

// Implements distributed.h with c10d::TCPStore + c10d::ProcessGroupGloo. libuv is disabled for the store
// (libtorch's exported libuv clashes with Node's), and Gloo objects are only held through c10d/shared_ptr.
#include "distributed.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

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
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

namespace {

struct ConnectOptions {
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int rank = 0;
  int world_size = 1;
  int64_t timeout_ms = 60000;
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
    work->wait(g.timeout);
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
                        InstanceAccessor<&ProcessGroupWrap::WorldSize>("worldSize")});
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
        auto work = g_->pg->barrier();
        work->wait(g_->timeout);
        return;
      }
      std::vector<at::Tensor> one{values_.tensor().clone()};
      run_all_reduce(*g_, one);
      out_ = one[0];
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
  if (g.world_size == 1 || tensors.empty()) return;
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

// Implements distributed_js.h: argument checks on the JS thread, the rendezvous and collectives (engine/distributed.h)
// in TorchWorkers.
#include "distributed_js.h"

#include <string>

#include "args.h"
#include "js_errors.h"
#include "tensor_io.h"
#include "workers.h"

namespace sft {
namespace {

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
        barrier(*g_);
        return;
      }
      out_ = all_reduce_values(*g_, values_.tensor());
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
    if (!o.Get("masterAddr").IsString()) throw_bad_argument("connect: masterAddr must be a string");
    c.master_addr = o.Get("masterAddr").As<Napi::String>().Utf8Value();
    c.master_port = static_cast<int>(ranged_int(o, "masterPort", 1, 65535, "connect: "));
    c.world_size = static_cast<int>(ranged_int(o, "worldSize", 1, 65536, "connect: "));
    c.rank = static_cast<int>(ranged_int(o, "rank", 0, c.world_size - 1, "connect: "));
    c.timeout_ms = o.Get("timeoutMs").IsUndefined() ? 60000 : ranged_int(o, "timeoutMs", 1, 86400000, "connect: ");
    Napi::Value backend = o.Get("backend");
    if (!backend.IsUndefined()) {
      const std::string b = backend.IsString() ? backend.As<Napi::String>().Utf8Value() : "";
      if (b != "gloo" && b != "nccl") throw_bad_argument("connect: backend must be 'gloo' or 'nccl'");
      c.nccl = b == "nccl";
    }
    if (c.nccl) {
      if (!has_nccl()) throw_unsupported("connect: backend 'nccl' but this addon was built without NCCL (info().distributed.nccl is false)");
      c.device = static_cast<int>(ranged_int(o, "device", 0, 1023, "connect: "));
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
  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), group_info(*group()).rank); }
  Napi::Value WorldSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), group_info(*group()).world_size); }
  Napi::Value Backend(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), group_info(*group()).nccl ? "nccl" : "gloo"); }
  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), group_info(*group()).device.str()); }

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

}  // namespace sft

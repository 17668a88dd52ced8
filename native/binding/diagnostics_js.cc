// Implements diagnostics_js.h on top of TorchWorker and PinnedArray.
#include "diagnostics_js.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/sum.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <ATen/ops/randn.h>

#include <ATen/detail/CUDAHooksInterface.h>

#include <chrono>
#include <string>

#include "engine/device.h"
#include "args.h"
#include "js_errors.h"
#include "tensor_io.h"
#include "workers.h"

namespace sft {
namespace {

class RoundTripWorker : public TorchWorker {
 public:
  RoundTripWorker(Napi::Env env, PinnedArray input, double scale, int threads)
      : TorchWorker(env, "sftkit.roundTrip", threads), input_(std::move(input)), scale_(scale) {}

 protected:
  void Run() override {
    // Shape (any): out = input * scale, computed in the input's dtype.
    const at::Tensor& x = input_.tensor();
    output_ = x.is_floating_point() ? x * scale_ : (x * static_cast<int64_t>(scale_)).to(x.scalar_type());
    sum_ = output_.sum().item<double>();
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("data", tensor_to_typed_array(env, output_));
    out.Set("shape", shape_to_js(env, output_.sizes()));
    out.Set("sum", sum_);
    return out;
  }

 private:
  PinnedArray input_;
  double scale_;
  at::Tensor output_;
  double sum_ = 0;
};

class BusyWorker : public TorchWorker {
 public:
  BusyWorker(Napi::Env env, double ms, bool fail, int threads)
      : TorchWorker(env, "sftkit.busyWork", threads), ms_(ms), fail_(fail) {}

 protected:
  void Run() override {
    auto start = std::chrono::steady_clock::now();
    at::Tensor a = at::randn({128, 128});
    // fail: a genuine libtorch error raised on the worker thread (shape mismatch), to test error delivery.
    if (fail_) a = at::matmul(a, at::randn({3, 5}));
    do {
      a = at::matmul(a, a) / 128.0;
      ++iterations_;
      elapsed_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    } while (elapsed_ < ms_);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("iterations", iterations_);
    out.Set("ms", elapsed_);
    return out;
  }

 private:
  double ms_;
  bool fail_;
  double iterations_ = 0;
  double elapsed_ = 0;
};

// n x n matmuls (a fresh output each time, as a training step's GEMMs have), best of `reps` after one warm-up, in
// `dtype` on `device`. On CUDA each repetition is `inner` back-to-back matmuls between device synchronisations (one
// 8192^3 bf16 matmul is ~1.5 ms on an H100, near the launch and sync overheads), timed as their mean.
class MatmulWorker : public TorchWorker {
 public:
  MatmulWorker(Napi::Env env, int64_t n, int reps, int threads, at::Device device, at::ScalarType dtype)
      : TorchWorker(env, "sftkit.matmulBench", threads), n_(n), reps_(reps), device_(device), dtype_(dtype) {}

 protected:
  void Run() override {
    const auto opts = at::TensorOptions().dtype(dtype_).device(device_);
    at::Tensor a = at::randn({n_, n_}, opts), b = at::randn({n_, n_}, opts);
    const bool cuda = device_.is_cuda();
    const int inner = cuda ? 10 : 1;
    auto sync = [&] {
      if (cuda) at::detail::getCUDAHooks().deviceSynchronize(device_.index());
    };
    at::Tensor c = at::mm(a, b);
    sync();
    best_ms_ = 1e300;
    for (int i = 0; i < reps_; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int j = 0; j < inner; ++j) c = at::mm(a, b);
      sync();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / inner;
      best_ms_ = std::min(best_ms_, ms);
    }
    checksum_ = c.sum().item<double>();
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    const double flops = 2.0 * static_cast<double>(n_) * static_cast<double>(n_) * static_cast<double>(n_);
    out.Set("size", static_cast<double>(n_));
    out.Set("ms", best_ms_);
    out.Set("gflops", flops / (best_ms_ * 1e6));
    out.Set("threads", static_cast<double>(at::get_num_threads()));
    out.Set("device", device_.str());
    out.Set("dtype", dtype_ == at::kBFloat16 ? "bfloat16" : "float32");
    out.Set("checksum", checksum_);
    return out;
  }

 private:
  int64_t n_;
  int reps_;
  at::Device device_;
  at::ScalarType dtype_;
  double best_ms_ = 0;
  double checksum_ = 0;
};

}  // namespace

Napi::Value matmul_bench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  if (info.Length() < 1 || !info[0].IsNumber()) throw_bad_argument("matmulBench(n): n must be a number");
  double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 1 && n <= 16384 && n == std::floor(n))) throw_bad_argument("matmulBench(n): n must be an integer in [1, 16384]");
  Napi::Object opts = options_arg(info, 1);
  int threads = thread_count_arg(opts.Get("threads"), "options.threads");
  double reps = number_option(opts, "reps", 5, "options.");
  if (!(reps >= 1 && reps <= 1000)) throw_bad_argument("matmulBench: options.reps must be in [1, 1000]");
  const std::string dtype = string_option(opts, "dtype", "float32");
  if (dtype != "float32" && dtype != "bfloat16") throw_bad_argument("matmulBench: options.dtype must be 'float32' or 'bfloat16', got '" + dtype + "'");
  const at::Device device = resolve_device(string_option(opts, "device", "cpu"));
  return (new MatmulWorker(env, static_cast<int64_t>(n), static_cast<int>(reps), threads, device,
                           dtype == "bfloat16" ? at::kBFloat16 : at::kFloat))
      ->start();
  SFT_NAPI_CATCH(env)
}

Napi::Value round_trip(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  if (info.Length() < 2) throw_bad_argument("roundTrip(array, shape, options?) needs an array and a shape");
  std::vector<int64_t> shape = shape_arg(info[1], "shape");
  PinnedArray input(info[0], shape, "array");
  Napi::Object opts = options_arg(info, 2);
  double scale = number_option(opts, "scale", 1.0, "options.");
  int threads = thread_count_arg(opts.Get("threads"), "options.threads");
  return (new RoundTripWorker(env, std::move(input), scale, threads))->start();
  SFT_NAPI_CATCH(env)
}

Napi::Value busy_work(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  if (info.Length() < 1 || !info[0].IsNumber()) throw_bad_argument("busyWork(ms): ms must be a number");
  double ms = info[0].As<Napi::Number>().DoubleValue();
  if (!(ms >= 0 && ms <= 60000)) throw_bad_argument("busyWork(ms): ms must be in [0, 60000]");
  Napi::Object opts = options_arg(info, 1);
  int threads = thread_count_arg(opts.Get("threads"), "options.threads");
  bool fail = opts.Has("fail") && opts.Get("fail").ToBoolean().Value();
  return (new BusyWorker(env, ms, fail, threads))->start();
  SFT_NAPI_CATCH(env)
}

}  // namespace sft

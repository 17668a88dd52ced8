// NativeModel (see model_js.h, model_state.h): the class, loading, saving, parameters and gradients, LoRA adapters and
// disposal. Arguments are read on the JS thread (args.h), the work runs on TorchWorkers over the engine (engine/), and
// results come back as plain objects and typed arrays. JS-facing names are camelCase; parameter names are the
// Hugging Face ones. The steps live in train_js.cc, generation in generate_js.cc.
#include "model_js.h"

#include <ATen/ATen.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "engine/cpu_pool.h"
#include "engine/device.h"
#include "engine/lora.h"
#include "engine/safetensors.h"
#include "model_state.h"
#include "tensor_io.h"

namespace sft {
namespace {

// Marks NativeModel objects so a model passed as an argument (a teacher) is recognised safely.
constexpr napi_type_tag kNativeModelTag = {0x5f7a1c3e9b2d4a61ULL, 0x8c0e3f5a7b9d1e24ULL};

}  // namespace

Napi::Function NativeModel::Define(Napi::Env env) {
  return DefineClass(env, "NativeModel",
                     {
                         InstanceMethod<&NativeModel::Load>("load"),
                         InstanceMethod<&NativeModel::Step>("step"),
                         InstanceMethod<&NativeModel::EvalLoss>("evalLoss"),
                         InstanceMethod<&NativeModel::SequenceLogps>("sequenceLogps"),
                         InstanceMethod<&NativeModel::PreferenceStep>("preferenceStep"),
                         InstanceMethod<&NativeModel::DistillStep>("distillStep"),
                         InstanceMethod<&NativeModel::Forward>("forward"),
                         InstanceMethod<&NativeModel::OptimizerStep>("optimizerStep"),
                         InstanceMethod<&NativeModel::ZeroGrad>("zeroGrad"),
                         InstanceMethod<&NativeModel::AllReduceGrads>("allReduceGrads"),
                         InstanceMethod<&NativeModel::Save>("save"),
                         InstanceMethod<&NativeModel::SaveOptimizerState>("saveOptimizerState"),
                         InstanceMethod<&NativeModel::LoadOptimizerState>("loadOptimizerState"),
                         InstanceMethod<&NativeModel::NumParameters>("numParameters"),
                         InstanceMethod<&NativeModel::BaseStats>("baseStats"),
                         InstanceMethod<&NativeModel::VocabSize>("vocabSize"),
                         InstanceMethod<&NativeModel::ResizeTokenEmbeddings>("resizeTokenEmbeddings"),
                         InstanceMethod<&NativeModel::GradNorms>("gradNorms"),
                         InstanceMethod<&NativeModel::ParameterNames>("parameterNames"),
                         InstanceMethod<&NativeModel::GetParameter>("getParameter"),
                         InstanceMethod<&NativeModel::GetGradient>("getGradient"),
                         InstanceMethod<&NativeModel::LoraTargetModules>("loraTargetModules"),
                         InstanceMethod<&NativeModel::AttachLora>("attachLora"),
                         InstanceMethod<&NativeModel::LoadAdapter>("loadAdapter"),
                         InstanceMethod<&NativeModel::SaveAdapter>("saveAdapter"),
                         InstanceMethod<&NativeModel::MergeAdapter>("mergeAdapter"),
                         InstanceMethod<&NativeModel::NumTrainableParameters>("numTrainableParameters"),
                         InstanceMethod<&NativeModel::Device>("device"),
                         InstanceMethod<&NativeModel::Generate>("generate"),
                         InstanceMethod<&NativeModel::CancelGeneration>("cancelGeneration"),
                         InstanceMethod<&NativeModel::Dispose>("dispose"),
                     });
}

NativeModel::NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info), state_(std::make_shared<ModelState>()) {
  info.This().As<Napi::Object>().TypeTag(&kNativeModelTag);
}

StatePtr NativeModel::state_of(const Napi::Value& v, const char* what) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kNativeModelTag)) throw_bad_argument(std::string(what) + " must be a NativeModel");
  return Unwrap(v.As<Napi::Object>())->state_;
}

// load(dir, spec, { dtype: 'float32'|'bfloat16', device: 'auto'|'cpu'|'cuda', autocast, threads,
//   gradientCheckpointing }) -> Promise<void>
Napi::Value NativeModel::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  if (state_->model) throw_bad_argument("the model is already loaded");
  if (state_->busy.load()) throw_bad_argument("the model is already loading");
  std::string dir = string_arg(info, 0, "dir");
  ModelSpec spec = spec_arg(object_arg(info, 1, "spec", false));
  Napi::Object opts = object_arg(info, 2, "options", true);
  ModelOptions mo;
  Napi::Value dtype = opts.Get("dtype");
  std::string dt = dtype.IsString() ? dtype.As<Napi::String>().Utf8Value() : "float32";
  if (dt == "float32") mo.dtype = at::kFloat;
  else if (dt == "bfloat16") mo.dtype = at::kBFloat16;
  else throw_bad_argument("options.dtype must be 'float32' or 'bfloat16'");
  Napi::Value device = opts.Get("device");
  mo.device = resolve_device(device.IsString() ? device.As<Napi::String>().Utf8Value() : "cpu");
  Napi::Value base = opts.Get("baseDtype");
  if (!base.IsUndefined() && !base.IsString()) throw_bad_argument("options.baseDtype must be 'float32', 'bfloat16', 'int8' or 'nf4'");
  mo.base.dtype = parse_base_dtype(base.IsString() ? base.As<Napi::String>().Utf8Value() : "float32");
  mo.base.double_quant = bool_field(opts, "doubleQuant", false);  // (the combinations are checked by CausalLM::load)
  // bf16 autocast of the forward passes (matmuls in bf16 over fp32 master weights; the loss stays fp32).
  state_->autocast = AutocastState{mo.device.type(), bool_field(opts, "autocast", false), at::kBFloat16};
  state_->threads = thread_count_arg(opts.Get("threads"), "options.threads");
  const bool checkpoint = bool_field(opts, "gradientCheckpointing", false);
  StatePtr st = state_;
  st->busy.store(true);
  struct Unbusy {
    StatePtr s;
    ~Unbusy() { s->busy.store(false); }
  };
  auto unbusy = std::make_shared<Unbusy>(Unbusy{st});
  auto built = std::make_shared<std::unique_ptr<CausalLM>>();
  FnWorker* worker = new FnWorker(
              env, "sftkit.loadModel", st->threads, nullptr,
              [built, dir, spec, mo, unbusy, checkpoint]() { *built = load_causal_lm(dir, spec, mo, checkpoint); },
              [built, st](Napi::Env env) -> Napi::Value {
                st->model = std::move(*built);
                return env.Undefined();
              });
  worker->run_on(st->compute);
  return worker->start();
  SFT_NAPI_CATCH(env)
}

// save(file) -> Promise<void>: model.safetensors with HF names (config files are written by TS).
Napi::Value NativeModel::Save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  auto lease = std::make_shared<Lease>(state_);
  std::string path = string_arg(info, 0, "path");
  ModelState* s = &lease->state();
  return (new FnWorker(env, "sftkit.save", s->threads, lease,
                       [s, path]() { save_model(*s, path); }, nullptr))
      ->start();
  SFT_NAPI_CATCH(env)
}

Napi::Value NativeModel::SaveOptimizerState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  auto lease = std::make_shared<Lease>(state_);
  std::string path = string_arg(info, 0, "path");
  ModelState* s = &lease->state();
  if (!s->optim) throw_bad_argument("saveOptimizerState: no optimizer state yet (call optimizerStep first)");
  return (new FnWorker(env, "sftkit.saveOptimizerState", s->threads, lease,
                       [s, path]() { save_optimizer_state(*s, path); },
                       nullptr))
      ->start();
  SFT_NAPI_CATCH(env)
}

// loadOptimizerState(path, { noDecay? }): creates the optimizer (default grouping) and restores its state exactly.
Napi::Value NativeModel::LoadOptimizerState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  auto lease = std::make_shared<Lease>(state_);
  std::string path = string_arg(info, 0, "path");
  ModelState* s = &lease->state();
  return (new FnWorker(env, "sftkit.loadOptimizerState", s->threads, lease,
                       [s, path]() { load_optimizer_state(*s, path); },
                       nullptr))
      ->start();
  SFT_NAPI_CATCH(env)
}

Napi::Value NativeModel::NumParameters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Lease lease(state_);
  return Napi::Number::New(env, static_cast<double>(state_->model->num_parameters()));
  SFT_NAPI_CATCH(env)
}

// baseStats(reset?) -> { dtype, doubleQuant, bytes, dequantMs, matmulMs }: the frozen base's format and memory, and
// the time spent dequantising it and in its matmuls since loading (or the last reset).
Napi::Value NativeModel::BaseStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Lease lease(state_);
  const bool reset = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
  FrozenBase* base = state_->model->frozen();
  Napi::Object o = Napi::Object::New(env);
  o.Set("dtype", base ? base_dtype_name(base->format().dtype) : "float32");
  o.Set("doubleQuant", base ? base->format().double_quant : false);
  o.Set("bytes", base ? static_cast<double>(base->bytes()) : 0.0);
  FrozenBase::Stats st = base ? base->stats(reset) : FrozenBase::Stats();
  o.Set("dequantMs", st.dequant_ms);
  o.Set("matmulMs", st.matmul_ms);
  return o;
  SFT_NAPI_CATCH(env)
}

Napi::Value NativeModel::VocabSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Lease lease(state_);
  return Napi::Number::New(env, static_cast<double>(state_->model->spec().vocab_size));
  SFT_NAPI_CATCH(env)
}

// resizeTokenEmbeddings(n): sync; resets the optimizer (its state no longer matches the parameters).
Napi::Value NativeModel::ResizeTokenEmbeddings(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Lease lease(state_);
  if (info.Length() < 1 || !info[0].IsNumber()) throw_bad_argument("resizeTokenEmbeddings(n): n must be a number");
  double n = info[0].As<Napi::Number>().DoubleValue();
  if (n != std::floor(n) || n < 1 || n > 1e8) throw_bad_argument("resizeTokenEmbeddings(n): n must be an integer in [1, 1e8]");
  if (state_->model->lora()) throw_unsupported("resizeTokenEmbeddings: the model has LoRA adapters (the new rows would be frozen and not saved in the adapter)");
  state_->model->resize_token_embeddings(static_cast<int64_t>(n));
  state_->optim.reset();
  state_->loss_ws = LossWorkspace();
  return env.Undefined();
  SFT_NAPI_CATCH(env)
}

// gradNorms() -> { [hfName]: L2 norm of .grad (fp64) } for the parameters that have a gradient.
Napi::Value NativeModel::GradNorms(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Lease lease(state_);
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, norm] : grad_norms(*state_)) o.Set(name, norm);
  return o;
  SFT_NAPI_CATCH(env)
}

Napi::Value NativeModel::ParameterNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Lease lease(state_);
  auto params = all_parameters(*state_);
  Napi::Array a = Napi::Array::New(env, params.size());
  for (size_t i = 0; i < params.size(); ++i) a.Set(static_cast<uint32_t>(i), params[i].name);
  return a;
  SFT_NAPI_CATCH(env)
}

// getParameter(hfName) -> { data: Float32Array (HF layout), shape }; adapters under their PEFT names.
Napi::Value NativeModel::GetParameter(const Napi::CallbackInfo& info) { return ParameterOrGrad(info, /*grad=*/false); }

// getGradient(hfName) -> { data, shape } of the parameter's .grad (HF layout), or null when it has none.
Napi::Value NativeModel::GetGradient(const Napi::CallbackInfo& info) { return ParameterOrGrad(info, /*grad=*/true); }

Napi::Value NativeModel::ParameterOrGrad(const Napi::CallbackInfo& info, bool grad) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Lease lease(state_);
  std::string name = string_arg(info, 0, "name");
  for (ParamRef& p : all_parameters(*state_)) {
    if (p.name != name) continue;
    at::Tensor t = grad ? p.tensor->grad() : state_->model->dense_parameter(*p.tensor);
    if (!t.defined()) return env.Null();
    if (p.transposed) t = t.t();
    t = t.to(at::kFloat).contiguous().cpu().clone();
    Napi::Object o = Napi::Object::New(env);
    o.Set("shape", shape_to_js(env, t.sizes()));
    o.Set("data", tensor_to_typed_array(env, t));
    return o;
  }
  throw_bad_argument(std::string(grad ? "getGradient" : "getParameter") + ": unknown parameter '" + name + "'");
  SFT_NAPI_CATCH(env)
}

// loraTargetModules() -> string[]: the HF module names that can take an adapter.
Napi::Value NativeModel::LoraTargetModules(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Lease lease(state_);
  auto names = LoraLayers::target_modules(*state_->model);
  Napi::Array a = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) a.Set(static_cast<uint32_t>(i), names[i]);
  return a;
  SFT_NAPI_CATCH(env)
}

// attachLora({ modules: [{ module, r, scaling }], dropout, seed }) -> Promise<void>: new adapters (A random, B 0);
// the base is frozen and the optimizer reset (it only ever holds the adapters).
Napi::Value NativeModel::AttachLora(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  auto lease = std::make_shared<Lease>(state_);
  ModelState* s = &lease->state();
  if (s->model->lora()) throw_bad_argument("attachLora: the model already has LoRA adapters");
  Napi::Object o = object_arg(info, 0, "options", false);
  LoraConfig config;
  config.dropout = num_field(o, "dropout", 0.0);
  const double seed = num_field(o, "seed", 0.0);
  if (seed < 0 || seed != std::floor(seed)) throw_bad_argument("attachLora: seed must be a non-negative integer");
  config.seed = static_cast<uint64_t>(seed);
  Napi::Value mods = o.Get("modules");
  if (!mods.IsArray()) throw_bad_argument("attachLora: modules must be an array of { module, r, scaling }");
  Napi::Array a = mods.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (!a.Get(i).IsObject()) throw_bad_argument("attachLora: modules[i] must be { module, r, scaling }");
    Napi::Object m = a.Get(i).As<Napi::Object>();
    if (!m.Get("module").IsString()) throw_bad_argument("attachLora: modules[i].module must be a string");
    config.modules.push_back({m.Get("module").As<Napi::String>().Utf8Value(), int_field(m, "r", 0, true), num_field(m, "scaling", 0, true)});
  }
  return (new FnWorker(env, "sftkit.attachLora", s->threads, lease,
                       [s, config]() {
                         auto lora = std::make_shared<LoraLayers>(*s->model, config);
                         s->model->set_lora(std::move(lora));
                         s->optim.reset();
                       },
                       nullptr))
      ->start();
  SFT_NAPI_CATCH(env)
}

// One operation on the attached adapters, run on the compute thread (name: "sftkit.<method>").
Napi::Value NativeModel::AdapterOp(Napi::Env env, const char* name, std::function<void(ModelState&, LoraLayers&)> fn) {
  auto lease = std::make_shared<Lease>(state_);
  ModelState* s = &lease->state();
  if (!s->model->lora()) {
    std::string method(name);
    method.erase(0, method.find('.') + 1);  // "sftkit.loadAdapter" -> "loadAdapter"
    throw_bad_argument(method + ": the model has no LoRA adapters (attachLora first)");
  }
  return (new FnWorker(env, name, s->threads, lease, [s, fn]() { fn(*s, *s->model->lora()); }, nullptr))->start();
}

// loadAdapter(file) -> Promise<void>: A and B of the attached adapters from a PEFT adapter_model.safetensors.
Napi::Value NativeModel::LoadAdapter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  std::string path = string_arg(info, 0, "path");
  return AdapterOp(env, "sftkit.loadAdapter", [path](ModelState&, LoraLayers& lora) {
    auto file = SafetensorsFile::open(path);
    std::map<std::string, at::Tensor> tensors;
    for (const auto& n : file->names()) tensors[n] = file->get(n);
    lora.load(tensors, path);
  });
  SFT_NAPI_CATCH(env)
}

// saveAdapter(file) -> Promise<void>: adapter_model.safetensors (PEFT names, fp32).
Napi::Value NativeModel::SaveAdapter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  std::string path = string_arg(info, 0, "path");
  return AdapterOp(env, "sftkit.saveAdapter", [path](ModelState&, LoraLayers& lora) {
    save_safetensors(path, lora.state_for_save(), {{"format", "pt"}});
  });
  SFT_NAPI_CATCH(env)
}

// mergeAdapter() -> Promise<void>: W += scaling * B A into the base weights, adapters removed, optimizer reset.
Napi::Value NativeModel::MergeAdapter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  return AdapterOp(env, "sftkit.mergeAdapter", [](ModelState& s, LoraLayers& lora) {
    lora.merge_into(*s.model);
    s.model->set_lora(nullptr);
    s.optim.reset();
  });
  SFT_NAPI_CATCH(env)
}

// numTrainableParameters(): elements that train (the adapters' with LoRA, else numParameters()).
Napi::Value NativeModel::NumTrainableParameters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Lease lease(state_);
  LoraLayers* lora = state_->model->lora();
  return Napi::Number::New(env, static_cast<double>(lora ? lora->num_parameters() : state_->model->num_parameters()));
  SFT_NAPI_CATCH(env)
}

// device(): where the parameters live ("cpu", "cuda:0").
Napi::Value NativeModel::Device(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  Lease lease(state_);
  return Napi::String::New(env, state_->model->options().device.str());
  SFT_NAPI_CATCH(env)
}

// dispose(): frees the model and optimizer (the object is unusable afterwards) and gives the CPU pool's cached
// blocks back to the kernel.
Napi::Value NativeModel::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  if (state_->disposed) return env.Undefined();
  if (state_->busy.load()) throw_bad_argument("dispose: an operation is still running on this model");
  state_->optim.reset();
  state_->loss_ws = LossWorkspace();
  state_->model.reset();
  state_->disposed = true;
  release_cpu_pool();  // the freed weights, gradients and moments sit in the pool's cache: back to the kernel
  return env.Undefined();
  SFT_NAPI_CATCH(env)
}
Napi::Function define_native_model(Napi::Env env) { return NativeModel::Define(env); }

}  // namespace sft

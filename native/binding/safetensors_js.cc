// Implements safetensors_js.h: argument checks on the JS thread, file work (engine/safetensors.h) in TorchWorkers.
#include "safetensors_js.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "js_errors.h"
#include "engine/safetensors.h"
#include "tensor_io.h"
#include "workers.h"

namespace sft {
namespace {

// Sets obj[key] = value as an own data property (a tensor named "__proto__" must not change the prototype).
void define(Napi::Object obj, const std::string& key, Napi::Value value) {
  obj.DefineProperty(Napi::PropertyDescriptor::Value(Napi::String::New(obj.Env(), key), value, napi_default_jsproperty));
}

Napi::Object metadata_to_js(Napi::Env env, const std::map<std::string, std::string>& metadata) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& kv : metadata) define(out, kv.first, Napi::String::New(env, kv.second));
  return out;
}

struct LoadedTensor {
  std::string name, dtype;
  at::Tensor tensor;  // F16/BF16 already widened to F32
};

LoadedTensor widen(const std::string& name, const std::string& dtype, at::Tensor t) {
  if (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);
  return {name, dtype, std::move(t)};
}

Napi::Object tensors_to_js(Napi::Env env, const std::vector<LoadedTensor>& tensors) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& item : tensors) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("data", tensor_to_typed_array(env, item.tensor));
    o.Set("shape", shape_to_js(env, item.tensor.sizes()));
    o.Set("dtype", item.dtype);
    define(out, item.name, o);
  }
  return out;
}

class LoadWorker : public TorchWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, int threads)
      : TorchWorker(env, "sftkit.loadSafetensors", threads), path_(std::move(path)) {}

 protected:
  void Run() override {
    auto file = SafetensorsFile::open(path_);
    for (const auto& e : file->entries()) tensors_.push_back(widen(e.name, e.dtype, file->get(e.name)));
  }
  Napi::Value Result(Napi::Env env) override { return tensors_to_js(env, tensors_); }

 private:
  std::string path_;
  std::vector<LoadedTensor> tensors_;
};

class LoadDirWorker : public TorchWorker {
 public:
  LoadDirWorker(Napi::Env env, std::string dir, int threads)
      : TorchWorker(env, "sftkit.loadSafetensorsDir", threads), dir_(std::move(dir)) {}

 protected:
  void Run() override {
    TensorDir d = load_safetensors_dir(dir_);
    for (const auto& kv : d.tensors) tensors_.push_back(widen(kv.first, dtype_to_safetensors(kv.second.scalar_type()), kv.second));
    metadata_ = std::move(d.metadata);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("tensors", tensors_to_js(env, tensors_));
    out.Set("metadata", metadata_to_js(env, metadata_));
    return out;
  }

 private:
  std::string dir_;
  std::vector<LoadedTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct SaveItem {
  std::string name;
  PinnedArray array;
  at::ScalarType target;
};

class SaveWorker : public TorchWorker {
 public:
  SaveWorker(Napi::Env env, std::string path, std::vector<SaveItem> items, std::map<std::string, std::string> metadata,
             int threads)
      : TorchWorker(env, "sftkit.saveSafetensors", threads),
        path_(std::move(path)),
        items_(std::move(items)),
        metadata_(std::move(metadata)) {}

 protected:
  void Run() override {
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    tensors.reserve(items_.size());
    for (const auto& item : items_) {
      const at::Tensor& t = item.array.tensor();
      tensors.emplace_back(item.name, t.scalar_type() == item.target ? t : t.to(item.target));
    }
    save_safetensors(path_, tensors, metadata_);
  }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::string path_;
  std::vector<SaveItem> items_;
  std::map<std::string, std::string> metadata_;
};

// Which stored dtypes a typed array of `source` elements may be written as (floats convert, the rest must match).
bool allowed_conversion(at::ScalarType source, at::ScalarType target) {
  if (source == target) return true;
  const bool float_source = source == at::kFloat || source == at::kDouble;
  const bool float_target = target == at::kFloat || target == at::kDouble || target == at::kHalf || target == at::kBFloat16;
  if (float_source && float_target) return true;
  return source == at::kByte && target == at::kBool;
}

}  // namespace

Napi::Value safetensors_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  const std::string path = nonempty_string(info.Length() > 0 ? info[0] : env.Undefined(), "path");
  auto file = SafetensorsFile::open(path);
  Napi::Array tensors = Napi::Array::New(env, file->entries().size());
  uint32_t i = 0;
  for (const auto& e : file->entries()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", e.name);
    o.Set("dtype", e.dtype);
    o.Set("shape", shape_to_js(env, e.shape));
    Napi::Array offsets = Napi::Array::New(env, 2);
    offsets.Set(0u, Napi::Number::New(env, static_cast<double>(e.begin)));
    offsets.Set(1u, Napi::Number::New(env, static_cast<double>(e.end)));
    o.Set("offsets", offsets);
    tensors.Set(i++, o);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("tensors", tensors);
  out.Set("metadata", metadata_to_js(env, file->metadata()));
  return out;
  SFT_NAPI_CATCH(env)
}

Napi::Value load_safetensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  const std::string path = nonempty_string(info.Length() > 0 ? info[0] : env.Undefined(), "path");
  const int threads = threads_option(info, 1);
  return (new LoadWorker(env, path, threads))->start();
  SFT_NAPI_CATCH(env)
}

Napi::Value load_safetensors_dir_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  const std::string dir = nonempty_string(info.Length() > 0 ? info[0] : env.Undefined(), "dir");
  const int threads = threads_option(info, 1);
  return (new LoadDirWorker(env, dir, threads))->start();
  SFT_NAPI_CATCH(env)
}

Napi::Value save_safetensors_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SFT_NAPI_TRY
  const std::string path = nonempty_string(info.Length() > 0 ? info[0] : env.Undefined(), "path");
  if (info.Length() < 2 || !info[1].IsArray()) throw_bad_argument("tensors must be an array of { name, data, shape, dtype? }");
  Napi::Array list = info[1].As<Napi::Array>();
  std::vector<SaveItem> items;
  items.reserve(list.Length());
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const std::string where = "tensors[" + std::to_string(i) + "]";
    Napi::Value v = list.Get(i);
    if (!v.IsObject()) throw_bad_argument(where + " must be an object { name, data, shape, dtype? }");
    Napi::Object o = v.As<Napi::Object>();
    SaveItem item;
    item.name = nonempty_string(o.Get("name"), (where + ".name").c_str());
    std::vector<int64_t> shape = shape_arg(o.Get("shape"), (where + ".shape").c_str());
    item.array = PinnedArray(o.Get("data"), shape, (where + ".data").c_str());
    const at::ScalarType source = item.array.tensor().scalar_type();
    item.target = source;
    Napi::Value dtype = o.Get("dtype");
    if (!dtype.IsUndefined()) {
      const std::string d = nonempty_string(dtype, (where + ".dtype").c_str());
      if (!dtype_from_safetensors(d, &item.target))
        throw_bad_argument(where + ".dtype must be one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL, got \"" + d + "\"");
      if (!allowed_conversion(source, item.target))
        throw_bad_argument(where + ": a " + std::string(c10::toString(source)) + " array cannot be stored as " + d);
    }
    items.push_back(std::move(item));
  }
  std::map<std::string, std::string> metadata;
  if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) {
    if (!info[2].IsObject()) throw_bad_argument("metadata must be an object of strings");
    Napi::Object m = info[2].As<Napi::Object>();
    Napi::Array keys = m.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
      Napi::Value val = m.Get(k);
      if (!val.IsString()) throw_bad_argument("metadata[\"" + k + "\"] must be a string");
      metadata[k] = val.As<Napi::String>().Utf8Value();
    }
  }
  const int threads = threads_option(info, 3);
  return (new SaveWorker(env, path, std::move(items), std::move(metadata), threads))->start();
  SFT_NAPI_CATCH(env)
}

}  // namespace sft

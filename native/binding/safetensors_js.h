// JS bindings of the safetensors reader/writer (engine/safetensors.h): metadata synchronously, tensor I/O on a worker.
#pragma once

#include <napi.h>

namespace sft {

// safetensorsInfo(path) -> { tensors: [{ name, dtype, shape, offsets: [begin, end] }], metadata } (sync, header only).
Napi::Value safetensors_info(const Napi::CallbackInfo& info);
// loadSafetensors(path, { threads }?) -> Promise<{ [name]: { data: TypedArray, shape, dtype } }>; F16/BF16 come back
// as Float32Array with the stored dtype in `dtype`, BOOL as Uint8Array, I64 as BigInt64Array.
Napi::Value load_safetensors(const Napi::CallbackInfo& info);
// loadSafetensorsDir(dir, { threads }?) -> Promise<{ tensors: { [name]: ... as above }, metadata }> for an HF model dir
// (model.safetensors or model.safetensors.index.json + shards), metadata merged over shards.
Napi::Value load_safetensors_dir_js(const Napi::CallbackInfo& info);
// saveSafetensors(path, [{ name, data, shape, dtype? }], metadata?, { threads }?) -> Promise<void>.
Napi::Value save_safetensors_js(const Napi::CallbackInfo& info);

}  // namespace sft

// safetensors files and Hugging Face model directories: a strict, mmap-backed reader (zero-copy tensor views when
// the data is aligned for its dtype) and an atomic writer in the Hugging Face layout.
//
// File layout (https://github.com/huggingface/safetensors): u64 little-endian N, N bytes of JSON header
// {"__metadata__": {str: str}?, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}, then the data region;
// offsets are relative to the data region, and the tensors must cover it exactly (no holes, no overlaps).
// Every defect in a file is an sft::Error with code SFTKIT_IO naming the file and the problem, never a crash.
//
// Mapping: the file is opened read-only and mapped MAP_PRIVATE (copy-on-write): views are writable without ever
// touching the file, so in-place updates of loaded weights (training) are safe. A truncated-while-mapped file can
// still raise SIGBUS; that is outside what a reader can prevent.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sft {

class FileMapping;  // mmap'ed bytes, unmapped when the last holder (file object or tensor view) goes away

class SafetensorsFile {
 public:
  // Dtypes F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL. Missing/corrupt file -> SFTKIT_IO naming path + problem;
  // a dtype of the safetensors spec that sftkit does not handle (U16, F8_E4M3, ...) -> SFTKIT_UNSUPPORTED.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  struct Entry {
    std::string name;
    std::string dtype;            // safetensors spelling, e.g. "BF16"
    at::ScalarType scalar_type;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;  // byte range in the data region
  };

  std::vector<std::string> names() const;  // in data-offset order (the order of the bytes in the file)
  bool has(const std::string& name) const;
  // Zero-copy view into the mapping when the absolute data offset is aligned for the dtype (the view keeps the
  // mapping alive), else an owned copy. Unknown name -> SFTKIT_BAD_ARGUMENT.
  at::Tensor get(const std::string& name) const;
  const Entry& entry(const std::string& name) const;
  const std::vector<Entry>& entries() const { return entries_; }  // data-offset order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // __metadata__
  const std::string& path() const { return path_; }
  uint64_t header_size() const { return header_size_; }  // N
  // Drops the whole pages that `view`'s bytes occupy in this file's mapping from the process's resident memory, once
  // they have been copied elsewhere (the mapping is private and file-backed: a page touched again is read from the
  // file again). Only for views nobody wrote into (a copy-on-write page would lose its writes). Returns false, doing
  // nothing, when `view` is not inside this mapping.
  bool release_pages(const at::Tensor& view) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::shared_ptr<FileMapping> mapping_;
  uint64_t header_size_ = 0;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

// HF model dir: model.safetensors, or model.safetensors.index.json + shards (each opened once). Returns name ->
// tensor as stored (no dtype conversion), plus the merged __metadata__ (e.g. tied alias
// "model.embed_tokens.weight": "lm_head.weight").
struct TensorDir {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> metadata;
  std::vector<std::shared_ptr<SafetensorsFile>> files;  // the opened files (release_pages of a copied view)
};
TensorDir load_safetensors_dir(const std::string& dir);
// release_pages on whichever of `dir`'s files maps `view` (nothing for a tensor of its own, e.g. an unaligned copy).
void release_view_pages(const TensorDir& dir, const at::Tensor& view);

// Writes atomically (path.tmp-<pid>, fsync, rename, fsync of the directory); tensors made contiguous CPU; names
// kept as given, in the given order; header padded with spaces to 8 bytes so every tensor is 8-byte aligned.
// Bad names/dtypes -> SFTKIT_BAD_ARGUMENT; file system failures -> SFTKIT_IO.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// "F32" <-> at::kFloat etc. for the supported dtypes; dtype_from_safetensors returns false when unsupported.
bool dtype_from_safetensors(const std::string& name, at::ScalarType* out);
std::string dtype_to_safetensors(at::ScalarType t);  // SFTKIT_BAD_ARGUMENT when not representable

}  // namespace sft

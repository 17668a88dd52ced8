// Implements safetensors.h: validation of the header against the safetensors spec, mmap-backed tensor views,
// sharded HF directories, and the atomic writer.
#include "safetensors.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "errors.h"
#include "json.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sftkit's safetensors reader/writer assumes a little-endian host"
#endif

namespace sft {

// Largest header accepted (the reference implementation's limit, 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100000000;
// Header JSON is flat: {name: {"shape": [...]}}; anything nested deeper is corrupt.
constexpr int kMaxHeaderDepth = 8;
// Largest index.json read into memory.
constexpr off_t kMaxIndexBytes = 64 << 20;

class FileMapping {
 public:
  FileMapping(void* addr, size_t size) : addr_(addr), size_(size) {}
  ~FileMapping() {
    if (addr_ && size_) munmap(addr_, size_);
  }
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;
  uint8_t* data() const { return static_cast<uint8_t*>(addr_); }
  size_t size() const { return size_; }

 private:
  void* addr_;
  size_t size_;
};

namespace {

std::string errno_text(int err) { return std::strerror(err); }

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

[[noreturn]] void file_error(const std::string& path, const std::string& problem) {
  throw_io("safetensors file " + path + ": " + problem);
}

bool is_spec_dtype_we_do_not_handle(const std::string& d) {
  static const char* const kOthers[] = {"U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",
                                        "C64"};
  for (const char* o : kOthers)
    if (d == o) return true;
  return false;
}

std::string join_shape(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Reads a non-negative integer that fits in int64 from a JSON value.
bool non_negative_int(const JsonValue& v, int64_t* out) {
  if (v.kind != JsonValue::Kind::Number || !v.is_integer || v.integer < 0) return false;
  *out = v.integer;
  return true;
}

std::string read_small_file(const std::string& path, off_t limit) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_io(path + ": cannot open: " + errno_text(errno));
  Fd guard(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) throw_io(path + ": cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) throw_io(path + ": not a regular file");
  if (st.st_size > limit) throw_io(path + ": " + std::to_string(st.st_size) + " bytes is too large");
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    ssize_t r = ::read(fd, &data[done], data.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw_io(path + ": read failed: " + errno_text(errno));
    if (r == 0) throw_io(path + ": file shrank while reading");
    done += static_cast<size_t>(r);
  }
  return data;
}

bool path_exists(const std::string& path, bool* is_dir = nullptr) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  if (is_dir) *is_dir = S_ISDIR(st.st_mode);
  return true;
}

}  // namespace

bool dtype_from_safetensors(const std::string& name, at::ScalarType* out) {
  static const std::pair<const char*, at::ScalarType> kTable[] = {
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16}, {"I64", at::kLong},
      {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},   {"U8", at::kByte},       {"BOOL", at::kBool}};
  for (const auto& e : kTable) {
    if (name == e.first) {
      *out = e.second;
      return true;
    }
  }
  return false;
}

std::string dtype_to_safetensors(at::ScalarType t) {
  switch (t) {
    case at::kDouble: return "F64";
    case at::kFloat: return "F32";
    case at::kHalf: return "F16";
    case at::kBFloat16: return "BF16";
    case at::kLong: return "I64";
    case at::kInt: return "I32";
    case at::kShort: return "I16";
    case at::kChar: return "I8";
    case at::kByte: return "U8";
    case at::kBool: return "BOOL";
    default: throw_bad_argument(std::string("dtype ") + c10::toString(t) + " cannot be stored in safetensors by sftkit");
  }
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) file_error(path, "cannot open: " + errno_text(errno));
  Fd guard(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) file_error(path, "cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) file_error(path, "not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) file_error(path, "file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");

  // MAP_PRIVATE + PROT_WRITE: copy-on-write views (the fd is read-only, the file never changes); MAP_NORESERVE: no
  // commit charge for pages that are never written.
  void* addr = mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  if (addr == MAP_FAILED) file_error(path, "mmap failed: " + errno_text(errno));
  auto mapping = std::make_shared<FileMapping>(addr, static_cast<size_t>(file_size));
  const uint8_t* base = mapping->data();

  uint64_t n = 0;
  std::memcpy(&n, base, 8);  // little-endian host (checked at compile time)
  if (n > kMaxHeaderBytes)
    file_error(path, "header length " + std::to_string(n) + " is absurdly large (limit " + std::to_string(kMaxHeaderBytes) + ")");
  if (n > file_size - 8)
    file_error(path, "header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(file_size) +
                         " bytes)");
  if (n == 0) file_error(path, "header is empty");

  JsonValue header;
  try {
    header = parse_json(reinterpret_cast<const char*>(base + 8), static_cast<size_t>(n), kMaxHeaderDepth);
  } catch (const JsonError& e) {
    file_error(path, std::string("header is not valid JSON: ") + e.what() + " (of " + std::to_string(n) + ")");
  }
  if (!header.is_object()) file_error(path, std::string("header is ") + json_kind_name(header.kind) + ", not a JSON object");

  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->mapping_ = mapping;
  file->header_size_ = n;
  const uint64_t data_len = file_size - 8 - n;

  for (const auto& kv : header.object) {
    const std::string& name = kv.first;
    const JsonValue& v = kv.second;
    if (name == "__metadata__") {
      if (v.is_null()) continue;
      if (!v.is_object()) file_error(path, "__metadata__ must be an object of strings");
      for (const auto& m : v.object) {
        if (!m.second.is_string())
          file_error(path, "__metadata__[\"" + m.first + "\"] is " + json_kind_name(m.second.kind) + ", not a string");
        file->metadata_[m.first] = m.second.string;
      }
      continue;
    }
    const std::string where = "tensor \"" + name + "\"";
    if (!v.is_object()) file_error(path, where + ": entry is " + std::string(json_kind_name(v.kind)) + ", not an object");
    const JsonValue* dtype = v.find("dtype");
    const JsonValue* shape = v.find("shape");
    const JsonValue* offsets = v.find("data_offsets");
    if (!dtype) file_error(path, where + ": missing \"dtype\"");
    if (!shape) file_error(path, where + ": missing \"shape\"");
    if (!offsets) file_error(path, where + ": missing \"data_offsets\"");
    if (!dtype->is_string()) file_error(path, where + ": \"dtype\" is " + json_kind_name(dtype->kind) + ", not a string");

    Entry e;
    e.name = name;
    e.dtype = dtype->string;
    if (!dtype_from_safetensors(e.dtype, &e.scalar_type)) {
      if (is_spec_dtype_we_do_not_handle(e.dtype))
        throw_unsupported("safetensors file " + path + ": " + where + ": dtype " + e.dtype +
                          " is not supported by sftkit (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL are)");
      file_error(path, where + ": unknown dtype \"" + e.dtype + "\"");
    }
    if (!shape->is_array()) file_error(path, where + ": \"shape\" is " + json_kind_name(shape->kind) + ", not an array");
    uint64_t numel = 1;
    for (const JsonValue& d : shape->array) {
      int64_t x;
      if (!non_negative_int(d, &x)) file_error(path, where + ": shape has an entry that is not a non-negative integer");
      e.shape.push_back(x);
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(x), &numel))
        file_error(path, where + ": shape " + join_shape(e.shape) + " overflows");
    }
    if (!offsets->is_array() || offsets->array.size() != 2)
      file_error(path, where + ": \"data_offsets\" must be an array [begin, end]");
    int64_t b, en;
    if (!non_negative_int(offsets->array[0], &b) || !non_negative_int(offsets->array[1], &en))
      file_error(path, where + ": data_offsets must be non-negative integers");
    e.begin = static_cast<uint64_t>(b);
    e.end = static_cast<uint64_t>(en);
    if (e.begin > e.end)
      file_error(path, where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] begin > end");
    if (e.end > data_len)
      file_error(path, where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                           "] out of range: the data region has " + std::to_string(data_len) + " bytes");
    const uint64_t elem = c10::elementSize(e.scalar_type);
    uint64_t bytes;
    if (__builtin_mul_overflow(numel, elem, &bytes) || bytes != e.end - e.begin)
      file_error(path, where + ": shape " + join_shape(e.shape) + " x " + std::to_string(elem) + " bytes (" + e.dtype +
                           ") does not match the " + std::to_string(e.end - e.begin) + " bytes of data_offsets");
    file->entries_.push_back(std::move(e));
  }

  // The tensors must tile the data region exactly: sorted by offset, each begins where the previous ended.
  std::stable_sort(file->entries_.begin(), file->entries_.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : file->entries_) {
    if (e.begin < expected)
      file_error(path, "tensor \"" + e.name + "\" overlaps tensor \"" + prev->name + "\" (bytes " + std::to_string(e.begin) +
                           ".." + std::to_string(expected) + ")");
    if (e.begin > expected)
      file_error(path, "the data region has a hole at bytes " + std::to_string(expected) + ".." + std::to_string(e.begin) +
                           " before tensor \"" + e.name + "\"");
    expected = e.end;
    prev = &e;
  }
  if (expected != data_len)
    file_error(path, "the tensors cover " + std::to_string(expected) + " bytes but the data region has " +
                         std::to_string(data_len) + " bytes");
  for (size_t i = 0; i < file->entries_.size(); ++i) file->index_[file->entries_[i].name] = i;
  return file;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) out.push_back(e.name);
  return out;
}

bool SafetensorsFile::has(const std::string& name) const { return index_.count(name) != 0; }

const SafetensorsFile::Entry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw_bad_argument("safetensors file " + path_ + " has no tensor \"" + name + "\"");
  return entries_[it->second];
}

at::Tensor SafetensorsFile::get(const std::string& name) const {
  const Entry& e = entry(name);
  const auto options = at::TensorOptions().dtype(e.scalar_type);
  if (e.begin == e.end) return at::empty(e.shape, options);
  uint8_t* ptr = mapping_->data() + 8 + header_size_ + e.begin;
  if (e.scalar_type == at::kBool) {  // any byte other than 0/1 is not a bool (and undefined behaviour in kernels)
    for (uint64_t i = 0; i < e.end - e.begin; ++i)
      if (ptr[i] > 1) file_error(path_, "tensor \"" + name + "\": BOOL byte " + std::to_string(i) + " is " + std::to_string(ptr[i]) + ", not 0 or 1");
  }
  const size_t elem = c10::elementSize(e.scalar_type);
  if (reinterpret_cast<uintptr_t>(ptr) % elem == 0) {
    std::shared_ptr<FileMapping> keep = mapping_;
    return at::from_blob(ptr, e.shape, [keep](void*) mutable { keep.reset(); }, options);
  }
  at::Tensor out = at::empty(e.shape, options);
  std::memcpy(out.data_ptr(), ptr, e.end - e.begin);
  return out;
}

bool SafetensorsFile::release_pages(const at::Tensor& view) const {
  const auto* begin = static_cast<const uint8_t*>(view.data_ptr());
  const auto* end = begin + view.nbytes();
  const uint8_t* base = mapping_->data();
  if (begin < base || end > base + mapping_->size() || begin >= end) return false;
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t from = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;  // whole pages inside only
  const uintptr_t to = reinterpret_cast<uintptr_t>(end) / page * page;
  if (to > from) madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
  return true;
}

void release_view_pages(const TensorDir& dir, const at::Tensor& view) {
  if (!view.defined() || !view.is_cpu()) return;
  for (const auto& f : dir.files)
    if (f->release_pages(view)) return;
}

TensorDir load_safetensors_dir(const std::string& dir) {
  bool is_dir = false;
  if (!path_exists(dir, &is_dir)) throw_io("model directory " + dir + " does not exist");
  if (!is_dir) throw_io(dir + " is not a directory");
  const std::string index_path = dir + "/model.safetensors.index.json";
  const std::string single_path = dir + "/model.safetensors";
  TensorDir out;

  if (!path_exists(index_path)) {
    if (!path_exists(single_path))
      throw_io("model directory " + dir + " has neither model.safetensors nor model.safetensors.index.json");
    auto file = SafetensorsFile::open(single_path);
    for (const auto& e : file->entries()) out.tensors[e.name] = file->get(e.name);
    out.metadata = file->metadata();
    out.files.push_back(file);
    return out;
  }

  const std::string text = read_small_file(index_path, kMaxIndexBytes);
  JsonValue index;
  try {
    index = parse_json(text.data(), text.size(), 16);
  } catch (const JsonError& e) {
    throw_io(index_path + ": not valid JSON: " + e.what());
  }
  const JsonValue* weight_map = index.find("weight_map");
  if (!weight_map || !weight_map->is_object()) throw_io(index_path + ": missing \"weight_map\" object");

  std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;  // opened once each
  for (const auto& kv : weight_map->object) {
    if (!kv.second.is_string()) throw_io(index_path + ": weight_map[\"" + kv.first + "\"] is not a string");
    const std::string& shard = kv.second.string;
    if (shard.empty() || shard == "." || shard == ".." || shard.find('/') != std::string::npos ||
        shard.find('\\') != std::string::npos || shard.find('\0') != std::string::npos)
      throw_io(index_path + ": weight_map[\"" + kv.first + "\"] names \"" + shard + "\", not a file in the directory");
    auto it = shards.find(shard);
    if (it == shards.end()) it = shards.emplace(shard, SafetensorsFile::open(dir + "/" + shard)).first;
    if (!it->second->has(kv.first))
      throw_io(index_path + ": tensor \"" + kv.first + "\" is mapped to " + shard + " but that shard does not contain it");
  }
  if (shards.empty()) throw_io(index_path + ": weight_map is empty");
  for (const auto& s : shards) {
    for (const auto& e : s.second->entries()) {
      if (out.tensors.count(e.name)) throw_io(dir + ": tensor \"" + e.name + "\" is stored in more than one shard");
      out.tensors[e.name] = s.second->get(e.name);
    }
    for (const auto& m : s.second->metadata()) out.metadata.emplace(m.first, m.second);  // first shard wins
    out.files.push_back(s.second);
  }
  return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Header: {"__metadata__": {...}, name: {"dtype", "shape", "data_offsets"}, ...} in the given order.
  std::set<std::string> seen;
  std::vector<at::Tensor> data;
  data.reserve(tensors.size());
  std::string header = "{";
  bool first = true;
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool mfirst = true;
    for (const auto& kv : metadata) {
      if (!is_valid_utf8(kv.first.data(), kv.first.size()) || !is_valid_utf8(kv.second.data(), kv.second.size()))
        throw_bad_argument("save_safetensors: metadata keys and values must be valid UTF-8");
      if (!mfirst) header += ",";
      mfirst = false;
      append_json_string(header, kv.first);
      header += ":";
      append_json_string(header, kv.second);
    }
    header += "}";
    first = false;
  }
  uint64_t offset = 0;
  for (const auto& nt : tensors) {
    const std::string& name = nt.first;
    if (name.empty()) throw_bad_argument("save_safetensors: tensor names must not be empty");
    if (name == "__metadata__") throw_bad_argument("save_safetensors: \"__metadata__\" is reserved, not a tensor name");
    if (!is_valid_utf8(name.data(), name.size()))
      throw_bad_argument("save_safetensors: tensor name is not valid UTF-8");
    if (!seen.insert(name).second) throw_bad_argument("save_safetensors: duplicate tensor name \"" + name + "\"");
    if (!nt.second.defined()) throw_bad_argument("save_safetensors: tensor \"" + name + "\" is undefined");
    at::Tensor t = nt.second.detach();
    if (!t.device().is_cpu()) t = t.cpu();
    t = t.contiguous();
    const std::string dtype = dtype_to_safetensors(t.scalar_type());
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    if (!first) header += ",";
    first = false;
    append_json_string(header, name);
    header += ":{\"dtype\":\"" + dtype + "\",\"shape\":[";
    for (int64_t i = 0; i < t.dim(); ++i) header += (i ? "," : "") + std::to_string(t.size(i));
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
    data.push_back(std::move(t));
  }
  header += "}";
  while (header.size() % 8 != 0) header.push_back(' ');

  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_io("cannot create " + tmp + ": " + errno_text(errno));
  auto fail = [&](const std::string& what) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw_io("writing " + path + ": " + what + ": " + errno_text(err));
  };
  auto write_all = [&](const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::write(fd, c, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail("write failed");
      c += w;
      n -= static_cast<size_t>(w);
    }
  };
  const uint64_t n = header.size();
  uint8_t len_bytes[8];
  std::memcpy(len_bytes, &n, 8);
  write_all(len_bytes, 8);
  write_all(header.data(), header.size());
  for (const at::Tensor& t : data)
    if (t.numel() > 0) write_all(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    fd = -1;
    fail("close failed");
  }
  fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename of " + tmp + " failed");
  const size_t slash = path.rfind('/');
  const std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int dfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // best effort: some file systems refuse fsync on directories
    ::close(dfd);
  }
}

}  // namespace sft

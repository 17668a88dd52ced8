// TEMPORARY stand-in (deleted when branch native-safetensors is merged): reads model.safetensors of a directory
// (single file, F32/BF16/F16) with a minimal header parser, so the model can be developed before the real reader lands.
#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "errors.h"
#include "model.h"
#include "model_standin.h"

namespace sft {

namespace {

struct P {
  const std::string& s;
  size_t i = 0;
  void ws() { while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i; }
  char peek() { ws(); return i < s.size() ? s[i] : 0; }
  void expect(char c) { if (peek() != c) throw_io("standin: bad header"); ++i; }
  std::string str() {
    expect('"');
    std::string o;
    while (i < s.size() && s[i] != '"') { if (s[i] == '\\') ++i; o += s[i++]; }
    ++i;
    return o;
  }
  double num() { ws(); size_t j = i; while (j < s.size() && (isdigit(s[j]) || s[j] == '-' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' || s[j] == '+')) ++j; double v = std::stod(s.substr(i, j - i)); i = j; return v; }
  std::vector<int64_t> ints() {
    std::vector<int64_t> o; expect('[');
    if (peek() == ']') { ++i; return o; }
    for (;;) { o.push_back(static_cast<int64_t>(num())); if (peek() == ',') { ++i; continue; } expect(']'); return o; }
  }
};

}  // namespace

static TensorDir read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_io("cannot open " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string bytes = ss.str();
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  std::string header = bytes.substr(8, n);
  const char* data = bytes.data() + 8 + n;
  TensorDir out;
  P p{header};
  p.expect('{');
  while (p.peek() != '}') {
    std::string name = p.str();
    p.expect(':');
    p.expect('{');
    std::string dtype;
    std::vector<int64_t> shape, offs;
    while (p.peek() != '}') {
      std::string key = p.str();
      p.expect(':');
      if (name == "__metadata__") { out.metadata[key] = p.str(); }
      else if (key == "dtype") dtype = p.str();
      else if (key == "shape") shape = p.ints();
      else if (key == "data_offsets") offs = p.ints();
      if (p.peek() == ',') ++p.i;
    }
    ++p.i;
    if (p.peek() == ',') ++p.i;
    if (name == "__metadata__") continue;
    at::ScalarType st = dtype == "I64" ? at::kLong : dtype == "F32" ? at::kFloat : dtype == "BF16" ? at::kBFloat16 : dtype == "F16" ? at::kHalf : at::kFloat;
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(st));
    std::memcpy(t.data_ptr(), data + offs[0], offs[1] - offs[0]);
    out.tensors[name] = t;
  }
  return out;
}

TensorDir load_safetensors_dir(const std::string& dir) { return read_file(dir + "/model.safetensors"); }

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto f = std::make_shared<SafetensorsFile>();
  f->d_ = read_file(path);
  return f;
}
std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> n;
  for (auto& [k, v] : d_.tensors) n.push_back(k);
  return n;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::string h = "{";
  for (auto& [k, v] : metadata) h += "\"__metadata__\":{\"" + k + "\":\"" + v + "\"},";
  uint64_t off = 0;
  std::vector<at::Tensor> ts;
  for (auto& [name, t0] : tensors) {
    at::Tensor t = t0.contiguous().cpu();
    ts.push_back(t);
    std::string dt = t.scalar_type() == at::kFloat ? "F32" : t.scalar_type() == at::kBFloat16 ? "BF16" : t.scalar_type() == at::kLong ? "I64" : "F16";
    std::string shape;
    for (int64_t d : t.sizes()) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    uint64_t n = t.numel() * t.element_size();
    h += "\"" + name + "\":{\"dtype\":\"" + dt + "\",\"shape\":[" + shape + "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + n) + "]},";
    off += n;
  }
  h.back() = '}';
  while (h.size() % 8) h += ' ';
  std::ofstream f(path + ".tmp", std::ios::binary);
  uint64_t n = h.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f.write(h.data(), h.size());
  for (auto& t : ts) f.write(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  f.close();
  std::rename((path + ".tmp").c_str(), path.c_str());
}

}  // namespace sft

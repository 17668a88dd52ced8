// Implements frozen_weights.h: quantisation (ATen ops, chunked; the same fp32 ops as the Python reference), the CPU
// dequantisation loops and their ATen twin, and the frozen linear as a custom autograd Function that keeps nothing
// of the weight for backward.
#include "frozen_weights.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "errors.h"

namespace sft {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

constexpr int64_t kNf4Block = 64;     // elements per absmax
constexpr int64_t kDqBlock = 256;     // absmax values per second-level absmax
constexpr int64_t kChunk = int64_t{1} << 22;  // elements quantised per step (a multiple of 64)

at::Tensor fp32_on(const at::Device& dev, const float* v, int64_t n) {
  return at::tensor(at::ArrayRef<float>(v, static_cast<size_t>(n)), at::TensorOptions().dtype(at::kFloat)).to(dev);
}

// Thresholds halfway between neighbouring code values, in fp32 (a value goes to the code whose interval holds it;
// a tie goes to the lower code): bucketize(x, mid) counts the thresholds strictly below x.
at::Tensor midpoints(const at::Tensor& codes) {
  const int64_t n = codes.numel();
  return (codes.narrow(0, 0, n - 1) + codes.narrow(0, 1, n - 1)) / 2;
}

// v [blocks, K] fp32 -> (absmax [blocks], v / absmax with 0 for an all-zero block).
std::pair<at::Tensor, at::Tensor> block_normalise(const at::Tensor& v) {
  at::Tensor absmax = v.abs().amax(1);
  at::Tensor safe = at::where(absmax == 0, at::ones_like(absmax), absmax);
  return {absmax, v / safe.unsqueeze(1)};
}

at::Tensor pad_to(const at::Tensor& flat, int64_t multiple) {
  const int64_t rem = flat.numel() % multiple;
  return rem == 0 ? flat : at::constant_pad_nd(flat, {0, multiple - rem}, 0);
}

// One whole block: 32 bytes of codes -> 64 values table[code], T float (fp32 output) or uint16_t (bf16 bits). Forms
// chosen once by the CPU: AVX-512 (16 or 32 lookups per permute), AVX2 (fp32: two 8-entry permutes and a blend),
// plain C++. All read the same table, so they give the same values bit for bit (the engine tests compare them).
template <typename T>
void nf4_block_scalar(const uint8_t* p, const T* table, T* o) {
  for (int64_t j = 0; j < kNf4Block / 2; ++j) {
    o[2 * j] = table[p[j] >> 4];
    o[2 * j + 1] = table[p[j] & 15];
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx512f"))) void nf4_block_avx512(const uint8_t* p, const float* table, float* o) {
  const __m512 t = _mm512_loadu_ps(table);
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i low4 = _mm512_set1_epi32(15);
  for (int half = 0; half < 2; ++half) {
    const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * half)));
    const __m512 hi = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), t);  // elements 2j
    const __m512 lo = _mm512_permutexvar_ps(_mm512_and_si512(bytes, low4), t);  // elements 2j + 1
    _mm512_storeu_ps(o + 32 * half, _mm512_permutex2var_ps(hi, first, lo));
    _mm512_storeu_ps(o + 32 * half + 16, _mm512_permutex2var_ps(hi, second, lo));
  }
}

// table[idx] for idx in 0..15 from its two halves: bit 3 picks the half (blendv reads bit 31).
__attribute__((target("avx2"))) inline __m256 lookup16_avx2(__m256 t0, __m256 t1, __m256i idx) {
  const __m256 a = _mm256_permutevar8x32_ps(t0, idx), b = _mm256_permutevar8x32_ps(t1, idx);
  return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

__attribute__((target("avx2"))) void nf4_block_avx2(const uint8_t* p, const float* table, float* o) {
  const __m256 t0 = _mm256_loadu_ps(table), t1 = _mm256_loadu_ps(table + 8);
  const __m256i low4 = _mm256_set1_epi32(15);
  for (int q8 = 0; q8 < 4; ++q8) {
    const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8 * q8)));
    const __m256 hi = lookup16_avx2(t0, t1, _mm256_srli_epi32(bytes, 4));
    const __m256 lo = lookup16_avx2(t0, t1, _mm256_and_si256(bytes, low4));
    const __m256 a = _mm256_unpacklo_ps(hi, lo), b = _mm256_unpackhi_ps(hi, lo);  // per 128-bit lane
    _mm256_storeu_ps(o + 16 * q8, _mm256_permute2f128_ps(a, b, 0x20));
    _mm256_storeu_ps(o + 16 * q8 + 8, _mm256_permute2f128_ps(a, b, 0x31));
  }
}
#endif

template <typename T>
using Nf4Block = void (*)(const uint8_t*, const T*, T*);
template <typename T>
using Nf4Kernels = std::vector<std::pair<std::string, Nf4Block<T>>>;

// The whole-block kernels this CPU runs, fastest first.
const Nf4Kernels<float>& nf4_block_kernels(float*) {
  static const Nf4Kernels<float> kernels = [] {
    Nf4Kernels<float> out;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx512f")) out.emplace_back("avx512", nf4_block_avx512);
    if (__builtin_cpu_supports("avx2")) out.emplace_back("avx2", nf4_block_avx2);
#endif
    out.emplace_back("scalar", nf4_block_scalar<float>);
    return out;
  }();
  return kernels;
}

// A per-block table entry: code * absmax in fp32, or that product rounded to bf16 (to nearest even, as ATen's
// fp32 -> bf16 copy).
inline void set_entry(float& t, float v) { t = v; }
inline void set_entry(uint16_t& t, float v) { t = c10::BFloat16(v).x; }

// The nf4 codes of elements [e0, e1) of one weight with the per-block table of code * absmax: element e's value is
// table[code(e)] with one fp32 multiply per table entry, the same product as code * absmax element by element.
// Whole blocks go through `whole_block` (a SIMD kernel), partial ones element by element. T: float or bf16 bits.
template <typename T>
void nf4_blocks_walk(const uint8_t* q, const float* absmax, int64_t e0, int64_t e1, T* out, Nf4Block<T> whole_block) {
  const auto& code = nf4_codebook();
  const int64_t first = e0 / kNf4Block, last = (e1 + kNf4Block - 1) / kNf4Block;
  at::parallel_for(first, last, 64, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float s = absmax[b - first];
      alignas(64) T table[16];
      for (int k = 0; k < 16; ++k) set_entry(table[k], code[k] * s);
      const int64_t lo = std::max(e0, b * kNf4Block), hi = std::min(e1, (b + 1) * kNf4Block);
      T* o = out + (lo - e0);
      if (lo == b * kNf4Block && hi == lo + kNf4Block) {
        whole_block(q + lo / 2, table, o);
      } else {
        for (int64_t e = lo; e < hi; ++e) {
          const uint8_t byte = q[e >> 1];
          o[e - lo] = table[(e & 1) ? (byte & 15) : (byte >> 4)];
        }
      }
    }
  });
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// The interleaving of the 32 high and 32 low nibbles of one block: output lane 2j = hi of byte j (index j),
// lane 2j + 1 = lo of byte j (index 32 + j); the first 32 outputs take bytes 0..15, the next 32 bytes 16..31.
struct Interleave16 {
  alignas(64) uint16_t first[32], second[32];
  Interleave16() {
    for (int j = 0; j < 16; ++j) {
      first[2 * j] = static_cast<uint16_t>(j);
      first[2 * j + 1] = static_cast<uint16_t>(32 + j);
      second[2 * j] = static_cast<uint16_t>(16 + j);
      second[2 * j + 1] = static_cast<uint16_t>(48 + j);
    }
  }
};
const Interleave16 kInterleave16;

__attribute__((target("avx512f,avx512bw"))) void nf4_block16_avx512(const uint8_t* p, const uint16_t* table, uint16_t* o) {
  // The 16 entries in the low half; the indices never exceed 15, so the upper lanes are never read.
  const __m512i t = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(table)));
  const __m512i first = _mm512_load_si512(kInterleave16.first), second = _mm512_load_si512(kInterleave16.second);
  const __m512i bytes = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));  // 32 lanes
  const __m512i hi = _mm512_srli_epi16(bytes, 4), lo = _mm512_and_si512(bytes, _mm512_set1_epi16(15));
  _mm512_storeu_si512(o, _mm512_permutexvar_epi16(_mm512_permutex2var_epi16(hi, first, lo), t));
  _mm512_storeu_si512(o + 32, _mm512_permutexvar_epi16(_mm512_permutex2var_epi16(hi, second, lo), t));
}
#endif

const Nf4Kernels<uint16_t>& nf4_block_kernels(uint16_t*) {
  static const Nf4Kernels<uint16_t> kernels = [] {
    Nf4Kernels<uint16_t> out;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) out.emplace_back("avx512", nf4_block16_avx512);
#endif
    out.emplace_back("scalar", nf4_block_scalar<uint16_t>);
    return out;
  }();
  return kernels;
}

// The kernel named `name` ("": the fastest) for T.
template <typename T>
Nf4Block<T> nf4_kernel(const std::string& name) {
  const Nf4Kernels<T>& kernels = nf4_block_kernels(static_cast<T*>(nullptr));
  if (name.empty()) return kernels.front().second;
  for (const auto& [n, k] : kernels) {
    if (n == name) return k;
  }
  throw_bad_argument("frozen weight: this CPU has no '" + name + "' nf4 kernel");
}

// One int8 row times its scale (auto-vectorised for the CPU at hand: one exact fp32 multiply per element either way).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void int8_row(const int8_t* q, float s, int64_t n, float* o) {
  for (int64_t j = 0; j < n; ++j) o[j] = static_cast<float>(q[j]) * s;
}

void check_rows(const FrozenWeight& w, int64_t r0, int64_t n, const at::Tensor& out, bool fp32_only) {
  if (r0 < 0 || n < 0 || r0 + n > w.rows) throw_bad_argument("frozen weight: rows out of range");
  const at::ScalarType t = out.scalar_type();
  if (!(t == at::kFloat || (t == at::kBFloat16 && !fp32_only)) || !out.is_contiguous() || out.numel() != n * w.cols) {
    throw_bad_argument(std::string("frozen weight: the output must be a contiguous ") + (fp32_only ? "fp32" : "fp32 or bf16") +
                       " [n, cols] tensor");
  }
}

// nf4 values of the elements idx [K] int64 (row-major positions in the weight, any order) of blocks within [b0, b1)
// into out [K] fp32, in device-agnostic ATen ops.
void nf4_elements_aten(const FrozenWeight& w, const at::Tensor& idx, int64_t b0, int64_t b1, at::Tensor out) {
  at::Tensor code = fp32_on(w.data.device(), nf4_codebook().data(), 16);
  at::Tensor bytes = w.data.index_select(0, idx.div(2, "floor")).to(at::kLong);
  at::Tensor shift = (1 - idx.remainder(2)) * 4;  // even element: high nibble
  at::Tensor codes = bytes.bitwise_right_shift(shift).bitwise_and(15);
  at::Tensor scale = nf4_absmax(w, b0, b1).index_select(0, idx.div(kNf4Block, "floor") - b0);
  at::mul_out(out, code.index_select(0, codes), scale);
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Shapes: x [N..., I] -> x W^T [N..., O]. The weight is dequantised into the workspace for the forward and again for
// the backward; the context keeps pointers only (the model outlives its graphs). compute: kFloat (x as it is, fp32
// weights) or kBFloat16 (bf16 autocast: x and the weight in bf16, a bf16 base as stored, no dequantisation).
struct FrozenLinearFn : public torch::autograd::Function<FrozenLinearFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, FrozenBase* base, const FrozenWeight* w,
                            at::ScalarType compute) {
    ctx->saved_data["base"] = reinterpret_cast<int64_t>(base);
    ctx->saved_data["weight"] = reinterpret_cast<int64_t>(w);
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["compute"] = static_cast<int64_t>(compute);
    at::Tensor W = base->workspace_rows(*w, 0, w->rows, compute);  // [O, I]
    const auto t0 = Clock::now();
    at::Tensor y = at::linear(x.scalar_type() == compute ? x : x.to(compute), W);
    base->add_matmul_ms(ms_since(t0));
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto* base = reinterpret_cast<FrozenBase*>(ctx->saved_data["base"].toInt());
    const auto* w = reinterpret_cast<const FrozenWeight*>(ctx->saved_data["weight"].toInt());
    const auto compute = static_cast<at::ScalarType>(ctx->saved_data["compute"].toInt());
    const at::Tensor& g = grads[0];  // [N..., O]
    at::Tensor gx;
    if (g.defined() && ctx->needs_input_grad(0)) {
      at::Tensor W = base->workspace_rows(*w, 0, w->rows, compute);
      const auto t0 = Clock::now();
      gx = at::matmul(g.scalar_type() == compute ? g : g.to(compute), W);  // [N..., I]
      base->add_matmul_ms(ms_since(t0));
      const auto xt = static_cast<at::ScalarType>(ctx->saved_data["x_dtype"].toInt());
      if (gx.scalar_type() != xt) gx = gx.to(xt);
    }
    return {gx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

BaseDtype parse_base_dtype(const std::string& name) {
  if (name == "float32") return BaseDtype::kFloat32;
  if (name == "bfloat16") return BaseDtype::kBFloat16;
  if (name == "int8") return BaseDtype::kInt8;
  if (name == "nf4") return BaseDtype::kNf4;
  throw_bad_argument("baseDtype must be 'float32', 'bfloat16', 'int8' or 'nf4', got '" + name + "'");
}

std::string base_dtype_name(BaseDtype dtype) {
  switch (dtype) {
    case BaseDtype::kFloat32: return "float32";
    case BaseDtype::kBFloat16: return "bfloat16";
    case BaseDtype::kInt8: return "int8";
    case BaseDtype::kNf4: return "nf4";
  }
  return "?";
}

const std::array<float, 16>& nf4_codebook() {
  // QLoRA (Dettmers et al. 2023), Appendix E; bitsandbytes' NF4 table.
  static const std::array<float, 16> code = {
      -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
      -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
      0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
      0.7229568362236023f, 1.0f};
  return code;
}

const std::array<float, 256>& dynamic_map8() {
  static const std::array<float, 256> map = [] {
    // bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for each decimal exponent
    // i, 2^i values spread linearly over [0.1, 1] (the midpoints of 2^i + 1 boundaries) times 10^(i - 6), both signs;
    // plus 0 and 1. Computed in float64, rounded to float32, sorted.
    std::vector<double> v;
    for (int i = 0; i < 7; ++i) {
      const int k = (1 << i) + 1;
      std::vector<double> bounds(k);
      for (int j = 0; j < k; ++j) bounds[j] = 0.1 + j * (0.9 / (k - 1));
      const double scale = std::pow(10.0, i - 6);
      for (int j = 0; j + 1 < k; ++j) {
        const double m = (bounds[j] + bounds[j + 1]) / 2.0;
        v.push_back(scale * m);
        v.push_back(-scale * m);
      }
    }
    v.push_back(0.0);
    v.push_back(1.0);
    std::array<float, 256> out{};
    std::vector<float> f(v.begin(), v.end());
    std::sort(f.begin(), f.end());
    std::copy(f.begin(), f.end(), out.begin());
    return out;
  }();
  return map;
}

int64_t FrozenWeight::bytes() const {
  int64_t n = 0;
  for (const at::Tensor* t : {&data, &scales, &scales2}) {
    if (t->defined()) n += t->numel() * static_cast<int64_t>(t->element_size());
  }
  return n;
}

namespace {

// nf4 codes and absmax of n fp32 values (blocks of 64, the last zero-padded) on the CPU: the same arithmetic as the
// ATen form below element by element (max |x|, one IEEE division, the count of thresholds strictly below), so the
// same bits, in one pass instead of ten. q: ceil(n / 2) bytes, absmax: ceil(n / 64) values.
void nf4_quantize_cpu(const float* x, int64_t n, uint8_t* q, float* absmax) {
  const auto& code = nf4_codebook();
  float mid[15];
  for (int k = 0; k < 15; ++k) mid[k] = (code[k] + code[k + 1]) / 2;  // midpoints(): (a + b) / 2 in fp32
  const int64_t blocks = (n + kNf4Block - 1) / kNf4Block, bytes = (n + 1) / 2;
  at::parallel_for(0, blocks, 256, [&](int64_t b0, int64_t b1) {
    float v[kNf4Block];
    uint8_t c[kNf4Block];
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t lo = b * kNf4Block, m = std::min<int64_t>(kNf4Block, n - lo);
      float amax = 0;
      for (int64_t i = 0; i < kNf4Block; ++i) {
        v[i] = i < m ? x[lo + i] : 0.0f;
        amax = std::max(amax, std::fabs(v[i]));
      }
      absmax[b] = amax;
      const float safe = amax == 0 ? 1.0f : amax;
      for (int64_t i = 0; i < kNf4Block; ++i) {
        const float t = v[i] / safe;
        int k = 0;
        for (int j = 0; j < 15; ++j) k += mid[j] < t;
        c[i] = static_cast<uint8_t>(k);
      }
      for (int64_t j = 0; j < kNf4Block / 2 && lo / 2 + j < bytes; ++j) {
        q[lo / 2 + j] = static_cast<uint8_t>((c[2 * j] << 4) | c[2 * j + 1]);
      }
    }
  });
}

}  // namespace

FrozenWeight quantize_weight(const at::Tensor& w, BaseFormat format, bool aten_only,
                             const std::function<void(const at::Tensor&)>& consumed) {
  auto read = [&consumed](const at::Tensor& chunk) {
    if (consumed && chunk.is_contiguous()) consumed(chunk);
  };
  if (w.dim() != 2 || !w.is_floating_point()) throw_bad_argument("quantize: a floating-point [rows, cols] weight expected");
  if (!format.frozen()) throw_bad_argument("quantize: float32 is not a frozen format");
  c10::NoGradGuard no_grad;
  const at::Device dev = w.device();
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(dev);
  FrozenWeight out;
  out.dtype = format.dtype;
  out.double_quant = format.double_quant && format.dtype == BaseDtype::kNf4;
  out.rows = w.size(0);
  out.cols = w.size(1);
  const int64_t O = out.rows, I = out.cols;
  if (format.dtype == BaseDtype::kBFloat16) {
    out.data = at::empty({O, I}, f32.dtype(at::kBFloat16));
    const int64_t step = std::max<int64_t>(1, kChunk / std::max<int64_t>(1, I));
    for (int64_t r0 = 0; r0 < O; r0 += step) {
      const int64_t n = std::min(step, O - r0);
      out.data.narrow(0, r0, n).copy_(w.narrow(0, r0, n));  // round to nearest even, as torch's .to(bfloat16)
      read(w.narrow(0, r0, n));
    }
    return out;
  }
  if (format.dtype == BaseDtype::kInt8) {
    out.data = at::empty({O, I}, f32.dtype(at::kChar));
    out.scales = at::empty({O}, f32);
    const int64_t step = std::max<int64_t>(1, kChunk / std::max<int64_t>(1, I));
    for (int64_t r0 = 0; r0 < O; r0 += step) {
      const int64_t n = std::min(step, O - r0);
      at::Tensor x = w.narrow(0, r0, n).to(at::kFloat);  // [n, I]
      at::Tensor scale = x.abs().amax(1) / 127;
      at::Tensor safe = at::where(scale == 0, at::ones_like(scale), scale);
      out.data.narrow(0, r0, n).copy_(at::round(x / safe.unsqueeze(1)).clamp(-127, 127));
      out.scales.narrow(0, r0, n).copy_(scale);
      read(w.narrow(0, r0, n));
    }
    return out;
  }
  // nf4: row-major blocks of 64 elements (a block may span rows), the last one zero-padded.
  const int64_t numel = O * I;
  const int64_t blocks = (numel + kNf4Block - 1) / kNf4Block;
  at::Tensor flat = w.reshape({-1});  // a view when w is contiguous (the usual mapped checkpoint tensor)
  at::Tensor mid = midpoints(fp32_on(dev, nf4_codebook().data(), 16));
  out.data = at::empty({(numel + 1) / 2}, f32.dtype(at::kByte));
  at::Tensor absmax = at::empty({blocks}, f32);
  for (int64_t e0 = 0; e0 < numel; e0 += kChunk) {
    const int64_t n = std::min(kChunk, numel - e0);
    if (dev.is_cpu() && !aten_only) {
      at::Tensor x = flat.narrow(0, e0, n).to(at::kFloat).contiguous();
      nf4_quantize_cpu(x.data_ptr<float>(), n, out.data.data_ptr<uint8_t>() + e0 / 2, absmax.data_ptr<float>() + e0 / kNf4Block);
      read(flat.narrow(0, e0, n));
      continue;
    }
    at::Tensor v = pad_to(flat.narrow(0, e0, n).to(at::kFloat), kNf4Block).view({-1, kNf4Block});
    auto [amax, norm] = block_normalise(v);
    at::Tensor q = at::bucketize(norm, mid);  // [b, 64] int64 in 0..15
    at::Tensor packed = at::bitwise_or(q.slice(1, 0, kNf4Block, 2).bitwise_left_shift(4), q.slice(1, 1, kNf4Block, 2));
    out.data.narrow(0, e0 / 2, (n + 1) / 2).copy_(packed.reshape({-1}).narrow(0, 0, (n + 1) / 2));
    absmax.narrow(0, e0 / kNf4Block, amax.size(0)).copy_(amax);
    read(flat.narrow(0, e0, n));
  }
  if (!out.double_quant) {
    out.scales = absmax;
    return out;
  }
  // Double quantisation: the absmax values less their mean, coded with the signed dynamic 8-bit map in blocks of 256
  // (each with its own fp32 absmax).
  out.offset = static_cast<float>(absmax.to(at::kDouble).sum().item<double>() / static_cast<double>(blocks));
  at::Tensor shifted = absmax - at::full({1}, out.offset, f32);
  at::Tensor map8 = fp32_on(dev, dynamic_map8().data(), 256);
  auto [amax2, norm2] = block_normalise(pad_to(shifted, kDqBlock).view({-1, kDqBlock}));
  out.scales = at::bucketize(norm2, midpoints(map8)).reshape({-1}).narrow(0, 0, blocks).to(at::kByte);
  out.scales2 = amax2;
  return out;
}

at::Tensor nf4_absmax(const FrozenWeight& w, int64_t b0, int64_t b1) {
  if (!w.double_quant) return w.scales.narrow(0, b0, b1 - b0);
  const auto dev = w.scales.device();
  at::Tensor map8 = fp32_on(dev, dynamic_map8().data(), 256);
  at::Tensor codes = w.scales.narrow(0, b0, b1 - b0).to(at::kLong);
  at::Tensor second = w.scales2.index_select(0, at::arange(b0, b1, codes.options()).div(kDqBlock, "floor"));
  return map8.index_select(0, codes) * second + at::full({1}, w.offset, map8.options());  // multiply, then add
}

void dequantize_rows_aten(const FrozenWeight& w, int64_t r0, int64_t n, const at::Tensor& out) {
  check_rows(w, r0, n, out, /*fp32_only=*/true);
  c10::NoGradGuard no_grad;
  at::Tensor o = out.view({n, w.cols});
  if (w.dtype == BaseDtype::kBFloat16) {
    o.copy_(w.data.narrow(0, r0, n));
  } else if (w.dtype == BaseDtype::kInt8) {
    at::mul_out(o, w.data.narrow(0, r0, n).to(at::kFloat), w.scales.narrow(0, r0, n).unsqueeze(1));  // o: a view
  } else {
    const int64_t e0 = r0 * w.cols, e1 = (r0 + n) * w.cols;
    at::Tensor flat = out.view({-1});
    for (int64_t a = e0; a < e1; a += kChunk) {
      const int64_t b = std::min(e1, a + kChunk);
      nf4_elements_aten(w, at::arange(a, b, w.data.options().dtype(at::kLong)), a / kNf4Block, (b - 1) / kNf4Block + 1,
                        flat.narrow(0, a - e0, b - a));
    }
  }
}

void dequantize_rows(const FrozenWeight& w, int64_t r0, int64_t n, const at::Tensor& out, const std::string& kernel) {
  check_rows(w, r0, n, out, /*fp32_only=*/false);
  c10::NoGradGuard no_grad;
  if (n == 0) return;
  const bool bf16_out = out.scalar_type() == at::kBFloat16;
  if (w.dtype == BaseDtype::kBFloat16) {
    out.view({n, w.cols}).copy_(w.data.narrow(0, r0, n));
  } else if (w.dtype == BaseDtype::kNf4 && w.data.device().is_cpu()) {
    const int64_t e0 = r0 * w.cols, e1 = (r0 + n) * w.cols;
    at::Tensor absmax = nf4_absmax(w, e0 / kNf4Block, (e1 + kNf4Block - 1) / kNf4Block).contiguous();
    const uint8_t* q = w.data.data_ptr<uint8_t>();
    if (bf16_out) {
      nf4_blocks_walk<uint16_t>(q, absmax.data_ptr<float>(), e0, e1, reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()),
                                nf4_kernel<uint16_t>(kernel));
    } else {
      nf4_blocks_walk<float>(q, absmax.data_ptr<float>(), e0, e1, out.data_ptr<float>(), nf4_kernel<float>(kernel));
    }
  } else if (bf16_out) {  // int8, or another device: the fp32 values, rounded
    at::Tensor f = at::empty({n, w.cols}, out.options().dtype(at::kFloat));
    dequantize_rows(w, r0, n, f);
    out.view({n, w.cols}).copy_(f);
  } else if (!w.data.device().is_cpu()) {
    dequantize_rows_aten(w, r0, n, out);
  } else {  // int8 on the CPU
    const int8_t* q = w.data.data_ptr<int8_t>() + r0 * w.cols;
    const float* s = w.scales.data_ptr<float>() + r0;
    float* o = out.data_ptr<float>();
    const int64_t I = w.cols;
    at::parallel_for(0, n, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, I)), [&](int64_t a, int64_t b) {
      for (int64_t r = a; r < b; ++r) int8_row(q + r * I, s[r], I, o + r * I);
    });
  }
}

std::vector<std::string> nf4_cpu_kernels(at::ScalarType out) {
  std::vector<std::string> names;
  if (out == at::kBFloat16) {
    for (const auto& k : nf4_block_kernels(static_cast<uint16_t*>(nullptr))) names.push_back(k.first);
  } else {
    for (const auto& k : nf4_block_kernels(static_cast<float*>(nullptr))) names.push_back(k.first);
  }
  return names;
}

at::Tensor gather_rows(const FrozenWeight& w, const at::Tensor& ids) {
  c10::NoGradGuard no_grad;
  at::Tensor flat = ids.reshape({-1}).to(at::kLong);
  std::vector<int64_t> shape = ids.sizes().vec();
  shape.push_back(w.cols);
  if (w.dtype == BaseDtype::kBFloat16) return w.data.index_select(0, flat).to(at::kFloat).view(shape);
  if (w.dtype == BaseDtype::kInt8) {
    return (w.data.index_select(0, flat).to(at::kFloat) * w.scales.index_select(0, flat).unsqueeze(1)).view(shape);
  }
  const int64_t n = flat.numel(), I = w.cols, blocks = (w.numel() + kNf4Block - 1) / kNf4Block;
  at::Tensor out = at::empty({n, I}, w.data.options().dtype(at::kFloat));
  if (!w.data.device().is_cpu()) {  // the elements of every row at once
    at::Tensor idx = (flat.unsqueeze(1) * I + at::arange(I, flat.options()).unsqueeze(0)).reshape({-1});
    nf4_elements_aten(w, idx, 0, blocks, out.view({-1}));
    return out.view(shape);
  }
  at::Tensor absmax = nf4_absmax(w, 0, blocks).contiguous();
  const int64_t* id = flat.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (id[i] < 0 || id[i] >= w.rows) throw_bad_argument("embedding: token id " + std::to_string(id[i]) + " out of range");
  }
  const uint8_t* q = w.data.data_ptr<uint8_t>();
  const float* am = absmax.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const Nf4Block<float> whole = nf4_kernel<float>("");
  // One row per task (each row's blocks are independent); the walk's own parallel_for runs inline here.
  at::parallel_for(0, n, 1, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) {
      const int64_t e0 = id[i] * I;
      nf4_blocks_walk<float>(q, am + e0 / kNf4Block, e0, e0 + I, o + i * I, whole);
    }
  });
  return out.view(shape);
}

void FrozenBase::add(const at::Tensor& member, FrozenWeight w) { weights_[member.unsafeGetTensorImpl()] = std::move(w); }

const FrozenWeight* FrozenBase::find(const at::Tensor& member) const {
  if (!member.defined()) return nullptr;
  auto it = weights_.find(member.unsafeGetTensorImpl());
  return it == weights_.end() ? nullptr : &it->second;
}

at::Tensor FrozenBase::workspace_rows(const FrozenWeight& w, int64_t r0, int64_t n, at::ScalarType dtype) {
  if (dtype == at::kBFloat16 && w.dtype == BaseDtype::kBFloat16) return w.data.narrow(0, r0, n);  // as stored
  if (dtype != at::kFloat && dtype != at::kBFloat16) throw_bad_argument("frozen weight: float32 or bfloat16 compute only");
  const int64_t need = n * w.cols;
  at::Tensor& buffer = dtype == at::kFloat ? workspace_ : workspace16_;
  if (!buffer.defined() || buffer.numel() < need || buffer.device() != w.data.device()) {
    buffer = at::Tensor();  // the old buffer goes before the new one comes
    buffer = at::empty({need}, w.data.options().dtype(dtype));
  }
  at::Tensor view = buffer.narrow(0, 0, need).view({n, w.cols});
  const auto t0 = Clock::now();
  dequantize_rows(w, r0, n, view);  // bf16: rounded once here rather than by autocast inside the matmul
  stats_.dequant_ms += ms_since(t0);
  return view;
}

at::Tensor FrozenBase::linear(const at::Tensor& x, const FrozenWeight& w, const at::Tensor& b) {
  // Under bf16 autocast (--autocast) the base's matmuls run in bf16, as autocast runs every linear; else in x's dtype.
  const at::DeviceType dev = x.device().type();
  const bool bf16 = at::autocast::is_autocast_enabled(dev) && at::autocast::get_autocast_dtype(dev) == at::kBFloat16;
  const at::ScalarType compute = bf16 ? at::kBFloat16 : at::kFloat;
  at::Tensor y = FrozenLinearFn::apply(x, this, &w, compute);  // (an undefined tensor cannot be a Function input)
  return b.defined() ? y + (y.scalar_type() == b.scalar_type() ? b : b.to(y.scalar_type())) : y;
}

at::Tensor FrozenBase::embedding(const FrozenWeight& w, const at::Tensor& ids) {
  const auto t0 = Clock::now();
  at::Tensor out = gather_rows(w, ids);
  stats_.dequant_ms += ms_since(t0);
  return out;
}

at::Tensor FrozenBase::dense(const FrozenWeight& w) {
  at::Tensor out = at::empty({w.rows, w.cols}, w.data.options().dtype(at::kFloat));
  const auto t0 = Clock::now();
  dequantize_rows(w, 0, w.rows, out);
  stats_.dequant_ms += ms_since(t0);
  return out;
}

int64_t FrozenBase::bytes() const {
  int64_t n = 0;
  for (const auto& [member, w] : weights_) n += w.bytes();
  return n;
}

FrozenBase::Stats FrozenBase::stats(bool reset) {
  Stats s = stats_;
  if (reset) stats_ = Stats();
  return s;
}

}  // namespace sft

// A frozen base kept small (QLoRA's idea): the 2-D weights of a model (projections, embeddings, LM head) stored as
// bfloat16, int8 (symmetric, one scale per output channel) or nf4 (QLoRA's NormalFloat-4 codebook, blocks of 64
// with an absmax each, the absmax values optionally double-quantised to 8 bits in blocks of 256), and dequantised
// just in time into one reused fp32 workspace for each matmul, forward and backward alike: the dequantised weight is
// never saved for backward, so memory holds the small form only while compute stays fp32.
// The quantisation is bit-exact with the Python reference of scripts/gen-fixtures/base_dtype.py (the same fp32 ops
// in the same order); the formats are documented in test/fixtures/base-dtype/SOURCE.md.
//
// Shape legend: O output features (rows), I input features (columns), V vocabulary, C hidden, N leading dims of x.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace sft {

enum class BaseDtype { kFloat32, kBFloat16, kInt8, kNf4 };

struct BaseFormat {
  BaseDtype dtype = BaseDtype::kFloat32;
  bool double_quant = false;  // nf4 only
  bool frozen() const { return dtype != BaseDtype::kFloat32; }
};

// "float32" | "bfloat16" | "int8" | "nf4" (else SFTKIT_BAD_ARGUMENT), and back.
BaseDtype parse_base_dtype(const std::string& name);
std::string base_dtype_name(BaseDtype dtype);

// The 16 NF4 values of QLoRA / bitsandbytes, and the 256 values of bitsandbytes' signed dynamic 8-bit map
// (create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), computed in float64, sorted) that double
// quantisation codes the absmax values with.
const std::array<float, 16>& nf4_codebook();
const std::array<float, 256>& dynamic_map8();

// One weight [O, I] in its small form.
struct FrozenWeight {
  BaseDtype dtype = BaseDtype::kBFloat16;
  bool double_quant = false;
  int64_t rows = 0, cols = 0;
  at::Tensor data;     // bf16 [O, I] | int8 [O, I] | nf4: uint8 [ceil(O * I / 2)], the first element of a pair in the
                       // high nibble (bitsandbytes' order), elements in row-major order
  at::Tensor scales;   // int8: fp32 [O] (absmax / 127); nf4: fp32 absmax [blocks of 64], with double quantisation
                       // uint8 [blocks] codes into dynamic_map8()
  at::Tensor scales2;  // nf4 double quantisation: fp32 [ceil(blocks / 256)] absmax of the mean-shifted absmax values
  float offset = 0;    // nf4 double quantisation: the mean absmax
  int64_t numel() const { return rows * cols; }
  int64_t bytes() const;
};

// Quantises w [O, I] (any floating dtype; a view such as a transpose is fine) into `format` on w's device, reading
// it in chunks (never an fp32 copy of the whole weight). nf4 on the CPU runs one threaded loop; elsewhere, or with
// aten_only (tests), ATen ops: the same bits either way. consumed (optional) is called with each contiguous chunk
// of w once it has been read (the loader drops a mapped file's pages as it goes: the largest tensor is never
// resident whole beside its small form).
FrozenWeight quantize_weight(const at::Tensor& w, BaseFormat format, bool aten_only = false,
                             const std::function<void(const at::Tensor&)>& consumed = {});
// Rows [r0, r0 + n) of the dequantised weight into out ([n, I], contiguous, on the weight's device): fp32, or bf16
// (the fp32 values rounded to nearest even; for bf16 compute). On the CPU through threaded loops (nf4: the SIMD
// kernel `kernel` of nf4_cpu_kernels, "" = the fastest); elsewhere through dequantize_rows_aten.
void dequantize_rows(const FrozenWeight& w, int64_t r0, int64_t n, const at::Tensor& out, const std::string& kernel = "");
// The same into fp32 in device-agnostic ATen ops (CUDA; and the tests' check of the CPU loops).
void dequantize_rows_aten(const FrozenWeight& w, int64_t r0, int64_t n, const at::Tensor& out);
// The nf4 CPU kernels of this CPU for an fp32 or bf16 output ("avx512", "avx2", "scalar"; the first is the one used;
// tests: every kernel gives the same values).
std::vector<std::string> nf4_cpu_kernels(at::ScalarType out);
// nf4: the absmax values of blocks [b0, b1) in fp32 (double quantisation undone: map8[q] * absmax2 + offset).
at::Tensor nf4_absmax(const FrozenWeight& w, int64_t b0, int64_t b1);
// ids [...] int64 -> the dequantised rows [..., I] fp32 (an embedding lookup without a dense table).
at::Tensor gather_rows(const FrozenWeight& w, const at::Tensor& ids);

// The frozen weights of one model, keyed by the tensor that stands for each in the model (the parameter member
// becomes a meta tensor of the weight's shape; copies of it, such as lm_head_weight()'s, find the same entry), with the reused fp32 workspace and the time spent dequantising and in their matmuls.
// Used by one compute thread at a time (the model's).
class FrozenBase {
 public:
  explicit FrozenBase(BaseFormat format) : format_(format) {}
  BaseFormat format() const { return format_; }

  void add(const at::Tensor& member, FrozenWeight w);
  // The frozen form of a parameter member (or a copy of it), or nullptr.
  const FrozenWeight* find(const at::Tensor& member) const;

  // x [N..., I] -> x W^T + b [N..., O], differentiable w.r.t. x; W is dequantised into the workspace for the
  // forward and again for the backward. Under bf16 autocast the matmuls run in bf16 (as autocast runs a linear).
  at::Tensor linear(const at::Tensor& x, const FrozenWeight& w, const at::Tensor& b);
  // Rows of the weight for ids [...] -> [..., I] fp32 (frozen embeddings get no gradient).
  at::Tensor embedding(const FrozenWeight& w, const at::Tensor& ids);
  // The whole weight dequantised into a new fp32 tensor [O, I].
  at::Tensor dense(const FrozenWeight& w);
  // Rows [r0, r0 + n) dequantised into the workspace: a view [n, I] valid until the next workspace use. Timed.
  // dtype kBFloat16 (bf16 compute under autocast): a bf16 base's rows as stored, others dequantised and rounded.
  at::Tensor workspace_rows(const FrozenWeight& w, int64_t r0, int64_t n, at::ScalarType dtype = at::kFloat);

  int64_t bytes() const;
  struct Stats {
    double dequant_ms = 0, matmul_ms = 0;
  };
  // Time spent since construction or the last reset.
  Stats stats(bool reset);
  void add_matmul_ms(double ms) { stats_.matmul_ms += ms; }

 private:
  BaseFormat format_;
  std::unordered_map<const c10::TensorImpl*, FrozenWeight> weights_;
  at::Tensor workspace_;    // flat fp32, grown to the largest request
  at::Tensor workspace16_;  // flat bf16, the same for bf16 compute
  Stats stats_;
};

}  // namespace sft

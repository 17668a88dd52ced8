// Fused elementwise blocks of the llama family with hand-written backward passes: RMSNorm keeps only its input and
// the per-row 1/rms for backward (the composite form keeps the normalised activations too), SwiGLU keeps only the
// gate and up projections (the composite form keeps silu(gate) as well). Same math as transformers'
// LlamaRMSNorm / silu(gate) * up; fp32 statistics for low-precision inputs.
#pragma once

#include <ATen/core/Tensor.h>

namespace sft {

// Shapes: x [..., N], w [N] -> [..., N]: w * (x * rsqrt(mean(x^2) + eps)) with the statistics in fp32 and the
// normalised x cast back to x's dtype before the weight multiplies (HF order).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps);

// Shapes: gate [..., I], up [..., I] -> [..., I]: silu(gate) * up.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

}  // namespace sft

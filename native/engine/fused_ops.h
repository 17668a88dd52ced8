// Fused elementwise blocks with hand-written backward passes: RMSNorm keeps only its input and the per-row 1/rms for
// backward (the composite form keeps the normalised activations too), SwiGLU keeps only the gate and up projections
// (the composite form keeps silu(gate) as well), the MLP activation + down projection pairs keep only the
// activation's inputs, and LayerNorm + projection keeps only the LayerNorm's input. Same math as transformers' LlamaRMSNorm / silu(gate) * up / gelu_new; fp32 statistics for
// low-precision inputs.
#pragma once

#include <ATen/core/Tensor.h>

namespace sft {

// Shapes: x [..., N], w [N] -> [..., N]: w * (x * rsqrt(mean(x^2) + eps)) with the statistics in fp32 and the
// normalised x cast back to x's dtype before the weight multiplies (HF order).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps);

// Shapes: gate [..., I], up [..., I] -> [..., I]: silu(gate) * up.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

// The MLP's activation and its down projection as one op that keeps only the activation's inputs for backward and
// recomputes the activation there (one elementwise pass) for the weight gradient: the composite form keeps the
// [..., I] activation as well (a quarter of a GPT-2 layer's saved tensors, a fifth of a llama layer's). Same values
// and gradients as the composite (at::linear over gelu / swiglu). b may be undefined.
// Shapes: pre [..., I], w [C, I], b [C] -> [..., C]: gelu_tanh(pre) @ w^T + b.
at::Tensor gelu_tanh_linear(const at::Tensor& pre, const at::Tensor& w, const at::Tensor& b);
// Shapes: gate [..., I], up [..., I], w [C, I], b [C] -> [..., C]: (silu(gate) * up) @ w^T + b.
at::Tensor swiglu_linear(const at::Tensor& gate, const at::Tensor& up, const at::Tensor& w, const at::Tensor& b);

// LayerNorm and the projection it feeds as one op that keeps only the LayerNorm's input for backward and recomputes
// the normalised rows there (one pass) for the weight gradient: the composite form keeps the [..., C] normalised
// activation as well (two per GPT-2 layer). Same values and gradients as at::linear(at::layer_norm(...)). b may be
// undefined.
// Shapes: x [..., C], g [C], beta [C], w [O, C], b [O] -> [..., O]: layer_norm(x) @ w^T + b.
at::Tensor layer_norm_linear(const at::Tensor& x, const at::Tensor& g, const at::Tensor& beta, double eps,
                             const at::Tensor& w, const at::Tensor& b);

}  // namespace sft

// Causal softmax attention over whole sequences on CPU, with a hand-written backward.
//
//   out[b, h, i] = sum_{j <= i} softmax_j(rope(q)[b, h, i] . rope(k)[b, h, j] * scale) v[b, h, j]
//
// with rope the rotary embedding in the rotate_half layout, x cos + rotate_half(x) sin.
//
// Per (batch, head) it rotates q and k, makes five BLAS calls and two passes over the [T, T]
// block: scores,
// causal softmax in place, weighted sum; and in the backward dP = dO V^T, dS in place, dQ, dK,
// dV. The matmul formulation instead runs batched matmuls (a dispatch and a select per head), a
// mask, a division and a softmax, each a pass over [B, H, T, T], and as many again backwards.
// Equal to it up to float rounding (tests/plugins/models/causal_attention_test.cpp).
#pragma once

#include <ATen/core/Tensor.h>

namespace tune::llama {

// q, k, v: float32 CPU [batch, heads, tokens, head_dim], q and k not yet rotated (k and v
// already repeated for grouped queries); cos, sin: float32 [tokens, head_dim]. Differentiable
// with respect to q, k and v.
at::Tensor CausalAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& cos, const at::Tensor& sin, double scale);

}  // namespace tune::llama

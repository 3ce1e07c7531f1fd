// Causal softmax attention over whole sequences on CPU, with a hand-written backward.
//
//   out[b, h, i] = sum_{j <= i} softmax_j(q[b, h, i] . k[b, h, j] * scale) v[b, h, j]
//
// Per (batch, head) it makes five BLAS calls and two passes over the [T, T] block: scores,
// causal softmax in place, weighted sum; and in the backward dP = dO V^T, dS in place, dQ, dK,
// dV. The matmul formulation instead runs batched matmuls (a dispatch and a select per head), a
// mask, a division and a softmax, each a pass over [B, H, T, T], and as many again backwards.
// Equal to it up to float rounding (tests/plugins/models/causal_attention_test.cpp).
#pragma once

#include <ATen/core/Tensor.h>

namespace tune::llama {

// q, k, v: float32 CPU [batch, heads, tokens, head_dim] (k and v already repeated for grouped
// queries). Differentiable with respect to all three.
at::Tensor CausalAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           double scale);

}  // namespace tune::llama

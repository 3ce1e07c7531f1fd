// The llama plugin's fused causal attention against the matmul formulation it replaces: outputs
// and the gradients of q, k and v, for several shapes.
#include "models/llama/causal_attention.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace tune::llama {
namespace {

torch::Tensor RotateHalf(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// Rotary embeddings for positions 0..tokens-1 as the llama plugin builds them.
std::pair<torch::Tensor, torch::Tensor> CosSin(int64_t tokens, int64_t dim) {
  const torch::Tensor inv_freq =
      torch::pow(10000.0, torch::arange(0, dim, 2, torch::kDouble) / static_cast<double>(dim))
          .reciprocal();
  const torch::Tensor angles = torch::outer(torch::arange(tokens, torch::kDouble), inv_freq);
  const torch::Tensor both = torch::cat({angles, angles}, -1);
  return {both.cos().to(torch::kFloat), both.sin().to(torch::kFloat)};
}

torch::Tensor MatmulAttention(torch::Tensor q, torch::Tensor k, const torch::Tensor& v,
                              const torch::Tensor& cos, const torch::Tensor& sin, double scale) {
  q = q * cos + RotateHalf(q) * sin;
  k = k * cos + RotateHalf(k) * sin;
  const int64_t tokens = q.size(2);
  const torch::Tensor future = torch::ones({tokens, tokens}, torch::kBool).triu(1);
  const torch::Tensor scores = (torch::matmul(q, k.transpose(-2, -1)) * scale)
                                   .masked_fill(future, -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(scores, -1), v);
}

void ExpectSameAsMatmul(int64_t batch, int64_t heads, int64_t tokens, int64_t dim) {
  torch::manual_seed(batch * 1000 + tokens);
  const auto make = [&] { return torch::randn({batch, heads, tokens, dim}).requires_grad_(); };
  const torch::Tensor q = make(), k = make(), v = make();
  const torch::Tensor weights = torch::randn({batch, heads, tokens, dim});
  const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
  const auto [cos, sin] = CosSin(tokens, dim);

  const torch::Tensor fused = CausalAttention(q, k, v, cos, sin, scale);
  const auto fused_grads = torch::autograd::grad({(fused * weights).sum()}, {q, k, v});
  const torch::Tensor reference = MatmulAttention(q, k, v, cos, sin, scale);
  const auto reference_grads = torch::autograd::grad({(reference * weights).sum()}, {q, k, v});

  EXPECT_LT((fused - reference).abs().max().item<double>(), 1e-5);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_LT((fused_grads[i] - reference_grads[i]).abs().max().item<double>(), 1e-4)
        << "gradient "
        << "qkv"[i] << " for " << batch << "x" << heads << "x" << tokens << "x" << dim;
  }
}

TEST(CausalAttention, MatchesTheMatmulFormulationAndItsGradients) {
  ExpectSameAsMatmul(2, 4, 64, 32);
  ExpectSameAsMatmul(1, 1, 1, 8);   // one token attends only to itself
  ExpectSameAsMatmul(3, 2, 17, 6);  // odd token count, head_dim 6
}

TEST(CausalAttention, AcceptsNonContiguousInputs) {
  torch::manual_seed(0);
  const torch::Tensor q = torch::randn({2, 9, 3, 8}).transpose(1, 2);
  const torch::Tensor k = torch::randn({2, 9, 3, 8}).transpose(1, 2);
  const torch::Tensor v = torch::randn({2, 9, 3, 8}).transpose(1, 2);
  const auto [cos, sin] = CosSin(9, 8);
  EXPECT_LT((CausalAttention(q, k, v, cos, sin, 0.3) - MatmulAttention(q, k, v, cos, sin, 0.3))
                .abs()
                .max()
                .item<double>(),
            1e-5);
}

}  // namespace
}  // namespace tune::llama

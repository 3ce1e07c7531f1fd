// The llama plugin's fused causal attention against the matmul formulation it replaces: outputs
// and the gradients of q, k and v, for several shapes.
#include "models/llama/causal_attention.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace tune::llama {
namespace {

torch::Tensor MatmulAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, double scale) {
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

  const torch::Tensor fused = CausalAttention(q, k, v, scale);
  const auto fused_grads = torch::autograd::grad({(fused * weights).sum()}, {q, k, v});
  const torch::Tensor reference = MatmulAttention(q, k, v, scale);
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
  ExpectSameAsMatmul(3, 2, 17, 6);  // odd sizes
}

TEST(CausalAttention, AcceptsNonContiguousInputs) {
  torch::manual_seed(0);
  const torch::Tensor q = torch::randn({2, 9, 3, 8}).transpose(1, 2);
  const torch::Tensor k = torch::randn({2, 9, 3, 8}).transpose(1, 2);
  const torch::Tensor v = torch::randn({2, 9, 3, 8}).transpose(1, 2);
  EXPECT_LT(
      (CausalAttention(q, k, v, 0.3) - MatmulAttention(q, k, v, 0.3)).abs().max().item<double>(),
      1e-5);
}

}  // namespace
}  // namespace tune::llama

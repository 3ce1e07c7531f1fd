#include "generate/generate.h"

#include <cmath>
#include <map>

#include <gtest/gtest.h>

#include "util/error.h"

namespace tune {
namespace {

TEST(PickToken, GreedyTakesTheLargestLogitAndBreaksTiesToTheLowestId) {
  std::mt19937_64 rng(0);
  SamplingOptions greedy;
  EXPECT_EQ(PickToken(std::vector<float>{0.1f, 2.0f, -1.0f, 2.0f}, greedy, rng), 1);
  EXPECT_EQ(PickToken(std::vector<float>{5.0f}, greedy, rng), 0);
}

TEST(PickToken, TinyTopPKeepsOnlyTheMostLikelyToken) {
  std::mt19937_64 rng(0);
  SamplingOptions options;
  options.temperature = 1.0;
  options.top_p = 1e-6;
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(PickToken(std::vector<float>{0.0f, 0.5f, 0.4f}, options, rng), 1);
  }
}

TEST(PickToken, SamplesInProportionToTheSoftmax) {
  // logits ln(1), ln(2), ln(3), ln(4): probabilities 0.1, 0.2, 0.3, 0.4 at temperature 1.
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)};
  SamplingOptions options;
  options.temperature = 1.0;
  std::mt19937_64 rng(42);
  std::map<int32_t, int> counts;
  const int draws = 40000;
  for (int i = 0; i < draws; ++i) ++counts[PickToken(logits, options, rng)];
  for (int token = 0; token < 4; ++token) {
    // Binomial standard deviation is at most sqrt(0.25 / 40000) = 0.0025; allow 4 of them.
    EXPECT_NEAR(counts[token] / static_cast<double>(draws), 0.1 * (token + 1), 0.01) << token;
  }
}

TEST(PickToken, TopPDropsTheTailAndRenormalises) {
  // Probabilities 0.1, 0.2, 0.3, 0.4: top_p 0.6 keeps {3, 2} (mass 0.7), so 4/7 and 3/7.
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)};
  SamplingOptions options;
  options.temperature = 1.0;
  options.top_p = 0.6;
  std::mt19937_64 rng(7);
  std::map<int32_t, int> counts;
  const int draws = 40000;
  for (int i = 0; i < draws; ++i) ++counts[PickToken(logits, options, rng)];
  EXPECT_EQ(counts[0] + counts[1], 0);
  EXPECT_NEAR(counts[3] / static_cast<double>(draws), 4.0 / 7.0, 0.01);
}

TEST(PickToken, TheSameSeedGivesTheSameSamples) {
  const std::vector<float> logits = {0.3f, 0.1f, 0.9f, 0.2f, 0.5f};
  SamplingOptions options;
  options.temperature = 0.8;
  options.top_p = 0.9;
  std::mt19937_64 a(123), b(123);
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(PickToken(logits, options, a), PickToken(logits, options, b));
}

TEST(PickToken, RefusesOptionsOutOfRange) {
  std::mt19937_64 rng(0);
  SamplingOptions options;
  options.temperature = -1;
  EXPECT_THROW(PickToken(std::vector<float>{1.0f}, options, rng), UserError);
  options.temperature = 1;
  options.top_p = 0;
  EXPECT_THROW(PickToken(std::vector<float>{1.0f}, options, rng), UserError);
}

}  // namespace
}  // namespace tune

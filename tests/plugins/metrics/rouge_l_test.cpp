// rouge_l, loaded from the build's plugin folder through the real host as tune loads it.
// Expected values are worked by hand from ROUGE-L's definition (Lin, 2004, section 3.1) with
// beta = 1, as Google's rouge-score computes it: words are the runs of [a-z0-9] after
// lower-casing; LCS = the longest common subsequence of the two word lists;
// P = LCS / |prediction|, R = LCS / |reference|, F = 2PR / (P + R), and 0 when LCS is 0 or either
// list is empty; the best reference per example, averaged over examples.
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "plugins/metrics/builtin_metric.h"
#include "tune/metric.h"

namespace tune {
namespace {

using testing::Example;

constexpr double kTolerance = 1e-12;

class RougeL : public testing::BuiltinMetric {
 protected:
  RougeL() : BuiltinMetric("rouge_l") {}
};

TEST_F(RougeL, IsRegisteredAsAMetricToMaximize) {
  EXPECT_EQ(std::get<MetricPlugin>(loaded_->plugin).goal, MetricGoal::kMaximize);
}

// rouge-score's tokenizer has no settings (it always lower-cases), so neither has rouge_l.
TEST_F(RougeL, DeclaresNoOptions) { EXPECT_TRUE(loaded_->info().options.empty()); }

TEST_F(RougeL, ScoresTheLongestCommonSubsequenceOfWords) {
  // [the, cat, sat, on, the, mat] vs [the, cat, is, on, the, mat]: LCS = [the, cat, on, the, mat]
  // = 5, P = 5/6, R = 5/6, F = 5/6.
  const MetricScore score = Score({Example("the cat sat on the mat", {"the cat is on the mat"})});
  ASSERT_EQ(score.per_example.size(), 1u);
  EXPECT_NEAR(score.per_example[0], 5.0 / 6.0, kTolerance);
  EXPECT_NEAR(score.value, 5.0 / 6.0, kTolerance);
}

TEST_F(RougeL, ReproducesLinsExampleWhereWordOrderMatters) {
  // Lin (2004), section 3.1: reference "police killed the gunman".
  //   S2 "police kill the gunman": LCS = [police, the, gunman] = 3, P = R = 3/4, F = 3/4.
  //   S3 "the gunman kill police": LCS = [the, gunman] = 2, P = R = 2/4, F = 1/2.
  // Both share the same three words with the reference; only their order tells them apart.
  const MetricScore score = Score({
      Example("police kill the gunman", {"police killed the gunman"}),
      Example("the gunman kill police", {"police killed the gunman"}),
  });
  ASSERT_EQ(score.per_example.size(), 2u);
  EXPECT_NEAR(score.per_example[0], 0.75, kTolerance);
  EXPECT_NEAR(score.per_example[1], 0.5, kTolerance);
  EXPECT_NEAR(score.value, 0.625, kTolerance);  // (3/4 + 1/2) / 2
}

TEST_F(RougeL, WeighsPrecisionAndRecallEqually) {
  const MetricScore score = Score({
      // [the, cat] vs [the, cat, sat, on, the, mat]: LCS 2, P = 1, R = 1/3,
      // F = (2/3) / (4/3) = 1/2.
      Example("the cat", {"the cat sat on the mat"}),
      // Swapped: P = 1/3, R = 1, F = 1/2 again.
      Example("the cat sat on the mat", {"the cat"}),
      // [the, the, the] vs [the, cat, the]: LCS = [the, the] = 2, P = R = 2/3, F = 2/3.
      Example("the the the", {"the cat the"}),
  });
  ASSERT_EQ(score.per_example.size(), 3u);
  EXPECT_NEAR(score.per_example[0], 0.5, kTolerance);
  EXPECT_NEAR(score.per_example[1], 0.5, kTolerance);
  EXPECT_NEAR(score.per_example[2], 2.0 / 3.0, kTolerance);
  EXPECT_NEAR(score.value, (0.5 + 0.5 + 2.0 / 3.0) / 3.0, kTolerance);
}

TEST_F(RougeL, LowercasesAndSplitsOnEverythingButAsciiLettersAndDigits) {
  const MetricScore score = Score({
      // "The Cat's-whiskers, 2024!" -> [the, cat, s, whiskers, 2024]: equal lists, F = 1.
      Example("The Cat's-whiskers, 2024!", {"the cat s whiskers 2024"}),
      // Punctuation alone is no word: [paris] vs [paris], F = 1.
      Example("... Paris?!", {"paris"}),
      // Non-ASCII letters separate words, as in rouge-score: "Café au lait" -> [caf, au, lait];
      // vs [cafe, au, lait]: LCS = [au, lait] = 2, P = R = 2/3, F = 2/3.
      Example("Caf\xC3\xA9 au lait", {"cafe au lait"}),
      // Python lower-cases U+212A KELVIN SIGN to 'k' and U+0130 to 'i' + U+0307 (a separator):
      // "\u212Aelvin \u0130stanbul" -> [kelvin, i, stanbul] vs the same: F = 1.
      Example("\xE2\x84\xAA"
              "elvin \xC4\xB0stanbul",
              {"kelvin i stanbul"}),
  });
  ASSERT_EQ(score.per_example.size(), 4u);
  EXPECT_NEAR(score.per_example[0], 1.0, kTolerance);
  EXPECT_NEAR(score.per_example[1], 1.0, kTolerance);
  EXPECT_NEAR(score.per_example[2], 2.0 / 3.0, kTolerance);
  EXPECT_NEAR(score.per_example[3], 1.0, kTolerance);
}

TEST_F(RougeL, TakesTheBestReferenceNotTheMean) {
  // pred [the, cat, sat] against
  //   [a, dog, barked]:         LCS 0,                        F = 0
  //   [the, cat, sat, down]:    LCS 3, P = 1,   R = 3/4,      F = (3/2) / (7/4) = 6/7
  //   [cat]:                    LCS 1, P = 1/3, R = 1,        F = (2/3) / (4/3) = 1/2
  // max = 6/7
  const MetricScore score =
      Score({Example("the cat sat", {"a dog barked", "the cat sat down", "cat"})});
  ASSERT_EQ(score.per_example.size(), 1u);
  EXPECT_NEAR(score.per_example[0], 6.0 / 7.0, kTolerance);
  EXPECT_NEAR(score.value, 6.0 / 7.0, kTolerance);
}

// rouge-score returns 0 whenever either word list is empty, so two empty answers do not agree
// here (unlike token_f1, which follows SQuAD v2.0 and scores them 1).
TEST_F(RougeL, ScoresZeroWhenEitherSideHasNoWordsEvenBoth) {
  const MetricScore score = Score({
      Example("", {"Paris"}),     // [] vs [paris]: 0
      Example("Paris", {"?!"}),   // [paris] vs []: 0
      Example("...", {""}),       // [] vs []: 0
      Example("dog", {"a cat"}),  // LCS 0: 0
      Example("Paris", {"paris"}),
  });
  ASSERT_EQ(score.per_example.size(), 5u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(score.per_example[i], 0.0) << i;
  EXPECT_NEAR(score.per_example[4], 1.0, kTolerance);
  EXPECT_NEAR(score.value, 0.2, kTolerance);  // (0 + 0 + 0 + 0 + 1) / 5
}

}  // namespace
}  // namespace tune

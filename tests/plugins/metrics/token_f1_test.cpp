// token_f1, loaded from the build's plugin folder through the real host as tune loads it.
// Expected values follow SQuAD's f1_score on normalize_answer(...).split(): multiset overlap,
// P = overlap / len(pred), R = overlap / len(ref), F1 = 2PR / (P + R); the best reference per
// example, averaged over examples. Both word lists empty scores 1 and one empty scores 0 (the
// SQuAD v2.0 convention).
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "plugins/metrics/builtin_metric.h"
#include "tune/metric.h"

namespace tune {
namespace {

using testing::Example;

constexpr double kTolerance = 1e-12;

class TokenF1 : public testing::BuiltinMetric {
 protected:
  TokenF1() : BuiltinMetric("token_f1") {}
};

TEST_F(TokenF1, IsRegisteredAsAMetricToMaximize) {
  EXPECT_EQ(std::get<MetricPlugin>(loaded_->plugin).goal, MetricGoal::kMaximize);
}

// collapse_whitespace is not offered: words are split on whitespace, so it could change nothing.
TEST_F(TokenF1, DeclaresTheThreeNormalisationStepsThatMatterOnByDefault) {
  const std::vector<OptionSpec>& options = loaded_->info().options;
  const std::vector<std::string> expected = {"lowercase", "strip_punctuation", "strip_articles"};
  ASSERT_EQ(options.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(options[i].name, expected[i]);
    EXPECT_EQ(options[i].type, OptionType::kBool) << options[i].name;
    ASSERT_TRUE(std::holds_alternative<bool>(options[i].default_value)) << options[i].name;
    EXPECT_TRUE(std::get<bool>(options[i].default_value)) << options[i].name;
  }
}

TEST_F(TokenF1, ScoresEachExampleInOrderAndAveragesThem) {
  const MetricScore score = Score({
      // [cat, sat] vs [cat, sat, down]: overlap 2, P = 1, R = 2/3, F1 = (4/3) / (5/3) = 0.8.
      Example("the cat sat", {"cat sat down"}),
      // [dog] vs [cat]: overlap 0, F1 = 0.
      Example("dog", {"cat"}),
      // [cat, sat] vs [cat, sat]: F1 = 1.
      Example("Cat sat.", {"the cat sat"}),
  });
  ASSERT_EQ(score.per_example.size(), 3u);
  EXPECT_NEAR(score.per_example[0], 0.8, kTolerance);
  EXPECT_NEAR(score.per_example[1], 0.0, kTolerance);
  EXPECT_NEAR(score.per_example[2], 1.0, kTolerance);
  EXPECT_NEAR(score.value, 0.6, kTolerance);  // (0.8 + 0 + 1) / 3
}

TEST_F(TokenF1, IgnoresCaseArticlesAndPunctuationByDefault) {
  // "The Eiffel-Tower!" -> [eiffeltower]; "eiffeltower" -> [eiffeltower]: F1 = 1.
  // "A  Big, RED cat" -> [big, red, cat]; "big red cat" -> [big, red, cat]: F1 = 1.
  const MetricScore score = Score({
      Example("The Eiffel-Tower!", {"eiffeltower"}),
      Example("A  Big, RED cat", {"big red cat"}),
  });
  EXPECT_NEAR(score.value, 1.0, kTolerance);
}

TEST_F(TokenF1, CountsRepeatedWordsAsMultiset) {
  const MetricScore score = Score({
      // [go, go, go] vs [go, go, stop]: overlap min(3, 2) = 2, P = 2/3, R = 2/3, F1 = 2/3.
      Example("go go go", {"go go stop"}),
      // [go] vs [go, go, go, go]: overlap 1, P = 1, R = 1/4, F1 = (1/2) / (5/4) = 0.4.
      Example("go", {"go go go go"}),
  });
  ASSERT_EQ(score.per_example.size(), 2u);
  EXPECT_NEAR(score.per_example[0], 2.0 / 3.0, kTolerance);
  EXPECT_NEAR(score.per_example[1], 0.4, kTolerance);
  EXPECT_NEAR(score.value, (2.0 / 3.0 + 0.4) / 2.0, kTolerance);
}

TEST_F(TokenF1, TakesTheBestReferenceNotTheMean) {
  const MetricScore score = Score({
      // pred [denver, broncos] against
      //   [broncos]:                overlap 1, P = 1/2, R = 1,   F1 = 1 / (3/2) = 2/3
      //   [denver, broncos, team]:  overlap 2, P = 1,   R = 2/3, F1 = 0.8
      //   [carolina, panthers]:     overlap 0,                   F1 = 0
      // max = 0.8
      Example("Denver Broncos", {"Broncos", "the Denver Broncos team", "Carolina Panthers"}),
  });
  ASSERT_EQ(score.per_example.size(), 1u);
  EXPECT_NEAR(score.per_example[0], 0.8, kTolerance);
  EXPECT_NEAR(score.value, 0.8, kTolerance);
}

TEST_F(TokenF1, EmptyPredictionScoresZeroUnlessTheReferenceIsEmptyToo) {
  const MetricScore score = Score({
      Example("", {"Paris"}),        // [] vs [paris]: one empty, 0
      Example("The.", {"a"}),        // [] vs []: both empty, 1
      Example("Paris", {"the"}),     // [paris] vs []: one empty, 0
      Example("", {"Paris", "an"}),  // max(0, 1) = 1
  });
  ASSERT_EQ(score.per_example.size(), 4u);
  EXPECT_NEAR(score.per_example[0], 0.0, kTolerance);
  EXPECT_NEAR(score.per_example[1], 1.0, kTolerance);
  EXPECT_NEAR(score.per_example[2], 0.0, kTolerance);
  EXPECT_NEAR(score.per_example[3], 1.0, kTolerance);
  EXPECT_NEAR(score.value, 0.5, kTolerance);  // (0 + 1 + 0 + 1) / 4
}

TEST_F(TokenF1, LowercaseOffMakesCaseSignificant) {
  // Default: [paris, france] both, F1 = 1.
  // Off: [Paris, france] vs [paris, france]: overlap 1, P = 1/2, R = 1/2, F1 = 0.5.
  const std::vector<MetricExample> examples = {Example("Paris france", {"paris france"})};
  EXPECT_NEAR(Score(examples).value, 1.0, kTolerance);
  EXPECT_NEAR(Score(examples, {{"lowercase", false}}).value, 0.5, kTolerance);
}

TEST_F(TokenF1, StripPunctuationOffMakesPunctuationSignificant) {
  // Default: [paris, france] both, F1 = 1.
  // Off: [paris,, france] vs [paris, france]: overlap 1, P = 1/2, R = 1/2, F1 = 0.5.
  const std::vector<MetricExample> examples = {Example("Paris, France", {"Paris France"})};
  EXPECT_NEAR(Score(examples).value, 1.0, kTolerance);
  EXPECT_NEAR(Score(examples, {{"strip_punctuation", false}}).value, 0.5, kTolerance);
}

TEST_F(TokenF1, StripArticlesOffMakesArticlesSignificant) {
  // Default: [cat] vs [cat], F1 = 1.
  // Off: [the, cat] vs [cat]: overlap 1, P = 1/2, R = 1, F1 = 1 / (3/2) = 2/3.
  const std::vector<MetricExample> examples = {Example("the cat", {"cat"})};
  EXPECT_NEAR(Score(examples).value, 1.0, kTolerance);
  EXPECT_NEAR(Score(examples, {{"strip_articles", false}}).value, 2.0 / 3.0, kTolerance);
}

TEST_F(TokenF1, IgnoresSpacing) {
  // Words are split on whitespace runs, so spacing never changes the word lists:
  // "  big   cat " -> [big, cat] vs [big, cat], F1 = 1.
  // [big, cat] vs [big, red, cat]: overlap 2, P = 1, R = 2/3, F1 = 0.8.
  const MetricScore score = Score({
      Example("  big   cat ", {"big cat"}),
      Example("big\t\tcat", {"big  red  cat"}),
  });
  ASSERT_EQ(score.per_example.size(), 2u);
  EXPECT_NEAR(score.per_example[0], 1.0, kTolerance);
  EXPECT_NEAR(score.per_example[1], 0.8, kTolerance);
}

}  // namespace
}  // namespace tune

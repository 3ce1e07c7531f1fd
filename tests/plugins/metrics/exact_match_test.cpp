// exact_match, loaded from the build's plugin folder through the real host as tune loads it.
// Expected values follow SQuAD v1.1's exact_match_score: normalize_answer(prediction) ==
// normalize_answer(reference), the best reference per example, averaged over examples.
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

class ExactMatch : public testing::BuiltinMetric {
 protected:
  ExactMatch() : BuiltinMetric("exact_match") {}
};

TEST_F(ExactMatch, IsRegisteredAsAMetricToMaximize) {
  EXPECT_EQ(std::get<MetricPlugin>(loaded_->plugin).goal, MetricGoal::kMaximize);
}

TEST_F(ExactMatch, DeclaresTheFourNormalisationStepsOnByDefault) {
  const std::vector<OptionSpec>& options = loaded_->info().options;
  const std::vector<std::string> expected = {"lowercase", "strip_punctuation", "strip_articles",
                                             "collapse_whitespace"};
  ASSERT_EQ(options.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(options[i].name, expected[i]);
    EXPECT_EQ(options[i].type, OptionType::kBool) << options[i].name;
    ASSERT_TRUE(std::holds_alternative<bool>(options[i].default_value)) << options[i].name;
    EXPECT_TRUE(std::get<bool>(options[i].default_value)) << options[i].name;
  }
}

TEST_F(ExactMatch, ScoresEachExampleInOrderAndAveragesThem) {
  const MetricScore score = Score({
      Example("London", {"Paris"}),                    // "london" != "paris": 0
      Example("Paris", {"paris"}),                     // "paris" == "paris": 1
      Example("The Eiffel Tower!", {"eiffel tower"}),  // "eiffel tower" both: 1
  });
  ASSERT_EQ(score.per_example.size(), 3u);
  EXPECT_DOUBLE_EQ(score.per_example[0], 0.0);
  EXPECT_DOUBLE_EQ(score.per_example[1], 1.0);
  EXPECT_DOUBLE_EQ(score.per_example[2], 1.0);
  EXPECT_DOUBLE_EQ(score.value, 2.0 / 3.0);  // (0 + 1 + 1) / 3
}

TEST_F(ExactMatch, IgnoresArticlesAndPunctuationByDefault) {
  // "The answer: a cat." -> "answer cat" == "answer cat".
  const MetricScore score = Score({Example("The answer: a cat.", {"answer cat"})});
  ASSERT_EQ(score.per_example.size(), 1u);
  EXPECT_DOUBLE_EQ(score.per_example[0], 1.0);
  EXPECT_DOUBLE_EQ(score.value, 1.0);
}

TEST_F(ExactMatch, IgnoresCaseAndExtraWhitespaceByDefault) {
  // "  EIFFEL\t Tower " -> "eiffel tower" == "eiffel tower".
  const MetricScore score = Score({Example("  EIFFEL\t Tower ", {"eiffel tower"})});
  EXPECT_DOUBLE_EQ(score.value, 1.0);
}

TEST_F(ExactMatch, RequiresTheWholeAnswerNotPartOfIt) {
  // "tower" != "eiffel tower"; "eiffel tower paris" != "eiffel tower".
  const MetricScore score = Score({
      Example("Tower", {"Eiffel Tower"}),
      Example("Eiffel Tower, Paris", {"Eiffel Tower"}),
  });
  ASSERT_EQ(score.per_example.size(), 2u);
  EXPECT_DOUBLE_EQ(score.per_example[0], 0.0);
  EXPECT_DOUBLE_EQ(score.per_example[1], 0.0);
  EXPECT_DOUBLE_EQ(score.value, 0.0);
}

TEST_F(ExactMatch, CountsAMatchWithAnyReference) {
  const MetricScore score = Score({
      // "denver broncos": != "broncos", == "denver broncos", != "carolina": max 1.
      Example("Denver Broncos", {"Broncos", "the Denver Broncos", "Carolina"}),
      // "panthers" matches neither: 0.
      Example("Panthers", {"Broncos", "Denver Broncos"}),
  });
  ASSERT_EQ(score.per_example.size(), 2u);
  EXPECT_DOUBLE_EQ(score.per_example[0], 1.0);
  EXPECT_DOUBLE_EQ(score.per_example[1], 0.0);
  EXPECT_DOUBLE_EQ(score.value, 0.5);  // (1 + 0) / 2
}

TEST_F(ExactMatch, LowercaseOffMakesCaseSignificant) {
  const std::vector<MetricExample> examples = {
      Example("Paris", {"paris"}),  // off: "Paris" != "paris"
      Example("The cat", {"cat"}),  // off: "The" is not an article, "The cat" != "cat"
  };
  EXPECT_DOUBLE_EQ(Score(examples).value, 1.0);
  const MetricScore score = Score(examples, {{"lowercase", false}});
  ASSERT_EQ(score.per_example.size(), 2u);
  EXPECT_DOUBLE_EQ(score.per_example[0], 0.0);
  EXPECT_DOUBLE_EQ(score.per_example[1], 0.0);
}

TEST_F(ExactMatch, StripPunctuationOffMakesPunctuationSignificant) {
  // Default: "paris" == "paris"; off: "paris!" != "paris".
  const std::vector<MetricExample> examples = {Example("Paris!", {"Paris"})};
  EXPECT_DOUBLE_EQ(Score(examples).value, 1.0);
  EXPECT_DOUBLE_EQ(Score(examples, {{"strip_punctuation", false}}).value, 0.0);
}

TEST_F(ExactMatch, StripArticlesOffMakesArticlesSignificant) {
  // Default: "cat" == "cat"; off: "the cat" != "cat".
  const std::vector<MetricExample> examples = {Example("the cat", {"cat"})};
  EXPECT_DOUBLE_EQ(Score(examples).value, 1.0);
  EXPECT_DOUBLE_EQ(Score(examples, {{"strip_articles", false}}).value, 0.0);
}

TEST_F(ExactMatch, CollapseWhitespaceOffMakesSpacingSignificant) {
  // Default: "big cat" == "big cat"; off: "big  cat" != "big cat".
  const std::vector<MetricExample> examples = {Example("big  cat", {"big cat"})};
  EXPECT_DOUBLE_EQ(Score(examples).value, 1.0);
  EXPECT_DOUBLE_EQ(Score(examples, {{"collapse_whitespace", false}}).value, 0.0);
}

TEST_F(ExactMatch, EmptyPredictionMatchesOnlyAReferenceThatNormalisesToNothing) {
  const MetricScore score = Score({
      Example("", {"Paris"}),  // "" != "paris": 0
      Example("", {"The"}),    // "" == "": 1
      Example("The.", {"a"}),  // "" == "": 1
  });
  ASSERT_EQ(score.per_example.size(), 3u);
  EXPECT_DOUBLE_EQ(score.per_example[0], 0.0);
  EXPECT_DOUBLE_EQ(score.per_example[1], 1.0);
  EXPECT_DOUBLE_EQ(score.per_example[2], 1.0);
  EXPECT_DOUBLE_EQ(score.value, 2.0 / 3.0);  // (0 + 1 + 1) / 3
}

}  // namespace
}  // namespace tune

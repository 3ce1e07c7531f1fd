// bleu, loaded from the build's plugin folder through the real host as tune loads it.
// Expected values are worked by hand from corpus BLEU's definition (Papineni et al., 2002) with
// sacreBLEU's defaults:
//   p_n = 100 * (clipped n-gram matches) / (n-grams in the predictions), summed over the corpus,
//         where a prediction n-gram counts at most as often as it occurs in any one reference;
//   an order with no match gets p_n = 100 / (2^k * total_n), k = 1, 2, ... for each such order
//         ('exp' smoothing); an order with no n-gram at all makes the score 0;
//   BP = exp(1 - r / c) if c < r else 1, with c the prediction words and r the sum over examples
//         of the reference length closest to the prediction's (the shorter on a tie);
//   BLEU = BP * (p_1 p_2 p_3 p_4)^(1/4), in 0..100.
// Words come from sacreBLEU's 13a tokenisation (mteval-v13a): see the tokenisation tests.
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "plugins/metrics/builtin_metric.h"
#include "tune/metric.h"
#include "util/error.h"

namespace tune {
namespace {

using testing::Example;

constexpr double kTolerance = 1e-9;

class Bleu : public testing::BuiltinMetric {
 protected:
  Bleu() : BuiltinMetric("bleu") {}

  // The BLEU of a one-example corpus.
  double BleuOf(const std::string& prediction, const std::vector<std::string>& references,
                const std::map<std::string, bool>& overrides = {}) const {
    return Score({Example(prediction, references)}, overrides).value;
  }
};

TEST_F(Bleu, IsRegisteredAsAMetricToMaximize) {
  EXPECT_EQ(std::get<MetricPlugin>(loaded_->plugin).goal, MetricGoal::kMaximize);
}

TEST_F(Bleu, DeclaresOnlyLowercaseOffByDefault) {
  const std::vector<OptionSpec>& options = loaded_->info().options;
  ASSERT_EQ(options.size(), 1u);
  EXPECT_EQ(options[0].name, "lowercase");
  EXPECT_EQ(options[0].type, OptionType::kBool);
  ASSERT_TRUE(std::holds_alternative<bool>(options[0].default_value));
  EXPECT_FALSE(std::get<bool>(options[0].default_value));
}

TEST_F(Bleu, IdenticalTextScoresOneHundredAsOneCorpusScore) {
  // Every p_n = 100 and c = r: BLEU = 100. Corpus-level, so no per-example scores.
  const MetricScore score = Score({
      Example("the cat sat on the mat", {"the cat sat on the mat"}),
      Example("a dog barked", {"a dog barked"}),
  });
  EXPECT_NEAR(score.value, 100.0, kTolerance);
  EXPECT_TRUE(score.per_example.empty());
}

TEST_F(Bleu, BrevityPenaltyUsesClosestReferenceLength) {
  // Prediction [the, cat, sat, on] (c = 4); each of its n-grams is in the 7- and 5-word
  // references, so p_1..p_4 = 100. Reference lengths 2, 7, 5 are 2, 3, 1 away from 4: r = 5
  // (neither the first, the shortest nor the longest). BP = exp(1 - 5/4) = exp(-1/4).
  EXPECT_NEAR(
      BleuOf("the cat sat on", {"a cat", "the cat sat on the red mat", "the cat sat on it"}),
      100.0 * std::exp(-0.25), kTolerance);  // 77.880...
}

TEST_F(Bleu, ClosestReferenceLengthTieGoesToTheShorter) {
  // c = 4; references of 6 and 2 words are both 2 away: r = 2 <= c, BP = 1. All p_n = 100 (the
  // 6-word reference holds the prediction), so BLEU = 100; taking r = 6 would give
  // 100 * exp(1 - 6/4) = 60.65.
  EXPECT_NEAR(BleuOf("the cat sat on", {"the cat sat on the mat", "the cat"}), 100.0, kTolerance);
}

TEST_F(Bleu, ClipsRepeatedNgramsAtTheMostAnyOneReferenceHas) {
  // Papineni et al.'s example: "the" x 7 against "the cat is on the mat" (the x 2) and "there is a
  // cat on the mat" (the x 1): p_1 = 100 * 2/7. No bigram "the the" (6 of them), trigram (5) or
  // 4-gram (4) matches: p_2 = 100 / (2 * 6), p_3 = 100 / (4 * 5), p_4 = 100 / (8 * 4).
  // c = 7; reference lengths 6 and 7: r = 7, BP = 1.
  // BLEU = (200/7 * 100/12 * 5 * 3.125)^(1/4) = (312500/84)^(1/4) = 7.8098...
  EXPECT_NEAR(
      BleuOf("the the the the the the the", {"the cat is on the mat", "there is a cat on the mat"}),
      std::pow(200.0 / 7.0 * 100.0 / 12.0 * 5.0 * 3.125, 0.25), kTolerance);
}

TEST_F(Bleu, SmoothsOrdersWithoutMatchesAndPenalisesAShortCorpus) {
  // [cat, sat, the, mat] vs [the, cat, sat, on, the, mat]:
  //   1-grams 4/4; 2-grams cat-sat, the-mat of 3; 3-grams 0 of 2; 4-grams 0 of 1.
  // [a, dog] vs [a, dog, barked]: 1-grams 2/2; 2-grams 1/1; no 3- or 4-grams.
  // Corpus: matches (6, 3, 0, 0), totals (6, 4, 2, 1):
  //   p_1 = 100, p_2 = 75, p_3 = 100 / (2 * 2) = 25, p_4 = 100 / (4 * 1) = 25.
  // c = 4 + 2 = 6, r = 6 + 3 = 9: BP = exp(1 - 9/6) = exp(-1/2).
  // BLEU = exp(-1/2) * (100 * 75 * 25 * 25)^(1/4) = 0.60653 * 46.530 = 28.222...
  const MetricScore score = Score({
      Example("cat sat the mat", {"the cat sat on the mat"}),
      Example("a dog", {"a dog barked"}),
  });
  EXPECT_NEAR(score.value, std::exp(-0.5) * std::pow(100.0 * 75.0 * 25.0 * 25.0, 0.25), kTolerance);
}

TEST_F(Bleu, SumsStatisticsOverTheCorpusRatherThanAveragingSentences) {
  // [the, cat, sat, on, the, mat] against itself: matches = totals = (6, 5, 4, 3), 6 words.
  // [a, dog, ran] vs [a, dog, ran, away, fast]: matches = totals = (3, 2, 1, 0), r = 5.
  // Summed: every p_n = 100; c = 9, r = 11: BLEU = 100 * exp(1 - 11/9) = 80.07...
  // (The second sentence alone scores 0 for want of a 4-gram, so a mean of sentence scores
  // would be 50.)
  const MetricScore score = Score({
      Example("the cat sat on the mat", {"the cat sat on the mat"}),
      Example("a dog ran", {"a dog ran away fast"}),
  });
  EXPECT_NEAR(score.value, 100.0 * std::exp(1.0 - 11.0 / 9.0), kTolerance);
}

TEST_F(Bleu, ScoresZeroWhenTheCorpusHasNoFourGramOrNoMatch) {
  // Three words match perfectly, but there is no 4-gram: sacreBLEU's corpus BLEU is 0.
  EXPECT_EQ(BleuOf("a dog ran", {"a dog ran"}), 0.0);
  // Nothing matches at any order: 0.
  EXPECT_EQ(BleuOf("one two three four", {"five six seven eight"}), 0.0);
}

TEST_F(Bleu, SplitsPunctuationAndSymbolsAs13aDoes) {
  // Each prediction tokenises to exactly its reference's words, so BLEU = 100.
  const std::vector<std::pair<std::string, std::string>> same_words = {
      {"Hello, world! (Really?)", "Hello , world ! ( Really ? )"},
      {"a/b \"c\" #1 @x", "a / b \" c \" # 1 @ x"},
      {"a_b [c] {d} x|y;z", "a _ b [ c ] { d } x | y ; z"},
      {"It ends here.", "It ends here ."},
      // A dash after a digit is split; the padding 13a adds splits a leading period.
      {"1990-2000 was long", "1990 - 2000 was long"},
      {".5 is a half", ". 5 is a half"},
      // A comma or period between digits stays; one before a space goes.
      {"pay $3.50, or 1,000.5 now", "pay $ 3.50 , or 1,000.5 now"},
  };
  for (const auto& [prediction, reference] : same_words) {
    EXPECT_NEAR(BleuOf(prediction, {reference}), 100.0, kTolerance) << prediction;
  }
}

TEST_F(Bleu, KeepsNumbersApostrophesAndInnerHyphensInOneWord) {
  // [x, 3.50, y, z] vs [x, 3, ., 50, y, z]: 1-grams x, y, z of 4; 2-grams y-z of 3; 3-grams 0 of
  // 2; 4-grams 0 of 1: p = (75, 100/3, 100/(2*2), 100/(4*1)) = (75, 33.3, 25, 25).
  // c = 4, r = 6: BP = exp(-1/2). BLEU = exp(-1/2) * (75 * 100/3 * 25 * 25)^(1/4) = 21.44...
  EXPECT_NEAR(BleuOf("x 3.50 y z", {"x 3 . 50 y z"}),
              std::exp(-0.5) * std::pow(75.0 * 100.0 / 3.0 * 25.0 * 25.0, 0.25), kTolerance);
  // [it's, a, well-known, fact] vs [it, ', s, a, well, -, known, fact]: 1-grams a, fact of 4;
  // no 2-, 3- or 4-gram matches: p = (50, 100/(2*3), 100/(4*2), 100/(8*1)).
  // c = 4, r = 8: BP = exp(1 - 2) = exp(-1).
  // BLEU = exp(-1) * (50 * 100/6 * 12.5 * 12.5)^(1/4) = 6.988...
  EXPECT_NEAR(BleuOf("it's a well-known fact", {"it ' s a well - known fact"}),
              std::exp(-1.0) * std::pow(50.0 * 100.0 / 6.0 * 12.5 * 12.5, 0.25), kTolerance);
}

TEST_F(Bleu, AppliesSacreBleusLanguageIndependentReplacements) {
  const std::vector<std::pair<std::string, std::string>> same_words = {
      // Four HTML entities, in order: "&amp;lt;" becomes "&lt;" and then "<".
      {"&quot;Tom &amp; Jerry&quot; &lt;3 &gt;", "\" Tom & Jerry \" < 3 >"},
      {"a &amp;lt; b c", "a < b c"},
      {"the cat <skipped> sat down", "the cat sat down"},
      // A hyphen at a line break joins the word.
      {"a state-\nment was made", "a statement was made"},
  };
  for (const auto& [prediction, reference] : same_words) {
    EXPECT_NEAR(BleuOf(prediction, {reference}), 100.0, kTolerance) << prediction;
  }
}

TEST_F(Bleu, SplitsWordsOnUnicodeSpacesAsPythonDoes) {
  // U+00A0 (no-break space) and U+3000 (ideographic space) separate words in Python's
  // str.split(): [the, cat, sat, down] both, BLEU = 100.
  EXPECT_NEAR(BleuOf("the\xC2\xA0"
                     "cat\xE3\x80\x80sat down",
                     {"the cat sat down"}),
              100.0, kTolerance);
}

TEST_F(Bleu, IsCaseSensitiveUnlessLowercaseIsSet) {
  // [The, Cat, sat, down] vs [the, cat, sat, down]: 1-grams sat, down of 4; 2-grams sat-down of 3;
  // 3-grams 0 of 2; 4-grams 0 of 1: p = (50, 100/3, 100/(2*2), 100/(4*1)); BP = 1.
  // BLEU = (50 * 100/3 * 25 * 25)^(1/4) = 31.94...; lowercased the words are equal: 100.
  const std::string prediction = "The Cat sat down";
  const std::vector<std::string> references = {"the cat sat down"};
  EXPECT_NEAR(BleuOf(prediction, references), std::pow(50.0 * 100.0 / 3.0 * 25.0 * 25.0, 0.25),
              kTolerance);
  EXPECT_NEAR(BleuOf(prediction, references, {{"lowercase", true}}), 100.0, kTolerance);
}

TEST_F(Bleu, EmptyPredictionStillCountsItsReferenceLength) {
  // The empty prediction adds no n-grams and c += 0, but r += 2.
  // p_n = 100 from the first example; c = 6, r = 8: BLEU = 100 * exp(1 - 8/6) = 71.65...
  const MetricScore score = Score({
      Example("the cat sat on the mat", {"the cat sat on the mat"}),
      Example("", {"a dog"}),
  });
  EXPECT_NEAR(score.value, 100.0 * std::exp(1.0 - 8.0 / 6.0), kTolerance);
}

TEST_F(Bleu, IgnoresEmptyReferencesAsSacreBleuDoes) {
  // The "" reference is dropped, so r = 8 and BP = exp(1 - 8/4) = exp(-1); all p_n = 100.
  // Counted as a 0-word reference it would tie with 8 at distance 4 and win as the shorter.
  EXPECT_NEAR(BleuOf("the cat sat on", {"", "the cat sat on the big red mat"}),
              100.0 * std::exp(-1.0), kTolerance);  // 36.78...
}

TEST_F(Bleu, RefusesAnExampleWhoseReferencesAreAllEmpty) {
  try {
    Score({Example("the cat sat on", {"the cat sat on"}), Example("a dog", {"", ""})});
    FAIL() << "expected an error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "failed while scoring: example 2 of 2 has only empty references; BLEU needs a "
                  "non-empty reference for every example"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tune

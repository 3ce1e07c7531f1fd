// Bradley-Terry ratings, their bootstrap intervals, win rates and Krippendorff's alpha against an
// independent Python reference (tests/tools/pairwise_reference.py: Hunter's MM algorithm instead
// of Newton's method, the alpha formula written from Krippendorff 2011) on generated judgements
// whose strengths are known, and on the published example of the alpha. Built into
// tune_registry_tests: no libtorch.
#include "util/pairwise.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace tune {
namespace {

using nlohmann::json;

// `count` judgements between contestants of the given strengths (log-odds), drawn from the model:
// a tie with probability `tie`, else i beats j with probability sigma(theta_i - theta_j). Three
// raters; items repeat so that some are judged by several raters.
std::vector<PairwiseJudgement> Generate(const std::vector<double>& strengths, int count, double tie,
                                        uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int k = static_cast<int>(strengths.size());
  std::vector<PairwiseJudgement> judgements;
  for (int n = 0; n < count; ++n) {
    PairwiseJudgement j;
    j.first = static_cast<int>(random() % k);
    do {
      j.second = static_cast<int>(random() % k);
    } while (j.second == j.first);
    const double p = 1.0 / (1.0 + std::exp(strengths[j.second] - strengths[j.first]));
    const double u = unit(random);
    j.outcome = u < tie            ? (n % 5 == 0 ? PairOutcome::kBothBad : PairOutcome::kTie)
                : unit(random) < p ? PairOutcome::kFirstWins
                                   : PairOutcome::kSecondWins;
    j.item = static_cast<int64_t>(random() % (count / 3 + 1));
    j.rater = static_cast<int>(random() % 3);
    judgements.push_back(j);
  }
  return judgements;
}

const char* OutcomeName(PairOutcome outcome) {
  switch (outcome) {
    case PairOutcome::kFirstWins:
      return "first";
    case PairOutcome::kSecondWins:
      return "second";
    case PairOutcome::kTie:
      return "tie";
    case PairOutcome::kBothBad:
      return "both_bad";
  }
  return "";
}

json Reference(int contestants, const std::vector<PairwiseJudgement>& judgements, int resamples,
               uint64_t seed) {
  json request = {{"contestants", contestants}, {"resamples", resamples}, {"seed", seed}};
  request["judgements"] = json::array();
  for (const PairwiseJudgement& j : judgements) {
    request["judgements"].push_back({{"first", j.first},
                                     {"second", j.second},
                                     {"outcome", OutcomeName(j.outcome)},
                                     {"item", j.item},
                                     {"rater", j.rater}});
  }
  testing::TempDir dir;
  const auto input = dir.Write("request.json", request.dump());
  const auto run = testing::RunCommand(
      {"/bin/sh", "-c",
       std::string(testing::kPython) + " " TUNE_SOURCE_DIR "/tests/tools/pairwise_reference.py < " +
           input.string()});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  return json::parse(run.out);
}

// Four contestants whose strengths are known, 400 judgements with ties and "both bad": the
// strengths, the bootstrap's intervals draw for draw, the win rates and the alpha all agree with
// the reference.
TEST(Pairwise, RatingsIntervalsWinRatesAndAlphaMatchTheReference) {
  const std::vector<double> strengths = {0.0, 0.7, -0.5, 1.4};
  const std::vector<PairwiseJudgement> judgements = Generate(strengths, 400, 0.2, 11);
  const json reference = Reference(4, judgements, 100, 42);

  const std::vector<double> theta = BradleyTerryStrengths(4, judgements);
  const std::vector<RatingInterval> ratings = BootstrapRatings(4, judgements, 100, 42);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(theta[i], reference["theta"][i].get<double>(), 1e-8) << i;
    EXPECT_NEAR(ratings[i].rating, reference["ratings"][i]["rating"].get<double>(), 1e-6) << i;
    EXPECT_NEAR(ratings[i].ci95_low, reference["ratings"][i]["ci95_low"].get<double>(), 1e-5) << i;
    EXPECT_NEAR(ratings[i].ci95_high, reference["ratings"][i]["ci95_high"].get<double>(), 1e-5)
        << i;
    EXPECT_LT(ratings[i].ci95_low, ratings[i].rating);
    EXPECT_GT(ratings[i].ci95_high, ratings[i].rating);
  }
  const auto rates = WinRates(4, judgements);
  for (size_t i = 0; i < 4; ++i) {
    for (size_t j = 0; j < 4; ++j) {
      const json& expected = reference["win_rates"][i][j];
      if (expected.is_null()) {
        EXPECT_FALSE(rates[i][j].rate().has_value());
      } else {
        EXPECT_NEAR(*rates[i][j].rate(), expected.get<double>(), 1e-12);
      }
    }
  }
  const Agreement agreement = KrippendorffAlpha(judgements);
  ASSERT_TRUE(agreement.alpha.has_value());
  EXPECT_NEAR(*agreement.alpha, reference["alpha"].get<double>(), 1e-12);
  EXPECT_GT(agreement.items, 0);
}

// The test could fail: with enough judgements the fit recovers the strengths it was generated
// from (differences, since the anchor's prior shifts them all a little), and orders them.
TEST(Pairwise, RecoversTheStrengthsJudgementsWereDrawnFrom) {
  const std::vector<double> strengths = {0.0, 0.7, -0.5, 1.4};
  const std::vector<double> theta = BradleyTerryStrengths(4, Generate(strengths, 6000, 0.0, 5));
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_NEAR(theta[i] - theta[0], strengths[i] - strengths[0], 0.15) << i;
  }
  EXPECT_GT(theta[3], theta[1]);
  EXPECT_GT(theta[1], theta[0]);
  EXPECT_GT(theta[0], theta[2]);
}

// A version that won every judgement (a small review often has one) gets a finite rating above
// the others rather than an infinite one.
TEST(Pairwise, AContestantThatNeverLostHasAFiniteRating) {
  std::vector<PairwiseJudgement> judgements(5, {0, 1, PairOutcome::kFirstWins, 0, 0});
  const std::vector<RatingInterval> ratings = BootstrapRatings(3, judgements, 100, 1);
  EXPECT_TRUE(std::isfinite(ratings[0].rating));
  EXPECT_GT(ratings[0].rating, 1000.0);
  EXPECT_LT(ratings[1].rating, 1000.0);
  EXPECT_DOUBLE_EQ(ratings[2].rating, 1000.0);  // never judged: the anchor
}

TEST(Pairwise, TheBootstrapIsTheSameForOneSeedAndMovesWithAnother) {
  const std::vector<PairwiseJudgement> judgements = Generate({0.0, 0.5, 1.0}, 60, 0.1, 3);
  const auto a = BootstrapRatings(3, judgements, 300, 7);
  const auto b = BootstrapRatings(3, judgements, 300, 7);
  const auto c = BootstrapRatings(3, judgements, 300, 8);
  EXPECT_EQ(a[1].ci95_low, b[1].ci95_low);
  EXPECT_EQ(a[1].ci95_high, b[1].ci95_high);
  EXPECT_NE(a[1].ci95_low, c[1].ci95_low);
}

// Krippendorff (2011), section C: four observers, twelve units, values 1 to 5: nominal alpha
// 0.743. Each value is a "winner" of its own, which the measure compares for equality only.
TEST(Pairwise, KrippendorffsAlphaGivesThePublishedExamplesValue) {
  const int kMissing = 0;
  const int rows[4][12] = {{1, 2, 3, 3, 2, 1, 4, 1, 2, kMissing, kMissing, kMissing},
                           {1, 2, 3, 3, 2, 2, 4, 1, 2, 5, kMissing, 3},
                           {kMissing, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, kMissing},
                           {1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, kMissing}};
  std::vector<PairwiseJudgement> judgements;
  for (int observer = 0; observer < 4; ++observer) {
    for (int unit = 0; unit < 12; ++unit) {
      if (rows[observer][unit] == kMissing) continue;
      judgements.push_back({rows[observer][unit], 100, PairOutcome::kFirstWins, unit, observer});
    }
  }
  const Agreement agreement = KrippendorffAlpha(judgements);
  ASSERT_TRUE(agreement.alpha.has_value());
  EXPECT_NEAR(*agreement.alpha, 0.743, 0.0005);
  EXPECT_EQ(agreement.items, 11);  // unit 12 has one value: not pairable
}

// Two raters who saw a pair in opposite orders and chose the same output agree.
TEST(Pairwise, AgreementComparesWhatWasChosenNotTheSideItWasShownOn) {
  const std::vector<PairwiseJudgement> same = {{0, 1, PairOutcome::kFirstWins, 1, 0},
                                               {1, 0, PairOutcome::kSecondWins, 1, 1},
                                               {0, 1, PairOutcome::kTie, 2, 0},
                                               {1, 0, PairOutcome::kTie, 2, 1}};
  EXPECT_DOUBLE_EQ(*KrippendorffAlpha(same).alpha, 1.0);
  const std::vector<PairwiseJudgement> once = {{0, 1, PairOutcome::kFirstWins, 1, 0},
                                               {0, 1, PairOutcome::kFirstWins, 2, 1}};
  EXPECT_FALSE(KrippendorffAlpha(once).alpha.has_value());
  EXPECT_EQ(KrippendorffAlpha(once).items, 0);
}

TEST(Pairwise, QuantileInterpolatesAsNumpyDoes) {
  EXPECT_DOUBLE_EQ(Quantile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(Quantile({1, 2, 3, 4, 5}, 0.025), 1.1);
  EXPECT_DOUBLE_EQ(Quantile({7}, 0.975), 7);
}

}  // namespace
}  // namespace tune

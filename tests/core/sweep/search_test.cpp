// Sweep search: grid enumeration, seeded random sampling, TPE, tied parameters evaluated.
#include "sweep/search.h"

#include <cmath>

#include <gtest/gtest.h>

#include "core/config/sweep_parameters_for_tests.h"
#include "util/error.h"

namespace tune {
namespace {

using testing::Distribution;
using testing::Tied;
using testing::Values;

TEST(SweepSearch, GridIsTheProductInDeclarationOrderWithTiedValues) {
  SweepConfig sweep;
  sweep.method = "grid";
  sweep.parameters = {Values("adapter.rank", {int64_t{2}, int64_t{4}}),
                      Values("optimizer.lr", {1e-3, 3e-3, 1e-2}),
                      Tied("adapter.alpha", "2 * adapter.rank")};
  ASSERT_EQ(GridSize(sweep), 6);
  EXPECT_EQ(GridTrial(sweep, 0).at("adapter.rank"), OptionValue(int64_t{2}));
  EXPECT_EQ(GridTrial(sweep, 0).at("optimizer.lr"), OptionValue(1e-3));
  EXPECT_EQ(GridTrial(sweep, 1).at("optimizer.lr"), OptionValue(3e-3));
  EXPECT_EQ(GridTrial(sweep, 5).at("adapter.rank"), OptionValue(int64_t{4}));
  EXPECT_EQ(GridTrial(sweep, 5).at("adapter.alpha"), OptionValue(int64_t{8}));
}

// Without max_trials a grid runs every point (it once stopped at 8 and varied only the last
// key); max_trials runs the first ones. Random and tpe have no size of their own: 8 by default.
TEST(SweepSearch, AGridRunsEveryPointUnlessMaxTrialsSaysOtherwise) {
  SweepConfig sweep;
  sweep.method = "grid";
  for (const char* key : {"adapter.rank", "adapter.alpha", "optimizer.lr"}) {
    std::vector<OptionValue> values;
    for (int64_t i = 0; i < 10; ++i) values.emplace_back(i);
    sweep.parameters.push_back(Values(key, values));
  }
  EXPECT_EQ(SweepConfigurations(sweep), 1000);
  sweep.max_trials = 8;
  EXPECT_EQ(SweepConfigurations(sweep), 8);
  EXPECT_EQ(GridKeysVaried(sweep, 8), std::vector<std::string>{"optimizer.lr"});
  EXPECT_EQ(GridKeysVaried(sweep, 11), (std::vector<std::string>{"adapter.alpha", "optimizer.lr"}));
  EXPECT_EQ(GridKeysVaried(sweep, 1000).size(), 3u);
  sweep.max_trials = 5000;
  EXPECT_EQ(SweepConfigurations(sweep), 1000);
  sweep.method = "random";
  sweep.max_trials = 0;
  EXPECT_EQ(SweepConfigurations(sweep), kDefaultSearchTrials);
  sweep.max_trials = 30;
  EXPECT_EQ(SweepConfigurations(sweep), 30);
}

// A grid's size is a product of list sizes, so a grid of 10^12 points (or more than int64 holds)
// is counted, and any point found, without enumerating the others.
TEST(SweepSearch, AHugeGridIsCountedWithoutEnumeratingIt) {
  SweepConfig sweep;
  sweep.method = "grid";
  for (int k = 0; k < 12; ++k) {
    std::vector<OptionValue> values;
    for (int64_t i = 0; i < 10; ++i) values.emplace_back(i);
    sweep.parameters.push_back(Values("key" + std::to_string(k), values));
  }
  EXPECT_EQ(GridSize(sweep), 1'000'000'000'000);
  const Assignment last = GridTrial(sweep, GridSize(sweep) - 1);
  EXPECT_EQ(last.at("key0"), OptionValue(int64_t{9}));
  EXPECT_EQ(last.at("key11"), OptionValue(int64_t{9}));
  EXPECT_EQ(GridTrial(sweep, 10).at("key10"), OptionValue(int64_t{1}));
  for (int k = 12; k < 24; ++k) sweep.parameters.push_back(sweep.parameters[0]);
  EXPECT_EQ(GridSize(sweep), INT64_MAX);
}

TEST(SweepSearch, RandomTrialsAreSeededInRangeAndQuantised) {
  SweepConfig sweep;
  sweep.parameters = {Distribution("optimizer.lr", "log_uniform", 1e-4, 1e-2),
                      Distribution("adapter.rank", "int_uniform", 2, 64, 2.0),
                      Distribution("adapter.dropout", "uniform", 0.0, 0.5, 0.05),
                      Values("optimizer.schedule", {std::string("cosine"), std::string("linear")})};
  for (int64_t i = 0; i < 50; ++i) {
    const Assignment a = RandomTrial(sweep, 7, i);
    EXPECT_EQ(a, RandomTrial(sweep, 7, i));
    const double lr = std::get<double>(a.at("optimizer.lr"));
    EXPECT_GE(lr, 1e-4);
    EXPECT_LE(lr, 1e-2);
    const int64_t rank = std::get<int64_t>(a.at("adapter.rank"));
    EXPECT_EQ(rank % 2, 0);
    EXPECT_GE(rank, 2);
    EXPECT_LE(rank, 64);
    const double dropout = std::get<double>(a.at("adapter.dropout"));
    EXPECT_NEAR(std::round(dropout / 0.05) * 0.05, dropout, 1e-12);
  }
  EXPECT_NE(RandomTrial(sweep, 7, 0), RandomTrial(sweep, 8, 0));
  EXPECT_NE(RandomTrial(sweep, 7, 0), RandomTrial(sweep, 7, 1));
}

TEST(SweepSearch, TpeConcentratesWhereTheObjectiveIsBest) {
  SweepConfig sweep;
  sweep.parameters = {Distribution("optimizer.lr", "uniform", 0.0, 1.0)};
  // Objective peaks at 0.3. Feed TPE its own proposals for 40 trials.
  std::vector<FinishedTrial> finished;
  for (int64_t i = 0; i < 40; ++i) {
    const Assignment a = TpeTrial(sweep, 3, i, finished);
    const double x = std::get<double>(a.at("optimizer.lr"));
    finished.push_back({a, -(x - 0.3) * (x - 0.3)});
  }
  double tpe_error = 0, random_error = 0;
  for (int64_t i = 20; i < 40; ++i) {
    tpe_error += std::abs(std::get<double>(finished[i].assignment.at("optimizer.lr")) - 0.3);
    random_error += std::abs(std::get<double>(RandomTrial(sweep, 3, i).at("optimizer.lr")) - 0.3);
  }
  EXPECT_LT(tpe_error, 0.5 * random_error) << "TPE's later proposals should sit near 0.3";
  // Reproducible: the same history gives the same proposal.
  EXPECT_EQ(TpeTrial(sweep, 3, 40, finished), TpeTrial(sweep, 3, 40, finished));
}

}  // namespace
}  // namespace tune

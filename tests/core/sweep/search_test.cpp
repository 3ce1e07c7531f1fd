// Sweep search: grid enumeration, seeded random sampling, TPE, tied-parameter expressions.
#include "sweep/search.h"

#include <cmath>

#include <gtest/gtest.h>

#include "util/error.h"

namespace tune {
namespace {

SweepParameter Values(std::string path, std::vector<OptionValue> values) {
  SweepParameter p;
  p.path = std::move(path);
  p.kind = SweepParameter::Kind::kValues;
  p.values = std::move(values);
  return p;
}

SweepParameter Distribution(std::string path, std::string kind, double min, double max,
                            std::optional<double> q = std::nullopt) {
  SweepParameter p;
  p.path = std::move(path);
  p.kind = SweepParameter::Kind::kDistribution;
  p.distribution = std::move(kind);
  p.min = min;
  p.max = max;
  p.q = q;
  return p;
}

SweepParameter Tied(std::string path, std::string expression) {
  SweepParameter p;
  p.path = std::move(path);
  p.kind = SweepParameter::Kind::kExpression;
  p.expression = std::move(expression);
  return p;
}

TEST(SweepSearch, GridIsTheProductInDeclarationOrderWithTiedValues) {
  SweepConfig sweep;
  sweep.max_trials = 100;
  sweep.parameters = {Values("adapter.rank", {int64_t{2}, int64_t{4}}),
                      Values("optimizer.lr", {1e-3, 3e-3, 1e-2}),
                      Tied("adapter.alpha", "2 * adapter.rank")};
  const std::vector<Assignment> trials = GridTrials(sweep);
  ASSERT_EQ(trials.size(), 6u);
  EXPECT_EQ(trials[0].at("adapter.rank"), OptionValue(int64_t{2}));
  EXPECT_EQ(trials[0].at("optimizer.lr"), OptionValue(1e-3));
  EXPECT_EQ(trials[1].at("optimizer.lr"), OptionValue(3e-3));
  EXPECT_EQ(trials[5].at("adapter.rank"), OptionValue(int64_t{4}));
  EXPECT_EQ(trials[5].at("adapter.alpha"), OptionValue(int64_t{8}));
  sweep.max_trials = 4;
  EXPECT_EQ(GridTrials(sweep).size(), 4u);
}

TEST(SweepSearch, GridRefusesContinuousDistributions) {
  SweepConfig sweep;
  sweep.max_trials = 10;
  sweep.parameters = {Distribution("optimizer.lr", "log_uniform", 1e-4, 1e-2)};
  try {
    GridTrials(sweep);
    FAIL() << "expected a refusal";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "sweep parameter 'optimizer.lr' is a log_uniform distribution, which a grid cannot "
              "enumerate; give a list of values, or use sweep.method = \"random\" or \"tpe\"");
  }
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

TEST(SweepSearch, ExpressionsComputeAndNameWhatTheyCannotUse) {
  const Assignment values = {{"adapter.rank", int64_t{8}}, {"optimizer.lr", 2e-4}};
  EXPECT_DOUBLE_EQ(EvaluateExpression("2 * adapter.rank", values), 16.0);
  EXPECT_DOUBLE_EQ(EvaluateExpression("(adapter.rank + 8) / 4 - -1", values), 5.0);
  EXPECT_DOUBLE_EQ(EvaluateExpression("optimizer.lr * 1e3", values), 0.2);
  try {
    EvaluateExpression("2 * adapter.alpha", values);
    FAIL() << "expected a refusal";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "sweep expression \"2 * adapter.alpha\", column 5: 'adapter.alpha' is not a swept "
              "parameter; tied parameters refer to swept keys");
  }
  EXPECT_THROW(EvaluateExpression("2 * (adapter.rank", values), UserError);
}

}  // namespace
}  // namespace tune

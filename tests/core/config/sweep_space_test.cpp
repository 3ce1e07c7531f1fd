// What a [sweep] section describes: a grid's size, tied-parameter expressions and their checks.
#include "config/sweep_space.h"

#include <functional>

#include <gtest/gtest.h>

#include "core/config/sweep_parameters_for_tests.h"
#include "support/test_support.h"
#include "util/error.h"

namespace tune {
namespace {

using testing::Distribution;
using testing::ErrorOf;
using testing::Tied;
using testing::Values;

TEST(SweepSpace, GridRefusesContinuousDistributions) {
  SweepConfig sweep;
  sweep.method = "grid";
  sweep.parameters = {Distribution("optimizer.lr", "log_uniform", 1e-4, 1e-2)};
  try {
    GridSize(sweep);
    FAIL() << "expected a refusal";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "sweep parameter 'optimizer.lr' is a log_uniform distribution, which a grid cannot "
              "enumerate; give a list of values, or use sweep.method = \"random\" or \"tpe\"");
  }
}

TEST(SweepSpace, ExpressionsComputeAndNameWhatTheyCannotUse) {
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

TEST(SweepSpace, ATiedParameterIsCheckedAtEveryListedValueBeforeAnythingRuns) {
  SweepConfig sweep;
  sweep.method = "grid";
  sweep.parameters = {Values("adapter.rank", {int64_t{2}, int64_t{3}}),
                      Tied("adapter.alpha", "2 * adapter.rank"),
                      Tied("train.batch_size", "adapter.rank / 2")};
  const OptionSpec alpha = OptionSpec::Float("alpha", 16.0, "").Range(0, 64);
  const OptionSpec batch = OptionSpec::Int("batch_size", 8, "").Range(1, 1 << 20);
  EXPECT_EQ(ErrorOf([&] { CheckTiedParameter(sweep, sweep.parameters[1], alpha); }), "(no error)");
  EXPECT_EQ(ErrorOf([&] { CheckTiedParameter(sweep, sweep.parameters[2], batch); }),
            "sweep expression \"adapter.rank / 2\" gives 1.5 at adapter.rank = 3, but "
            "'train.batch_size' takes integers");
  const OptionSpec small = OptionSpec::Float("alpha", 16.0, "").Range(0, 5);
  EXPECT_NE(ErrorOf([&] {
              CheckTiedParameter(sweep, sweep.parameters[1], small);
            }).find("gives 6 at adapter.rank = 3, outside the range of 'adapter.alpha'"),
            std::string::npos);
  sweep.parameters.push_back(Tied("adapter.dropout", "adapter.alpha / 100"));
  EXPECT_NE(ErrorOf([&] {
              CheckTiedParameter(sweep, sweep.parameters[3], alpha);
            }).find("refers to 'adapter.alpha', which is tied itself"),
            std::string::npos);
  EXPECT_EQ(GridSize(sweep), 2);  // tied parameters are no axes
  sweep.max_trials = 1;
  EXPECT_EQ(SweepConfigurations(sweep), 1);
}

}  // namespace
}  // namespace tune

#include "util/spread.h"

#include <cmath>

#include <gtest/gtest.h>

namespace tune {
namespace {

TEST(Spread, StudentTQuantilesMatchThePublishedTable) {
  // Fisher and Yates, table III, two-sided 5%.
  EXPECT_DOUBLE_EQ(StudentT975(1), 12.706);
  EXPECT_DOUBLE_EQ(StudentT975(2), 4.303);
  EXPECT_DOUBLE_EQ(StudentT975(9), 2.262);
  EXPECT_DOUBLE_EQ(StudentT975(30), 2.042);
  // Past the table the expansion continues it.
  EXPECT_NEAR(StudentT975(40), 2.021, 5e-4);
  EXPECT_NEAR(StudentT975(60), 2.000, 5e-4);
  EXPECT_NEAR(StudentT975(120), 1.980, 5e-4);
  EXPECT_NEAR(StudentT975(100000), 1.960, 5e-4);
}

TEST(Spread, MeanSampleDeviationAndIntervalOfAFewValues) {
  const Spread s = SpreadOf({0.5, 0.7, 0.9});
  EXPECT_EQ(s.count, 3);
  EXPECT_NEAR(s.mean, 0.7, 1e-12);
  EXPECT_NEAR(s.stddev, 0.2, 1e-12);  // n - 1 in the denominator
  EXPECT_NEAR(s.ci95_low, 0.7 - 4.303 * 0.2 / std::sqrt(3.0), 1e-12);
  EXPECT_NEAR(s.ci95_high, 0.7 + 4.303 * 0.2 / std::sqrt(3.0), 1e-12);
}

TEST(Spread, OneValueHasNoSpreadAndNoneHasNothing) {
  const Spread one = SpreadOf({0.25});
  EXPECT_EQ(one.count, 1);
  EXPECT_EQ(one.mean, 0.25);
  EXPECT_EQ(one.stddev, 0.0);
  EXPECT_EQ(one.ci95_low, 0.25);
  EXPECT_EQ(one.ci95_high, 0.25);
  EXPECT_EQ(SpreadOf({}).count, 0);
}

}  // namespace
}  // namespace tune

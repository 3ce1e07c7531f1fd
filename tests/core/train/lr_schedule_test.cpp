#include "train/lr_schedule.h"

#include <cmath>

#include <gtest/gtest.h>

#include "util/error.h"

namespace tune {
namespace {

TEST(LearningRate, WarmsUpLinearlyFromZero) {
  // peak 1e-3, 10 warm-up steps: step s < 10 has s / 10 of the peak; step 0 has none (HF).
  for (LrSchedule schedule : {LrSchedule::kConstant, LrSchedule::kLinear, LrSchedule::kCosine}) {
    EXPECT_DOUBLE_EQ(LearningRate(schedule, 1e-3, 0, 10, 100), 0.0);
    EXPECT_DOUBLE_EQ(LearningRate(schedule, 1e-3, 5, 10, 100), 5e-4);
    EXPECT_DOUBLE_EQ(LearningRate(schedule, 1e-3, 10, 10, 100), 1e-3);
  }
}

TEST(LearningRate, ConstantStaysAtThePeakAfterWarmUp) {
  EXPECT_DOUBLE_EQ(LearningRate(LrSchedule::kConstant, 2e-4, 0, 0, 100), 2e-4);
  EXPECT_DOUBLE_EQ(LearningRate(LrSchedule::kConstant, 2e-4, 99, 0, 100), 2e-4);
}

TEST(LearningRate, LinearDecaysToZeroAtTheLastStep) {
  // 10 warm-up steps of 110: decay over 100 steps; step 60 is half-way: (110 - 60) / 100 = 0.5.
  EXPECT_DOUBLE_EQ(LearningRate(LrSchedule::kLinear, 1.0, 60, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(LearningRate(LrSchedule::kLinear, 1.0, 109, 10, 110), 0.01);
  EXPECT_DOUBLE_EQ(LearningRate(LrSchedule::kLinear, 1.0, 110, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(LearningRate(LrSchedule::kLinear, 1.0, 200, 10, 110), 0.0);
}

TEST(LearningRate, CosineFollowsHalfACosineToZero) {
  // progress p = (step - warm-up) / (total - warm-up); rate = peak * (1 + cos(pi p)) / 2.
  EXPECT_DOUBLE_EQ(LearningRate(LrSchedule::kCosine, 1.0, 0, 0, 100), 1.0);
  EXPECT_NEAR(LearningRate(LrSchedule::kCosine, 1.0, 25, 0, 100), (1 + std::cos(M_PI / 4)) / 2,
              1e-15);
  EXPECT_NEAR(LearningRate(LrSchedule::kCosine, 1.0, 50, 0, 100), 0.5, 1e-15);
  EXPECT_NEAR(LearningRate(LrSchedule::kCosine, 1.0, 100, 0, 100), 0.0, 1e-15);
}

TEST(LearningRate, MatchesHuggingFaceAtEveryStep) {
  // Values of transformers' get_cosine_schedule_with_warmup(num_warmup_steps=3,
  // num_training_steps=8) lambda, times the peak 0.1, worked out from its definition:
  //   s < 3: s / 3;  else 0.5 * (1 + cos(pi * (s - 3) / 5)).
  const double expected[] = {0.0,
                             0.1 / 3,
                             0.2 / 3,
                             0.1,
                             0.05 * (1 + std::cos(M_PI * 0.2)),
                             0.05 * (1 + std::cos(M_PI * 0.4)),
                             0.05 * (1 + std::cos(M_PI * 0.6)),
                             0.05 * (1 + std::cos(M_PI * 0.8))};
  for (int step = 0; step < 8; ++step) {
    EXPECT_NEAR(LearningRate(LrSchedule::kCosine, 0.1, step, 3, 8), expected[step], 1e-15) << step;
  }
}

TEST(ParseLrSchedule, RefusesAnUnknownNameListingTheKnownOnes) {
  EXPECT_EQ(ParseLrSchedule("cosine"), LrSchedule::kCosine);
  try {
    ParseLrSchedule("exponential");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(),
                 "unknown learning-rate schedule 'exponential'; use constant, linear or cosine");
  }
}

}  // namespace
}  // namespace tune

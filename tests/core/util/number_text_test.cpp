#include "util/number_text.h"

#include <gtest/gtest.h>

namespace tune {
namespace {

TEST(NumberText, IsTheShortestTextThatReadsBackInPythonsNotation) {
  EXPECT_EQ(ShortestText(0.003), "0.003");
  EXPECT_EQ(ShortestText(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(ShortestText(0.0001), "0.0001");
  EXPECT_EQ(ShortestText(0.00001), "1e-05");
  EXPECT_EQ(ShortestText(1e16), "1e+16");
  EXPECT_EQ(ShortestText(123456.5), "123456.5");
}

TEST(NumberText, PrintsIntegersWithoutPointOrExponent) {
  EXPECT_EQ(NumberText(1048576.0), "1048576");
  EXPECT_EQ(NumberText(-3.0), "-3");
  EXPECT_EQ(NumberText(2e-4), "0.0002");
  EXPECT_EQ(NumberText(INFINITY), "inf");
}

}  // namespace
}  // namespace tune

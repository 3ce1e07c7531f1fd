#include "util/echo.h"

#include <gtest/gtest.h>

namespace tune {
namespace {

TEST(Echo, KeepsShortTextAsItIs) { EXPECT_EQ(Echo("adapter.rank = 16"), "adapter.rank = 16"); }

TEST(Echo, EscapesControlCharactersSoTheMessageStaysOneLine) {
  EXPECT_EQ(Echo("a\nb\tc\x01\x7f"), "a\\nb\\tc\\x01\\x7f");
}

TEST(Echo, CutsLongTextAtACharacterBoundaryAndMarksIt) {
  EXPECT_EQ(Echo(std::string(100, 'x'), 10), "xxxxxxxxxx...");
  // "é" is two bytes: a cut after 10 bytes would split the second one.
  EXPECT_EQ(Echo("xxxxxxxxx\xc3\xa9yyy", 10), "xxxxxxxxx...");
}

TEST(Echo, EscapesBytesThatAreNotUtf8) {
  EXPECT_EQ(Echo("caf\xe9 \xff\xc3\xa9"), "caf\\xe9 \\xff\xc3\xa9");
  EXPECT_EQ(Echo("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a UTF-16 surrogate, encoded
  EXPECT_EQ(Echo("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");  // an overlong '/'
}

}  // namespace
}  // namespace tune

#include "util/json_file.h"

#include <gtest/gtest.h>

#include <string>

namespace tune {
namespace {

std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string RefusalOf(const std::string& text) {
  try {
    ParseJsonFile(text, "dir/tokenizer.json");
  } catch (const UserError& e) {
    return e.what();
  }
  return "(parsed)";
}

TEST(JsonFile, ParsesNestingUpToTheLimit) {
  const nlohmann::json doc = ParseJsonFile(Nested(kMaxJsonDepth), "f.json");
  EXPECT_EQ(doc.dump(), Nested(kMaxJsonDepth));  // dump() recurses: the limit is safe for it
}

TEST(JsonFile, RefusesNestingPastTheLimitNamingFileLineAndColumn) {
  const std::string message = RefusalOf("{\"a\":\n  " + Nested(kMaxJsonDepth) + "}");
  EXPECT_EQ(message.rfind("dir/tokenizer.json:2:" + std::to_string(kMaxJsonDepth + 2) +
                              ": JSON nested deeper than " + std::to_string(kMaxJsonDepth),
                          0),
            0u)
      << message;
}

// nlohmann::json parses this, then overflows the stack copying or dumping it.
TEST(JsonFile, RefusesNestingHundredsOfThousandsDeepWithoutOverflowingTheStack) {
  EXPECT_NE(RefusalOf(Nested(500000)).find("nested deeper than"), std::string::npos);
  EXPECT_NE(RefusalOf(std::string(500000, '{')).find("nested deeper than"), std::string::npos);
}

TEST(JsonFile, CountsOnlyBracketsOutsideStrings) {
  const std::string brackets(1000, '[');
  const nlohmann::json doc =
      ParseJsonFile("{\"k\\\"[\": \"" + brackets + "\\\"" + brackets + "\"}", "f.json");
  EXPECT_EQ(doc.begin().value().get<std::string>(), brackets + "\"" + brackets);
}

TEST(JsonFile, SaysWhereTextIsNotJsonWithoutTheLibrarysId) {
  const std::string message = RefusalOf("{\"model\": ");
  EXPECT_EQ(message.rfind("dir/tokenizer.json: not valid JSON (parse error at line 1", 0), 0u)
      << message;
  EXPECT_EQ(message.find("[json.exception"), std::string::npos) << message;
}

}  // namespace
}  // namespace tune

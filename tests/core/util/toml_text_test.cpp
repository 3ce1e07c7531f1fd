#include "util/toml_text.h"

#include <gtest/gtest.h>

namespace tune {
namespace {

TEST(TomlText, FloatsAreTheShortestTextThatReadsBackAndKeepAPoint) {
  toml::table table{{"lr", 0.003},
                    {"beta1", 0.9},
                    {"alpha", 16.0},
                    {"eps", 1e-8},
                    {"big", 1e300},
                    {"rank", 16},
                    {"tiny", 4.9406564584124654e-324}};
  const std::string text = TomlText(table);
  EXPECT_EQ(text,
            "alpha = 16.0\nbeta1 = 0.9\nbig = 1e+300\neps = 1e-08\nlr = 0.003\nrank = 16\n"
            "tiny = 5e-324\n");
  EXPECT_EQ(toml::parse(text), table);
}

TEST(TomlText, StringsAndKeysAreQuotedOnlyWhenTheyMustBe) {
  toml::table table{{"plain", "cosine"},
                    {"quote", "it's"},
                    {"lines", "a\nb\t\"c\"\\"},
                    {"adapter.rank", "2 * x"}};
  const std::string text = TomlText(table);
  EXPECT_EQ(text,
            "'adapter.rank' = '2 * x'\nlines = \"a\\nb\\t\\\"c\\\"\\\\\"\nplain = 'cosine'\n"
            "quote = \"it's\"\n");
  EXPECT_EQ(toml::parse(text), table);
}

TEST(TomlText, NestedTablesAndArraysOfTablesReadBackAsTheSameDocument) {
  const toml::table document = toml::parse(R"(name = "rank"
[sweep]
method = "grid"
objective = { metric = "exact_match", goal = "maximize" }
[sweep.parameters]
"adapter.rank" = [2, 4, 8]
"optimizer.lr" = { distribution = "log_uniform", min = 1e-4, max = 1e-2 }
[[metrics]]
plugin = "exact_match"
[[metrics]]
plugin = "token_f1"
[train]
steps = 1500
)");
  const std::string text = TomlText(document);
  EXPECT_EQ(toml::parse(text), document);
  EXPECT_NE(text.find("\n[[metrics]]\nplugin = 'token_f1'\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    'optimizer.lr' = { distribution = 'log_uniform', max = 0.01, min = "
                      "0.0001 }\n"),
            std::string::npos)
      << text;
  EXPECT_LT(text.find("[train]"), text.find("[[metrics]]")) << text;
}

}  // namespace
}  // namespace tune

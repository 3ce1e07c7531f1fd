// The filter and sort language of `tune adapters ls`.
#include "registry/filter.h"

#include <gtest/gtest.h>

#include "registry/registry_test_util.h"
#include "support/test_support.h"

namespace tune {
namespace {

using registry_internal::Filter;
using testing::SampleRecord;

bool Matches(std::string_view filter, const VersionRecord& record) {
  return Filter::Parse(filter).Matches(record);
}

std::string ParseError(std::string_view filter) {
  try {
    Filter::Parse(filter);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(parsed)";
}

TEST(RegistryFilter, ComparesNumbersAndStrings) {
  const VersionRecord r = SampleRecord(16, 0.85);
  EXPECT_TRUE(Matches("scores.exact_match > 0.8", r));
  EXPECT_FALSE(Matches("scores.exact_match > 0.85", r));
  EXPECT_TRUE(Matches("scores.exact_match >= 0.85", r));
  EXPECT_TRUE(Matches("scores.exact_match<0.9", r));
  EXPECT_TRUE(Matches("adapter.rank = 16", r));
  EXPECT_TRUE(Matches("adapter.rank == 16.0", r));
  EXPECT_TRUE(Matches("adapter.rank != 8", r));
  EXPECT_TRUE(Matches("adapter.rank <= 16", r));
  EXPECT_TRUE(Matches("optimizer.lr < 1e-3", r));
  EXPECT_TRUE(Matches("optimizer.lr = 2e-4", r));
  EXPECT_TRUE(Matches("method = lora", r));
  EXPECT_TRUE(Matches("method = 'lora'", r));
  EXPECT_TRUE(Matches("method = \"lora\"", r));
  EXPECT_TRUE(Matches("optimizer.schedule != linear", r));
  EXPECT_TRUE(Matches("base_model.name = tiny-llama", r));
  EXPECT_TRUE(Matches("adapter.bias = false", r));
  EXPECT_TRUE(Matches("seed = 7 and trial = 3 and sweep = rank", r));
  EXPECT_TRUE(Matches("peak_memory_bytes > 1000000000", r));
  EXPECT_TRUE(Matches("seed > -1", r));
}

TEST(RegistryFilter, ANumberNeverEqualsAString) {
  const VersionRecord r = SampleRecord();
  EXPECT_FALSE(Matches("method = 3", r));
  EXPECT_TRUE(Matches("method != 3", r));
  EXPECT_FALSE(Matches("method > 3", r));
  EXPECT_FALSE(Matches("adapter.rank = '8'", r));
}

TEST(RegistryFilter, AndBindsTighterThanOr) {
  const VersionRecord r = SampleRecord(8, 0.5);
  // false and false or true: true only if and binds tighter.
  EXPECT_TRUE(Matches("adapter.rank = 4 and seed = 1 or method = lora", r));
  EXPECT_FALSE(Matches("adapter.rank = 4 and (seed = 1 or method = lora)", r));
  EXPECT_TRUE(Matches("method = lora or adapter.rank = 4 and seed = 1", r));
}

TEST(RegistryFilter, NotAndParenthesesNestAndKeywordsIgnoreCase) {
  const VersionRecord r = SampleRecord(8, 0.5);
  EXPECT_TRUE(Matches("not adapter.rank = 4", r));
  EXPECT_FALSE(Matches("NOT (adapter.rank = 8 AND method = lora)", r));
  EXPECT_TRUE(Matches("((adapter.rank = 8)) Or seed = 0", r));
  EXPECT_TRUE(Matches("not not method = lora", r));
}

TEST(RegistryFilter, AVersionWithoutTheKeyDoesNotMatch) {
  const VersionRecord r = SampleRecord();
  EXPECT_FALSE(Matches("scores.rouge_l > 0", r));
  EXPECT_FALSE(Matches("scores.rouge_l != 1", r));
  EXPECT_TRUE(Matches("not scores.rouge_l > 0", r));
  VersionRecord no_sweep = r;
  no_sweep.sweep.reset();
  EXPECT_FALSE(Matches("sweep = rank", no_sweep));
}

TEST(RegistryFilter, ParamsPrefixAndBareParameterKeyAgree) {
  const VersionRecord r = SampleRecord(32);
  EXPECT_TRUE(Matches("params.adapter.rank = 32", r));
  EXPECT_TRUE(Matches("adapter.rank = 32", r));
}

TEST(RegistryFilter, AnEmptyFilterMatchesEverything) {
  EXPECT_TRUE(Filter::Parse("").empty());
  EXPECT_TRUE(Matches("   ", SampleRecord()));
}

TEST(RegistryFilter, ParseErrorsPointAtTheColumn) {
  const std::string hint =
      "; write comparisons like `scores.exact_match > 0.8 and adapter.rank = 16`";
  EXPECT_EQ(ParseError("scores.exact_match > "),
            "filter `scores.exact_match > `, column 22: expected a value after '>', found the "
            "end" +
                hint);
  EXPECT_EQ(ParseError("adapter.rank 16"),
            "filter `adapter.rank 16`, column 14: expected one of = != < <= > >= after "
            "'adapter.rank', found '16'" +
                hint);
  EXPECT_EQ(ParseError("a = 1 and"),
            "filter `a = 1 and`, column 10: expected a key such as scores.exact_match, found the "
            "end" +
                hint);
  EXPECT_EQ(ParseError("(a = 1"),
            "filter `(a = 1`, column 7: expected ')' to close the '(' at column 1" + hint);
  EXPECT_EQ(
      ParseError("a = 1 b = 2"),
      "filter `a = 1 b = 2`, column 7: expected 'and', 'or' or the end, found 'b = 2'" + hint);
  EXPECT_EQ(ParseError("a = 'lora"),
            "filter `a = 'lora`, column 5: the string is not closed (no matching ')" + hint);
  EXPECT_EQ(ParseError("a > 1.2.3"),
            "filter `a > 1.2.3`, column 5: '1.2.3' is not a number" + hint);
  EXPECT_EQ(ParseError("a =< 1"),
            "filter `a =< 1`, column 4: expected a value after '=', found '< 1'" + hint);
  EXPECT_EQ(
      ParseError("3 > a"),
      "filter `3 > a`, column 1: expected a key such as scores.exact_match, found '3 > a'" + hint);
}

// The web view takes this language from any browser: depth and size are bounded, and errors
// quote at most 80 characters of the filter.
TEST(RegistryFilter, DeepNestingAndLongFiltersAreRefusedWithOneLine) {
  const std::string deep = std::string(10000, '(') + "a = 1" + std::string(10000, ')');
  EXPECT_NE(ParseError(deep.substr(0, 4000)).find("nest deeper than 64 levels"), std::string::npos);
  EXPECT_NE(ParseError(deep).find("the filter is 20005 bytes long, over the 4096"),
            std::string::npos);
  std::string nots;
  for (int i = 0; i < 1000; ++i) nots += "not ";
  EXPECT_NE(ParseError(nots + "a = 1").find("nest deeper than 64 levels"), std::string::npos);
  const std::string message = ParseError(deep.substr(0, 4000));
  EXPECT_NE(message.find("filter `" + std::string(80, '(') + "...`"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
  std::string nested = "a = 1";
  for (int i = 0; i < 63; ++i) nested = "(" + nested + ")";
  EXPECT_NO_THROW(Filter::Parse(nested));
}

TEST(RegistryFilter, ControlCharactersInAFilterAreEscapedInTheError) {
  EXPECT_EQ(ParseError("a = 1 and\nb"),
            "filter `a = 1 and\\nb`, column 10: expected a key such as scores.exact_match, found "
            "'\\nb'; write comparisons like `scores.exact_match > 0.8 and adapter.rank = 16`");
}

TEST(RegistrySort, OrdersByKeyWithMissingValuesLastThenByNameAndVersion) {
  using registry_internal::SortBefore;
  using registry_internal::SortKey;
  VersionRecord low = SampleRecord(8, 0.2), high = SampleRecord(8, 0.9), none = SampleRecord();
  low.name = high.name = none.name = "rank";
  low.version = 1;
  high.version = 2;
  none.version = 3;
  none.scores.clear();
  const SortKey ascending = SortKey::Parse("scores.exact_match");
  const SortKey descending = SortKey::Parse("-scores.exact_match");
  EXPECT_TRUE(SortBefore(ascending, low, high));
  EXPECT_TRUE(SortBefore(descending, high, low));
  EXPECT_TRUE(SortBefore(ascending, high, none));
  EXPECT_TRUE(SortBefore(descending, low, none));
  EXPECT_TRUE(SortBefore(SortKey{}, low, high));  // by version
  EXPECT_THROW(SortKey::Parse("-"), UserError);
}

class RegistryListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = Registry::Open(dir_.path() / "registry", Registry::OpenMode::kCreate);
    const std::pair<int64_t, double> trials[] = {{4, 0.6}, {8, 0.9}, {16, 0.85}, {16, 0.7}};
    int i = 0;
    for (const auto& [rank, score] : trials) {
      const auto artifact = testing::MakeArtifact(dir_.path() / std::to_string(i++),
                                                  std::to_string(rank) + std::to_string(score));
      registry_->Register(i % 2 ? "rank" : "other", SampleRecord(rank, score), artifact);
    }
  }
  std::vector<std::string> Refs(const ListOptions& options) {
    std::vector<std::string> refs;
    for (const VersionRecord& r : registry_->List(options)) {
      refs.push_back(r.name + ":" + std::to_string(r.version));
    }
    return refs;
  }
  testing::TempDir dir_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryListTest, FiltersSortsAndNarrowsToOneName) {
  EXPECT_EQ(Refs({}), (std::vector<std::string>{"other:1", "other:2", "rank:1", "rank:2"}));
  EXPECT_EQ(Refs({std::nullopt, "scores.exact_match > 0.8 and adapter.rank = 16", ""}),
            std::vector<std::string>{"rank:2"});
  EXPECT_EQ(Refs({std::nullopt, "", "-scores.exact_match"}),
            (std::vector<std::string>{"other:1", "rank:2", "other:2", "rank:1"}));
  EXPECT_EQ(Refs({"rank", "", "-adapter.rank"}), (std::vector<std::string>{"rank:2", "rank:1"}));
}

TEST_F(RegistryListTest, PagesCutTheFullOrderAtTheirOffset) {
  for (const std::string sort : {"", "-scores.exact_match", "adapter.rank"}) {
    const ListOptions options{std::nullopt, "", sort};
    const std::vector<std::string> all = Refs(options);
    for (size_t offset = 0; offset <= all.size() + 1; ++offset) {
      for (size_t limit = 1; limit <= 3; ++limit) {
        const Registry::Page page = registry_->ListPage(options, offset, limit);
        EXPECT_EQ(page.total, all.size());
        std::vector<std::string> refs;
        for (const VersionRecord& r : page.versions) {
          refs.push_back(r.name + ":" + std::to_string(r.version));
        }
        const size_t begin = std::min(offset, all.size());
        const std::vector<std::string> expected(
            all.begin() + static_cast<std::ptrdiff_t>(begin),
            all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), begin + limit)));
        EXPECT_EQ(refs, expected) << "sort '" << sort << "' offset " << offset << " limit "
                                  << limit;
      }
    }
  }
}

TEST_F(RegistryListTest, AListingIsRecomputedAfterAWrite) {
  const ListOptions by_score{std::nullopt, "", "-scores.exact_match"};
  EXPECT_EQ(Refs(by_score).front(), "other:1");  // 0.9
  EXPECT_EQ(Refs(by_score).front(), "other:1");  // the same view: the cached order
  registry_->Register("rank", SampleRecord(32, 0.95),
                      testing::MakeArtifact(dir_.path() / "new", "rank 32"));
  EXPECT_EQ(Refs(by_score).front(), "rank:3");
  EXPECT_EQ(registry_->ListPage(by_score, 0, 2).total, 5u);
}

TEST_F(RegistryListTest, AKeyNoVersionHasIsReportedWithASuggestion) {
  try {
    registry_->List({std::nullopt, "adapter.rank = 16 and scores.exact_mtch > 0.5", ""});
    FAIL();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "filter `adapter.rank = 16 and scores.exact_mtch > 0.5`, column 23: no version has "
              "the key 'scores.exact_mtch' (did you mean 'scores.exact_match'?); keys are "
              "scores.METRIC, a parameter such as adapter.rank, or an attribute such as version "
              "or method");
  }
  EXPECT_THROW(registry_->List({std::nullopt, "", "-scores.rogue"}), UserError);
  EXPECT_THROW(registry_->List({"rnak", "", ""}), UserError);
}

}  // namespace
}  // namespace tune

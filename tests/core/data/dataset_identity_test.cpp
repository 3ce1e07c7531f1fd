// The dataset hash and the eval split: pinned against Python's json + hashlib, and read back
// through the built-in dataset plugins to show what they do and do not depend on.
#include "data/dataset_identity.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "plugin_host/plugin_host.h"
#include "support/test_support.h"
#include "tune/dataset.h"
#include "util/error.h"

namespace tune {
namespace {

using testing::TempDir;

// The same two examples as in the Python below. The second holds every kind of character whose
// JSON escaping could differ: quotes, '/', '\', control characters with and without a short
// escape, DEL, and 2-, 3- and 4-byte UTF-8 including U+2028.
std::vector<TextExample> PinnedExamples() {
  return {{.prompt = "Q: 2+2?\n", .completion = "4", .line = 1},
          {.prompt = "h\u00e9llo \"w\u00f6rld\" / \\ \x01\x1f\x7f\t\b\f\r \u2014 \u65e5\u672c "
                     "\U0001F600",
           .completion = "done\u2028",
           .line = 2}};
}

DatasetRows ReadWith(std::string_view plugin, const std::filesystem::path& file,
                     const std::map<std::string, std::string>& overrides = {}) {
  PluginHost host;
  host.Load({TUNE_BUILTIN_PLUGIN_DIR});
  Options options = PluginHost::DefaultOptions(host.Require(PluginKind::kDataset, plugin));
  for (const auto& [name, value] : overrides) options.Set(name, value);
  return host.CreateDataset(plugin, options)->Read(file);
}

TEST(DatasetSha256, CanonicalFormMatchesPythonJsonDumpsByteForByte) {
  // json.dumps([p, c], ensure_ascii=False, separators=(",", ":")) + "\n", UTF-8 encoded.
  const std::vector<TextExample> examples = PinnedExamples();
  EXPECT_EQ(CanonicalExample(examples[0]), "[\"Q: 2+2?\\n\",\"4\"]\n");
  EXPECT_EQ(CanonicalExample(examples[1]),
            "[\"h\xc3\xa9llo \\\"w\xc3\xb6rld\\\" / \\\\ \\u0001\\u001f\x7f\\t\\b\\f\\r "
            "\xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\",\"done\xe2\x80\xa8\"]\n");
}

TEST(DatasetSha256, MatchesAValueComputedIndependentlyWithPython) {
  // Python 3:
  //   canon = "".join(json.dumps([p, c], ensure_ascii=False, separators=(",", ":")) + "\n"
  //                   for p, c in examples).encode("utf-8")
  //   hashlib.sha256(canon).hexdigest()
  EXPECT_EQ(DatasetSha256(PinnedExamples()),
            "a56f768c001d03576b605b37f731c19dd83b11f10a17b5749f3189fa5f845612");
}

TEST(DatasetSha256, OfNoExamplesIsTheHashOfNothing) {
  EXPECT_EQ(DatasetSha256({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(DatasetSha256, DependsOnTextAndOrderButNotOnLineNumbers) {
  std::vector<TextExample> examples = PinnedExamples();
  const std::string original = DatasetSha256(examples);
  examples[0].line = 40;
  EXPECT_EQ(DatasetSha256(examples), original);
  std::swap(examples[0], examples[1]);
  EXPECT_NE(DatasetSha256(examples), original);
  std::swap(examples[0], examples[1]);
  examples[0].completion = "5";
  EXPECT_NE(DatasetSha256(examples), original);
  // Moving text between prompt and completion changes the hash too.
  const std::vector<TextExample> a = {{.prompt = "ab", .completion = "c"}};
  const std::vector<TextExample> b = {{.prompt = "a", .completion = "bc"}};
  EXPECT_NE(DatasetSha256(a), DatasetSha256(b));
}

TEST(DatasetSha256, IgnoresKeyOrderWhitespaceAndFileName) {
  TempDir dir;
  const auto first =
      dir.Write("a.jsonl",
                "{\"prompt\": \"Q: 2+2?\\n\", \"completion\": \"4\"}\n"
                "{\"prompt\": \"caf\\u00e9\", \"completion\": \"\xc3\xa9t\xc3\xa9\"}\n");
  // Other file name and folder, keys swapped, spacing, CRLF, blank lines, \u escapes.
  const auto second = dir.Write("other/name.jsonl",
                                "\r\n{ \"completion\":\"4\",\"prompt\":\"Q: 2+2?\\n\" }\r\n\r\n"
                                "   {\"completion\" : \"\\u00e9t\xc3\xa9\", "
                                "\"prompt\":\"caf\xc3\xa9\"}   \n");
  const DatasetRows a = ReadWith("jsonl", first);
  ASSERT_TRUE(a.bad_rows.empty());
  ASSERT_EQ(a.examples.size(), 2u);
  const DatasetRows b = ReadWith("jsonl", second);
  ASSERT_TRUE(b.bad_rows.empty());
  ASSERT_EQ(b.examples.size(), 2u);
  EXPECT_EQ(DatasetSha256(a.examples), DatasetSha256(b.examples));
}

TEST(DatasetSha256, IgnoresTheFieldNamesTheFileUsed) {
  TempDir dir;
  const auto standard = dir.Write("a.jsonl", "{\"prompt\": \"x\", \"completion\": \"y\"}\n");
  const auto custom = dir.Write("b.jsonl", "{\"question\": \"x\", \"answer\": \"y\"}\n");
  const DatasetRows a = ReadWith("jsonl", standard);
  const DatasetRows b =
      ReadWith("jsonl", custom, {{"prompt_field", "question"}, {"completion_field", "answer"}});
  ASSERT_EQ(a.examples.size(), 1u);
  ASSERT_EQ(b.examples.size(), 1u);
  EXPECT_EQ(DatasetSha256(a.examples), DatasetSha256(b.examples));
}

TEST(DatasetSha256, RefusesTextThatIsNotUtf8NamingTheLine) {
  const std::vector<TextExample> examples = {{.prompt = "ok", .completion = "\xff", .line = 7}};
  try {
    DatasetSha256(examples);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("line 7"), std::string::npos) << e.what();
  }
}

std::vector<TextExample> ManyExamples(int count) {
  std::vector<TextExample> examples;
  for (int i = 0; i < count; ++i) {
    TextExample example{.prompt = "", .completion = std::to_string(i + 1), .line = i + 1};
    example.prompt = "What is ";
    example.prompt += std::to_string(i);
    example.prompt += " + 1?";
    examples.push_back(std::move(example));
  }
  return examples;
}

TEST(EvalSplit, MatchesThePythonDefinition) {
  // int.from_bytes(sha256(canonical).digest()[:8], "big") / 2**64 == 0.013986716777470744
  const TextExample example = PinnedExamples()[0];
  EXPECT_FALSE(InEvalSplit(example, 0.0139867));
  EXPECT_TRUE(InEvalSplit(example, 0.0139868));
}

TEST(EvalSplit, IsStableAndIndependentOfOrder) {
  std::vector<TextExample> examples = ManyExamples(500);
  std::vector<bool> held_out;
  for (const TextExample& example : examples) held_out.push_back(InEvalSplit(example, 0.2));
  // Asked again in reverse order and renumbered, each example keeps its side.
  for (int i = 499; i >= 0; --i) {
    TextExample copy = examples[i];
    copy.line = 1000 + i;
    EXPECT_EQ(InEvalSplit(copy, 0.2), held_out[i]) << i;
  }
  // A larger fraction only adds examples.
  for (size_t i = 0; i < examples.size(); ++i) {
    if (held_out[i]) {
      EXPECT_TRUE(InEvalSplit(examples[i], 0.3)) << i;
    }
  }
}

TEST(EvalSplit, HoldsOutAboutTheRequestedFraction) {
  constexpr int kCount = 10000;
  constexpr double kFraction = 0.1;
  int held_out = 0;
  for (const TextExample& example : ManyExamples(kCount))
    held_out += InEvalSplit(example, kFraction);
  // Binomial(10000, 0.1): mean 1000, standard deviation 30.
  const double sigma = std::sqrt(kCount * kFraction * (1 - kFraction));
  EXPECT_NEAR(held_out, kCount * kFraction, 3 * sigma);
}

TEST(EvalSplit, FractionZeroHoldsOutNothingAndOneHoldsOutEverything) {
  for (const TextExample& example : ManyExamples(200)) {
    EXPECT_FALSE(InEvalSplit(example, 0.0));
    EXPECT_TRUE(InEvalSplit(example, 1.0));
  }
}

}  // namespace
}  // namespace tune

namespace tune {
namespace {

TEST(DiffRows, PairsEqualRowsInOrderThenChangedPromptsAndListsTheRest) {
  const std::vector<TextExample> from = {
      {"a", "1", 1}, {"b", "2", 2}, {"a", "1", 3}, {"c", "3", 4}, {"d", "4", 5}};
  const std::vector<TextExample> to = {
      {"a", "1", 1}, {"c", "three", 2}, {"e", "5", 3}, {"b", "2", 4}};
  const RowsDiff diff = DiffRows(RowHashesText(from), RowHashesText(to));
  EXPECT_EQ(diff.unchanged, 2);                           // a (its first copy) and b
  EXPECT_EQ(diff.changed, std::vector<int64_t>{2});       // c's completion
  EXPECT_EQ(diff.added, std::vector<int64_t>{3});         // e
  EXPECT_EQ(diff.removed, (std::vector<int64_t>{3, 5}));  // a's second copy, d
  EXPECT_THROW(DiffRows("not a row list\n", ""), UserError);
}

}  // namespace
}  // namespace tune

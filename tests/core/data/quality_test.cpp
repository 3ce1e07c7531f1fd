// data/quality.h on files with planted problems: the findings and the lines they name.
#include "data/quality.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>
#include <sstream>

#include "support/test_support.h"
#include "util/error.h"

namespace tune {
namespace {

// Rows of `words` random words from a vocabulary of 500, one per line from line 1.
std::vector<TextExample> RandomRows(int rows, int words, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int> pick(0, 499);
  std::vector<TextExample> examples;
  for (int i = 0; i < rows; ++i) {
    std::string prompt = "Summarise:";
    for (int w = 0; w < words; ++w) prompt.append(" w").append(std::to_string(pick(generator)));
    examples.push_back(
        {prompt, std::string("Answer ").append(std::to_string(i)).append("."), i + 1});
  }
  return examples;
}

QualityReport Inspect(std::vector<TextExample> examples, const Tokenizer* tokenizer = nullptr,
                      QualityOptions options = {}) {
  for (size_t i = 0; i < examples.size(); ++i) examples[i].line = static_cast<int64_t>(i) + 1;
  return InspectDataset({std::move(examples), {}}, tokenizer, options);
}

TEST(DataQuality, FindsPlantedExactAndNearDuplicatesByLine) {
  std::vector<TextExample> rows = RandomRows(60, 40, 1);
  rows.push_back(rows[3]);      // line 61: line 4 again
  TextExample word = rows[10];  // line 62: one word of line 11 changed
  word.prompt.replace(word.prompt.find(" w", 60), 3, " changed");
  rows.push_back(word);
  TextExample punctuation = rows[20];  // line 63: line 21 with commas and a full stop
  for (size_t at = 0, n = 0;
       n < 4 && (at = punctuation.prompt.find(' ', at + 12)) != std::string::npos; ++n) {
    punctuation.prompt.insert(at, ",");
  }
  punctuation.prompt += ".";
  rows.push_back(punctuation);
  TextExample reordered = rows[30];  // line 64: line 31's two halves swapped around a comma
  const size_t middle = reordered.prompt.find(' ', reordered.prompt.size() / 2);
  reordered.prompt =
      reordered.prompt.substr(middle + 1).append(", ").append(reordered.prompt.substr(0, middle));
  rows.push_back(reordered);
  TextExample answered = rows[40];  // line 65: line 41's prompt, one word changed, another answer
  answered.prompt.replace(answered.prompt.find(" w", 30), 3, " other");
  answered.completion = "A different answer.";
  rows.push_back(answered);

  const QualityReport report = Inspect(rows);
  EXPECT_EQ(report.exact_duplicates, (std::vector<std::vector<int64_t>>{{4, 61}}));
  EXPECT_EQ(report.ExactDuplicateRows(), 1);
  EXPECT_EQ(report.near_duplicates,
            (std::vector<std::vector<int64_t>>{{11, 62}, {21, 63}, {31, 64}}));
  // Line 65's prompt is close to line 41's but not the same: another question, not a conflict.
  EXPECT_EQ(report.conflicts, (std::vector<std::vector<int64_t>>{}));

  QualityOptions strict;
  strict.near_threshold = 0.99;  // only the punctuation change stays this close
  EXPECT_EQ(Inspect(rows, nullptr, strict).near_duplicates,
            (std::vector<std::vector<int64_t>>{{21, 63}}));
}

TEST(DataQuality, ASharedTemplateDoesNotMakeUnrelatedRowsNearDuplicates) {
  // A long system header (60 words) and a footer around instructions of two or three words:
  // without the template taken out, the shared shingles alone put every pair above 0.8.
  std::string header = "You are a careful assistant.";
  for (int w = 0; w < 56; ++w) header.append(" rule").append(std::to_string(w));
  header += "\n\n### Instruction:\n";
  std::vector<TextExample> rows;
  for (const char* instruction : {"Name a colour.", "Count to three.", "Spell cat backwards.",
                                  "Add two and two.", "Greet a friend."}) {
    rows.push_back({header + instruction + "\n\n### Response:\n", "An answer."});
  }
  rows.push_back({header + "Name a colour.\n\n### Response:\n", "Blue."});
  const QualityReport report = Inspect(rows);
  EXPECT_EQ(report.near_duplicates, std::vector<std::vector<int64_t>>{});
  EXPECT_EQ(report.conflicts, (std::vector<std::vector<int64_t>>{{1, 6}}));
}

// One prompt, exactly, with different completions; prompts that differ in case, spacing or
// punctuation are different prompts.
TEST(DataQuality, ConflictsAreOnePromptWithDifferentCompletions) {
  const QualityReport report = Inspect({{"What is 2 + 2?", "4"},
                                        {"what is 2+2 ?", "5"},
                                        {"Name a colour.", "Red"},
                                        {"Name a colour.", "Blue"},
                                        {"Name a colour.", "Red"},
                                        {"", "alone"},
                                        {"", "twice"}});
  EXPECT_EQ(report.conflicts, (std::vector<std::vector<int64_t>>{{3, 4, 5}}));
  EXPECT_EQ(report.empty_prompts, (std::vector<int64_t>{6, 7}));
}

// At a low near-duplicate threshold, rows with different prompts pass for near-duplicates; they
// stay different questions, so none is a conflict (--near-threshold 0.5 once made 317 of the
// example data's valid rows conflicts, which drop_conflicts dropped).
TEST(DataQuality, NearDuplicatesAtALowThresholdMakeNoConflict) {
  // Rows differ at both ends, so no shared template is taken out and the long middle makes them
  // near-duplicates.
  std::string shared = "name the capital of";
  for (int w = 0; w < 60; ++w) shared.append(" w").append(std::to_string(w));
  std::vector<TextExample> rows;
  for (const char* country : {"France", "Spain", "Peru", "Chad"}) {
    rows.push_back({std::string(country) + ": " + shared + " " + country + "?",
                    std::string("The capital of ") + country});
  }
  QualityOptions loose;
  loose.near_threshold = 0.5;
  const QualityReport report = Inspect(rows, nullptr, loose);
  EXPECT_FALSE(report.near_duplicates.empty());  // the test could fail: rows are near-duplicates
  EXPECT_EQ(report.conflicts, (std::vector<std::vector<int64_t>>{}));
}

TEST(DataQuality, PersonalDataIsFoundByLineAndNeverShownWhole) {
  const QualityReport report =
      Inspect({{"Who?", "Mail jane.roe+news@mail.example.org."},
               {"Call", "Phone +44 20 7946 0958 or (415) 555-0132"},
               {"Pay", "Card 4111-1111-1111-1111, not 4111 1111 1111 1112"},
               {"Plain numbers", "Order 1700000000 shipped at 20240101 in box 12"}});
  std::vector<std::string> seen;
  for (const PersonalData& p : report.personal_data) {
    seen.push_back(std::to_string(p.line).append(" ").append(p.kind).append(" ").append(p.masked));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "1 e-mail address j***@m***.org", "2 phone number +** ** **** **58",
                      "2 phone number (***) ***-**32", "3 card number ****-****-****-1111"}));
}

TEST(DataQuality, FormatBreaksNameTheRowsThatBreakAHabit) {
  std::vector<TextExample> rows;
  for (int i = 0; i < 30; ++i) {
    rows.push_back({std::string("q").append(std::to_string(i)),
                    std::string("{\"answer\": ").append(std::to_string(i)).append("}")});
  }
  rows.push_back({"q30", "answer: 30"});
  const QualityReport report = Inspect(rows);
  ASSERT_FALSE(report.format_breaks.empty());
  EXPECT_EQ(report.format_breaks[0].line, 31);
  EXPECT_EQ(report.format_breaks[0].what, "completion is not JSON (96% of completions are)");
}

// Splits on spaces: one token per word, BOS 1 and EOS 2.
class WordTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> Encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    std::istringstream words{std::string(text)};
    for (std::string word; words >> word;) ids.push_back(3);
    return ids;
  }
  std::string Decode(std::span<const int32_t>) const override { return ""; }
  std::string TokenText(int32_t) const override { return ""; }
  int32_t vocab_size() const override { return 4; }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
};

TEST(DataQuality, LengthsAreInTokensWithATokenizerAndLongRowsAreListed) {
  const WordTokenizer tokenizer;
  QualityOptions options;
  options.seq_len = 6;
  const QualityReport report =
      Inspect({{"a b", "c"}, {"a b c d", "e f"}, {"a", "b"}}, &tokenizer, options);
  EXPECT_EQ(report.length_unit, "tokens");
  EXPECT_EQ(report.prompt_lengths.max, 5);      // 4 words and BOS
  EXPECT_EQ(report.completion_lengths.max, 3);  // 2 words and EOS
  EXPECT_EQ(report.over_seq_len, std::vector<int64_t>{2});
  EXPECT_EQ(QualitySummary(report),
            "3 rows; 0 exact duplicates; 0 near-duplicate clusters; 0 conflicts; 1 row over "
            "seq_len 6");
  EXPECT_EQ(Inspect({{"é", "ab"}}).prompt_lengths.max, 1);  // characters are code points
}

TEST(DataQuality, SummaryAndJsonCarryEveryCount) {
  std::vector<TextExample> rows = RandomRows(1200, 5, 2);
  rows.push_back(rows[0]);
  rows.push_back({"Empty", " "});
  const QualityReport report = Inspect(rows);
  EXPECT_EQ(QualitySummary(report).substr(0, 52),
            "1,202 rows; 1 exact duplicate; 0 near-duplicate clus");
  const auto json = nlohmann::json::parse(QualityReportJson(report));
  EXPECT_EQ(json["rows"], 1202);
  EXPECT_EQ(json["exact_duplicates"], nlohmann::json::parse("[[1, 1201]]"));
  EXPECT_EQ(json["empty_completions"], nlohmann::json::parse("[1202]"));
  EXPECT_EQ(json["dataset_sha256"].get<std::string>().size(), 64u);
  EXPECT_THROW(InspectDataset({rows, {}}, nullptr, {1.5, 0}), UserError);
}

}  // namespace
}  // namespace tune

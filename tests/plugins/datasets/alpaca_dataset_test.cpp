// alpaca, loaded from the build's plugin folder through the real host as tune loads it. The
// expected prompts are the Stanford Alpaca template (tatsu-lab/stanford_alpaca, train.py
// PROMPT_DICT["prompt_input"] and ["prompt_no_input"]) written out by hand.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "plugins/datasets/builtin_dataset.h"
#include "util/error.h"

namespace tune {
namespace {

using testing::Describe;

class AlpacaDataset : public testing::BuiltinDataset {
 protected:
  AlpacaDataset() : BuiltinDataset("alpaca") {}
};

const std::string kWithInput =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
    "Translate to French.\n\n### Input:\nGood morning\n\n### Response:\n";
const std::string kNoInput =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\nName a primary colour.\n\n### Response:\n";

TEST_F(AlpacaDataset, RendersTheStanfordTemplateWithAndWithoutInput) {
  const DatasetRows rows = Read(
      "[\n"
      "  {\"instruction\": \"Translate to French.\", \"input\": \"Good morning\", \"output\": "
      "\"Bonjour\"},\n"
      "  {\"instruction\": \"Name a primary colour.\", \"input\": \"\", \"output\": \"Red\"},\n"
      "  {\"instruction\": \"Name a primary colour.\", \"output\": \"Blue\"}\n"
      "]\n",
      {}, "alpaca_data.json");
  EXPECT_TRUE(rows.bad_rows.empty()) << ::testing::PrintToString(Describe(rows.bad_rows));
  ASSERT_EQ(rows.examples.size(), 3u);
  EXPECT_EQ(rows.examples[0].prompt, kWithInput);
  EXPECT_EQ(rows.examples[0].completion, "Bonjour");
  EXPECT_EQ(rows.examples[1].prompt, kNoInput);
  EXPECT_EQ(rows.examples[1].completion, "Red");
  EXPECT_EQ(rows.examples[2].prompt, kNoInput);  // a missing input is an empty one
  EXPECT_EQ(rows.examples[2].completion, "Blue");
  // In an array file, examples are numbered by record.
  EXPECT_EQ(rows.examples[0].line, 1);
  EXPECT_EQ(rows.examples[2].line, 3);
}

TEST_F(AlpacaDataset, ReadsJsonlWithLineNumbers) {
  const DatasetRows rows = Read(
      "\n{\"instruction\": \"Translate to French.\", \"input\": \"Good morning\", \"output\": "
      "\"Bonjour\"}\n"
      "{\"instruction\": \"Name a primary colour.\", \"input\": \"\", \"output\": \"Red\"}\n");
  EXPECT_TRUE(rows.bad_rows.empty()) << ::testing::PrintToString(Describe(rows.bad_rows));
  ASSERT_EQ(rows.examples.size(), 2u);
  EXPECT_EQ(rows.examples[0].prompt, kWithInput);
  EXPECT_EQ(rows.examples[0].line, 2);
  EXPECT_EQ(rows.examples[1].prompt, kNoInput);
  EXPECT_EQ(rows.examples[1].line, 3);
}

TEST_F(AlpacaDataset, ReportsEachBadRecord) {
  const DatasetRows rows = Read(
      "{\"instruction\": \"i\", \"output\": \"o\"}\n"
      "{\"instruction\": \"i\"}\n"
      "{\"input\": \"x\", \"output\": \"o\"}\n"
      "{\"instruction\": \"i\", \"input\": 5, \"output\": \"o\"}\n"
      "{\"instruction\": \"i\", \"output\": \"\"}\n"
      "{\"instruction\": \"\", \"output\": \"o\"}\n"
      "not json\n"
      "\"text\"\n");
  ASSERT_EQ(rows.examples.size(), 1u);
  const std::vector<std::string> described = Describe(rows.bad_rows);
  ASSERT_EQ(described.size(), 7u);
  EXPECT_EQ(std::vector<std::string>(described.begin(), described.begin() + 5),
            (std::vector<std::string>{"2: missing field 'output'", "3: missing field 'instruction'",
                                      "4: field 'input' is not a string", "5: empty completion",
                                      "6: empty instruction"}));
  EXPECT_TRUE(described[5].starts_with("7: not JSON: ")) << described[5];
  EXPECT_EQ(described[6], "8: not a JSON object");
}

TEST_F(AlpacaDataset, ReportsBadRecordsOfAnArrayByRecordNumber) {
  const DatasetRows rows =
      Read("[{\"instruction\": \"i\", \"output\": \"o\"}, {\"output\": \"o\"}]", {}, "data.json");
  ASSERT_EQ(rows.examples.size(), 1u);
  EXPECT_EQ(Describe(rows.bad_rows), (std::vector<std::string>{"2: missing field 'instruction'"}));
}

TEST_F(AlpacaDataset, AnArrayFileThatIsNotJsonIsAUserErrorNamingTheFile) {
  try {
    Read("[{\"instruction\": \"i\", \"output\": \"o\"},\n", {}, "broken.json");
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("dataset plugin 'alpaca'"), std::string::npos) << message;
    EXPECT_NE(message.find("broken.json: not JSON: "), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace tune

// jsonl, loaded from the build's plugin folder through the real host as tune loads it.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "plugins/datasets/builtin_dataset.h"
#include "util/error.h"

namespace tune {
namespace {

using testing::Describe;

class JsonlDataset : public testing::BuiltinDataset {
 protected:
  JsonlDataset() : BuiltinDataset("jsonl") {}
};

TEST_F(JsonlDataset, ReadsPromptAndCompletionOfEachLineWithItsLineNumber) {
  const DatasetRows rows = Read(
      "{\"prompt\": \"2+2=\", \"completion\": \"4\"}\n"
      "\n"
      "   \n"
      "{\"completion\": \" Paris\", \"prompt\": \"Capital of France:\", \"id\": 7}\r\n"
      "{\"prompt\": \"\", \"completion\": \"no context\"}");
  EXPECT_TRUE(rows.bad_rows.empty()) << ::testing::PrintToString(Describe(rows.bad_rows));
  ASSERT_EQ(rows.examples.size(), 3u);
  EXPECT_EQ(rows.examples[0].prompt, "2+2=");
  EXPECT_EQ(rows.examples[0].completion, "4");
  EXPECT_EQ(rows.examples[0].line, 1);
  EXPECT_EQ(rows.examples[1].prompt, "Capital of France:");
  EXPECT_EQ(rows.examples[1].completion, " Paris");  // text is kept exactly, spaces included
  EXPECT_EQ(rows.examples[1].line, 4);               // blank lines still count
  EXPECT_EQ(rows.examples[2].prompt, "");
  EXPECT_EQ(rows.examples[2].line, 5);
}

TEST_F(JsonlDataset, ReportsEachBadRowWithItsLineNumber) {
  const DatasetRows rows = Read(
      "{\"prompt\": \"a\", \"completion\": \"b\"}\n"
      "{\"prompt\": \"a\"\n"
      "{\"prompt\": \"a\"}\n"
      "[\"a\", \"b\"]\n"
      "{\"prompt\": \"a\", \"completion\": \"\"}\n"
      "{\"prompt\": 3, \"completion\": \"b\"}\n"
      "{\"completion\": \"b\"}\n"
      "{\"prompt\": \"c\", \"completion\": \"d\"}\n");
  ASSERT_EQ(rows.examples.size(), 2u);
  EXPECT_EQ(rows.examples[0].line, 1);
  EXPECT_EQ(rows.examples[1].line, 8);
  ASSERT_EQ(rows.bad_rows.size(), 6u);
  EXPECT_EQ(rows.bad_rows[0].line, 2);
  EXPECT_TRUE(rows.bad_rows[0].reason.starts_with("not JSON: ")) << rows.bad_rows[0].reason;
  EXPECT_EQ(rows.bad_rows[0].reason.find("[json.exception"), std::string::npos);
  const std::vector<std::string> described = Describe(rows.bad_rows);
  const std::vector<std::string> rest(described.begin() + 1, described.end());
  EXPECT_EQ(rest,
            (std::vector<std::string>{"3: missing field 'completion'", "4: not a JSON object",
                                      "5: empty completion", "6: field 'prompt' is not a string",
                                      "7: missing field 'prompt'"}));
  for (const BadRow& row : rows.bad_rows) {
    EXPECT_EQ(row.reason.find('\n'), std::string::npos) << row.reason;
  }
}

TEST_F(JsonlDataset, ReadsTheFieldsTheOptionsName) {
  const DatasetRows rows = Read(
      "{\"question\": \"q\", \"answer\": \"a\", \"prompt\": \"ignored\"}\n"
      "{\"prompt\": \"p\", \"completion\": \"c\"}\n",
      {{"prompt_field", "question"}, {"completion_field", "answer"}});
  ASSERT_EQ(rows.examples.size(), 1u);
  EXPECT_EQ(rows.examples[0].prompt, "q");
  EXPECT_EQ(rows.examples[0].completion, "a");
  EXPECT_EQ(Describe(rows.bad_rows), (std::vector<std::string>{"2: missing field 'question'"}));
}

TEST_F(JsonlDataset, AnEmptyFileHoldsNoRows) {
  const DatasetRows rows = Read("");
  EXPECT_TRUE(rows.examples.empty());
  EXPECT_TRUE(rows.bad_rows.empty());
}

TEST_F(JsonlDataset, AMissingFileIsAUserErrorNamingThePluginAndTheFile) {
  const std::string missing = (dir_.path() / "absent.jsonl").string();
  try {
    host_.CreateDataset("jsonl", WithOverrides({}))->Read(missing);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("dataset plugin 'jsonl'"), std::string::npos) << message;
    EXPECT_NE(message.find(missing), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(PluginHostDatasets, CreateDatasetNamesTheLoadedDatasetsWhenOneIsMissing) {
  PluginHost host;
  host.Load({TUNE_BUILTIN_PLUGIN_DIR});
  try {
    host.CreateDataset("parquet", Options());
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "dataset plugin 'parquet' is not loaded (loaded: alpaca, chat, jsonl)");
  }
}

}  // namespace
}  // namespace tune

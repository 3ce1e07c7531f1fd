// `tune data inspect|register|ls|show|diff` over the real binary.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace tune {
namespace {

using testing::RunTune;

TEST(DataCommands, InspectReportsAFileAndRefusesAMissingOne) {
  const testing::TempDir dir;
  const auto file = dir.Write("d.jsonl",
                              "{\"prompt\": \"a b c\", \"completion\": \"x\"}\n"
                              "{\"prompt\": \"a b c\", \"completion\": \"y\"}\n"
                              "not json\n");
  const auto result = RunTune({"data", "inspect", file.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["conflicts"], nlohmann::json::parse("[[1, 2]]"));
  EXPECT_EQ(json["bad_rows"], 1);
  const auto text = RunTune({"data", "inspect", file.string()});
  EXPECT_NE(text.out.find("2 rows (and 1 unreadable); 0 exact duplicates; 0 near-duplicate "
                          "clusters; 1 conflict"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("unreadable: line 3: "), std::string::npos) << text.out;
  const auto missing = RunTune({"data", "inspect", (dir.path() / "none.jsonl").string()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("none.jsonl does not exist; give the dataset file"), std::string::npos)
      << missing.err;
}

TEST(DataCommands, RegisterListShowAndDiffDatasetVersions) {
  const testing::TempDir dir;
  const std::string registry = (dir.path() / "registry").string();
  const auto first = dir.Write("v1.jsonl",
                               "{\"prompt\": \"p1\", \"completion\": \"c1\"}\n"
                               "{\"prompt\": \"p2\", \"completion\": \"c2\"}\n"
                               "{\"prompt\": \"p3\", \"completion\": \"c3\"}\n");
  const auto second = dir.Write("v2.jsonl",
                                "{\"prompt\": \"p1\", \"completion\": \"c1\"}\n"
                                "{\"prompt\": \"p2\", \"completion\": \"changed\"}\n"
                                "{\"prompt\": \"p4\", \"completion\": \"c4\"}\n");
  const auto reg = [&](const std::filesystem::path& file) {
    return RunTune({"data", "register", file.string(), "--name", "qa", "--registry", registry});
  };
  EXPECT_EQ(reg(first).out,
            "dataset qa:1 (3 rows; 0 exact duplicates; 0 near-duplicate clusters; 0 conflicts)\n");
  EXPECT_EQ(reg(first).out.substr(0, 13), "dataset qa:1 ");  // the same rows: no new version
  EXPECT_EQ(reg(second).out.substr(0, 13), "dataset qa:2 ");
  const auto listed = RunTune({"data", "ls", "--registry", registry});
  EXPECT_EQ(testing::CountLinesStartingWith(listed.out, "qa:"), 2) << listed.out;
  const auto shown = RunTune({"data", "show", "qa:1", "--json", "--registry", registry});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const auto record = nlohmann::json::parse(shown.out);
  EXPECT_EQ(record["rows"], 3);
  EXPECT_EQ(record["report"]["rows"], 3);
  const auto diff = RunTune({"data", "diff", "qa:1", "qa:2", "--json", "--registry", registry});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_EQ(nlohmann::json::parse(diff.out),
            nlohmann::json::parse(R"({"from": "qa:1", "to": "qa:2", "added": [3], "removed": [3],
                                      "changed": [2], "unchanged": 1})"));
  const auto unknown = RunTune({"data", "show", "aq", "--registry", registry});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("no dataset 'aq' in registry"), std::string::npos) << unknown.err;
}

// A version holds rows: an empty file, a binary one and one no row of which reads are refused with
// one line each, and nothing is registered.
TEST(DataCommands, RegisterRefusesAFileWithNoRows) {
  const testing::TempDir dir;
  const std::string registry = (dir.path() / "registry").string();
  const auto reg = [&](const std::filesystem::path& file) {
    return RunTune({"data", "register", file.string(), "--name", "qa", "--registry", registry});
  };
  const auto empty = dir.Write("empty.jsonl", "");
  auto result = reg(empty);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err,
            "error: " + empty.string() + " holds no rows (it is empty); nothing registered\n");
  const auto binary = dir.Write("weights.bin", std::string("\x93NUMPY\x01\x00{'descr'", 17));
  result = reg(binary);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, "error: " + binary.string() +
                            " is not text (a NUL byte at offset 7); give the dataset file, one row "
                            "per line for jsonl; nothing registered\n");
  const auto unreadable = dir.Write("notes.jsonl", "first note\nsecond note\n");
  result = reg(unreadable);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err.rfind("error: " + unreadable.string() +
                                 ": none of its 2 rows could be read (line 1: not JSON",
                             0),
            0u)
      << result.err;
  EXPECT_EQ(testing::CountLinesStartingWith(result.err, ""), 1) << result.err;
  EXPECT_NE(result.err.find("is it a jsonl file? Choose the reader with --plugin"),
            std::string::npos)
      << result.err;
  EXPECT_EQ(RunTune({"data", "ls", "--registry", registry}).out.find("qa:"), std::string::npos);
}

// `tune data show` takes a dataset reference and says so; versions start at 1.
TEST(DataCommands, ShowNamesADatasetReferenceAndRefusesVersionZero) {
  const testing::TempDir dir;
  const std::string registry = (dir.path() / "registry").string();
  const auto file = dir.Write("d1.jsonl", "{\"prompt\": \"p\", \"completion\": \"c\"}\n");
  ASSERT_EQ(RunTune({"data", "register", file.string(), "--name", "d1", "--registry", registry})
                .exit_code,
            0);
  const auto zero = RunTune({"data", "show", "d1:0", "--registry", registry});
  EXPECT_EQ(zero.exit_code, 1);
  EXPECT_EQ(zero.err,
            "error: invalid dataset reference 'd1:0': the version '0' is not a whole number from 1 "
            "(versions start at 1); write NAME (the latest version) or NAME:VERSION (NAME:3)\n");
  EXPECT_EQ(zero.err.find("adapter"), std::string::npos);
}

// With --model, conversations are rendered with the model folder's chat template, as training
// renders them: here the template leaves system messages out (rows 1 and 2 become one) and refuses
// one conversation (a bad row, as in training); without it, the plugin's own chatml keeps them
// apart.
TEST(DataCommands, InspectWithAModelRendersConversationsWithItsChatTemplate) {
  const testing::TempDir dir;
  const auto model = testing::MakeTinyLlama(dir.path() / "model", {"--seed", "1"});
  dir.Write("model/chat_template.jinja",
            "{%- for m in messages %}{%- if m.content == 'refuse me' %}"
            "{{ raise_exception('this template refuses it') }}{%- elif m.role != 'system' %}"
            "<{{ m.role }}>{{ m.content }}</{{ m.role }}>{%- endif %}{%- endfor %}"
            "{%- if add_generation_prompt %}<assistant>{%- endif %}");
  const auto file = dir.Write(
      "chat.jsonl",
      "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
      "\"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"hello\"}]}\n"
      "{\"messages\": [{\"role\": \"system\", \"content\": \"Be long.\"}, {\"role\": \"user\", "
      "\"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"hello\"}]}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"refuse me\"}, {\"role\": "
      "\"assistant\", \"content\": \"no\"}]}\n");
  const auto with_model = RunTune(
      {"data", "inspect", file.string(), "--plugin", "chat", "--model", model.string(), "--json"});
  ASSERT_EQ(with_model.exit_code, 0) << with_model.err;
  const auto rendered = nlohmann::json::parse(with_model.out);
  EXPECT_EQ(rendered["exact_duplicates"], nlohmann::json::parse("[[1, 2]]")) << rendered.dump(2);
  EXPECT_EQ(rendered["bad_rows"], 1);
  const auto text =
      RunTune({"data", "inspect", file.string(), "--plugin", "chat", "--model", model.string()});
  EXPECT_NE(text.out.find("unreadable: line 3: "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("this template refuses it"), std::string::npos) << text.out;

  const auto plugin_only =
      RunTune({"data", "inspect", file.string(), "--plugin", "chat", "--json"});
  ASSERT_EQ(plugin_only.exit_code, 0) << plugin_only.err;
  const auto own = nlohmann::json::parse(plugin_only.out);
  EXPECT_EQ(own["exact_duplicates"], nlohmann::json::array()) << own.dump(2);
  EXPECT_EQ(own["bad_rows"], 0);
}

}  // namespace
}  // namespace tune

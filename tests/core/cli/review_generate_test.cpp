// `tune review generate`: the base model's and each version's outputs on a review's prompts,
// greedy and seeded, recorded with the review; a stopped run goes on from its last whole line.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "registry/registry.h"
#include "support/test_support.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::RunTune;
using testing::TempDir;

class ReviewGenerateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testing::MakeTinyLlama(dir_.path() / "base", {"--seed", "3"});
    // A whole model trained from it (full fine-tuning): another tiny model of the same shape.
    const fs::path tuned = testing::MakeTinyLlama(dir_.path() / "tuned", {"--seed", "4"});
    VersionRecord record;
    record.method = "full";
    record.base_model_name = "tiny";
    record.base_model_path = base_.string();
    record.base_model_hash = std::string(64, 'b');
    record.plugins = {{"model", "llama", "1.0.0"}};
    Registry::Open(registry_.string(), Registry::OpenMode::kCreate)
        ->Register("tiny", record, tuned);
    std::ofstream(dir_.path() / "prompts.jsonl") << "{\"prompt\": \"one\"}\n{\"prompt\": \"two\"}\n"
                                                    "{\"prompt\": \"three\"}\n";
  }

  testing::CommandResult Tune(const std::vector<std::string>& args) {
    return RunTune(args, {{"TUNE_REGISTRY", registry_.string()}});
  }

  std::vector<std::string> Lines(const fs::path& file) {
    std::ifstream in(file);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  TempDir dir_;
  fs::path base_;
  fs::path registry_ = dir_.path() / "registry";
  fs::path work_ = dir_.path() / "work";
};

TEST_F(ReviewGenerateTest, RecordsTheBaseModelAndEachVersionGreedilyAndGoesOnAfterAStop) {
  const fs::path prompts = dir_.path() / "prompts.jsonl";
  ASSERT_EQ(Tune({"review", "create", "qa", "--prompts", prompts.string()}).exit_code, 0);
  auto result = Tune({"review", "generate", "qa", "tiny:1", "--max-new-tokens", "4", "--work-dir",
                      work_.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "review qa: recorded the outputs of base, tiny:1; raters judge them at #/review/qa in "
            "tune serve\n");
  EXPECT_NE(result.err.find("tiny:1: 3 of 3 prompts"), std::string::npos) << result.err;
  const ReviewRecord review =
      Registry::Open(registry_.string(), Registry::OpenMode::kReadOnly)->GetReview("qa");
  ASSERT_EQ(review.outputs.size(), 2u);
  EXPECT_EQ(review.outputs[0].contestant, "base");
  EXPECT_EQ(review.outputs[1].contestant, "tiny:1");
  EXPECT_NE(review.outputs[0].generation.find("greedy, seed 0, at most 4 new tokens"),
            std::string::npos);
  const std::vector<std::string> base_lines = Lines(work_ / "qa" / "base.jsonl");
  ASSERT_EQ(base_lines.size(), 3u);
  EXPECT_NE(base_lines, Lines(work_ / "qa" / "tiny-1.jsonl"));
  // Again: nothing left to generate.
  result = Tune({"review", "generate", "qa", "tiny:1", "--work-dir", work_.string()});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("recorded the outputs of none"), std::string::npos);

  // A second review of the same prompts whose base run stopped after one prompt and half a line:
  // it goes on from the second prompt, and greedy decoding gives the same outputs.
  ASSERT_EQ(Tune({"review", "create", "qa2", "--prompts", prompts.string()}).exit_code, 0);
  fs::create_directories(work_ / "qa2");
  std::ofstream(work_ / "qa2" / "base.jsonl") << base_lines[0] << "\n{\"prompt\": 1, \"outp";
  result = Tune({"review", "generate", "qa2", "tiny:1", "--max-new-tokens", "4", "--work-dir",
                 work_.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("base: going on from prompt 2 of 3"), std::string::npos) << result.err;
  EXPECT_EQ(Lines(work_ / "qa2" / "base.jsonl"), base_lines);
}

TEST_F(ReviewGenerateTest, ABaseModelNotOnThisMachineIsRefusedSayingWhere) {
  const fs::path prompts = dir_.path() / "prompts.jsonl";
  ASSERT_EQ(Tune({"review", "create", "qa", "--prompts", prompts.string()}).exit_code, 0);
  fs::rename(base_, dir_.path() / "moved");
  const auto result = Tune({"review", "generate", "qa", "tiny:1", "--work-dir", work_.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, "error: tiny:1 was trained from base model tiny at " + base_.string() +
                            ", which is not on this machine (no config.json there); run tune "
                            "review generate where that folder is\n");
}

}  // namespace
}  // namespace tune

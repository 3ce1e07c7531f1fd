// generation_config.json (core/generate/generation_config.h): what it reads, what it refuses, and
// generation stopping at every end id it names.
#include "generate/generation_config.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "generate/generate.h"
#include "plugin_host/plugin_host.h"
#include "support/builtin_plugins.h"
#include "support/test_support.h"
#include "tune/model.h"
#include "util/error.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

TEST(GenerationConfig, ReadsEndIdsAndSamplingDefaults) {
  TempDir dir;
  EXPECT_TRUE(ReadGenerationConfig(dir.path()).eos_ids.empty());  // no file: nothing set
  dir.Write("generation_config.json",
            R"({"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
                "do_sample": true, "temperature": 0.6, "top_p": 0.9})");
  const GenerationConfig config = ReadGenerationConfig(dir.path());
  EXPECT_EQ(config.eos_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  SamplingOptions options;
  ApplyGenerationConfig(config, options);
  EXPECT_EQ(options.temperature, 0.6);
  EXPECT_EQ(options.top_p, 0.9);
  EXPECT_EQ(options.max_new_tokens, SamplingOptions().max_new_tokens);

  dir.Write("generation_config.json", R"({"eos_token_id": 2, "temperature": 0.7})");
  SamplingOptions greedy;
  greedy.temperature = 1.5;
  ApplyGenerationConfig(ReadGenerationConfig(dir.path()), greedy);
  EXPECT_EQ(ReadGenerationConfig(dir.path()).eos_ids, std::vector<int32_t>{2});
  EXPECT_EQ(greedy.temperature, 0.0) << "without do_sample transformers decodes greedily";
}

TEST(GenerationConfig, RefusesBadValuesNamingTheFileAndKey) {
  TempDir dir;
  for (const auto& [content, key] : std::vector<std::pair<std::string, std::string>>{
           {R"({"eos_token_id": "</s>"})", "'eos_token_id'"},
           {R"({"eos_token_id": [2, -1]})", "'eos_token_id'"},
           {R"({"top_p": 1.5})", "'top_p'"},
           {R"({"temperature": -1})", "'temperature'"},
           {R"({"do_sample": "yes"})", "'do_sample'"},
           {R"({"max_new_tokens": 2.5})", "'max_new_tokens'"},
           {R"({"eos_token_id": )", "not valid JSON"}}) {
    dir.Write("generation_config.json", content);
    try {
      ReadGenerationConfig(dir.path());
      ADD_FAILURE() << content << " was accepted";
    } catch (const UserError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find((dir.path() / "generation_config.json").string()), std::string::npos);
      EXPECT_NE(message.find(key), std::string::npos) << message;
    }
  }
}

class EndIdsTest : public testing::WithBuiltinPlugins<> {
 protected:
  static void SetUpTestSuite() {
    WithBuiltinPlugins::SetUpTestSuite();
    testing::MakeTinyLlama(dir_->path() / "model", {"--seed", "4"});
  }
};

TEST_F(EndIdsTest, GenerationStopsAtEveryEndIdTheConfigNames) {
  const fs::path model_dir = dir_->path() / "model";
  const auto model = host_->LoadModel(
      "llama", model_dir, PluginHost::DefaultOptions(host_->Require(PluginKind::kModel, "llama")));
  const std::vector<int32_t> prompt = {model->tokenizer().bos_id(), 17, 42, 99};
  SamplingOptions options;
  options.max_new_tokens = 12;
  const std::vector<int32_t> free = GenerateTokens(*model, prompt, options).ids;
  // The first generated token not seen before it becomes an end id of the config.
  size_t stop = 1;
  while (stop < free.size() &&
         std::find(free.begin(), free.begin() + stop, free[stop]) != free.begin() + stop) {
    ++stop;
  }
  ASSERT_LT(stop, free.size()) << "the random model repeats one token; change the seed";
  dir_->Write("model/generation_config.json",
              nlohmann::json{{"eos_token_id", {model->tokenizer().eos_id(), free[stop]}}}.dump());
  options.end_ids = EndIds(ReadGenerationConfig(model_dir), model->tokenizer());
  EXPECT_EQ(options.end_ids, (std::vector<int32_t>{model->tokenizer().eos_id(), free[stop]}));
  const std::vector<int32_t> expected(free.begin(), free.begin() + stop);
  EXPECT_EQ(GenerateTokens(*model, prompt, options).ids, expected);
  EXPECT_EQ(GenerateGreedyBatched(*model, {prompt}, 12, 1, options.end_ids)[0].ids, expected);
}

}  // namespace
}  // namespace tune

// The real `tune` binary, run as a user runs it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_support.h"
#include "tune/plugin.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::CountLinesStartingWith;
using testing::RunTune;
using testing::TempDir;

const std::map<std::string, std::string> kNoPluginPath = {{"TUNE_PLUGIN_PATH", ""}};

TEST(Cli, VersionNamesTuneLibtorchCompilerAndCuda) {
  const auto result = RunTune({"--version"}, kNoPluginPath);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out.rfind(std::string("tune ") + TUNE_VERSION + " (commit ", 0), 0u)
      << result.out;
  EXPECT_NE(result.out.find(std::string("libtorch ") + TORCH_VERSION), std::string::npos);
  EXPECT_NE(result.out.find(std::string("compiler ") + TUNE_COMPILER_ID), std::string::npos);
  EXPECT_NE(result.out.find("CUDA: "), std::string::npos);
}

TEST(Cli, PluginsListsEveryBuiltinPluginWithKindVersionAndFile) {
  const auto result = RunTune({"plugins"}, kNoPluginPath);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  // Columns: KIND padded to 11, NAME to the longest name + 2 ("tokenizer-json" -> 16), VERSION.
  for (const char* row :
       {"dataset    alpaca          1.0.0    /", "dataset    chat            1.0.0    /",
        "dataset    jsonl           1.0.0    /", "model      llama           1.0.0    /",
        "adapter    full            1.0.0    /", "adapter    lora            1.0.0    /",
        "adapter    qlora           1.0.0    /", "optimizer  adamw           1.0.0    /",
        "optimizer  sgd             1.0.0    /", "metric     bleu            1.0.0    /",
        "metric     exact_match     1.0.0    /", "metric     rouge_l         1.0.0    /",
        "metric     token_f1        1.0.0    /", "tokenizer  sentencepiece   1.0.0    /",
        "tokenizer  tokenizer-json  1.0.0    /"}) {
    EXPECT_EQ(CountLinesStartingWith(result.out, row), 1) << row << "\n" << result.out;
  }
}

TEST(Cli, PluginsJsonCarriesKindNameVersionFileAndOptions) {
  const auto result = RunTune({"plugins", "--json"}, kNoPluginPath);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json json = nlohmann::json::parse(result.out);
  ASSERT_EQ(json["plugins"].size(), 15u);
  const auto named = [&](const std::string& name) {
    for (const nlohmann::json& plugin : json["plugins"]) {
      if (plugin["name"] == name) return plugin;
    }
    return nlohmann::json();
  };
  EXPECT_EQ(named("llama")["kind"], "model");
  EXPECT_EQ(named("jsonl")["kind"], "dataset");
  EXPECT_EQ(named("tokenizer-json")["kind"], "tokenizer");
  EXPECT_EQ(named("tokenizer-json")["file"].get<std::string>().ends_with(".so"), true);
  EXPECT_EQ(named("tokenizer-json")["reads"], "tokenizer.json");
  EXPECT_EQ(named("sentencepiece")["reads"], "tokenizer.model");
  const nlohmann::json exact = named("exact_match");
  EXPECT_EQ(exact["kind"], "metric");
  EXPECT_EQ(exact["name"], "exact_match");
  EXPECT_EQ(exact["version"], "1.0.0");
  EXPECT_EQ(exact["goal"], "maximize");
  EXPECT_TRUE(fs::exists(exact["file"].get<std::string>()));
  EXPECT_EQ(exact["options"][0]["name"], "lowercase");
  EXPECT_EQ(exact["options"][0]["default"], true);
  EXPECT_TRUE(json["failures"].empty());
}

TEST(Cli, PluginsReportsEachBadFileOnOneLineAndStillListsTheRest) {
  TempDir dir;
  dir.Write("junk.so", "not a library");
  for (const char* name : {"good_metric", "abi_mismatch", "throws_on_register"}) {
    fs::copy_file(fs::path(TUNE_FIXTURE_DIR) / (std::string(name) + ".so"),
                  dir.path() / (std::string(name) + ".so"));
  }
  const auto result = RunTune({"plugins"}, {{"TUNE_PLUGIN_PATH", dir.path().string()}});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(CountLinesStartingWith(result.err, "error: plugin " + dir.path().string()), 3)
      << result.err;
  EXPECT_EQ(CountLinesStartingWith(result.err, ""), 3) << result.err;
  EXPECT_NE(result.out.find("fixture_good"), std::string::npos);
  EXPECT_NE(result.out.find("exact_match"), std::string::npos);

  const auto json = RunTune({"plugins", "--json"}, {{"TUNE_PLUGIN_PATH", dir.path().string()}});
  EXPECT_EQ(nlohmann::json::parse(json.out)["failures"].size(), 3u);
}

class CliValidateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.path() / "model");
    dir_.Write("data.jsonl", "{}\n");
    file_ = dir_.Write("run.toml", R"(name = "demo"
[model]
plugin = "test_model"
path = "model"
[dataset]
plugin = "test_dataset"
path = "data.jsonl"
[adapter]
method = "test_lora"
rank = 8
[optimizer]
plugin = "test_optimizer"
[[metrics]]
plugin = "exact_match"
)");
    env_ = {{"TUNE_PLUGIN_PATH", (fs::path(TUNE_FIXTURE_DIR) / "config_kinds.so").string()}};
  }
  TempDir dir_;
  fs::path file_;
  std::map<std::string, std::string> env_;
};

TEST_F(CliValidateTest, PrintsTheResolvedConfigWithOverridesAndDefaults) {
  const auto result =
      RunTune({"validate", file_.string(), "adapter.rank=32", "train.device=cpu"}, env_);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("rank = 32"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("device = 'cpu'"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("steps = 200"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("[[metrics]]"), std::string::npos) << result.out;
}

TEST_F(CliValidateTest, RefusesAnUnknownKeyWithOneLineAndExitCodeOne) {
  const auto result = RunTune({"validate", file_.string(), "adapter.rnak=4"}, env_);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err,
            "error: argument 'adapter.rnak=4': unknown key 'adapter.rnak' (did you mean "
            "'adapter.rank'?)\n");
  EXPECT_EQ(result.out, "");
}

TEST_F(CliValidateTest, ThePrintedConfigValidatesAgainToTheSameText) {
  const auto first = RunTune({"validate", file_.string(), "adapter.rank=16"}, env_);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const fs::path again = dir_.Write("resolved.toml", first.out);
  const auto second = RunTune({"validate", again.string()}, env_);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.out, first.out);
}

TEST(Cli, GenerateContinuesAPromptTheSameWayForTheSameSeed) {
  TempDir dir;
  const fs::path model = testing::MakeTinyLlama(dir.path() / "model", {"--seed", "3"});
  const std::vector<std::string> args = {
      "generate", "--model", model.string(), "--max-tokens", "12", "--temperature", "0.9",
      "--seed",   "5",       "the cat"};
  const auto first = RunTune(args, kNoPluginPath);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_GT(first.out.size(), 1u);
  EXPECT_NE(first.err.find("tokens/s"), std::string::npos) << first.err;
  EXPECT_EQ(RunTune(args, kNoPluginPath).out, first.out);
}

TEST(Cli, GenerateStopsWhereTheModelsContextEndsWithANote) {
  TempDir dir;
  const fs::path model =
      testing::MakeTinyLlama(dir.path() / "model", {"--seed", "3", "--max-positions", "8"});
  const auto result = RunTune({"generate", "--model", model.string(), "--max-tokens", "12",
                               "--temperature", "0.9", "--seed", "5", "the cat"},
                              kNoPluginPath);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_GT(result.out.size(), 1u);
  EXPECT_EQ(testing::CountLinesStartingWith(
                result.err,
                "info: generation stopped where the model's context ends (8 tokens, the prompt's "
                "and the new ones); a shorter prompt leaves room for more"),
            1)
      << result.err;
  const auto too_long =
      RunTune({"generate", "--model", model.string(), std::string(200, 'x')}, kNoPluginPath);
  EXPECT_EQ(too_long.exit_code, 1);
  EXPECT_NE(too_long.err.find("tokens, longer than the model's context of 8; shorten it"),
            std::string::npos)
      << too_long.err;
}

TEST(Cli, GenerateRefusesAModelItCannotServeWithOneLine) {
  TempDir dir;
  const fs::path model = testing::MakeTinyLlama(dir.path() / "model", {"--seed", "3"});
  fs::remove(model / "config.json");
  const auto result = RunTune({"generate", "--model", model.string(), "hi"}, kNoPluginPath);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(CountLinesStartingWith(result.err, "error: "), 1) << result.err;
  EXPECT_EQ(
      result.err.rfind(
          "error: model plugin 'llama': " + (model / "config.json").string() + ": cannot read", 0),
      0u)
      << result.err;
}

TEST(Cli, MissingRunFileIsAUserError) {
  const auto result = RunTune({"validate", "/nonexistent/run.toml"}, kNoPluginPath);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err,
            "error: /nonexistent/run.toml: no such file; give the path of a run or sweep file "
            "(.toml)\n");
}

TEST(Cli, UnknownCommandExitsOneWithAHint) {
  const auto result = RunTune({"swep"}, kNoPluginPath);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(CountLinesStartingWith(result.err, "error: "), 1) << result.err;
  EXPECT_NE(result.err.find("tune --help"), std::string::npos);
}

TEST(Cli, AMistypedCommandGetsTheClosestOne) {
  auto result = RunTune({"trian", "run.toml"}, kNoPluginPath);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err,
            "error: unknown command 'trian' (did you mean 'train'?); see `tune --help`\n");
  result = RunTune({"adapters", "lss"}, kNoPluginPath);
  EXPECT_EQ(result.err,
            "error: unknown command 'lss' (did you mean 'ls'?); see `tune adapters --help`\n");
}

TEST(Cli, ACommandMissingItsArgumentsPointsToItsOwnHelp) {
  EXPECT_EQ(RunTune({"train"}, kNoPluginPath).err,
            "error: file is required; see `tune train --help`\n");
  EXPECT_EQ(RunTune({"registry"}, kNoPluginPath).err,
            "error: A subcommand is required; see `tune registry --help`\n");
}

TEST(Cli, GlobalFlagsWorkAfterTheCommand) {
  EXPECT_EQ(RunTune({"plugins", "-q"}, kNoPluginPath).exit_code, 0);
  EXPECT_EQ(RunTune({"plugins", "--verbose"}, kNoPluginPath).exit_code, 0);
}

TEST(Cli, HelpLeavesOutTheOptionsOnlyTuneSweepPasses) {
  const auto result = RunTune({"train", "--help"}, kNoPluginPath);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.out.find("--channel-fd"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("--resume"), std::string::npos) << result.out;
}

// Numbers are finite and in range, paths are not empty and of the right kind: one line each.
TEST(Cli, BadNumbersAndPathsInOptionsAreRefusedWithOneLine) {
  const TempDir dir;
  const std::string file = dir.Write("a-file", "x").string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"generate", "--model", dir.path().string(), "--temperature", "nan", "hi"},
       "error: --temperature: 'nan' is not a number in [0, 100]; see `tune generate --help`"},
      {{"registry", "gc", "--grace-hours", "inf"},
       "error: --grace-hours: 'inf' is not a number in [0, 1e+06]; see `tune registry gc --help`"},
      {{"train", "run.toml", "-o", ""},
       "error: --output: empty path; give a folder; see `tune train --help`"},
      {{"train", "run.toml", "-o", file},
       "error: --output: " + file + " is a file; give a folder; see `tune train --help`"},
      {{"tokenize", "--model", file, "hi"},
       "error: --model: " + file + " is a file (did you mean '" + dir.path().string() +
           "'?); give the model's folder (the one with config.json); see `tune tokenize --help`"},
      {{"adapters", "ls", "--registry", ""},
       "error: --registry: empty path; give a folder; see `tune adapters ls --help`"},
      {{"registry", "backup", file},
       "error: dir: " + file + " is a file; give a folder; see `tune registry backup --help`"},
  };
  for (const auto& [args, expected] : cases) {
    const auto result = RunTune(args, kNoPluginPath);
    EXPECT_EQ(result.exit_code, 1) << args[0];
    EXPECT_EQ(result.err, expected + "\n");
  }
}

TEST(Cli, EveryCommandHasHelp) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--help"},
                                               {"plugins", "--help"},
                                               {"validate", "--help"},
                                               {"generate", "--help"}}) {
    const auto result = RunTune(args, kNoPluginPath);
    EXPECT_EQ(result.exit_code, 0) << args[0];
    EXPECT_NE(result.out.find("Usage:"), std::string::npos) << result.out;
  }
}

TEST(Cli, TokenizePrintsTheIdsAndPiecesOfTheFoldersTokenizer) {
  TempDir dir;
  const auto made =
      testing::RunCommand({testing::kPython, TUNE_SOURCE_DIR "/tests/tools/make_tokenizer_json.py",
                           dir.path().string(), "--style", "llama3"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string text = "Hi<|eot_id|>";
  const auto as_json =
      RunTune({"tokenize", "--model", dir.path().string(), "--json", text}, kNoPluginPath);
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  const nlohmann::json parsed = nlohmann::json::parse(as_json.out);
  const auto pieces = parsed["pieces"].get<std::vector<std::string>>();
  ASSERT_EQ(parsed["ids"].size(), pieces.size());
  EXPECT_EQ(pieces, (std::vector<std::string>{"H", "i", "<|eot_id|>"}));

  const auto table = RunTune({"tokenize", "--model", dir.path().string(), text}, kNoPluginPath);
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(CountLinesStartingWith(table.out, parsed["ids"][2].dump() + "\t<|eot_id|>"), 1)
      << table.out;
  EXPECT_NE(table.out.find("3 tokens; the model's sequences start with <|begin_of_text|>"),
            std::string::npos)
      << table.out;

  TempDir empty;
  const auto refused = RunTune({"tokenize", "--model", empty.path().string(), text}, kNoPluginPath);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(CountLinesStartingWith(refused.err, "error: "), 1) << refused.err;
  EXPECT_NE(refused.err.find("has no tokenizer file tune can read"), std::string::npos);
}

}  // namespace
}  // namespace tune

// Fine-tuning on folders laid out exactly as the Llama 3.1 8B Instruct, Qwen2.5 7B Instruct and
// Mistral 7B Instruct v0.3 downloads are (config.json, sharded safetensors with an index,
// tokenizer.json, tokenizer_config.json with the published chat template, generation_config.json;
// Mistral's tokenizer.model too), with small random weights: conversations rendered with the
// model's own template, every assistant turn learned up to the template's end of turn.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "config/run_config.h"
#include "plugin_host/plugin_host.h"
#include "support/builtin_plugins.h"
#include "support/test_support.h"
#include "train/examples.h"
#include "tune/tokenizer.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::RunCommand;
using testing::RunTune;
using testing::TempDir;

struct Layout {
  std::string name;
  std::string model_type;         // make_tiny_llama --model-type
  std::string tokenizer_style;    // make_tokenizer_json --style
  std::string chat_template;      // tests/data/chat_templates/<name>.jinja
  json special_tokens;            // tokenizer_config.json's bos_token, eos_token
  std::vector<std::string> ends;  // generation_config.json's eos_token_id, by token
  std::string turn_end;           // what the template writes after an assistant message
};

// gtest prints parameters in test names; the layout's name is the readable part.
void PrintTo(const Layout& layout, std::ostream* os) { *os << layout.name; }

const std::vector<Layout>& Layouts() {
  static const std::vector<Layout> layouts = {
      {"llama-3.1-8b-instruct",
       "llama",
       "llama3",
       "llama-3.1",
       {{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"}},
       {"<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"},
       "<|eot_id|>"},
      {"qwen2.5-7b-instruct",
       "qwen2",
       "qwen2",
       "qwen2.5",
       {{"bos_token", nullptr}, {"eos_token", "<|im_end|>"}, {"pad_token", "<|endoftext|>"}},
       {"<|im_end|>", "<|endoftext|>"},
       "<|im_end|>\n"},
      {"mistral-7b-instruct-v0.3",
       "mistral",
       "mistral",
       "mistral-v0.3",
       {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}},
       {"</s>"},
       "</s>"},
  };
  return layouts;
}

std::string ReadText(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class PublishedLayout : public testing::WithBuiltinPlugins<::testing::TestWithParam<Layout>> {
 protected:
  static void SetUpTestSuite() {
    WithBuiltinPlugins::SetUpTestSuite();
    // Two-turn conversations with a system message, and one-turn ones.
    std::string rows;
    for (int i = 0; i < 24; ++i) {
      const int a = (i * 7) % 20, b = (i * 3) % 20;
      json messages = json::array();
      if (i % 2 == 0) messages.push_back({{"role", "system"}, {"content", "Answer with digits."}});
      messages.push_back(
          {{"role", "user"}, {"content", "add " + std::to_string(a) + " " + std::to_string(b)}});
      messages.push_back({{"role", "assistant"}, {"content", std::to_string(a + b)}});
      if (i % 3 == 0) {
        messages.push_back({{"role", "user"}, {"content", "and double it?"}});
        messages.push_back({{"role", "assistant"}, {"content", std::to_string(2 * (a + b))}});
      }
      rows += json{{"messages", messages}}.dump() + "\n";
    }
    dir_->Write("chat.jsonl", rows);
  }

  // The folder of `layout`, made once.
  static fs::path Folder(const Layout& layout) {
    const fs::path folder = dir_->path() / layout.name;
    if (fs::exists(folder / "generation_config.json")) return folder;
    testing::MakeTinyLlama(
        folder, {"--seed", "9", "--model-type", layout.model_type, "--vocab", "700", "--shards",
                 "2", "--max-positions", "1024", "--no-tokenizer"});
    if (layout.tokenizer_style == "mistral") {  // v0.3 ships tokenizer.model beside tokenizer.json
      const fs::path spm = testing::MakeTinyLlama(dir_->path() / "spm", {"--seed", "9"});
      fs::copy_file(spm / "tokenizer.model", folder / "tokenizer.model");
    }
    const auto made =
        RunCommand({testing::kPython, TUNE_SOURCE_DIR "/tests/tools/make_tokenizer_json.py",
                    folder.string(), "--style", layout.tokenizer_style});
    EXPECT_EQ(made.exit_code, 0) << made.err;
    json config = json::parse(std::ifstream(folder / "tokenizer_config.json"));
    config.update(layout.special_tokens);
    config["chat_template"] = ReadText(fs::path(TUNE_SOURCE_DIR) / "tests/data/chat_templates" /
                                       (layout.chat_template + ".jinja"));
    std::ofstream(folder / "tokenizer_config.json") << config.dump(2);
    const auto tokenizer = host_->LoadTokenizer(folder);
    json ends = json::array();
    for (const std::string& end : layout.ends) ends.push_back(tokenizer->Encode(end).at(0));
    std::ofstream(folder / "generation_config.json") << json{
        {"eos_token_id", ends},
        {"do_sample", true},
        {"temperature", 0.6},
        {"top_p", 0.9}}.dump();
    return folder;
  }
};

TEST_P(PublishedLayout, EveryAssistantTurnIsLearnedUpToTheTemplatesEndOfTurn) {
  const Layout& layout = GetParam();
  const fs::path folder = Folder(layout);
  const auto tokenizer = host_->LoadTokenizer(folder);
  DatasetConfig config;
  config.plugin = "chat";
  config.path = dir_->path() / "chat.jsonl";
  config.options = PluginHost::DefaultOptions(host_->Require(PluginKind::kDataset, "chat"));
  const PreparedData data = PrepareData(config, *host_, *tokenizer, folder, 1024, false);
  ASSERT_EQ(data.train.size(), 24u);
  for (size_t i = 0; i < data.train.size(); ++i) {
    const TokenizedExample& example = data.train[i];
    const int a = (static_cast<int>(i) * 7) % 20, b = (static_cast<int>(i) * 3) % 20;
    std::vector<std::string> answers = {std::to_string(a + b)};
    if (i % 3 == 0) answers.push_back(std::to_string(2 * (a + b)));
    // Mistral v0.3 moves the system message to the last user turn, so earlier turns render
    // differently once a later one follows: only the last turn is learned there.
    if (layout.tokenizer_style == "mistral" && i % 6 == 0) answers.erase(answers.begin());
    ASSERT_EQ(example.trained.size(), answers.size()) << "example " << i;
    for (size_t turn = 0; turn < answers.size(); ++turn) {
      const auto [begin, end] = example.trained[turn];
      const std::vector<int32_t> learned(example.ids.begin() + begin, example.ids.begin() + end);
      // Mistral's template puts a space before the answer, inside the assistant's span.
      const std::string prefix = layout.tokenizer_style == "mistral" ? " " : "";
      EXPECT_EQ(learned, tokenizer->Encode(prefix + answers[turn] + layout.turn_end))
          << layout.name << " example " << i << " turn " << turn;
    }
    // Generation metrics compare the last answer; BOS comes once, from the template.
    EXPECT_EQ(data.train_text[i].completion, answers.back());
    if (tokenizer->bos_id() >= 0) {
      EXPECT_EQ(example.ids.front(), tokenizer->bos_id());
      EXPECT_NE(example.ids.at(1), tokenizer->bos_id());
    }
  }
}

// A template past a limit is the model folder's fault, the same on every row: the run stops
// naming the template, even where bad rows are skipped.
TEST_P(PublishedLayout, ATemplatePastALimitStopsTheRunInsteadOfBeingABadRow) {
  const fs::path folder = dir_->path() / (GetParam().name + "-hostile");
  fs::copy(Folder(GetParam()), folder, fs::copy_options::recursive);
  std::ofstream(folder / "chat_template.jinja")
      << "{% set ns = namespace(x=[]) %}{% for i in range(300) %}{% set ns.x = [ns.x] %}"
         "{% endfor %}\n{{ ns.x }}{% for m in messages %}{{ m.content }}{% endfor %}";
  const auto tokenizer = host_->LoadTokenizer(folder);
  DatasetConfig config;
  config.plugin = "chat";
  config.path = dir_->path() / "chat.jsonl";
  config.options = PluginHost::DefaultOptions(host_->Require(PluginKind::kDataset, "chat"));
  config.skip_bad_rows = true;
  try {
    PrepareData(config, *host_, *tokenizer, folder, 1024, false);
    ADD_FAILURE() << "prepared";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(
                  (folder / "chat_template.jinja").string() +
                      ", line 2: a value nested deeper than 256 levels is printed (tune's limit "
                      "for a chat template); the template is broken or hostile: fix it, or render "
                      "with a built-in template (dataset.template = \"chatml\", \"llama2\" or "
                      "\"zephyr\")",
                  0),
              0u)
        << e.what();
  }
}

TEST_P(PublishedLayout, TrainsALoraAdapterAndRegistersIt) {
  const Layout& layout = GetParam();
  const fs::path folder = Folder(layout);
  TempDir run;
  const fs::path file = run.Write(
      "run.toml", "name = \"chat\"\n[model]\npath = \"" + folder.string() +
                      "\"\n[dataset]\nplugin = \"chat\"\npath = \"" +
                      (dir_->path() / "chat.jsonl").string() +
                      "\"\neval_fraction = 0.2\n"
                      "[adapter]\nmethod = \"lora\"\nrank = 4\n[optimizer]\nlr = 5e-3\n"
                      "[train]\nsteps = 4\nbatch_size = 2\nseq_len = 512\neval_max_new_tokens = 3\n"
                      "[[metrics]]\nplugin = \"exact_match\"\n[registry]\npath = \"" +
                      (run.path() / "registry").string() + "\"\n");
  const auto result = RunTune({"train", file.string(), "-o", (run.path() / "out").string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("registered: chat:v1"), std::string::npos) << result.out;
  const json summary = json::parse(std::ifstream(run.path() / "out/summary.json"));
  EXPECT_TRUE(summary["scores"].contains("exact_match"));
}

INSTANTIATE_TEST_SUITE_P(Downloads, PublishedLayout, ::testing::ValuesIn(Layouts()),
                         [](const ::testing::TestParamInfo<Layout>& info) {
                           std::string name;
                           for (const char c : info.param.name) {
                             name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace tune

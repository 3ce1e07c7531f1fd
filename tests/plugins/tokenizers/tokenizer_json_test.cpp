// The tokenizer-json plugin against @huggingface/tokenizers (pure JavaScript, tests/tools/js) on
// tokenizer.json files laid out as Llama 3, Qwen2, GPT-2, Mistral v0.3 and Llama 2 publish them
// (tests/tools/make_tokenizer_json.py), and its refusals of what it cannot read.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "plugin_host/plugin_host.h"
#include "support/builtin_plugins.h"
#include "support/test_support.h"
#include "tokenizers/tokenizer_json/pipeline.h"
#include "tune/tokenizer.h"
#include "util/json_file.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::RunCommand;
using testing::TempDir;

// Multilingual text with emoji, CJK, digits, contractions (any case), runs of spaces and
// newlines, a decomposed accent that NFC composes, special tokens inline, and edge cases.
const std::vector<std::string>& Texts() {
  static const std::vector<std::string> texts = {
      "Hello world",
      "It's 12345 o'clock!  Two  spaces\n\nnew   lines\t tab",
      "IT'S WE'VE THEY'LL i'M",
      "Emoji \xF0\x9F\x98\x80\xF0\x9F\x8E\x89 and \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB CJK "
      "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C \xE6\x97\xA5\xE6\x9C\xAC\xE8"
      "\xAA\x9E",
      "Cafe\xCC\x81 vs caf\xC3\xA9, na\xC3\xAFve, \xC3\x9C"
      "ber, \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2"
      "\xD0\xB5\xD1\x82",
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
      "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi",
      "<s>[INST] hello [/INST] sure</s>",
      "  leading and trailing  ",
      "\r\n\r\nwindows lines\r\n",
      "digits 3.14159 2026-11-30 $19.99 1000000",
      "x",
      "",
      "\xC7\x85 \xC7\x84 x\xC2\xB2\xC2\xB3 \xE2\x91\xA0 \xEF\xAC\x81",
      "def f(x):\n    return x ** 2  # square\n",
  };
  return texts;
}

class TokenizerJsonTest
    : public testing::WithBuiltinPlugins<::testing::TestWithParam<std::string>> {
 protected:
  // A folder with the tokenizer files of `style` (make_tokenizer_json.py).
  static fs::path MakeFolder(const std::string& style, const fs::path& where) {
    const auto made =
        RunCommand({testing::kPython, TUNE_SOURCE_DIR "/tests/tools/make_tokenizer_json.py",
                    where.string(), "--style", style});
    EXPECT_EQ(made.exit_code, 0) << made.err;
    return where;
  }

  // What @huggingface/tokenizers makes of Texts() under `folder`.
  static json Reference(const fs::path& folder) {
    const fs::path texts = dir_->Write("texts.json", json(Texts()).dump());
    const auto result = RunCommand({TUNE_NODE, TUNE_SOURCE_DIR "/tests/tools/js/tokenize.mjs",
                                    folder.string(), texts.string()});
    EXPECT_EQ(result.exit_code, 0)
        << result.err << "(the references are installed by scripts/install-deps.sh)";
    return json::parse(result.out);
  }
};

TEST_P(TokenizerJsonTest, EncodesAndDecodesAsHuggingFaceTokenizers) {
  const fs::path folder = MakeFolder(GetParam(), dir_->path() / GetParam());
  const json expected = Reference(folder);
  const std::shared_ptr<const Tokenizer> tokenizer = host_->LoadTokenizer(folder);
  for (size_t i = 0; i < Texts().size(); ++i) {
    const std::string& text = Texts()[i];
    const std::vector<int32_t> ids = tokenizer->Encode(text);
    EXPECT_EQ(ids, expected["ids"][i].get<std::vector<int32_t>>()) << "text: " << json(text);
    // What the model sees: BOS (when the post-processor adds one) and the ids.
    std::vector<int32_t> with_special = ids;
    if (tokenizer->bos_id() >= 0) with_special.insert(with_special.begin(), tokenizer->bos_id());
    EXPECT_EQ(with_special, expected["ids_with_special"][i].get<std::vector<int32_t>>())
        << "text: " << json(text);
    EXPECT_EQ(tokenizer->Decode(ids), expected["decoded"][i].get<std::string>())
        << "text: " << json(text);
  }
}

INSTANTIATE_TEST_SUITE_P(PublishedLayouts, TokenizerJsonTest,
                         ::testing::Values("llama3", "qwen2", "gpt2", "mistral", "llama2"));

// Rewrites `folder`'s tokenizer.json with `edit` applied.
void EditTokenizerJson(const fs::path& folder, const std::function<void(json&)>& edit) {
  json doc = json::parse(std::ifstream(folder / "tokenizer.json"));
  edit(doc);
  std::ofstream(folder / "tokenizer.json") << doc.dump();
}

class TokenizerJsonRefusal : public TokenizerJsonTest {};

TEST_F(TokenizerJsonRefusal, NamesTheFileAndKeyOfWhatItCannotRead) {
  struct Case {
    std::string what;
    std::function<void(json&)> edit;
    std::string expected;  // in the message, beside the file's path
  };
  const std::vector<Case> cases = {
      {"unigram", [](json& d) { d["model"]["type"] = "Unigram"; }, "model.type 'Unigram'"},
      {"wordpiece prefix", [](json& d) { d["model"]["continuing_subword_prefix"] = "##"; },
       "model.continuing_subword_prefix"},
      {"bad merge", [](json& d) { d["model"]["merges"][0] = "nope nada"; }, "model.merges[0]"},
      {"pre-tokenizer",
       [](json& d) {
         d["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Digits"}};
       },
       "pre_tokenizer.pretokenizers[0]: pre_tokenizer type 'Digits'"},
      {"regex",
       [](json& d) { d["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(?<x"; },
       "pre_tokenizer.pretokenizers[0].pattern: the regex does not compile"},
      {"normalizer",
       [](json& d) {
         d["normalizer"] = {{"type", "BertNormalizer"}};
       },
       "normalizer type 'BertNormalizer'"},
      {"decoder",
       [](json& d) {
         d["decoder"] = {{"type", "WordPiece"}};
       },
       "decoder type 'WordPiece'"},
      {"added token", [](json& d) { d["added_tokens"][0].erase("content"); }, "added_tokens[0]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const fs::path folder = MakeFolder("llama3", dir_->path() / ("refuse-" + c.what));
    EditTokenizerJson(folder, c.edit);
    try {
      host_->LoadTokenizer(folder);
      ADD_FAILURE() << "loaded";
    } catch (const UserError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find((folder / "tokenizer.json").string()), std::string::npos) << message;
      EXPECT_NE(message.find(c.expected), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
  const fs::path broken = MakeFolder("qwen2", dir_->path() / "broken-json");
  std::ofstream(broken / "tokenizer.json") << "{\"model\": ";
  EXPECT_THROW(
      {
        try {
          host_->LoadTokenizer(broken);
        } catch (const UserError& e) {
          EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
          throw;
        }
      },
      UserError);
}

// `folder`'s tokenizer.json with `key` set to `text`, written as it is (a document nested too
// deep for nlohmann::json to dump).
void SetRawJson(const fs::path& folder, const std::string& key, const std::string& text) {
  std::string doc;
  EditTokenizerJson(folder, [&](json& d) { d[key] = "@@raw@@"; });
  {
    std::ifstream in(folder / "tokenizer.json");
    doc.assign(std::istreambuf_iterator<char>(in), {});
  }
  doc.replace(doc.find("\"@@raw@@\""), 9, text);
  std::ofstream(folder / "tokenizer.json") << doc;
}

// `leaf` inside `levels` Sequences whose steps are at `list_key`.
std::string Sequences(int levels, const std::string& list_key, const std::string& leaf) {
  std::string text;
  for (int i = 0; i < levels; ++i) text += R"({"type": "Sequence", ")" + list_key + R"(": [)";
  text += leaf;
  for (int i = 0; i < levels; ++i) text += "]}";
  return text;
}

// What loading `folder` throws, after the host's "tokenizer plugin 'tokenizer-json': ", or ""
// when it loads.
std::string RefusalOf(PluginHost& host, const fs::path& folder) {
  const std::string prefix = "tokenizer plugin 'tokenizer-json': ";
  try {
    host.LoadTokenizer(folder);
  } catch (const UserError& e) {
    const std::string message = e.what();
    return message.starts_with(prefix) ? message.substr(prefix.size()) : message;
  }
  return "";
}

struct Step {
  std::string key, list_key, leaf;
};
const std::vector<Step>& PipelineSteps() {
  static const std::vector<Step> steps = {
      {"normalizer", "normalizers", R"({"type": "NFC"})"},
      {"pre_tokenizer", "pretokenizers", R"({"type": "ByteLevel", "add_prefix_space": false})"},
      {"decoder", "decoders", R"({"type": "ByteLevel"})"},
      {"post_processor", "processors", R"({"type": "ByteLevel"})"}};
  return steps;
}

TEST_F(TokenizerJsonRefusal, RefusesPipelineNestedPastTheLimit) {
  for (const Step& step : PipelineSteps()) {
    SCOPED_TRACE(step.key);
    const fs::path folder = MakeFolder("llama3", dir_->path() / ("nested-" + step.key));
    const fs::path file = folder / "tokenizer.json";
    SetRawJson(folder, step.key,
               Sequences(tokenizer_json::kMaxSequenceDepth, step.list_key, step.leaf));
    EXPECT_EQ(RefusalOf(*host_, folder), "");
    SetRawJson(folder, step.key,
               Sequences(tokenizer_json::kMaxSequenceDepth + 1, step.list_key, step.leaf));
    EXPECT_EQ(RefusalOf(*host_, folder),
              file.string() + ": " + step.key + ": Sequence steps nested deeper than " +
                  std::to_string(tokenizer_json::kMaxSequenceDepth) +
                  " levels (tune's limit; published tokenizer.json files nest one); the file is "
                  "damaged or not a real tokenizer");
  }
}

// 50,000 levels: 1 MB that crashed `tune tokenize` (the stack), and a few thousand cost gigabytes.
TEST_F(TokenizerJsonRefusal, RefusesPipelineNestedTensOfThousandsDeepWithoutCrashing) {
  for (const Step& step : PipelineSteps()) {
    SCOPED_TRACE(step.key);
    const fs::path folder = MakeFolder("llama3", dir_->path() / ("deep-" + step.key));
    SetRawJson(folder, step.key, Sequences(50000, step.list_key, step.leaf));
    const std::string message = RefusalOf(*host_, folder);
    EXPECT_EQ(message.rfind((folder / "tokenizer.json").string() + ":1:", 0), 0u) << message;
    EXPECT_NE(message.find("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels"),
              std::string::npos)
        << message;
  }
}

TEST_F(TokenizerJsonRefusal, RefusesIdsPastTheTokensTheFileLists) {
  const fs::path folder = MakeFolder("llama3", dir_->path() / "big-id");
  const fs::path file = folder / "tokenizer.json";
  json doc = json::parse(std::ifstream(file));
  // The file lists this many tokens with the one added below; ids run from 0 to one less.
  const int64_t listed = doc["model"]["vocab"].size() + doc["added_tokens"].size() + 1;
  EditTokenizerJson(folder, [&](json& d) { d["model"]["vocab"]["zzz"] = listed - 1; });
  EXPECT_EQ(RefusalOf(*host_, folder), "");
  EditTokenizerJson(folder, [&](json& d) { d["model"]["vocab"]["zzz"] = listed; });
  EXPECT_EQ(RefusalOf(*host_, folder),
            file.string() + ": model.vocab[\"zzz\"] = " + std::to_string(listed) +
                " is past the last id the file can have, " + std::to_string(listed - 1) +
                " (ids count from 0 up to the number of tokens in model.vocab and added_tokens)");
  EditTokenizerJson(folder, [&](json& d) {
    d["model"]["vocab"].erase("zzz");
    d["added_tokens"][0]["id"] = 300000000;
  });
  const std::string message = RefusalOf(*host_, folder);
  EXPECT_EQ(message.rfind(file.string() + ": added_tokens[0].id 300000000 is not from 0 to ", 0),
            0u)
      << message;
}

TEST_F(TokenizerJsonRefusal, RefusesTwoTokensWithOneIdNamingBoth) {
  const fs::path folder = MakeFolder("llama3", dir_->path() / "same-id");
  const fs::path file = folder / "tokenizer.json";
  json doc = json::parse(std::ifstream(file));
  const int64_t a = doc["model"]["vocab"]["a"].get<int64_t>();
  EditTokenizerJson(folder, [&](json& d) { d["model"]["vocab"]["zzz"] = a; });
  EXPECT_EQ(RefusalOf(*host_, folder),
            file.string() + ": model.vocab gives id " + std::to_string(a) +
                " to both \"a\" and \"zzz\"; an id is one token (the file is damaged)");
  EditTokenizerJson(folder, [&](json& d) {
    d["model"]["vocab"].erase("zzz");
    d["added_tokens"][1]["id"] = a;
  });
  EXPECT_EQ(RefusalOf(*host_, folder),
            file.string() + ": added_tokens[1] gives id " + std::to_string(a) + " to \"" +
                doc["added_tokens"][1]["content"].get<std::string>() +
                "\", which is already \"a\"'s; an id is one token (the file is damaged)");
  EditTokenizerJson(folder, [&](json& d) {
    d["added_tokens"][1]["id"] = doc["added_tokens"][1]["id"];
    d["added_tokens"][2]["id"] = doc["added_tokens"][0]["id"];
  });
  EXPECT_NE(RefusalOf(*host_, folder).find(": added_tokens[2] gives id "), std::string::npos);
}

TEST_F(TokenizerJsonRefusal, RefusesBosAndEosIdsOutsideTheVocabulary) {
  const fs::path folder = MakeFolder("llama3", dir_->path() / "special-ids");
  const std::string ids = " = 300000000 is not one of the tokenizer's ids (0 to " +
                          std::to_string(host_->LoadTokenizer(folder)->vocab_size() - 1) + ")";
  EditTokenizerJson(folder, [](json& d) {
    d["post_processor"]["processors"][1]["special_tokens"]["<|begin_of_text|>"]["ids"][0] =
        300000000;
  });
  EXPECT_EQ(RefusalOf(*host_, folder),
            (folder / "tokenizer.json").string() +
                ": post_processor.processors[1].special_tokens[\"<|begin_of_text|>\"].ids[0]" +
                ids);
  EditTokenizerJson(folder, [](json& d) { d["post_processor"] = nullptr; });
  fs::remove(folder / "tokenizer_config.json");  // EOS comes from config.json then
  std::ofstream(folder / "config.json") << R"({"eos_token_id": [300000000, 1]})";
  EXPECT_EQ(RefusalOf(*host_, folder),
            (folder / "config.json").string() + ": eos_token_id[0]" + ids);
}

TEST_F(TokenizerJsonRefusal, SaysWhatIsWrongWithAFileThatIsNoTokenizer) {
  const fs::path folder = MakeFolder("llama3", dir_->path() / "not-a-tokenizer");
  const std::string file = (folder / "tokenizer.json").string();
  for (const auto& [text, expected] : std::vector<std::pair<std::string, std::string>>{
           {"[1, 2]", file + ": is a JSON array, not a tokenizer (an object with a \"model\")"},
           {"null", file + ": is null, not a tokenizer (an object with a \"model\")"},
           {"{}", file + ": \"model\" is missing; a tokenizer.json needs the object"},
           {R"({"model": "BPE"})", file + ": \"model\" is a JSON string; a tokenizer.json"},
           {R"({"model": {"vocab": {"a": 0}, "fuse_unk": "yes"}})",
            file + ": not a tokenizer.json tune can read (type must be boolean, but is string)"}}) {
    SCOPED_TRACE(text);
    std::ofstream(folder / "tokenizer.json") << text;
    const std::string message = RefusalOf(*host_, folder);
    EXPECT_EQ(message.rfind(expected, 0), 0u) << message;
    EXPECT_EQ(message.find("json.exception"), std::string::npos) << message;
  }
}

TEST_F(TokenizerJsonRefusal, AFolderWithoutTokenizerFilesListsTheFilesTuneReads) {
  TempDir empty;
  try {
    host_->LoadTokenizer(empty.path());
    ADD_FAILURE() << "loaded";
  } catch (const UserError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("tokenizer.json (tokenizer plugin 'tokenizer-json')"), std::string::npos)
        << message;
    EXPECT_NE(message.find("tokenizer.model (tokenizer plugin 'sentencepiece')"), std::string::npos)
        << message;
  }
}

// Mistral v0.3 folders ship both files; transformers reads tokenizer.json, and so does tune.
TEST_F(TokenizerJsonRefusal, TokenizerJsonIsPreferredOverTokenizerModel) {
  const fs::path folder = MakeFolder("mistral", dir_->path() / "both");
  testing::MakeTinyLlama(dir_->path() / "spm", {"--seed", "1"});
  fs::copy_file(dir_->path() / "spm" / "tokenizer.model", folder / "tokenizer.model");
  const auto tokenizer = host_->LoadTokenizer(folder);
  const json reference = Reference(folder);
  EXPECT_EQ(tokenizer->Encode(Texts()[0]), reference["ids"][0].get<std::vector<int32_t>>());
  fs::remove(folder / "tokenizer.json");
  EXPECT_EQ(host_->LoadTokenizer(folder)->vocab_size(),
            host_->LoadTokenizer(dir_->path() / "spm")->vocab_size());
}

}  // namespace
}  // namespace tune

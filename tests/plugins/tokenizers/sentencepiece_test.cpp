// The sentencepiece tokenizer plugin against Python's sentencepiece (python3-sentencepiece) on
// models it trains: BPE and unigram, the identity and NFKC rules (nmt_nfkc, nfkc: the model's
// precompiled character map), with and without byte fallback and extra-whitespace removal, and
// with user-defined symbols.
#include <fstream>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "plugin_host/plugin_host.h"
#include "support/builtin_plugins.h"
#include "support/test_support.h"
#include "tune/tokenizer.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::RunCommand;
using testing::TempDir;

struct Model {
  std::string type;
  std::string normalization;
  bool byte_fallback;
  bool remove_extra_whitespaces;
};

void PrintTo(const Model& m, std::ostream* os) {
  *os << m.type << "_" << m.normalization << (m.byte_fallback ? "_bytes" : "")
      << (m.remove_extra_whitespaces ? "_trim" : "");
}

const std::vector<std::string>& Texts() {
  static const std::vector<std::string> texts = {
      "hello world",
      "  two  spaces  and\ttab\nnewline  ",
      "Full width \xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3, ligature \xEF\xAC\x81ne, circled "
      "\xE2\x91\xA0\xE2\x91\xA1, \xE2\x84\x83 and \xE2\x85\xAB",
      "Emoji \xF0\x9F\x98\x80 CJK \xE4\xBD\xA0\xE5\xA5\xBD \xD0\x9F\xD1\x80\xD0\xB8 caf\xC3\xA9 "
      "Cafe\xCC\x81",
      "digits 1234567 and 3.14! <sep> kept <sep>whole",
      "",
      "   ",
      "x",
  };
  return texts;
}

class SentencepieceTest : public testing::WithBuiltinPlugins<::testing::TestWithParam<Model>> {
 protected:
};

TEST_P(SentencepieceTest, EncodesAndDecodesAsSentencepieceDoes) {
  const Model& m = GetParam();
  const fs::path folder = dir_->path() / ::testing::PrintToString(m);
  std::vector<std::string> make = {
      testing::kPython, TUNE_SOURCE_DIR "/tests/tools/make_sentencepiece.py",
      folder.string(),  "--model-type",
      m.type,           "--normalization",
      m.normalization,  "--user-defined",
      "<sep>"};
  if (m.byte_fallback) make.push_back("--byte-fallback");
  if (m.remove_extra_whitespaces) make.push_back("--remove-extra-whitespaces");
  const auto made = RunCommand(make);
  ASSERT_EQ(made.exit_code, 0) << made.err;

  const fs::path texts = dir_->Write("texts.json", json(Texts()).dump());
  const std::string script =
      "import json, sys, sentencepiece as spm\n"
      "sp = spm.SentencePieceProcessor(model_file=sys.argv[1])\n"
      "ids = [sp.encode(t) for t in json.load(open(sys.argv[2]))]\n"
      "print(json.dumps({'ids': ids, 'decoded': [sp.decode(i) for i in ids]}))\n";
  const auto reference = RunCommand(
      {testing::kPython, "-c", script, (folder / "tokenizer.model").string(), texts.string()});
  ASSERT_EQ(reference.exit_code, 0) << reference.err;
  const json expected = json::parse(reference.out);

  const auto tokenizer = host_->LoadTokenizer(folder);
  for (size_t i = 0; i < Texts().size(); ++i) {
    const std::vector<int32_t> ids = tokenizer->Encode(Texts()[i]);
    EXPECT_EQ(ids, expected["ids"][i].get<std::vector<int32_t>>()) << "text: " << json(Texts()[i]);
    EXPECT_EQ(tokenizer->Decode(ids), expected["decoded"][i].get<std::string>())
        << "text: " << json(Texts()[i]);
  }
}

class SentencepieceFile : public testing::WithBuiltinPlugins<::testing::Test> {};

// A download cut short is named as one, not as an unsupported or malformed model.
TEST_F(SentencepieceFile, ATruncatedModelSaysItIsTruncated) {
  const fs::path whole = dir_->path() / "whole";
  const auto made =
      RunCommand({testing::kPython, TUNE_SOURCE_DIR "/tests/tools/make_sentencepiece.py",
                  whole.string(), "--model-type", "bpe", "--normalization", "identity"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  std::ifstream in(whole / "tokenizer.model", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const fs::path cut = dir_->Write("cut/tokenizer.model", bytes.substr(0, bytes.size() / 2));
  try {
    host_->LoadTokenizer(cut.parent_path());
    FAIL() << "a truncated tokenizer.model loaded";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(cut.string() + ": the file ends inside a record (" +
                                         std::to_string(bytes.size() / 2) +
                                         " bytes): it is truncated; copy tokenizer.model again"),
              std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(TrainedModels, SentencepieceTest,
                         ::testing::Values(Model{"bpe", "identity", true, false},
                                           Model{"bpe", "nmt_nfkc", false, true},
                                           Model{"bpe", "nfkc", true, true},
                                           Model{"unigram", "nmt_nfkc", false, true},
                                           Model{"unigram", "nmt_nfkc", true, true},
                                           Model{"unigram", "identity", true, false},
                                           Model{"unigram", "nfkc", false, false}),
                         [](const ::testing::TestParamInfo<Model>& info) {
                           return ::testing::PrintToString(info.param);
                         });

}  // namespace
}  // namespace tune

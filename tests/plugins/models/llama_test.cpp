// The llama plugin against an independent Python reference (tests/tools/llama_reference.py,
// written from the published equations with Debian's python3-torch) on small random checkpoints
// that tests/tools/make_tiny_llama.py writes in Hugging Face layout.
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "generate/generate.h"
#include "plugin_host/plugin_host.h"
#include "support/test_support.h"
#include "tune/model.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::kPython;
using testing::RunCommand;
using testing::TempDir;

const fs::path kTools = fs::path(TUNE_SOURCE_DIR) / "tests" / "tools";

fs::path MakeCheckpoint(const TempDir& dir, const std::string& name,
                        const std::vector<std::string>& flags) {
  return testing::MakeTinyLlama(dir.path() / name, flags);
}

struct Reference {
  torch::Tensor logits;         // [tokens, vocab]
  std::vector<int32_t> greedy;  // ends with EOS when generation stopped there
  std::vector<int32_t> ids;     // the input ids (with BOS when made from a prompt)
};

// Runs llama_reference.py on `model` with `input` ("--ids" "1,2,3" or "--prompt" "text").
Reference RunReference(const fs::path& model, const std::vector<std::string>& input, int greedy) {
  TempDir out;
  std::vector<std::string> argv = {kPython, (kTools / "llama_reference.py").string(),
                                   model.string()};
  argv.insert(argv.end(), input.begin(), input.end());
  const fs::path logits_file = out.path() / "logits.bin";
  const fs::path json_file = out.path() / "out.json";
  argv.insert(argv.end(), {"--logits-out", logits_file.string(), "--json-out", json_file.string(),
                           "--greedy", std::to_string(greedy)});
  const auto result = RunCommand(argv);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json json = nlohmann::json::parse(std::ifstream(json_file));
  Reference reference;
  const auto shape = json.at("logits_shape").get<std::vector<int64_t>>();
  std::ifstream in(logits_file, std::ios::binary);
  std::vector<float> values(static_cast<size_t>(shape.at(0) * shape.at(1)));
  in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(values.size() * 4));
  reference.logits = torch::from_blob(values.data(), {shape[0], shape[1]}, torch::kFloat).clone();
  reference.greedy = json.at("greedy").get<std::vector<int32_t>>();
  reference.ids = json.at("input_ids").get<std::vector<int32_t>>();
  return reference;
}

class LlamaPlugin : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    host_ = new PluginHost();
    host_->Load({TUNE_BUILTIN_PLUGIN_DIR});
  }
  static void TearDownTestSuite() { delete host_; }

  static std::unique_ptr<Model> Load(const fs::path& dir, const std::string& dtype = "float32") {
    Options options = PluginHost::DefaultOptions(host_->Require(PluginKind::kModel, "llama"));
    options.Set("dtype", dtype);
    return host_->LoadModel("llama", dir, options);
  }

  static torch::Tensor Logits(Model& model, const std::vector<int64_t>& ids) {
    torch::NoGradGuard no_grad;
    return model.Forward(torch::tensor(ids).unsqueeze(0), nullptr).squeeze(0);
  }

  // The error loading `dir` gives.
  static std::string LoadError(const fs::path& dir) {
    try {
      Load(dir);
    } catch (const UserError& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected loading " << dir << " to fail";
    return "";
  }

  static PluginHost* host_;
  TempDir dir_;
};
PluginHost* LlamaPlugin::host_ = nullptr;

const std::vector<int64_t> kIds = {1, 17, 42, 99, 3, 250, 8, 64, 128, 5, 77, 31};

std::string Join(const std::vector<int64_t>& ids) {
  std::string text;
  for (int64_t id : ids) {
    if (!text.empty()) text += ',';
    text += std::to_string(id);
  }
  return text;
}

void ExpectMatchesReference(const std::vector<std::string>& flags) {
  TempDir dir;
  const fs::path checkpoint = MakeCheckpoint(dir, "model", flags);
  const Reference reference = RunReference(checkpoint, {"--ids", Join(kIds)}, 0);
  PluginHost host;
  host.Load({TUNE_BUILTIN_PLUGIN_DIR});
  const auto model = host.LoadModel(
      "llama", checkpoint, PluginHost::DefaultOptions(host.Require(PluginKind::kModel, "llama")));
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = model->Forward(torch::tensor(kIds).unsqueeze(0), nullptr).squeeze(0);
  ASSERT_EQ(logits.sizes(), reference.logits.sizes());
  const double max_error = (logits - reference.logits).abs().max().item<double>();
  EXPECT_LT(max_error, 1e-4) << "flags:" << ::testing::PrintToString(flags);
  // A wrong model would differ by far more than the tolerance: the logits are not all tiny.
  EXPECT_GT(reference.logits.abs().max().item<double>(), 0.1);
}

TEST_F(LlamaPlugin, LogitsMatchTheReferenceForGroupedQueryAttention) {
  ExpectMatchesReference({"--seed", "1", "--heads", "4", "--kv-heads", "2"});
}

TEST_F(LlamaPlugin, LogitsMatchTheReferenceForMultiHeadAttentionWithTiedEmbeddings) {
  ExpectMatchesReference({"--seed", "2", "--heads", "4", "--kv-heads", "4", "--tie"});
}

TEST_F(LlamaPlugin, LogitsMatchTheReferenceForQwen2WithAttentionBias) {
  ExpectMatchesReference({"--seed", "3", "--model-type", "qwen2", "--kv-heads", "1"});
}

TEST_F(LlamaPlugin, LogitsMatchTheReferenceForAShardedMistralCheckpoint) {
  ExpectMatchesReference(
      {"--seed", "4", "--model-type", "mistral", "--shards", "3", "--rope-theta", "500000"});
}

TEST_F(LlamaPlugin, GreedyGenerationMatchesTheReferenceTokenForToken) {
  const fs::path checkpoint = MakeCheckpoint(dir_, "model", {"--seed", "5"});
  const Reference reference = RunReference(checkpoint, {"--ids", Join(kIds)}, 24);
  const auto model = Load(checkpoint);
  const std::vector<int32_t> prompt(kIds.begin(), kIds.end());
  SamplingOptions greedy;
  greedy.max_new_tokens = 24;
  std::vector<int32_t> expected = reference.greedy;
  if (!expected.empty() && expected.back() == model->tokenizer().eos_id()) expected.pop_back();
  EXPECT_EQ(GenerateTokens(*model, prompt, greedy).ids, expected);
}

TEST_F(LlamaPlugin, BatchedGreedyGenerationMatchesOnePromptAtATime) {
  const auto model = Load(MakeCheckpoint(dir_, "model", {"--seed", "6"}));
  // Three lengths, one of them shared by three prompts, so a length group spans two batches.
  const std::vector<std::vector<int32_t>> prompts = {{1, 5, 9},        {1, 7},      {1, 3, 4},
                                                     {1, 8, 2, 6, 11}, {1, 10, 12}, {1, 2}};
  const std::vector<Generation> batched =
      GenerateGreedyBatched(*model, prompts, 16, /*batch_size=*/2);
  ASSERT_EQ(batched.size(), prompts.size());
  SamplingOptions greedy;
  greedy.max_new_tokens = 16;
  size_t generated = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(batched[i].ids, GenerateTokens(*model, prompts[i], greedy).ids) << "prompt " << i;
    generated += batched[i].ids.size();
  }
  EXPECT_GT(generated, prompts.size());  // not all stopped at once
  EXPECT_THROW(GenerateGreedyBatched(*model, {{}}, 4, 2), UserError);
}

// A prompt near the model's context leaves room for a few tokens: generation stops there and
// says so, where the model would refuse to read one more.
TEST_F(LlamaPlugin, GenerationStopsWhereTheContextEnds) {
  const auto model = Load(MakeCheckpoint(dir_, "short", {"--seed", "6", "--max-positions", "16"}));
  ASSERT_EQ(model->Describe().max_positions, 16);
  SamplingOptions sampling;
  sampling.max_new_tokens = 10;
  sampling.temperature = 1.0;
  sampling.end_ids = {-1};  // no end id: only the budgets stop it
  const std::vector<int32_t> prompt = {1, 5, 9, 3, 4, 8, 2, 6, 11, 10, 12, 7, 13};  // 13 of 16
  const Generation generation = GenerateTokens(*model, prompt, sampling);
  EXPECT_EQ(generation.ids.size(), 3u);
  EXPECT_TRUE(generation.reached_context);
  const std::vector<int32_t> full(16, 5);
  EXPECT_TRUE(GenerateTokens(*model, full, sampling).reached_context);
  EXPECT_TRUE(GenerateTokens(*model, full, sampling).ids.empty());
  sampling.max_new_tokens = 3;  // the context is not what stops it
  EXPECT_FALSE(GenerateTokens(*model, prompt, sampling).reached_context);

  const std::vector<Generation> batched =
      GenerateGreedyBatched(*model, {prompt, {1, 5}, full}, 10, 2, std::vector<int32_t>{-1});
  EXPECT_EQ(batched[0].ids.size(), 3u);
  EXPECT_TRUE(batched[0].reached_context);
  EXPECT_EQ(batched[1].ids.size(), 10u);
  EXPECT_FALSE(batched[1].reached_context);
  EXPECT_TRUE(batched[2].ids.empty());
  EXPECT_TRUE(batched[2].reached_context);

  const std::vector<int32_t> longer(17, 5);
  for (const auto& generate : std::vector<std::function<void()>>{
           [&] { GenerateTokens(*model, longer, sampling); },
           [&] { GenerateGreedyBatched(*model, {longer}, 10, 1); }}) {
    try {
      generate();
      ADD_FAILURE() << "generated";
    } catch (const UserError& e) {
      EXPECT_STREQ(e.what(),
                   "the prompt is 17 tokens, longer than the model's context of 16; shorten it");
    }
  }
}

TEST_F(LlamaPlugin, StreamedTextJoinsToTheWholeContinuation) {
  const auto model = Load(MakeCheckpoint(dir_, "model", {"--seed", "12"}));
  SamplingOptions sampling;
  sampling.max_new_tokens = 40;
  sampling.temperature = 1.5;  // random bytes too: pieces that are parts of characters
  for (uint64_t seed = 0; seed < 5; ++seed) {
    sampling.seed = seed;
    std::string streamed;
    const std::string text = GenerateText(*model, "the cat", sampling, [&](std::string_view piece) {
                               streamed += piece;
                             }).text;
    EXPECT_EQ(streamed, text) << "seed " << seed;
    EXPECT_FALSE(text.empty());
  }
}

TEST_F(LlamaPlugin, PromptIdsMatchTheReference) {
  const fs::path checkpoint = MakeCheckpoint(dir_, "model", {"--seed", "6"});
  const std::string prompt = "the quick brown fox jumps over 12 lazy dogs";
  const Reference reference = RunReference(checkpoint, {"--prompt", prompt}, 0);
  const auto model = Load(checkpoint);
  std::vector<int32_t> ids = {model->tokenizer().bos_id()};
  const std::vector<int32_t> encoded = model->tokenizer().Encode(prompt);
  ids.insert(ids.end(), encoded.begin(), encoded.end());
  EXPECT_EQ(ids, reference.ids);
}

// Encodes and decodes texts and runs of arbitrary ids with the checkpoint's tokenizer.model, in
// tune and in Python's sentencepiece, and expects the same results.
void ExpectTokenizerMatchesPython(const TempDir& dir, const fs::path& checkpoint,
                                  const Model& model) {
  // Spaces at the ends and in runs, digits, punctuation, characters outside the training text
  // (byte fallback), a four-byte emoji, an empty string.
  const std::vector<std::string> texts = {"hello world",
                                          "  two  spaces  ",
                                          "tokens 1234567 and 3.14!",
                                          "naïve café — “quoted”",
                                          "emoji \xF0\x9F\x98\x80 end",
                                          "",
                                          "x",
                                          "\tTab\nnewline",
                                          "ünïcödé ǅ Ω 漢字"};
  const fs::path texts_file = dir.Write("texts.json", nlohmann::json(texts).dump());
  const std::string script =
      "import json, sys, sentencepiece as spm\n"
      "sp = spm.SentencePieceProcessor(model_file=sys.argv[1])\n"
      "texts = json.load(open(sys.argv[2]))\n"
      "ids = [sp.encode(t) for t in texts]\n"
      "raw = [list(range(n, n + 40)) for n in range(0, sp.get_piece_size() - 40, 37)]\n"
      "print(json.dumps({'ids': ids, 'decoded': [sp.decode(i) for i in ids],\n"
      "                  'raw': raw, 'raw_decoded': [sp.decode(i) for i in raw]}))\n";
  const auto result = RunCommand(
      {kPython, "-c", script, (checkpoint / "tokenizer.model").string(), texts_file.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json expected = nlohmann::json::parse(result.out);
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int32_t> ids = model.tokenizer().Encode(texts[i]);
    EXPECT_EQ(ids, expected["ids"][i].get<std::vector<int32_t>>()) << "text: " << texts[i];
    EXPECT_EQ(model.tokenizer().Decode(ids), expected["decoded"][i].get<std::string>())
        << "text: " << texts[i];
  }
  // Runs of arbitrary ids: control pieces, lone byte pieces that are not valid UTF-8, pieces
  // that start with the space symbol.
  for (size_t i = 0; i < expected["raw"].size(); ++i) {
    const auto ids = expected["raw"][i].get<std::vector<int32_t>>();
    EXPECT_EQ(model.tokenizer().Decode(ids), expected["raw_decoded"][i].get<std::string>())
        << "ids from " << ids.front();
  }
}

TEST_F(LlamaPlugin, TokenizerEncodesAndDecodesLikeSentencepiece) {
  const fs::path checkpoint = MakeCheckpoint(dir_, "model", {"--seed", "6"});
  ExpectTokenizerMatchesPython(dir_, checkpoint, *Load(checkpoint));
}

TEST_F(LlamaPlugin, TokenizerThatRemovesExtraWhitespaceMatchesSentencepiece) {
  // Llama and Mistral keep every space; sentencepiece's default drops leading, trailing and
  // repeated ones. Train such a model in Python and put it in place of the checkpoint's.
  const fs::path checkpoint = MakeCheckpoint(dir_, "model", {"--seed", "13"});
  const std::string script =
      "import io, sys, sentencepiece as spm\n"
      "words = ['alpha', 'beta', 'gamma', 'delta', 'one', 'two', 'three', 'x', 'y']\n"
      "lines = [' '.join(words[(i * 7 + j) % 9] for j in range(i % 6 + 1)) for i in range(400)]\n"
      "model = io.BytesIO()\n"
      "spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model,\n"
      "    model_type='bpe', vocab_size=300, byte_fallback=True, "
      "normalization_rule_name='identity',\n"
      "    remove_extra_whitespaces=True, num_threads=1, bos_id=1, eos_id=2, unk_id=0, pad_id=-1)\n"
      "open(sys.argv[1], 'wb').write(model.getvalue())\n";
  const auto result =
      RunCommand({kPython, "-c", script, (checkpoint / "tokenizer.model").string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  ExpectTokenizerMatchesPython(dir_, checkpoint, *Load(checkpoint));
}

TEST_F(LlamaPlugin, CachedStepByStepLogitsEqualOneFullForward) {
  const auto model = Load(MakeCheckpoint(dir_, "model", {"--seed", "7", "--kv-heads", "2"}));
  torch::NoGradGuard no_grad;
  const torch::Tensor full = Logits(*model, kIds);
  const auto cache = model->NewCache();
  std::vector<torch::Tensor> steps;
  // A prompt of five tokens, then one token at a time, as generation feeds them.
  steps.push_back(
      model
          ->Forward(
              torch::tensor(std::vector<int64_t>(kIds.begin(), kIds.begin() + 5)).unsqueeze(0),
              cache.get())
          .squeeze(0));
  for (size_t i = 5; i < kIds.size(); ++i) {
    steps.push_back(model->Forward(torch::tensor({kIds[i]}).unsqueeze(0), cache.get()).squeeze(0));
  }
  EXPECT_EQ(cache->length(), static_cast<int64_t>(kIds.size()));
  EXPECT_LT((torch::cat(steps, 0) - full).abs().max().item<double>(), 1e-5);
}

TEST_F(LlamaPlugin, ParametersCarryHuggingFaceNames) {
  const auto model = Load(MakeCheckpoint(dir_, "model", {"--seed", "8", "--layers", "2"}));
  std::vector<std::string> names;
  for (const auto& item : model->module().named_parameters()) names.push_back(item.key());
  for (const char* expected :
       {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
        "model.layers.1.self_attn.v_proj.weight", "model.layers.1.mlp.down_proj.weight",
        "model.layers.0.input_layernorm.weight", "model.norm.weight", "lm_head.weight"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  }
}

TEST_F(LlamaPlugin, Bfloat16WeightsStayCloseToFloat32) {
  const fs::path checkpoint = MakeCheckpoint(dir_, "model", {"--seed", "9"});
  const torch::Tensor f32 = Logits(*Load(checkpoint), kIds);
  const torch::Tensor bf16 = Logits(*Load(checkpoint, "bfloat16"), kIds);
  EXPECT_EQ(bf16.scalar_type(), torch::kFloat);
  EXPECT_LT((bf16 - f32).abs().max().item<double>(), 0.1);
}

// Rewrites one key of dir/config.json.
void SetConfigKey(const fs::path& dir, const std::string& key, const nlohmann::json& value) {
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  config[key] = value;
  std::ofstream(dir / "config.json") << config.dump(2);
}

TEST_F(LlamaPlugin, RefusesRopeScalingNamingTheKey) {
  const fs::path checkpoint = MakeCheckpoint(dir_, "model", {"--seed", "10"});
  SetConfigKey(checkpoint, "rope_scaling", {{"type", "linear"}, {"factor", 2.0}});
  const std::string message = LoadError(checkpoint);
  EXPECT_NE(
      message.find(
          "config.json: 'rope_scaling' = {\"factor\":2.0,\"type\":\"linear\"} is not supported"),
      std::string::npos)
      << message;
}

TEST_F(LlamaPlugin, RefusesAnUnknownModelType) {
  const fs::path checkpoint = MakeCheckpoint(dir_, "model", {"--seed", "10"});
  SetConfigKey(checkpoint, "model_type", "gpt2");
  EXPECT_NE(LoadError(checkpoint).find("'model_type' = \"gpt2\" is not served by the llama plugin"),
            std::string::npos);
}

TEST_F(LlamaPlugin, RefusesASlidingWindowShorterThanTheContext) {
  const fs::path checkpoint =
      MakeCheckpoint(dir_, "model", {"--seed", "10", "--model-type", "mistral"});
  SetConfigKey(checkpoint, "sliding_window", 16);
  EXPECT_NE(LoadError(checkpoint).find("'sliding_window' = 16 is shorter than the context"),
            std::string::npos);
}

// Llama 3 and Qwen2 folders ship tokenizer.json and no tokenizer.model.
TEST_F(LlamaPlugin, LoadsAFolderWithOnlyTokenizerJson) {
  const fs::path checkpoint =
      MakeCheckpoint(dir_, "model", {"--seed", "10", "--vocab", "640", "--no-tokenizer"});
  const auto made = RunCommand({kPython, TUNE_SOURCE_DIR "/tests/tools/make_tokenizer_json.py",
                                checkpoint.string(), "--style", "llama3"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const auto model = Load(checkpoint);
  const Tokenizer& tokenizer = model->tokenizer();
  EXPECT_EQ(tokenizer.TokenText(tokenizer.bos_id()), "<|begin_of_text|>");
  EXPECT_EQ(tokenizer.TokenText(tokenizer.eos_id()), "<|eot_id|>");
  std::vector<int64_t> ids = {tokenizer.bos_id()};
  for (const int32_t id : tokenizer.Encode("Hello world<|eot_id|>")) ids.push_back(id);
  EXPECT_EQ(ids.back(), tokenizer.eos_id());
  EXPECT_EQ(Logits(*model, ids).size(0), static_cast<int64_t>(ids.size()));

  SetConfigKey(checkpoint, "vocab_size", 300);  // fewer embeddings than the tokenizer has ids
  EXPECT_NE(LoadError(checkpoint)
                .find("the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                      " tokens but config.json's vocab_size is 300"),
            std::string::npos);
}

TEST_F(LlamaPlugin, RefusesWeightsThatDisagreeWithConfig) {
  const fs::path checkpoint = MakeCheckpoint(dir_, "model", {"--seed", "10", "--layers", "2"});
  SetConfigKey(checkpoint, "num_hidden_layers", 3);
  EXPECT_NE(LoadError(checkpoint).find("the weights have no tensor 'model.layers.2."),
            std::string::npos);
  SetConfigKey(checkpoint, "num_hidden_layers", 1);
  EXPECT_NE(LoadError(checkpoint).find("tensor 'model.layers.1."), std::string::npos);
  SetConfigKey(checkpoint, "num_hidden_layers", 2);
  SetConfigKey(checkpoint, "intermediate_size", 8);
  EXPECT_NE(LoadError(checkpoint).find("has shape"), std::string::npos);
}

TEST_F(LlamaPlugin, RefusesTokenIdsOutsideTheVocabulary) {
  const auto model = Load(MakeCheckpoint(dir_, "model", {"--seed", "11"}));
  EXPECT_THROW(Logits(*model, {1, 1000000}), UserError);
}

}  // namespace
}  // namespace tune

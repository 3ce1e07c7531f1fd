#include "llama_config.h"

#include <nlohmann/json.hpp>

#include "tune/error.h"
#include "util/json_file.h"

namespace tune::llama {
namespace {

using nlohmann::json;

class ConfigReader {
 public:
  ConfigReader(const std::filesystem::path& file, const json& root) : file_(file), root_(root) {}

  [[noreturn]] void Fail(const std::string& what) const {
    throw UserError(file_.string() + ": " + what);
  }

  int64_t PositiveInt(const char* key) const {
    const json* value = Find(key);
    if (value == nullptr) Fail(std::string("missing '") + key + "'; every HF config has it");
    if (!value->is_number_integer() || value->get<int64_t>() <= 0) {
      Fail(std::string("'") + key + "' must be a positive integer, got " + value->dump());
    }
    return value->get<int64_t>();
  }

  int64_t PositiveInt(const char* key, int64_t fallback) const {
    return Find(key) == nullptr || Find(key)->is_null() ? fallback : PositiveInt(key);
  }

  double PositiveNumber(const char* key, double fallback) const {
    const json* value = Find(key);
    if (value == nullptr || value->is_null()) return fallback;
    if (!value->is_number() || value->get<double>() <= 0) {
      Fail(std::string("'") + key + "' must be a positive number, got " + value->dump());
    }
    return value->get<double>();
  }

  bool Bool(const char* key, bool fallback) const {
    const json* value = Find(key);
    if (value == nullptr || value->is_null()) return fallback;
    if (!value->is_boolean()) Fail(std::string("'") + key + "' must be true or false");
    return value->get<bool>();
  }

  // A token id: an integer, or a list of them (the first is used), or null (-1).
  int32_t TokenId(const char* key) const {
    const json* value = Find(key);
    if (value == nullptr || value->is_null()) return -1;
    if (value->is_array() && !value->empty()) value = &(*value)[0];
    if (!value->is_number_integer()) Fail(std::string("'") + key + "' must be a token id");
    return value->get<int32_t>();
  }

  const json* Find(const char* key) const {
    auto it = root_.find(key);
    return it == root_.end() ? nullptr : &*it;
  }

 private:
  const std::filesystem::path& file_;
  const json& root_;
};

}  // namespace

LlamaConfig ReadLlamaConfig(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "config.json";
  std::error_code error;
  if (!std::filesystem::exists(file, error)) {
    throw UserError(file.string() +
                    ": cannot read; a model directory needs config.json (Hugging Face layout)");
  }
  const json root = ReadJsonFile(file);
  if (!root.is_object()) throw UserError(file.string() + ": not a JSON object");
  const ConfigReader read(file, root);

  LlamaConfig config;
  const json* model_type = read.Find("model_type");
  if (model_type == nullptr || !model_type->is_string()) {
    read.Fail("missing 'model_type'; the llama plugin serves llama, mistral and qwen2");
  }
  config.model_type = model_type->get<std::string>();
  if (config.model_type != "llama" && config.model_type != "mistral" &&
      config.model_type != "qwen2") {
    read.Fail("'model_type' = \"" + config.model_type +
              "\" is not served by the llama plugin (it serves llama, mistral and qwen2)");
  }
  config.vocab_size = read.PositiveInt("vocab_size");
  config.hidden_size = read.PositiveInt("hidden_size");
  config.intermediate_size = read.PositiveInt("intermediate_size");
  config.num_layers = read.PositiveInt("num_hidden_layers");
  config.num_heads = read.PositiveInt("num_attention_heads");
  config.num_kv_heads = read.PositiveInt("num_key_value_heads", config.num_heads);
  if (config.num_heads % config.num_kv_heads != 0) {
    read.Fail("'num_attention_heads' (" + std::to_string(config.num_heads) +
              ") is not a multiple of 'num_key_value_heads' (" +
              std::to_string(config.num_kv_heads) + ")");
  }
  if (read.Find("head_dim") != nullptr && !read.Find("head_dim")->is_null()) {
    config.head_dim = read.PositiveInt("head_dim");
  } else {
    if (config.hidden_size % config.num_heads != 0) {
      read.Fail("'hidden_size' is not a multiple of 'num_attention_heads'; set 'head_dim'");
    }
    config.head_dim = config.hidden_size / config.num_heads;
  }
  if (config.head_dim % 2 != 0) read.Fail("the head dimension must be even for rotary embeddings");
  config.max_positions = read.PositiveInt("max_position_embeddings", 2048);
  config.rms_norm_eps = read.PositiveNumber("rms_norm_eps", 1e-6);
  config.rope_theta = read.PositiveNumber("rope_theta", 10000.0);
  config.tie_word_embeddings = read.Bool("tie_word_embeddings", false);
  config.attention_bias = config.model_type == "qwen2" || read.Bool("attention_bias", false);

  if (const json* act = read.Find("hidden_act"); act != nullptr && *act != "silu") {
    read.Fail("'hidden_act' = " + act->dump() + " is not supported; the llama plugin uses silu");
  }
  if (const json* scaling = read.Find("rope_scaling"); scaling != nullptr && !scaling->is_null()) {
    read.Fail("'rope_scaling' = " + scaling->dump() +
              " is not supported; the llama plugin implements unscaled rotary embeddings");
  }
  if (read.Bool("mlp_bias", false)) read.Fail("'mlp_bias' = true is not supported");
  const bool sliding = config.model_type != "qwen2" || read.Bool("use_sliding_window", false);
  if (const json* window = read.Find("sliding_window");
      sliding && window != nullptr && !window->is_null()) {
    if (!window->is_number_integer() || window->get<int64_t>() < config.max_positions) {
      read.Fail("'sliding_window' = " + window->dump() +
                " is shorter than the context; sliding-window attention is not supported");
    }
  }
  return config;
}

}  // namespace tune::llama

// A model folder's generation_config.json: the ids that end a sequence (Llama 3 instruct models
// end turns with <|eot_id|> as well as <|end_of_text|>) and the sampling settings the model ships
// with, which `tune generate` uses unless its flags say otherwise.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

namespace tune {

class Tokenizer;
struct SamplingOptions;

struct GenerationConfig {
  std::vector<int32_t> eos_ids;  // eos_token_id: one id or a list
  bool do_sample = false;        // false: greedy, whatever temperature says
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> max_new_tokens;
};

// Reads dir/generation_config.json; a folder without one gives an empty config. Throws UserError
// naming the file and key for invalid JSON or a value of the wrong type or range.
GenerationConfig ReadGenerationConfig(const std::filesystem::path& dir);

// Every id that ends generation: the tokenizer's EOS, then the config's, without repeats.
std::vector<int32_t> EndIds(const GenerationConfig& config, const Tokenizer& tokenizer);

// The model's sampling settings in `options`: greedy unless do_sample, then its temperature and
// top_p; its max_new_tokens. Fields the config leaves out keep their values.
void ApplyGenerationConfig(const GenerationConfig& config, SamplingOptions& options);

}  // namespace tune

// Text generation with any model plugin: greedy or nucleus sampling over a KV cache.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tune {

class Model;
class Tokenizer;

// `text`'s ids after the tokenizer's BOS, when it has one and the text does not already begin
// with it (a chat template's rendering often does).
std::vector<int32_t> EncodeWithBos(const Tokenizer& tokenizer, std::string_view text);

struct SamplingOptions {
  int64_t max_new_tokens = 128;
  double temperature = 0.0;  // 0: greedy (argmax, ties to the lowest id)
  double top_p = 1.0;        // nucleus: sample from the smallest set of tokens with this much mass
  uint64_t seed = 0;         // same seed, model and prompt: same tokens
  // The ids that end generation (EndIds in generation_config.h); empty: the tokenizer's EOS.
  std::vector<int32_t> end_ids = {};
};

// What a generation made. `reached_context`: it stopped because the sequence, prompt and new
// tokens, filled the model's context (ModelDescription::max_positions) before an end id or
// max_new_tokens; the model cannot read one more token.
struct Generation {
  std::vector<int32_t> ids;
  bool reached_context = false;
};

// Picks the next token from one position's logits. Throws UserError for options out of range.
int32_t PickToken(std::span<const float> logits, const SamplingOptions& options,
                  std::mt19937_64& rng);

// Continues `prompt_ids` and returns the new tokens, stopping after max_new_tokens, when an end
// id is produced (it is not returned), or when the sequence fills the model's context. Generation
// picks only ids the tokenizer has, also where the model's embeddings are padded beyond them.
// `on_token` sees each new token as it is made. Throws UserError for a prompt longer than the
// context.
Generation GenerateTokens(Model& model, std::span<const int32_t> prompt_ids,
                          const SamplingOptions& options,
                          const std::function<void(int32_t)>& on_token = {});

// Greedy continuations of many prompts, as GenerateTokens with temperature 0 gives for each, but
// decoded together: prompts of equal length share a batch of at most `batch_size` rows, so
// positions line up without padding. Batched matrix products may round differently from one
// row's, so a near-tie can resolve the other way. Each prompt gets at most `max_new_tokens` and
// stops at any of `end_ids` (empty: the tokenizer's EOS) or at the end of the model's context.
std::vector<Generation> GenerateGreedyBatched(Model& model,
                                              const std::vector<std::vector<int32_t>>& prompts,
                                              int64_t max_new_tokens, int64_t batch_size,
                                              std::span<const int32_t> end_ids = {});

struct TextGeneration {
  std::string text;
  bool reached_context = false;  // as Generation's
};

// Encodes `prompt` (with the model's BOS, if it has one), generates, and decodes. `on_text` sees
// the text as it grows, one piece per token.
TextGeneration GenerateText(Model& model, std::string_view prompt, const SamplingOptions& options,
                            const std::function<void(std::string_view)>& on_text = {});

}  // namespace tune

#include "generate/generate.h"

#include <algorithm>
#include <map>
#include <numeric>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "tune/model.h"
#include "util/error.h"

namespace tune {
namespace {

// `end_ids`, or the tokenizer's EOS when it is empty.
std::vector<int32_t> EndIdsOr(std::span<const int32_t> end_ids, const Model& model) {
  if (!end_ids.empty()) return {end_ids.begin(), end_ids.end()};
  const int32_t eos = model.tokenizer().eos_id();
  return eos >= 0 ? std::vector<int32_t>{eos} : std::vector<int32_t>{};
}

// The logits of the ids the tokenizer has: models may pad their embeddings past the vocabulary
// (Qwen2.5: 152,064 rows for 151,665 tokens), and those rows are no tokens to emit.
at::Tensor TokenLogits(const at::Tensor& logits, const Model& model) {
  const int64_t tokens = model.tokenizer().vocab_size();
  return tokens < logits.size(-1) ? logits.narrow(-1, 0, tokens) : logits;
}

bool Contains(const std::vector<int32_t>& ids, int64_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// The new tokens the model's context leaves room for after a prompt of `prompt_tokens` (a
// sequence is at most max_positions tokens, as transformers' max_length); refuses a prompt that
// does not fit at all.
int64_t RoomAfter(const Model& model, size_t prompt_tokens) {
  const int64_t context = model.Describe().max_positions;
  const auto length = static_cast<int64_t>(prompt_tokens);
  if (length > context) {
    throw UserError("the prompt is " + std::to_string(length) +
                    " tokens, longer than the model's context of " + std::to_string(context) +
                    "; shorten it");
  }
  return context - length;
}

}  // namespace

std::vector<int32_t> EncodeWithBos(const Tokenizer& tokenizer, std::string_view text) {
  std::vector<int32_t> ids = tokenizer.Encode(text);
  const int32_t bos = tokenizer.bos_id();
  if (bos >= 0 && (ids.empty() || ids.front() != bos)) ids.insert(ids.begin(), bos);
  return ids;
}

int32_t PickToken(std::span<const float> logits, const SamplingOptions& options,
                  std::mt19937_64& rng) {
  if (logits.empty()) throw UserError("the model returned no logits");
  if (options.temperature < 0) throw UserError("temperature must be >= 0 (0 is greedy)");
  if (!(options.top_p > 0 && options.top_p <= 1)) throw UserError("top_p must be in (0, 1]");
  if (options.temperature == 0) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  // Softmax of logits / temperature in double, shifted by the maximum for stability.
  const float top = *std::max_element(logits.begin(), logits.end());
  std::vector<double> probs(logits.size());
  double total = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    probs[i] = std::exp((static_cast<double>(logits[i]) - top) / options.temperature);
    total += probs[i];
  }
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
  // The nucleus: the most likely tokens until their mass reaches top_p (the crossing one kept).
  double kept = 0;
  size_t nucleus = 0;
  while (nucleus < order.size() && (nucleus == 0 || kept < options.top_p * total)) {
    kept += probs[order[nucleus++]];
  }
  double target = std::uniform_real_distribution<double>(0.0, kept)(rng);
  for (size_t i = 0; i < nucleus; ++i) {
    target -= probs[order[i]];
    if (target < 0) return order[i];
  }
  return order[nucleus - 1];
}

Generation GenerateTokens(Model& model, std::span<const int32_t> prompt_ids,
                          const SamplingOptions& options,
                          const std::function<void(int32_t)>& on_token) {
  if (prompt_ids.empty()) throw UserError("cannot generate from an empty prompt");
  if (options.max_new_tokens < 0) throw UserError("max_new_tokens must be >= 0");
  const int64_t room = RoomAfter(model, prompt_ids.size());
  c10::NoGradGuard no_grad;
  std::mt19937_64 rng(options.seed);
  const std::unique_ptr<KvCache> cache = model.NewCache();
  const std::vector<int32_t> end_ids = EndIdsOr(options.end_ids, model);
  std::vector<int64_t> ids(prompt_ids.begin(), prompt_ids.end());
  Generation generation;
  std::vector<int32_t>& generated = generation.ids;
  while (static_cast<int64_t>(generated.size()) < options.max_new_tokens) {
    if (static_cast<int64_t>(generated.size()) == room) {
      generation.reached_context = true;
      break;
    }
    const at::Tensor input = at::tensor(ids, at::kLong).unsqueeze(0);
    const at::Tensor logits =
        TokenLogits(model.Forward(input, cache.get()).select(1, -1).squeeze(0), model)
            .to(at::kCPU)
            .contiguous();
    const int32_t next =
        PickToken(std::span<const float>(logits.data_ptr<float>(), logits.numel()), options, rng);
    if (Contains(end_ids, next)) break;
    generated.push_back(next);
    if (on_token) on_token(next);
    ids.assign(1, next);
  }
  return generation;
}

std::vector<Generation> GenerateGreedyBatched(Model& model,
                                              const std::vector<std::vector<int32_t>>& prompts,
                                              int64_t max_new_tokens, int64_t batch_size,
                                              std::span<const int32_t> end_ids_or_empty) {
  if (max_new_tokens < 0) throw UserError("max_new_tokens must be >= 0");
  if (batch_size < 1) throw UserError("the generation batch size must be >= 1");
  c10::NoGradGuard no_grad;
  const std::vector<int32_t> end_ids = EndIdsOr(end_ids_or_empty, model);
  std::map<size_t, std::vector<size_t>> by_length;  // prompt length -> prompt indices
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw UserError("cannot generate from an empty prompt");
    by_length[prompts[i].size()].push_back(i);
  }
  std::vector<Generation> outputs(prompts.size());
  for (const auto& [length, members] : by_length) {
    const int64_t room = RoomAfter(model, length);
    const int64_t budget = std::min(max_new_tokens, room);
    for (size_t begin = 0; begin < members.size(); begin += static_cast<size_t>(batch_size)) {
      const size_t rows = std::min(members.size() - begin, static_cast<size_t>(batch_size));
      std::vector<int64_t> ids;
      for (size_t r = 0; r < rows; ++r) {
        const std::vector<int32_t>& prompt = prompts[members[begin + r]];
        ids.insert(ids.end(), prompt.begin(), prompt.end());
      }
      at::Tensor input = at::tensor(ids, at::kLong)
                             .reshape({static_cast<int64_t>(rows), static_cast<int64_t>(length)});
      const std::unique_ptr<KvCache> cache = model.NewCache();
      std::vector<bool> done(rows, false);
      size_t remaining = rows;
      for (int64_t step = 0; step < budget && remaining > 0; ++step) {
        // Greedy: the first maximum, as PickToken takes it.
        const at::Tensor next = TokenLogits(model.Forward(input, cache.get()).select(1, -1), model)
                                    .argmax(-1)
                                    .to(at::kCPU)
                                    .contiguous();
        const int64_t* picked = next.data_ptr<int64_t>();
        for (size_t r = 0; r < rows; ++r) {
          if (done[r]) continue;
          if (Contains(end_ids, picked[r])) {
            done[r] = true;
            --remaining;
          } else {
            outputs[members[begin + r]].ids.push_back(static_cast<int32_t>(picked[r]));
          }
        }
        input = next.reshape({static_cast<int64_t>(rows), 1});
      }
      if (room < max_new_tokens) {  // rows still going stopped at the end of the context
        for (size_t r = 0; r < rows; ++r) outputs[members[begin + r]].reached_context = !done[r];
      }
    }
  }
  return outputs;
}

TextGeneration GenerateText(Model& model, std::string_view prompt, const SamplingOptions& options,
                            const std::function<void(std::string_view)>& on_text) {
  const Tokenizer& tokenizer = model.tokenizer();
  const std::vector<int32_t> prompt_ids = EncodeWithBos(tokenizer, prompt);
  // Decoding the whole continuation each time keeps text that spans tokens right (the bytes of
  // one character, sentencepiece's leading spaces). A trailing U+FFFD may be a character whose
  // remaining bytes are still to come, so it is held back until the next token settles it.
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::vector<int32_t> generated;
  std::string text;
  size_t reported = 0;
  auto report = [&](size_t upto) {
    if (on_text && upto > reported)
      on_text(std::string_view(text).substr(reported, upto - reported));
    reported = std::max(reported, upto);
  };
  const Generation generation = GenerateTokens(model, prompt_ids, options, [&](int32_t token) {
    generated.push_back(token);
    text = tokenizer.Decode(generated);
    size_t settled = text.size();
    while (settled >= kReplacement.size() &&
           std::string_view(text).substr(settled - kReplacement.size()) == kReplacement) {
      settled -= kReplacement.size();
    }
    report(settled);
  });
  report(text.size());
  return {text, generation.reached_context};
}

}  // namespace tune

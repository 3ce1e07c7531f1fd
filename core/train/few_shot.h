// The prompted baseline ([eval] few_shot = K): the base model asked with K examples of the
// training split before each eval prompt, so a tuned version's gain is measured against
// prompting as well as against the bare base model.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tune/dataset.h"

namespace tune {

class ChatTemplate;

// Between shots, and where a plain-text prediction is cut: a base model asked this way writes
// the next example after its answer.
inline constexpr const char* kShotSeparator = "\n\n";

struct FewShotPrompts {
  std::vector<TextExample> examples;  // the eval examples, prompts with their shots before them
  int64_t shortened = 0;              // prompts that hold fewer than K shots to fit
};

// The shots are the same K examples of `train` for every prompt, drawn with a fixed seed (not
// train.seed: every trial and repeat of a sweep has the same baseline). Plain examples become
// "shot + kShotSeparator ... + prompt", each shot written by `as_trained`: the text the model
// read it as in training, where prompt and completion are encoded apart (with a sentencepiece
// tokenizer, "x =" and "y" read as "x = y", not "x =y"). Conversations, with `chat_template`
// (the one PrepareData rendered them with), become one conversation: the eval example's system
// message, each shot's other turns, then the eval example's, rendered with the generation
// prompt. A prompt for which `fits` is false keeps fewer shots (the last ones go first), down to
// none. K larger than `train` takes all of it.
FewShotPrompts MakeFewShotPrompts(const std::vector<TextExample>& train,
                                  const std::vector<TextExample>& eval, int64_t shots,
                                  const ChatTemplate* chat_template,
                                  const std::function<std::string(const TextExample&)>& as_trained,
                                  const std::function<bool(const std::string& prompt)>& fits);

}  // namespace tune

#include "train/few_shot.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "chat_template/chat_template.h"

namespace tune {

namespace {

// Fixed, so that the baseline is one measurement per base model and eval set.
constexpr uint64_t kShotSeed = 20240611;

// K indices of `n`, in the order drawn.
std::vector<size_t> DrawShots(size_t n, size_t k) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 random(kShotSeed);
  for (size_t i = 0; i < k; ++i) {
    std::uniform_int_distribution<size_t> pick(i, n - 1);
    std::swap(order[i], order[pick(random)]);
  }
  order.resize(k);
  return order;
}

std::string PlainPrompt(const std::vector<std::string>& shots, const TextExample& example) {
  std::string prompt;
  for (const std::string& shot : shots) prompt += shot + kShotSeparator;
  return prompt + example.prompt;
}

std::string ChatPrompt(const std::vector<const TextExample*>& shots, const TextExample& example,
                       const ChatTemplate& chat_template) {
  std::vector<ChatMessage> messages;
  const auto is_system = [](const ChatMessage& m) { return m.role == "system"; };
  if (!example.messages.empty() && is_system(example.messages.front())) {
    messages.push_back(example.messages.front());
  }
  for (const TextExample* shot : shots) {
    for (const ChatMessage& m : shot->messages) {
      if (!is_system(m)) messages.push_back(m);
    }
  }
  for (const ChatMessage& m : example.messages) {
    if (!is_system(m)) messages.push_back(m);
  }
  return chat_template.PromptAndCompletion(messages).first;
}

}  // namespace

FewShotPrompts MakeFewShotPrompts(const std::vector<TextExample>& train,
                                  const std::vector<TextExample>& eval, int64_t shots,
                                  const ChatTemplate* chat_template,
                                  const std::function<std::string(const TextExample&)>& as_trained,
                                  const std::function<bool(const std::string& prompt)>& fits) {
  const size_t k = std::min(train.size(), static_cast<size_t>(std::max<int64_t>(shots, 0)));
  std::vector<const TextExample*> drawn;
  std::vector<std::string> drawn_text;  // each plain shot as the model read it
  for (size_t i : DrawShots(train.size(), k)) {
    drawn.push_back(&train[i]);
    drawn_text.push_back(train[i].messages.empty() ? as_trained(train[i]) : std::string());
  }
  FewShotPrompts out;
  for (const TextExample& example : eval) {
    const bool chat = chat_template != nullptr && !example.messages.empty();
    std::vector<const TextExample*> used;
    std::vector<std::string> used_text;
    for (size_t i = 0; i < drawn.size(); ++i) {
      if (chat == drawn[i]->messages.empty()) continue;  // like with like
      used.push_back(drawn[i]);
      used_text.push_back(drawn_text[i]);
    }
    const size_t wanted = used.size();
    TextExample prompted = example;
    for (;;) {
      prompted.prompt =
          chat ? ChatPrompt(used, example, *chat_template) : PlainPrompt(used_text, example);
      if (used.empty() || fits(prompted.prompt)) break;
      used.pop_back();
      used_text.pop_back();
    }
    if (used.size() < wanted) ++out.shortened;
    out.examples.push_back(std::move(prompted));
  }
  return out;
}

}  // namespace tune

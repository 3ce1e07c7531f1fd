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

std::string PlainPrompt(const std::vector<const TextExample*>& shots, const TextExample& example) {
  std::string prompt;
  for (const TextExample* shot : shots) {
    prompt += shot->prompt + shot->completion + kShotSeparator;
  }
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
                                  const std::function<bool(const std::string& prompt)>& fits) {
  const size_t k = std::min(train.size(), static_cast<size_t>(std::max<int64_t>(shots, 0)));
  std::vector<const TextExample*> drawn;
  for (size_t i : DrawShots(train.size(), k)) drawn.push_back(&train[i]);
  FewShotPrompts out;
  for (const TextExample& example : eval) {
    const bool chat = chat_template != nullptr && !example.messages.empty();
    std::vector<const TextExample*> used;
    for (const TextExample* shot : drawn) {
      if (chat == !shot->messages.empty()) used.push_back(shot);  // like with like
    }
    const size_t wanted = used.size();
    TextExample prompted = example;
    for (;;) {
      prompted.prompt =
          chat ? ChatPrompt(used, example, *chat_template) : PlainPrompt(used, example);
      if (used.empty() || fits(prompted.prompt)) break;
      used.pop_back();
    }
    if (used.size() < wanted) ++out.shortened;
    out.examples.push_back(std::move(prompted));
  }
  return out;
}

}  // namespace tune

// The prompted baseline's prompts: which shots, in what form, and how they fit the context.
#include "train/few_shot.h"

#include <gtest/gtest.h>

#include "chat_template/chat_template.h"
#include "support/test_support.h"

namespace tune {
namespace {

std::vector<TextExample> Additions(int from, int count) {
  std::vector<TextExample> examples;
  for (int i = from; i < from + count; ++i) {
    TextExample example;
    example.prompt.append("add ").append(std::to_string(i)).append(" 1 =");
    example.completion = std::to_string(i + 1);
    example.line = i + 1;
    examples.push_back(std::move(example));
  }
  return examples;
}

const auto kAlwaysFits = [](const std::string&) { return true; };
// As a sentencepiece tokenizer reads prompt and completion encoded apart.
const auto kAsTrained = [](const TextExample& e) { return e.prompt + " " + e.completion; };

TEST(FewShot, EveryPromptGetsTheSameShotsDrawnWithAFixedSeed) {
  const std::vector<TextExample> train = Additions(0, 20);
  const std::vector<TextExample> eval = Additions(100, 3);
  const FewShotPrompts prompts =
      MakeFewShotPrompts(train, eval, 3, nullptr, kAsTrained, kAlwaysFits);
  ASSERT_EQ(prompts.examples.size(), 3u);
  EXPECT_EQ(prompts.shortened, 0);
  const std::string& first = prompts.examples[0].prompt;
  ASSERT_TRUE(first.ends_with("\n\nadd 100 1 =")) << first;
  const std::string shots = first.substr(0, first.size() - eval[0].prompt.size());
  for (size_t i = 0; i < eval.size(); ++i) {
    EXPECT_EQ(prompts.examples[i].prompt, shots + eval[i].prompt);
    EXPECT_EQ(prompts.examples[i].completion, eval[i].completion);  // scored as before
    EXPECT_EQ(prompts.examples[i].line, eval[i].line);
  }
  // Three distinct training examples, each with its answer and the separator.
  int count = 0;
  for (const TextExample& example : train) {
    if (shots.find(kAsTrained(example) + "\n\n") != std::string::npos) ++count;
  }
  EXPECT_EQ(count, 3);
  EXPECT_EQ(MakeFewShotPrompts(train, eval, 3, nullptr, kAsTrained, kAlwaysFits).examples[2].prompt,
            prompts.examples[2].prompt);
  // The draw is not simply the first examples of the split.
  EXPECT_NE(shots, "add 0 1 = 1\n\nadd 1 1 = 2\n\nadd 2 1 = 3\n\n");
}

TEST(FewShot, APromptTooLongForTheContextKeepsFewerShots) {
  const std::vector<TextExample> train = Additions(0, 10);
  std::vector<TextExample> eval = Additions(100, 2);
  eval[1].prompt = std::string(40, 'x') + " =";
  // At most 60 characters: the short prompt keeps 3 shots (3 x 13 + 11), the long one 1.
  const FewShotPrompts prompts =
      MakeFewShotPrompts(train, eval, 4, nullptr, kAsTrained,
                         [](const std::string& prompt) { return prompt.size() <= 60; });
  EXPECT_EQ(prompts.shortened, 2);
  EXPECT_LE(prompts.examples[0].prompt.size(), 60u);
  EXPECT_GT(prompts.examples[0].prompt.size(), 45u);
  EXPECT_LE(prompts.examples[1].prompt.size(), 60u);
  EXPECT_TRUE(prompts.examples[1].prompt.ends_with(eval[1].prompt));
  // One that fits nothing is asked without shots rather than left out.
  const FewShotPrompts none = MakeFewShotPrompts(train, eval, 4, nullptr, kAsTrained,
                                                 [](const std::string&) { return false; });
  EXPECT_EQ(none.examples[1].prompt, eval[1].prompt);
}

TEST(FewShot, MoreShotsThanTrainingExamplesTakesThemAll) {
  const std::vector<TextExample> train = Additions(0, 2);
  const FewShotPrompts prompts =
      MakeFewShotPrompts(train, Additions(100, 1), 5, nullptr, kAsTrained, kAlwaysFits);
  EXPECT_EQ(prompts.shortened, 0);
  const std::string& prompt = prompts.examples[0].prompt;
  EXPECT_NE(prompt.find("add 0 1 = 1\n\n"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("add 1 1 = 2\n\n"), std::string::npos) << prompt;
}

TEST(FewShot, ConversationsBecomeEarlierTurnsOfOneConversation) {
  const ChatTemplate chat(
      "{% for m in messages %}<{{ m.role }}>{{ m.content }}</>{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}",
      {}, "test template");
  const auto conversation = [](const std::string& question, const std::string& answer) {
    TextExample example;
    example.messages = {{"system", "be brief"}, {"user", question}, {"assistant", answer}};
    return example;
  };
  const std::vector<TextExample> train = {conversation("q1", "a1")};
  const FewShotPrompts prompts =
      MakeFewShotPrompts(train, {conversation("q9", "a9")}, 1, &chat, kAsTrained, kAlwaysFits);
  ASSERT_EQ(prompts.examples.size(), 1u);
  EXPECT_EQ(prompts.examples[0].prompt,
            "<system>be brief</><user>q1</><assistant>a1</><user>q9</><assistant>");
}

}  // namespace
}  // namespace tune

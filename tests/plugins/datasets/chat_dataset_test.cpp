// chat, loaded from the build's plugin folder through the real host as tune loads it. Expected
// prompts are written out by hand from each model family's published chat format.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "plugins/datasets/builtin_dataset.h"

namespace tune {
namespace {

using testing::Describe;

class ChatDataset : public testing::BuiltinDataset {
 protected:
  ChatDataset() : BuiltinDataset("chat") {}
};

// System, a first exchange, then the question the example teaches the answer to.
const std::string kConversation =
    "{\"messages\": ["
    "{\"role\": \"system\", \"content\": \"Be brief.\"}, "
    "{\"role\": \"user\", \"content\": \"Hi\"}, "
    "{\"role\": \"assistant\", \"content\": \"Hello!\"}, "
    "{\"role\": \"user\", \"content\": \"2+2?\"}, "
    "{\"role\": \"assistant\", \"content\": \"4\"}]}\n";

TEST_F(ChatDataset, DeclaresTheTemplateOptionWithTheModelsOwnByDefault) {
  const std::vector<OptionSpec>& options = loaded_->info().options;
  ASSERT_EQ(options.size(), 1u);
  EXPECT_EQ(options[0].name, "template");
  EXPECT_EQ(std::get<std::string>(options[0].default_value), "auto");
  EXPECT_EQ(options[0].choices, (std::vector<std::string>{"auto", "chatml", "llama2", "zephyr"}));
}

// "auto" keeps the conversation for the model's own template, and renders chatml for folders
// without one; a named template renders only its own.
TEST_F(ChatDataset, AutoKeepsTheMessagesForTheModelsTemplate) {
  const DatasetRows automatic = Read(kConversation);
  ASSERT_EQ(automatic.examples.size(), 1u);
  const std::vector<ChatMessage>& messages = automatic.examples[0].messages;
  ASSERT_EQ(messages.size(), 5u);
  EXPECT_EQ(messages[0].role, "system");
  EXPECT_EQ(messages[4].role, "assistant");
  EXPECT_EQ(messages[4].content, "4");
  EXPECT_EQ(automatic.examples[0].prompt,
            Read(kConversation, {{"template", "chatml"}}).examples[0].prompt);
  EXPECT_TRUE(Read(kConversation, {{"template", "chatml"}}).examples[0].messages.empty());
}

TEST_F(ChatDataset, RendersChatmlEndingWithTheAssistantHeaderAndLearnsTheTurnEnd) {
  const DatasetRows rows = Read(kConversation);
  EXPECT_TRUE(rows.bad_rows.empty()) << ::testing::PrintToString(Describe(rows.bad_rows));
  ASSERT_EQ(rows.examples.size(), 1u);
  EXPECT_EQ(rows.examples[0].prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(rows.examples[0].completion, "4<|im_end|>");
  EXPECT_EQ(rows.examples[0].line, 1);
}

TEST_F(ChatDataset, RendersLlama2WithTheSystemPromptInsideTheFirstInstruction) {
  const DatasetRows rows = Read(kConversation, {{"template", "llama2"}});
  ASSERT_EQ(rows.examples.size(), 1u);
  EXPECT_EQ(rows.examples[0].prompt,
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] 2+2? [/INST] ");
  EXPECT_EQ(rows.examples[0].completion, "4");
}

TEST_F(ChatDataset, RendersZephyr) {
  const DatasetRows rows = Read(kConversation, {{"template", "zephyr"}});
  ASSERT_EQ(rows.examples.size(), 1u);
  EXPECT_EQ(rows.examples[0].prompt,
            "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n"
            "<|user|>\n2+2?</s>\n<|assistant|>\n");
  EXPECT_EQ(rows.examples[0].completion, "4");
}

TEST_F(ChatDataset, ReportsEachBadConversationWithItsLineNumber) {
  const DatasetRows rows = Read(
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", "
      "\"content\": \"a\"}]}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n"
      "{\"messages\": [{\"role\": \"bot\", \"content\": \"q\"}, {\"role\": \"assistant\", "
      "\"content\": \"a\"}]}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": [\"q\"]}, {\"role\": \"assistant\", "
      "\"content\": \"a\"}]}\n"
      "{\"messages\": []}\n"
      "{\"conversation\": []}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", "
      "\"content\": \"\"}]}\n"
      "{\"messages\": [{\"content\": \"q\"}]}\n"
      "{\"messages\": [\"q\"]}\n");
  ASSERT_EQ(rows.examples.size(), 1u);
  EXPECT_EQ(rows.examples[0].line, 1);
  EXPECT_EQ(Describe(rows.bad_rows),
            (std::vector<std::string>{
                "2: last message is from 'user', not the assistant",
                "3: message 1 has unknown role 'bot' (expected system, user or assistant)",
                "4: message 1: field 'content' is not a string",
                "5: field 'messages' is not a non-empty array",
                "6: missing field 'messages'",
                "7: empty completion",
                "8: message 1: missing field 'role'",
                "9: message 1 is not a JSON object",
            }));
}

TEST_F(ChatDataset, Llama2RefusesASystemMessageAfterTheFirst) {
  const DatasetRows rows = Read(
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"system\", "
      "\"content\": \"s\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n",
      {{"template", "llama2"}});
  EXPECT_TRUE(rows.examples.empty());
  EXPECT_EQ(Describe(rows.bad_rows),
            (std::vector<std::string>{
                "1: message 2 is a system message; template 'llama2' allows one only first"}));
}

}  // namespace
}  // namespace tune

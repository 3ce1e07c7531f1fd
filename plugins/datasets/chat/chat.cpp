// chat: JSONL of {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}]}.
//
// With template "auto" (the default) every example also carries its messages: the host renders
// the conversation with the model folder's own chat template when it has one, and learns every
// assistant turn. Otherwise, and with a named template, the prompt is every message before the
// last one rendered with the built-in template, ending with the assistant header; the completion
// is the last message, which must be the assistant's ("auto" falls back to chatml). The built-in
// templates follow the models' published chat formats:
//   chatml  <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
//           (completion ends with <|im_end|>, the turn end the model must learn to emit)
//   llama2  [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] ...
//           [/INST]  (the first <s> is left to the tokenizer's BOS; a system message may only
//           come first)
//   zephyr  <|system|>\n{content}</s>\n<|user|>\n{content}</s>\n ... <|assistant|>\n
// For llama2 and zephyr the end of turn is </s>, the tokenizer's EOS, which the host appends.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../common/json_rows.h"
#include "tune/dataset.h"

namespace {

enum class Template { kChatml, kLlama2, kZephyr };

struct Message {
  std::string role;
  std::string content;
};

// The prompt for `history` (every message before the final assistant message).
std::string RenderPrompt(Template format, const std::vector<Message>& history) {
  std::string prompt;
  switch (format) {
    case Template::kChatml:
      for (const Message& message : history) {
        prompt += "<|im_start|>";
        prompt += message.role;
        prompt += '\n';
        prompt += message.content;
        prompt += "<|im_end|>\n";
      }
      prompt += "<|im_start|>assistant\n";
      break;
    case Template::kZephyr:
      for (const Message& message : history) {
        prompt += "<|";
        prompt += message.role;
        prompt += "|>\n";
        prompt += message.content;
        prompt += "</s>\n";
      }
      prompt += "<|assistant|>\n";
      break;
    case Template::kLlama2: {
      bool in_instruction = false;  // after "[INST] ", before " [/INST]"
      for (const Message& message : history) {
        if (message.role == "system") {
          prompt += "[INST] <<SYS>>\n";
          prompt += message.content;
          prompt += "\n<</SYS>>\n\n";
          in_instruction = true;
        } else if (message.role == "user") {
          if (!in_instruction) prompt += "[INST] ";
          prompt += message.content;
          prompt += " [/INST]";
          in_instruction = false;
        } else {
          prompt += ' ';
          prompt += message.content;
          prompt += " </s><s>";
        }
      }
      if (in_instruction) prompt += " [/INST]";  // a system message with no user message after it
      prompt += ' ';
      break;
    }
  }
  return prompt;
}

class ChatDataset final : public tune::Dataset {
 public:
  // `keep_messages`: template "auto", which lets the model's own template render the messages.
  ChatDataset(Template format, bool keep_messages)
      : format_(format), keep_messages_(keep_messages) {}

  tune::DatasetRows Read(const std::filesystem::path& path) const override {
    return tune::datasets::ReadJsonLines(
        tune::datasets::ReadFileText(path),
        [&](const nlohmann::json& row, std::string& reason) { return Parse(row, reason); });
  }

 private:
  std::optional<tune::TextExample> Parse(const nlohmann::json& row, std::string& reason) const {
    if (!row.is_object()) {
      reason = "not a JSON object";
      return std::nullopt;
    }
    const auto messages = row.find("messages");
    if (messages == row.end()) {
      reason = "missing field 'messages'";
      return std::nullopt;
    }
    if (!messages->is_array() || messages->empty()) {
      reason = "field 'messages' is not a non-empty array";
      return std::nullopt;
    }
    std::vector<Message> history;
    for (size_t i = 0; i < messages->size(); ++i) {
      const nlohmann::json& item = (*messages)[i];
      std::string which = "message ";
      which += std::to_string(i + 1);
      if (!item.is_object()) {
        reason = which + " is not a JSON object";
        return std::nullopt;
      }
      std::string field_reason;
      const std::string* role = tune::datasets::StringField(item, "role", field_reason);
      const std::string* content =
          role == nullptr ? nullptr : tune::datasets::StringField(item, "content", field_reason);
      if (content == nullptr) {
        reason = which + ": " + field_reason;
        return std::nullopt;
      }
      if (*role != "system" && *role != "user" && *role != "assistant") {
        reason = which + " has unknown role '" + *role + "' (expected system, user or assistant)";
        return std::nullopt;
      }
      if (format_ == Template::kLlama2 && *role == "system" && i != 0) {
        reason = which + " is a system message; template 'llama2' allows one only first";
        return std::nullopt;
      }
      history.push_back({*role, *content});
    }
    if (history.back().role != "assistant") {
      reason = "last message is from '" + history.back().role + "', not the assistant";
      return std::nullopt;
    }
    if (history.back().content.empty()) {
      reason = "empty completion";
      return std::nullopt;
    }
    tune::TextExample example;
    if (keep_messages_) {
      for (const Message& message : history)
        example.messages.push_back({message.role, message.content});
    }
    example.completion = std::move(history.back().content);
    history.pop_back();
    example.prompt = RenderPrompt(format_, history);
    if (format_ == Template::kChatml) example.completion += "<|im_end|>";
    return example;
  }

  Template format_;
  bool keep_messages_;
};

void Register(tune::Registrar& registrar) {
  registrar.Add(tune::DatasetPlugin{
      .info = {.name = "chat",
               .version = "1.0.0",
               .description = "JSONL of {\"messages\": [{\"role\", \"content\"}]}, rendered with "
                              "the model's own chat template (every assistant turn learned) or a "
                              "built-in one (the last assistant message learned).",
               .options = {tune::OptionSpec::String(
                               "template", "auto",
                               "auto: the model folder's chat_template, else chatml; or a "
                               "built-in template")
                               .Choices({"auto", "chatml", "llama2", "zephyr"})}},
      .create = [](const tune::Options& options) -> std::unique_ptr<tune::Dataset> {
        const std::string& name = options.String("template");
        const Template format = name == "llama2"   ? Template::kLlama2
                                : name == "zephyr" ? Template::kZephyr
                                                   : Template::kChatml;
        return std::make_unique<ChatDataset>(format, name == "auto");
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

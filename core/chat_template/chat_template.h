// A model's own chat template, rendered as transformers' apply_chat_template renders it, and the
// spans of the rendered text that are the assistant's (what fine-tuning trains on).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "chat_template/jinja.h"
#include "tune/chat.h"
#include "util/error.h"

namespace tune {

// A template refused whatever the conversation: past one of jinja.h's limits (nesting, steps,
// text and list sizes). Not a bad row of a dataset, as a conversation the template refuses is:
// every row would fail the same way.
class TemplateRefused : public UserError {
 public:
  using UserError::UserError;
};

// A conversation rendered whole, with the [begin, end) byte ranges the assistant's messages
// became (each ends where the template ends the turn, e.g. after <|eot_id|> or <|im_end|>).
struct RenderedChat {
  std::string text;
  std::vector<std::pair<size_t, size_t>> assistant_spans;
};

class ChatTemplate {
 public:
  // The folder's template: chat_template.jinja, else chat_template.json's "chat_template", else
  // tokenizer_config.json's "chat_template" (a string, or a list of {name, template} of which
  // "default" is used). std::nullopt when the folder has none. The special tokens the template
  // sees (bos_token, eos_token, ...) are tokenizer_config.json's. Throws UserError naming the file
  // and the template's line for a template tune cannot parse (TemplateRefused past a limit).
  static std::optional<ChatTemplate> Load(const std::filesystem::path& dir);

  // `source` with the variables every render sees besides the messages (special tokens);
  // `where` names the template in errors ("DIR/tokenizer_config.json: chat_template").
  ChatTemplate(std::string_view source, jinja::Object variables, std::string where);

  // apply_chat_template(messages, tokenize=False, add_generation_prompt=...): tools and
  // documents are none. Throws UserError naming the template and line (a raise_exception in the
  // template included: it says why the conversation does not fit), TemplateRefused past a limit.
  std::string Render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  // The whole conversation and where each assistant message is in it: the assistant turn at
  // message i spans from the end of the conversation up to i rendered with the generation prompt
  // to the end of the conversation up to and including i. A template that renders earlier turns
  // differently once later ones follow (Mistral v0.3 writes the system message into the last user
  // turn only, and drops it when an assistant message ends the conversation) gets the last turn
  // as at inference instead: the history rendered with the generation prompt, then the last
  // message as the template writes it, which alone is learned. Throws UserError when the
  // conversation does not end with an assistant message.
  RenderedChat RenderWithAssistantSpans(const std::vector<ChatMessage>& messages) const;

  // What training evaluates a conversation on, and `tune data inspect --model` measures: the
  // prompt is the messages before the last one rendered with the generation prompt, the
  // completion the last message's content. Throws UserError as Render does.
  std::pair<std::string, std::string> PromptAndCompletion(
      const std::vector<ChatMessage>& messages) const;

  const std::string& where() const { return where_; }

 private:
  RenderedChat LastTurnAsAtInference(const std::vector<ChatMessage>& messages) const;

  std::shared_ptr<const jinja::Template> template_;
  jinja::Object variables_;
  std::string where_;
};

// JSON as a template value; objects keep their key order, as Python's dicts do.
jinja::Value JsonToValue(const nlohmann::ordered_json& json);

}  // namespace tune

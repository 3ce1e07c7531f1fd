#include "chat_template/chat_template.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/json_file.h"

namespace tune {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

// What a person can do about a template past a limit: it is the model folder's, not theirs.
constexpr const char* kRefusedHint =
    "; the template is broken or hostile: fix it, or render with a built-in template "
    "(dataset.template = \"chatml\", \"llama2\" or \"zephyr\")";

std::string ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw UserError(file.string() + ": cannot read; check its permissions");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

jinja::Value JsonToValue(const json& j) {
  if (j.is_null()) return jinja::Value(jinja::None{});
  if (j.is_boolean()) return jinja::Value(j.get<bool>());
  if (j.is_number_integer()) return jinja::Value(j.get<int64_t>());
  if (j.is_number()) return jinja::Value(j.get<double>());
  if (j.is_string()) return jinja::Value(j.get<std::string>());
  if (j.is_array()) {
    jinja::List list;
    for (const json& item : j) list.push_back(JsonToValue(item));
    return jinja::Value(std::move(list));
  }
  jinja::Object object;
  for (const auto& [key, value] : j.items()) object.Set(key, JsonToValue(value));
  return jinja::Value(std::move(object));
}

namespace {

// tokenizer_config.json's special tokens (bos_token, eos_token, unk_token, pad_token, ...): a
// string, or an AddedToken object whose "content" is the string.
jinja::Object SpecialTokens(const json& config) {
  jinja::Object variables;
  if (!config.is_object()) return variables;
  for (const auto& [key, value] : config.items()) {
    if (!key.ends_with("_token")) continue;
    if (value.is_string()) {
      variables.Set(key, jinja::Value(value.get<std::string>()));
    } else if (value.is_object() && value.contains("content") && value["content"].is_string()) {
      variables.Set(key, jinja::Value(value["content"].get<std::string>()));
    }
  }
  return variables;
}

}  // namespace

std::optional<ChatTemplate> ChatTemplate::Load(const fs::path& dir) {
  const fs::path config_file = dir / "tokenizer_config.json";
  std::error_code error;
  const json config = fs::exists(config_file, error) ? ReadJsonFile<json>(config_file) : json();
  jinja::Object variables = SpecialTokens(config);
  if (const fs::path file = dir / "chat_template.jinja"; fs::exists(file, error)) {
    return ChatTemplate(ReadFile(file), std::move(variables), file.string());
  }
  json source;
  std::string where;
  if (const fs::path file = dir / "chat_template.json"; fs::exists(file, error)) {
    const json doc = ReadJsonFile<json>(file);
    if (doc.is_object() && doc.contains("chat_template")) source = doc["chat_template"];
    where = file.string() + ": chat_template";
  } else if (config.is_object() && config.contains("chat_template")) {
    source = config["chat_template"];
    where = config_file.string() + ": chat_template";
  }
  if (source.is_null()) return std::nullopt;
  if (source.is_array()) {  // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
    json chosen;
    for (const json& entry : source) {
      if (entry.is_object() && entry.contains("name") && entry["name"] == "default" &&
          entry.contains("template")) {
        chosen = entry["template"];
      }
    }
    if (!chosen.is_string()) {
      throw UserError(where + " is a list without a template named \"default\"");
    }
    source = chosen;
    where += "[default]";
  }
  if (!source.is_string()) throw UserError(where + " is neither a string nor a list of templates");
  return ChatTemplate(source.get<std::string>(), std::move(variables), where);
}

ChatTemplate::ChatTemplate(std::string_view source, jinja::Object variables, std::string where)
    : variables_(std::move(variables)), where_(std::move(where)) {
  try {
    template_ = std::make_shared<const jinja::Template>(source);
  } catch (const jinja::TemplateLimit& e) {
    throw TemplateRefused(where_ + ", " + e.what() + kRefusedHint);
  } catch (const jinja::TemplateError& e) {
    throw UserError(where_ + ", " + e.what());
  }
}

std::string ChatTemplate::Render(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt) const {
  jinja::Object context = variables_;
  jinja::List list;
  for (const ChatMessage& message : messages) {
    jinja::Object m;
    m.Set("role", jinja::Value(message.role));
    m.Set("content", jinja::Value(message.content));
    list.emplace_back(std::move(m));
  }
  context.Set("messages", jinja::Value(std::move(list)));
  context.Set("add_generation_prompt", jinja::Value(add_generation_prompt));
  context.Set("tools", jinja::Value(jinja::None{}));
  context.Set("documents", jinja::Value(jinja::None{}));
  try {
    return template_->Render(context);
  } catch (const jinja::TemplateLimit& e) {
    throw TemplateRefused(where_ + ", " + e.what() + kRefusedHint);
  } catch (const jinja::TemplateError& e) {
    throw UserError(where_ + ", " + e.what());
  }
}

RenderedChat ChatTemplate::RenderWithAssistantSpans(
    const std::vector<ChatMessage>& messages) const {
  RenderedChat chat;
  chat.text = Render(messages, false);
  // Each assistant turn, while every earlier rendering is a prefix of the whole.
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role != "assistant") continue;
    const std::vector<ChatMessage> before(messages.begin(), messages.begin() + i);
    const std::vector<ChatMessage> through(messages.begin(), messages.begin() + i + 1);
    const std::string prompt = Render(before, true);
    const std::string turn = Render(through, false);
    if (!turn.starts_with(prompt) || !chat.text.starts_with(turn) ||
        (!chat.assistant_spans.empty() && prompt.size() < chat.assistant_spans.back().second)) {
      chat.assistant_spans.clear();
      break;
    }
    chat.assistant_spans.emplace_back(prompt.size(), turn.size());
  }
  if (!chat.assistant_spans.empty()) return chat;
  return LastTurnAsAtInference(messages);
}

RenderedChat ChatTemplate::LastTurnAsAtInference(const std::vector<ChatMessage>& messages) const {
  if (messages.empty() || messages.back().role != "assistant") {
    throw UserError(where_ + ": the conversation does not end with an assistant message");
  }
  // The last message's text as the template writes it, found by a marker in its place: what the
  // template puts after it (the end of turn), and the white space it puts before it that the
  // generation prompt does not end with.
  static constexpr std::string_view kMarker = "\x01tune-assistant-message\x01";
  std::vector<ChatMessage> marked = messages;
  marked.back().content = std::string(kMarker);
  const std::string with_marker = Render(marked, false);
  const size_t at = with_marker.find(kMarker);
  if (at == std::string::npos || with_marker.find(kMarker, at + 1) != std::string::npos) {
    throw UserError(where_ +
                    " does not write the last assistant message once, as given, so it "
                    "cannot be marked for training");
  }
  const std::vector<ChatMessage> history(messages.begin(), messages.end() - 1);
  RenderedChat chat;
  chat.text = Render(history, true);
  const auto blank = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  size_t before = 0, ended = 0;
  while (before < at && blank(with_marker[at - 1 - before])) ++before;
  while (ended < chat.text.size() && blank(chat.text[chat.text.size() - 1 - ended])) ++ended;
  const size_t begin = at - (before > ended ? before - ended : 0);
  const size_t prompt_size = chat.text.size();
  chat.text += with_marker.substr(begin, at - begin);
  chat.text += messages.back().content;
  chat.text += with_marker.substr(at + kMarker.size());
  chat.assistant_spans.emplace_back(prompt_size, chat.text.size());
  return chat;
}

std::pair<std::string, std::string> ChatTemplate::PromptAndCompletion(
    const std::vector<ChatMessage>& messages) const {
  if (messages.empty()) return {};
  const std::vector<ChatMessage> history(messages.begin(), messages.end() - 1);
  return {Render(history, true), messages.back().content};
}

}  // namespace tune

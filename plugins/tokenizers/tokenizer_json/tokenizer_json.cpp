#include "tokenizer_json.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "unicode.h"
#include "util/error.h"
#include "util/json_file.h"

namespace tune::tokenizer_json {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The piece of `doc` at `key`, or null.
const json& Member(const json& doc, const char* key) {
  static const json null;
  return doc.is_object() && doc.contains(key) ? doc[key] : null;
}

// The character of `text` that ends at byte `end` (exclusive), or empty at the start.
std::string_view CharBefore(std::string_view text, size_t end) {
  if (end == 0) return {};
  size_t begin = end - 1;
  while (begin > 0 && end - begin < 4 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) {
    --begin;
  }
  return text.substr(begin, end - begin);
}

std::string_view CharAt(std::string_view text, size_t at) {
  if (at >= text.size()) return {};
  const std::vector<std::string_view> chars = Utf8Chars(text.substr(at, 4));
  return chars.front();
}

}  // namespace

std::unique_ptr<TokenizerJson> TokenizerJson::Load(const fs::path& dir) {
  const fs::path file = dir / "tokenizer.json";
  std::unique_ptr<TokenizerJson> tokenizer(new TokenizerJson(file, ReadJsonFile(file)));
  tokenizer->ReadSpecialIds(dir);
  return tokenizer;
}

TokenizerJson::TokenizerJson(const fs::path& file, const json& doc)
    : file_(file.string()),
      normalizer_(Member(doc, "normalizer"), file_ + ": normalizer"),
      pre_tokenizer_(Member(doc, "pre_tokenizer"), file_ + ": pre_tokenizer"),
      model_(Member(doc, "model"), file_),
      decoder_(Member(doc, "decoder"), file_ + ": decoder") {
  vocab_size_ = static_cast<int32_t>(model_.tokens().size());
  ReadAddedTokens(Member(doc, "added_tokens"));
  ReadPostProcessor(Member(doc, "post_processor"), file_ + ": post_processor");
}

void TokenizerJson::ReadAddedTokens(const json& list) {
  if (list.is_null()) return;
  if (!list.is_array()) throw UserError(file_ + ": added_tokens is not an array");
  trie_.emplace_back();
  for (size_t i = 0; i < list.size(); ++i) {
    const json& entry = list[i];
    const std::string where = file_ + ": added_tokens[" + std::to_string(i) + "]";
    AddedToken token;
    try {
      token.content = entry.at("content").get<std::string>();
      const int64_t id = entry.at("id").get<int64_t>();
      if (id < 0 || id > INT32_MAX)
        throw UserError(where + ".id " + std::to_string(id) + " is out of range");
      token.id = static_cast<int32_t>(id);
      token.special = entry.value("special", false);
      token.single_word = entry.value("single_word", false);
      token.lstrip = entry.value("lstrip", false);
      token.rstrip = entry.value("rstrip", false);
    } catch (const json::exception& e) {
      throw UserError(where + " needs a string \"content\" and an integer \"id\" (" + e.what() +
                      ")");
    }
    if (token.content.empty()) throw UserError(where + ".content is empty");
    vocab_size_ = std::max(vocab_size_, token.id + 1);
    int32_t node = 0;
    for (const char c : token.content) {
      const auto byte = static_cast<unsigned char>(c);
      auto& next = trie_[node].next;
      const auto it =
          std::find_if(next.begin(), next.end(), [&](const auto& e) { return e.first == byte; });
      if (it != next.end()) {
        node = it->second;
      } else {
        trie_.emplace_back();
        trie_[node].next.emplace_back(byte, static_cast<int32_t>(trie_.size() - 1));
        node = static_cast<int32_t>(trie_.size() - 1);
      }
    }
    trie_[node].token = static_cast<int32_t>(added_.size());
    added_.push_back(std::move(token));
  }
  added_index_.assign(vocab_size_, -1);
  for (size_t i = 0; i < added_.size(); ++i) added_index_[added_[i].id] = static_cast<int32_t>(i);
}

void TokenizerJson::ReadPostProcessor(const json& spec, const std::string& where) {
  if (spec.is_null()) return;
  const std::string type = spec.value("type", std::string());
  if (type == "Sequence") {
    const json& list = Member(spec, "processors");
    for (size_t i = 0; i < list.size(); ++i) {
      ReadPostProcessor(list[i], where + ".processors[" + std::to_string(i) + "]");
    }
  } else if (type == "ByteLevel") {
    return;  // offsets only
  } else if (type == "TemplateProcessing") {
    const json& single = Member(spec, "single");
    if (!single.is_array() || single.empty()) return;
    const json& first = single[0];
    if (!first.contains("SpecialToken")) return;  // the sequence comes first: no BOS
    const std::string name = first["SpecialToken"].value("id", std::string());
    const json& ids = Member(Member(Member(spec, "special_tokens"), name.c_str()), "ids");
    if (!ids.is_array() || ids.size() != 1 || !ids[0].is_number_integer()) {
      throw UserError(where + ".special_tokens[\"" + name +
                      "\"].ids should hold the one id of the token put before the text");
    }
    bos_id_ = ids[0].get<int32_t>();
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    const json& cls = Member(spec, "cls");  // ["<s>", 0]
    if (!cls.is_array() || cls.size() != 2 || !cls[1].is_number_integer()) {
      throw UserError(where + ".cls should be [token, id]");
    }
    bos_id_ = cls[1].get<int32_t>();
  } else {
    throw UserError(where + ": post_processor type '" + type +
                    "' is not supported (tune reads TemplateProcessing, ByteLevel, "
                    "BertProcessing, RobertaProcessing and Sequence)");
  }
}

void TokenizerJson::ReadSpecialIds(const fs::path& dir) {
  const fs::path config_file = dir / "tokenizer_config.json";
  if (fs::exists(config_file)) {
    const json config = ReadJsonFile(config_file);
    const json& eos = Member(config, "eos_token");
    const std::string name = eos.is_string()   ? eos.get<std::string>()
                             : eos.is_object() ? eos.value("content", std::string())
                                               : std::string();
    if (!name.empty()) {
      const auto id = IdOf(name);
      if (!id) {
        throw UserError(config_file.string() + ": eos_token '" + name +
                        "' is neither an added token nor in the vocabulary of tokenizer.json");
      }
      eos_id_ = *id;
      return;
    }
  }
  const fs::path model_config = dir / "config.json";
  if (fs::exists(model_config)) {
    const json config = ReadJsonFile(model_config);
    const json& eos = Member(config, "eos_token_id");
    if (eos.is_number_integer()) eos_id_ = eos.get<int32_t>();
    if (eos.is_array() && !eos.empty() && eos[0].is_number_integer())
      eos_id_ = eos[0].get<int32_t>();
  }
}

std::optional<int32_t> TokenizerJson::IdOf(std::string_view token) const {
  for (const AddedToken& added : added_) {
    if (added.content == token) return added.id;
  }
  return model_.IdOf(token);
}

std::vector<TokenizerJson::AddedMatch> TokenizerJson::FindAddedTokens(std::string_view text) const {
  std::vector<AddedMatch> matches;
  if (added_.empty()) return matches;
  for (size_t at = 0; at < text.size();) {
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t j = at; j < text.size(); ++j) {
      const auto byte = static_cast<unsigned char>(text[j]);
      const auto& next = trie_[node].next;
      const auto it =
          std::find_if(next.begin(), next.end(), [&](const auto& e) { return e.first == byte; });
      if (it == next.end()) break;
      node = it->second;
      const int32_t token = trie_[node].token;
      if (token < 0) continue;
      if (added_[token].single_word &&
          (IsWordChar(CharBefore(text, at)) || IsWordChar(CharAt(text, j + 1)))) {
        continue;
      }
      best = token;
      best_end = j + 1;
    }
    if (best < 0) {
      ++at;
      continue;
    }
    matches.push_back({at, best_end, added_[best].id});
    at = best_end;
  }
  // lstrip and rstrip take the white space beside the token, up to the neighbouring matches.
  for (size_t i = 0; i < matches.size(); ++i) {
    const AddedToken& token = added_[added_index_[matches[i].id]];
    const size_t floor = i == 0 ? 0 : matches[i - 1].end;
    const size_t ceiling = i + 1 == matches.size() ? text.size() : matches[i + 1].begin;
    while (token.lstrip && matches[i].begin > floor) {
      const std::string_view ch = CharBefore(text, matches[i].begin);
      if (!IsWhitespace(ch)) break;
      matches[i].begin -= ch.size();
    }
    while (token.rstrip && matches[i].end < ceiling) {
      const std::string_view ch = CharAt(text, matches[i].end);
      if (!IsWhitespace(ch)) break;
      matches[i].end += ch.size();
    }
  }
  return matches;
}

void TokenizerJson::EncodePlain(std::string_view text, size_t begin, size_t end,
                                std::vector<int32_t>& ids) const {
  if (begin >= end) return;
  const std::string normalized = normalizer_.Apply(std::string(text.substr(begin, end - begin)));
  for (const Piece& piece : pre_tokenizer_.Apply({Piece{normalized, begin == 0}})) {
    model_.Encode(piece.text, ids);
  }
}

std::vector<int32_t> TokenizerJson::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  size_t at = 0;
  for (const AddedMatch& match : FindAddedTokens(text)) {
    EncodePlain(text, at, match.begin, ids);
    ids.push_back(match.id);
    at = match.end;
  }
  EncodePlain(text, at, text.size(), ids);
  return ids;
}

void TokenizerJson::CheckId(int32_t id) const {
  if (id < 0 || id >= vocab_size_) {
    throw UserError(file_ + ": token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                    std::to_string(vocab_size_ - 1) + ")");
  }
}

std::string TokenizerJson::TokenText(int32_t id) const {
  CheckId(id);
  const int32_t added = added_index_.empty() ? -1 : added_index_[id];
  if (added >= 0) return added_[added].content;
  return static_cast<size_t>(id) < model_.tokens().size() ? model_.tokens()[id] : std::string();
}

std::string TokenizerJson::Decode(std::span<const int32_t> ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    CheckId(id);
    const int32_t added = added_index_.empty() ? -1 : added_index_[id];
    if (added >= 0) {
      if (!added_[added].special) tokens.push_back(added_[added].content);
    } else if (static_cast<size_t>(id) < model_.tokens().size()) {
      tokens.push_back(model_.tokens()[id]);
    }
  }
  return decoder_.Apply(std::move(tokens));
}

}  // namespace tune::tokenizer_json

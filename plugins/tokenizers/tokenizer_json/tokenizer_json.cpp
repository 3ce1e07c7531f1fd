#include "tokenizer_json.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <unordered_map>

#include "tune/error.h"
#include "unicode.h"
#include "util/echo.h"
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

// What a JSON value is, for a message about it.
std::string Kind(const json& value) {
  return value.is_null() ? "null" : std::string("a JSON ") + value.type_name();
}

// The number of tokens `doc` lists, model.vocab and added_tokens: no id reaches it. The ids
// Hugging Face's tokenizers gives added tokens that are not in the vocabulary continue the
// vocabulary's, so a published file has no id past this; a 20 KB file with the id 300,000,000
// would otherwise cost gigabytes of tables.
int64_t IdLimit(const json& doc) {
  const json& vocab = Member(Member(doc, "model"), "vocab");
  const json& added = Member(doc, "added_tokens");
  return static_cast<int64_t>((vocab.is_object() ? vocab.size() : 0) +
                              (added.is_array() ? added.size() : 0));
}

}  // namespace

std::unique_ptr<TokenizerJson> TokenizerJson::Load(const fs::path& dir) {
  const fs::path file = dir / "tokenizer.json";
  const json doc = ReadJsonFile(file);
  if (!doc.is_object()) {
    throw UserError(file.string() + ": is " + Kind(doc) +
                    ", not a tokenizer (an object with a \"model\"); download it again");
  }
  if (!Member(doc, "model").is_object()) {
    throw UserError(file.string() + ": \"model\" is " +
                    (doc.contains("model") ? Kind(doc["model"]) : std::string("missing")) +
                    "; a tokenizer.json needs the object that holds its vocabulary and merges");
  }
  std::unique_ptr<TokenizerJson> tokenizer;
  try {
    tokenizer.reset(new TokenizerJson(file, doc));
  } catch (const json::exception& e) {
    // A value of another type than the format's, where no check names the key.
    throw UserError(file.string() + ": not a tokenizer.json tune can read (" + JsonErrorDetail(e) +
                    "); download it again");
  }
  tokenizer->ReadSpecialIds(dir);
  return tokenizer;
}

TokenizerJson::TokenizerJson(const fs::path& file, const json& doc)
    : file_(file.string()),
      normalizer_(Member(doc, "normalizer"), file_ + ": normalizer"),
      pre_tokenizer_(Member(doc, "pre_tokenizer"), file_ + ": pre_tokenizer"),
      model_(Member(doc, "model"), file_, IdLimit(doc)),
      decoder_(Member(doc, "decoder"), file_ + ": decoder") {
  vocab_size_ = static_cast<int32_t>(model_.tokens().size());
  ReadAddedTokens(Member(doc, "added_tokens"), IdLimit(doc));
  ReadPostProcessor(Member(doc, "post_processor"), file_ + ": post_processor", 0);
}

void TokenizerJson::ReadAddedTokens(const json& list, int64_t id_limit) {
  if (list.is_null()) return;
  if (!list.is_array()) throw UserError(file_ + ": added_tokens is not an array");
  trie_.emplace_back();
  std::unordered_map<int32_t, size_t> added_by_id;  // id -> index into added_
  for (size_t i = 0; i < list.size(); ++i) {
    const json& entry = list[i];
    const std::string where = file_ + ": added_tokens[" + std::to_string(i) + "]";
    AddedToken token;
    try {
      token.content = entry.at("content").get<std::string>();
      const int64_t id = entry.at("id").get<int64_t>();
      if (id < 0 || id >= id_limit) {
        throw UserError(where + ".id " + std::to_string(id) + " is not from 0 to " +
                        std::to_string(id_limit - 1) + " (ids count from 0 up to the number of " +
                        "tokens in model.vocab and added_tokens)");
      }
      token.id = static_cast<int32_t>(id);
      token.special = entry.value("special", false);
      token.single_word = entry.value("single_word", false);
      token.lstrip = entry.value("lstrip", false);
      token.rstrip = entry.value("rstrip", false);
    } catch (const json::exception& e) {
      throw UserError(where + " needs a string \"content\" and an integer \"id\" (" +
                      JsonErrorDetail(e) + ")");
    }
    if (token.content.empty()) throw UserError(where + ".content is empty");
    // One id is one token: an added token may repeat a vocabulary entry (Llama 2's <s>), not
    // take another's id, or one would print as the other.
    const std::string* other = nullptr;
    if (const auto earlier = added_by_id.find(token.id);
        earlier != added_by_id.end() && added_[earlier->second].content != token.content) {
      other = &added_[earlier->second].content;
    }
    const std::vector<std::string>& vocab = model_.tokens();
    if (static_cast<size_t>(token.id) < vocab.size() && model_.IdOf(vocab[token.id]) == token.id &&
        vocab[token.id] != token.content) {
      other = &vocab[token.id];
    }
    if (other != nullptr) {
      throw UserError(where + " gives id " + std::to_string(token.id) + " to \"" +
                      Echo(token.content, 40) + "\", which is already \"" + Echo(*other, 40) +
                      "\"'s; an id is one token (the file is damaged)");
    }
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
    added_by_id.emplace(token.id, added_.size());
    added_.push_back(std::move(token));
  }
  added_index_.assign(vocab_size_, -1);
  for (size_t i = 0; i < added_.size(); ++i) added_index_[added_[i].id] = static_cast<int32_t>(i);
}

void TokenizerJson::ReadPostProcessor(const json& spec, const std::string& where, int depth) {
  if (spec.is_null()) return;
  const std::string type = spec.value("type", std::string());
  if (type == "Sequence") {
    CheckSequenceDepth(depth + 1, where);
    const json& list = Member(spec, "processors");
    for (size_t i = 0; i < list.size(); ++i) {
      ReadPostProcessor(list[i], where + ".processors[" + std::to_string(i) + "]", depth + 1);
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
    bos_id_ = TokenId(ids[0], where + ".special_tokens[\"" + Echo(name, 40) + "\"].ids[0]");
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    const json& cls = Member(spec, "cls");  // ["<s>", 0]
    if (!cls.is_array() || cls.size() != 2 || !cls[1].is_number_integer()) {
      throw UserError(where + ".cls should be [token, id]");
    }
    bos_id_ = TokenId(cls[1], where + ".cls[1]");
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
    const json& content = Member(eos, "content");
    const std::string name = eos.is_string()       ? eos.get<std::string>()
                             : content.is_string() ? content.get<std::string>()
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
    const std::string where = model_config.string() + ": eos_token_id";
    if (eos.is_number_integer()) eos_id_ = TokenId(eos, where);
    if (eos.is_array() && !eos.empty() && eos[0].is_number_integer())
      eos_id_ = TokenId(eos[0], where + "[0]");
  }
}

int32_t TokenizerJson::TokenId(const json& value, const std::string& where) const {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      value.get<int64_t>() >= vocab_size_) {
    throw UserError(where + " = " + EchoJson(value) + " is not one of the tokenizer's ids (0 to " +
                    std::to_string(vocab_size_ - 1) + ")");
  }
  return static_cast<int32_t>(value.get<int64_t>());
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

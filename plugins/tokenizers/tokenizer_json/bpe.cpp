#include "bpe.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <queue>

#include "tune/error.h"
#include "unicode.h"
#include "util/echo.h"
#include "util/json_file.h"

namespace tune::tokenizer_json {
namespace {

using json = nlohmann::json;

std::string NullOr(const json& value) { return value.is_null() ? "null" : EchoJson(value); }

bool EmptyOrNull(const json& model, const char* key) {
  if (!model.contains(key)) return true;
  const json& value = model[key];
  return value.is_null() || (value.is_string() && value.get<std::string>().empty());
}

}  // namespace

Bpe::Bpe(const json& model, const std::string& file, int64_t id_limit) {
  const std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE") {
    throw UserError(file + ": model.type '" + type +
                    "' is not supported; tune reads BPE tokenizer.json files (a Unigram or "
                    "WordPiece model needs its own tokenizer plugin)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!EmptyOrNull(model, key)) {
      throw UserError(file + ": model." + key + " = " + EchoJson(model[key]) +
                      " is not supported; tune reads BPE models without subword markers");
    }
  }
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      model["dropout"].get<double>() != 0.0) {
    throw UserError(file + ": model.dropout = " + NullOr(model["dropout"]) +
                    " makes tokenization random; set it to null");
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    throw UserError(file + ": model.vocab is missing or not an object of token: id");
  }
  std::vector<bool> taken;
  for (const auto& [token, id] : model["vocab"].items()) {
    const std::string entry = file + ": model.vocab[\"" + Echo(token, 40) + "\"] = " + EchoJson(id);
    if (!id.is_number_integer() || id.get<int64_t>() < 0) {
      throw UserError(entry + " is not a token id (an integer from 0)");
    }
    if (id.get<int64_t>() >= id_limit) {
      throw UserError(entry + " is past the last id the file can have, " +
                      std::to_string(id_limit - 1) + " (ids count from 0 up to the number of " +
                      "tokens in model.vocab and added_tokens)");
    }
    const auto value = static_cast<int32_t>(id.get<int64_t>());
    if (tokens_.size() <= static_cast<size_t>(value)) {
      tokens_.resize(value + 1);
      taken.resize(value + 1);
    }
    if (taken[value]) {
      throw UserError(file + ": model.vocab gives id " + std::to_string(value) + " to both \"" +
                      Echo(tokens_[value], 40) + "\" and \"" + Echo(token, 40) +
                      "\"; an id is one token (the file is damaged)");
    }
    taken[value] = true;
    vocab_.emplace(token, value);
    tokens_[value] = token;
  }
  fuse_unk_ = model.value("fuse_unk", false);
  byte_fallback_ = model.value("byte_fallback", false);
  ignore_merges_ = model.value("ignore_merges", false);
  if (!EmptyOrNull(model, "unk_token")) {
    const std::string unk = model["unk_token"].get<std::string>();
    const auto it = vocab_.find(unk);
    if (it == vocab_.end()) {
      throw UserError(file + ": model.unk_token '" + unk + "' is not in model.vocab");
    }
    unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    const auto it = vocab_.find(name);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
  ReadMerges(model.value("merges", json::array()), file);
}

void Bpe::ReadMerges(const json& merges, const std::string& file) {
  if (!merges.is_array()) throw UserError(file + ": model.merges is not an array");
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& merge = merges[rank];
    std::string left, right;
    if (merge.is_string()) {  // "left right"
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        throw UserError(file + ": model.merges[" + std::to_string(rank) + "] = " + EchoJson(merge) +
                        " is not two tokens separated by one space");
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {  // ["left", "right"]
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      throw UserError(file + ": model.merges[" + std::to_string(rank) + "] = " + EchoJson(merge) +
                      " is neither \"left right\" nor [\"left\", \"right\"]");
    }
    const auto l = vocab_.find(left), r = vocab_.find(right), m = vocab_.find(left + right);
    if (l == vocab_.end() || r == vocab_.end() || m == vocab_.end()) {
      throw UserError(file + ": model.merges[" + std::to_string(rank) + "] = " + EchoJson(merge) +
                      " names a token that is not in model.vocab");
    }
    merges_.try_emplace(PairKey(l->second, r->second),
                        Merge{static_cast<int32_t>(rank), m->second});  // the first rank wins
  }
}

std::optional<int32_t> Bpe::IdOf(std::string_view token) const {
  const auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::vector<int32_t> Bpe::Symbols(std::string_view word) const {
  std::vector<int32_t> symbols;
  bool last_was_unk = false;
  for (const std::string_view ch : Utf8Chars(word)) {
    if (const auto it = vocab_.find(std::string(ch)); it != vocab_.end()) {
      symbols.push_back(it->second);
      last_was_unk = false;
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes = true;
      for (const char b : ch)
        all_bytes = all_bytes && byte_ids_[static_cast<unsigned char>(b)] >= 0;
      if (all_bytes) {
        for (const char b : ch) symbols.push_back(byte_ids_[static_cast<unsigned char>(b)]);
        last_was_unk = false;
        continue;
      }
    }
    if (!unk_id_.has_value()) continue;  // as the reference: a character with no id is dropped
    if (!(fuse_unk_ && last_was_unk)) symbols.push_back(*unk_id_);
    last_was_unk = true;
  }
  return symbols;
}

void Bpe::Encode(std::string_view word, std::vector<int32_t>& ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const auto it = vocab_.find(std::string(word)); it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  std::vector<int32_t> symbols = Symbols(word);
  const int n = static_cast<int>(symbols.size());
  // A doubly linked list over `symbols`; merged-away entries get id -1.
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  // Candidate merges, lowest rank first, then leftmost; stale entries are skipped when popped.
  struct Candidate {
    int32_t rank;
    int left;
    int32_t left_id, right_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto consider = [&](int left) {
    if (left < 0 || next[left] < 0) return;
    const auto it = merges_.find(PairKey(symbols[left], symbols[next[left]]));
    if (it != merges_.end()) {
      queue.push({it->second.rank, left, symbols[left], symbols[next[left]]});
    }
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    const int right = next[c.left];
    if (symbols[c.left] != c.left_id || right < 0 || symbols[right] != c.right_id) continue;
    symbols[c.left] = merges_.at(PairKey(c.left_id, c.right_id)).merged;
    symbols[right] = -1;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    consider(prev[c.left]);
    consider(c.left);
  }
  for (int i = 0; i < n; ++i) {
    if (symbols[i] >= 0) ids.push_back(symbols[i]);
  }
}

}  // namespace tune::tokenizer_json

// tokenizer.json's BPE model: a vocabulary, merges applied by rank, and what becomes of a
// character outside the vocabulary (byte fallback to <0xXX> pieces, an unknown token, fused or
// not). Works on one pre-tokenized word at a time.
//
// Immutable after construction; Encode may be called from several threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tune::tokenizer_json {

class Bpe {
 public:
  // Reads tokenizer.json's "model" object. Throws UserError naming `file` and the key for
  // anything it cannot reproduce (another model type, subword prefixes or suffixes, dropout, a
  // merge of pieces outside the vocabulary), for an id outside 0 .. `id_limit` - 1 and for two
  // tokens with one id.
  Bpe(const nlohmann::json& model, const std::string& file, int64_t id_limit);

  // Appends the ids of `word`.
  void Encode(std::string_view word, std::vector<int32_t>& ids) const;

  std::optional<int32_t> IdOf(std::string_view token) const;
  // The vocabulary, by id; ids the vocabulary skips are empty strings.
  const std::vector<std::string>& tokens() const { return tokens_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  void ReadMerges(const nlohmann::json& merges, const std::string& file);
  // The ids `word`'s characters start as, before any merge.
  std::vector<int32_t> Symbols(std::string_view word) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> tokens_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_ids_{};  // <0xXX> pieces; -1 where absent
};

}  // namespace tune::tokenizer_json

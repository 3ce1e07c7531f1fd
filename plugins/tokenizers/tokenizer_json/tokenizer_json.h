// The tokenizer of a Hugging Face tokenizer.json: byte-level BPE as GPT-2, Llama 3 and Qwen2 ship
// it, and the sentencepiece-style BPE of Llama 2 and Mistral folders (Metaspace or Prepend and
// Replace, byte fallback). Text goes through the added tokens (matched whole, leftmost-longest,
// on the raw text), the normalizer, the pre-tokenizer and the BPE model, as the Rust library
// does; pipeline.h lists the steps it reads.
//
// Thread-safe: every method is const and may be called from several threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bpe.h"
#include "pipeline.h"
#include "tune/tokenizer.h"

namespace tune::tokenizer_json {

class TokenizerJson final : public Tokenizer {
 public:
  // Reads dir/tokenizer.json; the end-of-sequence token comes from dir/tokenizer_config.json's
  // eos_token, else config.json's eos_token_id; BOS is the token the post-processor puts first.
  // Throws UserError naming the file and key of anything it cannot reproduce, of an id outside
  // 0 .. N - 1 where N is the number of tokens the file lists (model.vocab and added_tokens: the
  // ids Hugging Face's tokenizers gives them stay below it), and of one id given to two tokens.
  static std::unique_ptr<TokenizerJson> Load(const std::filesystem::path& dir);

  std::vector<int32_t> Encode(std::string_view text) const override;
  // Special added tokens decode to nothing, as transformers' skip_special_tokens=True.
  std::string Decode(std::span<const int32_t> ids) const override;
  std::string TokenText(int32_t id) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }

 private:
  struct AddedToken {
    std::string content;
    int32_t id = 0;
    bool special = false;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
  };
  // An added token found in the text, with the white space its lstrip/rstrip take.
  struct AddedMatch {
    size_t begin, end;
    int32_t id;
  };

  TokenizerJson(const std::filesystem::path& file, const nlohmann::json& doc);
  // Every id is below `id_limit` (IdLimit in tokenizer_json.cpp).
  void ReadAddedTokens(const nlohmann::json& list, int64_t id_limit);
  // `depth`: the Sequences around `spec`.
  void ReadPostProcessor(const nlohmann::json& spec, const std::string& where, int depth);
  void ReadSpecialIds(const std::filesystem::path& dir);
  std::optional<int32_t> IdOf(std::string_view token) const;
  // `value` as an id of this tokenizer; UserError naming `where` when it is none.
  int32_t TokenId(const nlohmann::json& value, const std::string& where) const;
  void CheckId(int32_t id) const;
  std::vector<AddedMatch> FindAddedTokens(std::string_view text) const;
  // Normalises, pre-tokenizes and encodes text[begin, end), which holds no added token.
  void EncodePlain(std::string_view text, size_t begin, size_t end,
                   std::vector<int32_t>& ids) const;

  std::string file_;
  Normalizer normalizer_;
  PreTokenizer pre_tokenizer_;
  Bpe model_;
  Decoder decoder_;
  std::vector<AddedToken> added_;
  std::vector<int32_t> added_index_;  // id -> index into added_, or -1
  // A trie over the added tokens' bytes: node -> (byte -> node); a node ends added_[token].
  struct TrieNode {
    std::vector<std::pair<unsigned char, int32_t>> next;
    int32_t token = -1;
  };
  std::vector<TrieNode> trie_;
  int32_t vocab_size_ = 0;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
};

}  // namespace tune::tokenizer_json

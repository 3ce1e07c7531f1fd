// The tokenizer of models that ship a sentencepiece tokenizer.model (Llama 2, Mistral, T5-style
// unigram models): BPE and unigram, with the model's normalisation rule (normalizer.h).
//
// Implemented here rather than with libsentencepiece: Debian's libsentencepiece carries its own
// copy of protobuf 3.14, whose symbols libtorch's protobuf 3.21 overrides in one process, and
// sentencepiece then aborts. The file format (a protobuf ModelProto) and the BPE encoding are
// small; tests check every result against Python's sentencepiece.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tune/tokenizer.h"

namespace tune::sentencepiece {

class Normalizer;

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Loads dir/tokenizer.model. BOS and EOS come from dir/config.json when it names them
  // (bos_token_id, eos_token_id: an id or a list whose first id counts), otherwise from the model
  // file. Throws UserError naming the file for anything it cannot reproduce exactly (word and char
  // models, whitespace as a suffix).
  static std::unique_ptr<SentencePieceTokenizer> Load(const std::filesystem::path& dir);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> Encode(std::string_view text) const override;
  std::string Decode(std::span<const int32_t> ids) const override;
  std::string TokenText(int32_t id) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }

  // sentencepiece's piece types, as stored in the file.
  enum class PieceType {
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6
  };
  struct Piece {
    std::string text;
    float score = 0;
    PieceType type = PieceType::kNormal;
  };

 private:
  SentencePieceTokenizer() = default;
  int32_t IdOf(std::string_view piece) const;  // unk_id_ when absent
  std::vector<int32_t> EncodeBpe(const std::string& normalized) const;
  std::vector<int32_t> EncodeUnigram(const std::string& normalized) const;
  // `id`, or with byte fallback the <0xXX> pieces of an unknown piece's bytes; an unknown piece
  // right after another adds nothing.
  void AppendPiece(std::string_view piece, int32_t id, std::vector<int32_t>& ids) const;

  std::filesystem::path file_;
  std::vector<Piece> pieces_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string> user_defined_;  // matched whole before BPE, longest first
  int32_t unk_id_ = 0;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  int32_t byte_ids_[256] = {};  // <0xXX> pieces; valid when byte_fallback_
  bool byte_fallback_ = false;
  bool unigram_ = false;
  std::unique_ptr<Normalizer> normalizer_;
  float min_score_ = 0;  // over normal pieces (unigram's unknown and user-defined scores)
  float max_score_ = 0;
  size_t longest_piece_ = 0;  // in bytes
};

}  // namespace tune::sentencepiece

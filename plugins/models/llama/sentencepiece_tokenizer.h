// The tokenizer of Llama-family models that ship tokenizer.model: a sentencepiece BPE model.
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

namespace tune::llama {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Loads dir/tokenizer.model. BOS and EOS come from config.json when it names them (ids >= 0),
  // otherwise from the model file. Throws UserError naming the file for anything it cannot
  // reproduce exactly (unigram models, normalisation rules other than identity); a directory
  // with only tokenizer.json is refused with the list of supported tokenizer files.
  static std::unique_ptr<SentencePieceTokenizer> Load(const std::filesystem::path& dir,
                                                      int32_t config_bos_id, int32_t config_eos_id);

  std::vector<int32_t> Encode(std::string_view text) const override;
  std::string Decode(std::span<const int32_t> ids) const override;
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

  std::filesystem::path file_;
  std::vector<Piece> pieces_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string> user_defined_;  // matched whole before BPE, longest first
  int32_t unk_id_ = 0;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  int32_t byte_ids_[256] = {};  // <0xXX> pieces; valid when byte_fallback_
  bool byte_fallback_ = false;
  bool add_dummy_prefix_ = true;
  bool remove_extra_whitespaces_ = true;
};

}  // namespace tune::llama

// The text steps of a tokenizer.json around its model: the normalizer, the pre-tokenizer and the
// decoder, each read from its JSON object into a list of steps.
//
// Supported, as the published Llama 2/3, Mistral, Qwen2 and GPT-2 files use them:
//   normalizers     NFC NFKC NFD NFKD Lowercase Prepend Replace Strip Sequence
//   pre-tokenizers  Split (Isolated, Removed, MergedWithPrevious, MergedWithNext; invert) ByteLevel
//                   Metaspace Sequence
//   decoders        ByteLevel Metaspace Replace ByteFallback Fuse Strip Sequence
// Anything else is refused by name, with the JSON path of the step. A Sequence may hold Sequences
// up to kMaxSequenceDepth levels deep (published files nest one); deeper is refused, as the file
// is untrusted and each level costs stack when text goes through the steps.
//
// Immutable after construction; every method may be called from several threads at once.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tune::tokenizer_json {

inline constexpr int kMaxSequenceDepth = 32;

// Throws UserError if a Sequence at `depth` (1: the outermost) is past kMaxSequenceDepth. `where`
// names the file and the step's key.
void CheckSequenceDepth(int depth, const std::string& where);

class Normalizer {
 public:
  // `where` names the file and key in errors ("DIR/tokenizer.json: normalizer").
  Normalizer(const nlohmann::json& spec, const std::string& where) : Normalizer(spec, where, 0) {}
  std::string Apply(std::string text) const;

 private:
  // `depth`: the Sequences around `spec`.
  Normalizer(const nlohmann::json& spec, const std::string& where, int depth);

  std::vector<std::function<std::string(std::string)>> steps_;
};

// A piece of text on its way to the model. `at_start`: it begins at the start of the input
// (Metaspace's prepend_scheme "first" adds its marker only there).
struct Piece {
  std::string text;
  bool at_start = false;
};

class PreTokenizer {
 public:
  PreTokenizer(const nlohmann::json& spec, const std::string& where)
      : PreTokenizer(spec, where, 0) {}
  std::vector<Piece> Apply(std::vector<Piece> pieces) const;

 private:
  PreTokenizer(const nlohmann::json& spec, const std::string& where, int depth);

  std::vector<std::function<std::vector<Piece>(std::vector<Piece>)>> steps_;
};

class Decoder {
 public:
  Decoder(const nlohmann::json& spec, const std::string& where) : Decoder(spec, where, 0) {}
  // The text of `tokens` (vocabulary strings, in order).
  std::string Apply(std::vector<std::string> tokens) const;

 private:
  Decoder(const nlohmann::json& spec, const std::string& where, int depth);

  std::vector<std::function<std::vector<std::string>(std::vector<std::string>)>> steps_;
};

}  // namespace tune::tokenizer_json

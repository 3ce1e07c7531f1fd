#include "sentencepiece_tokenizer.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <queue>
#include <sstream>

#include <nlohmann/json.hpp>

#include "normalizer.h"
#include "tune/error.h"
#include "util/json_file.h"

namespace tune::sentencepiece {
namespace {

// "▁" (U+2581), sentencepiece's visible space.
constexpr std::string_view kSpace = "\xE2\x96\x81";

// Reads protobuf wire format: just what ModelProto needs.
class WireReader {
 public:
  WireReader(std::string_view bytes, const std::filesystem::path& file)
      : bytes_(bytes), file_(file) {}

  bool done() const { return at_ == bytes_.size(); }

  // The next field's number and wire type.
  std::pair<uint32_t, uint32_t> Tag() {
    const uint64_t tag = Varint();
    return {static_cast<uint32_t>(tag >> 3), static_cast<uint32_t>(tag & 7)};
  }
  uint64_t Varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at_ >= bytes_.size()) Truncated();
      const uint8_t byte = static_cast<uint8_t>(bytes_[at_++]);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    Corrupt();
  }
  std::string_view Bytes() {
    const uint64_t size = Varint();
    if (size > bytes_.size() - at_) Truncated();
    const std::string_view out = bytes_.substr(at_, size);
    at_ += size;
    return out;
  }
  float Fixed32Float() {
    if (bytes_.size() - at_ < 4) Truncated();
    float value;
    std::memcpy(&value, bytes_.data() + at_, 4);
    at_ += 4;
    return value;
  }
  void Skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0:
        Varint();
        return;
      case 1:
        Advance(8);
        return;
      case 2:
        Bytes();
        return;
      case 5:
        Advance(4);
        return;
      default:
        Corrupt();
    }
  }
  // A record that runs past the end: most likely a download cut short.
  [[noreturn]] void Truncated() const {
    throw UserError(file_.string() + ": the file ends inside a record (" +
                    std::to_string(bytes_.size()) +
                    " bytes): it is truncated; copy tokenizer.model again from the model's "
                    "download");
  }
  [[noreturn]] void Corrupt() const {
    throw UserError(file_.string() + ": not a sentencepiece model (malformed protobuf at byte " +
                    std::to_string(at_) + ")");
  }

 private:
  void Advance(size_t n) {
    if (bytes_.size() - at_ < n) Truncated();
    at_ += n;
  }
  std::string_view bytes_;
  size_t at_ = 0;
  const std::filesystem::path& file_;
};

size_t Utf8Length(char first) {
  const auto byte = static_cast<unsigned char>(first);
  if (byte < 0x80) return 1;
  if ((byte >> 5) == 0x6) return 2;
  if ((byte >> 4) == 0xE) return 3;
  if ((byte >> 3) == 0x1E) return 4;
  return 1;  // a stray continuation byte stands alone, as in sentencepiece
}

// Appends `bytes`, each byte that does not belong to a valid UTF-8 character replaced by U+FFFD,
// as sentencepiece decodes byte pieces.
void AppendUtf8OrReplacement(std::string& out, std::string_view bytes) {
  while (!bytes.empty()) {
    const size_t length = ValidUtf8Length(bytes);
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      bytes.remove_prefix(1);
    } else {
      out.append(bytes.substr(0, length));
      bytes.remove_prefix(length);
    }
  }
}

// config.json's `key` ("eos_token_id"): an id, or a list whose first id counts; -1 when the
// file or the key is absent.
int32_t ConfigTokenId(const std::filesystem::path& dir, const char* key) {
  const std::filesystem::path file = dir / "config.json";
  std::error_code error;
  if (!std::filesystem::exists(file, error)) return -1;
  const nlohmann::json config = ReadJsonFile(file);
  if (!config.is_object() || !config.contains(key) || config[key].is_null()) return -1;
  nlohmann::json value = config[key];
  if (value.is_array() && !value.empty()) value = value[0];
  if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > INT32_MAX) {
    throw UserError(file.string() + ": '" + key + "' = " + config[key].dump() +
                    " is not a token id");
  }
  return value.get<int32_t>();
}

}  // namespace

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::Load(
    const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "tokenizer.model";
  std::ifstream in(file, std::ios::binary);
  if (!in) throw UserError(file.string() + ": cannot read; check that it exists and is readable");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();

  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  t->file_ = file;
  int model_type = 1;  // sentencepiece's default: unigram
  bool whitespace_as_suffix = false;
  NormalizerSettings normalizer;
  int32_t bos = 1, eos = 2;
  WireReader model(bytes, file);
  while (!model.done()) {
    const auto [field, wire] = model.Tag();
    if (field == 1 && wire == 2) {  // repeated SentencePiece pieces
      WireReader piece(model.Bytes(), file);
      Piece p;
      while (!piece.done()) {
        const auto [f, w] = piece.Tag();
        if (f == 1 && w == 2)
          p.text = std::string(piece.Bytes());
        else if (f == 2 && w == 5)
          p.score = piece.Fixed32Float();
        else if (f == 3 && w == 0)
          p.type = static_cast<PieceType>(piece.Varint());
        else
          piece.Skip(w);
      }
      t->pieces_.push_back(std::move(p));
    } else if (field == 2 && wire == 2) {  // TrainerSpec
      WireReader spec(model.Bytes(), file);
      while (!spec.done()) {
        const auto [f, w] = spec.Tag();
        if (w != 0) {
          spec.Skip(w);
          continue;
        }
        const auto value = static_cast<int64_t>(spec.Varint());
        if (f == 3)
          model_type = static_cast<int>(value);
        else if (f == 24)
          whitespace_as_suffix = value != 0;
        else if (f == 35)
          t->byte_fallback_ = value != 0;
        else if (f == 40)
          t->unk_id_ = static_cast<int32_t>(value);
        else if (f == 41)
          bos = static_cast<int32_t>(value);
        else if (f == 42)
          eos = static_cast<int32_t>(value);
      }
    } else if (field == 3 && wire == 2) {  // NormalizerSpec
      WireReader spec(model.Bytes(), file);
      while (!spec.done()) {
        const auto [f, w] = spec.Tag();
        if (f == 2 && w == 2)
          normalizer.precompiled_charsmap = std::string(spec.Bytes());
        else if (f == 3 && w == 0)
          normalizer.add_dummy_prefix = spec.Varint() != 0;
        else if (f == 4 && w == 0)
          normalizer.remove_extra_whitespaces = spec.Varint() != 0;
        else if (f == 5 && w == 0)
          normalizer.escape_whitespaces = spec.Varint() != 0;
        else
          spec.Skip(w);
      }
    } else {
      model.Skip(wire);
    }
  }
  if (t->pieces_.empty())
    throw UserError(file.string() + ": the sentencepiece model has no pieces");
  if (model_type != 1 && model_type != 2) {
    throw UserError(file.string() + ": sentencepiece model type " + std::to_string(model_type) +
                    " (word or char) is not supported; tune reads unigram (1) and BPE (2) models");
  }
  t->unigram_ = model_type == 1;
  if (whitespace_as_suffix) {
    throw UserError(file.string() + ": treat_whitespace_as_suffix is not supported");
  }
  const auto count = static_cast<int32_t>(t->pieces_.size());
  for (int32_t id = 0; id < count; ++id) {
    const Piece& p = t->pieces_[static_cast<size_t>(id)];
    t->ids_.emplace(p.text, id);
    if (p.type == PieceType::kUserDefined) t->user_defined_.push_back(p.text);
    if (p.type == PieceType::kByte) {
      unsigned value = 0;
      if (std::sscanf(p.text.c_str(), "<0x%02X>", &value) == 1 && value < 256) {
        t->byte_ids_[value] = id;
      }
    }
  }
  std::sort(t->user_defined_.begin(), t->user_defined_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  normalizer.user_defined = t->user_defined_;
  t->normalizer_ = std::make_unique<Normalizer>(std::move(normalizer), file);
  bool any_normal = false;
  for (const Piece& p : t->pieces_) {
    if (p.type != PieceType::kNormal) continue;
    t->min_score_ = any_normal ? std::min(t->min_score_, p.score) : p.score;
    t->max_score_ = any_normal ? std::max(t->max_score_, p.score) : p.score;
    t->longest_piece_ = std::max(t->longest_piece_, p.text.size());
    any_normal = true;
  }
  for (const std::string& user : t->user_defined_) {
    t->longest_piece_ = std::max(t->longest_piece_, user.size());
  }
  if (t->unk_id_ < 0 || t->unk_id_ >= count) {
    throw UserError(file.string() + ": unk_id " + std::to_string(t->unk_id_) +
                    " is outside the vocabulary");
  }
  const int32_t config_bos_id = ConfigTokenId(dir, "bos_token_id");
  const int32_t config_eos_id = ConfigTokenId(dir, "eos_token_id");
  t->bos_id_ = config_bos_id >= 0 ? config_bos_id : (bos < count ? bos : -1);
  t->eos_id_ = config_eos_id >= 0 ? config_eos_id : (eos < count ? eos : -1);
  return t;
}

int32_t SentencePieceTokenizer::IdOf(std::string_view piece) const {
  const auto it = ids_.find(std::string(piece));
  return it == ids_.end() ? unk_id_ : it->second;
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int32_t> SentencePieceTokenizer::Encode(std::string_view text) const {
  const std::string normalized = normalizer_->Normalize(text);
  if (normalized.empty()) return {};
  return unigram_ ? EncodeUnigram(normalized) : EncodeBpe(normalized);
}

void SentencePieceTokenizer::AppendPiece(std::string_view piece, int32_t id,
                                         std::vector<int32_t>& ids) const {
  if (id == unk_id_ && byte_fallback_) {
    for (const char byte : piece) ids.push_back(byte_ids_[static_cast<unsigned char>(byte)]);
  } else if (!(id == unk_id_ && !ids.empty() && ids.back() == unk_id_)) {
    ids.push_back(id);  // a run of unknown pieces is one, as sentencepiece gives it
  }
}

// sentencepiece's unigram_model.cc EncodeOptimized: the segmentation with the highest total
// score (Viterbi over the pieces that match at each character), user-defined pieces preferred
// (length x the best score - 0.1), an unmatched character one unknown piece at the lowest score
// - 10.
std::vector<int32_t> SentencePieceTokenizer::EncodeUnigram(const std::string& normalized) const {
  struct Best {
    int32_t id = -1;
    float score = 0;
    int64_t starts_at = -1;
  };
  constexpr float kUnknownPenalty = 10.0f;
  const auto size = static_cast<int64_t>(normalized.size());
  std::vector<Best> best(static_cast<size_t>(size) + 1);
  for (int64_t start = 0; start < size;) {
    const float so_far = best[static_cast<size_t>(start)].score;
    const auto char_length = static_cast<int64_t>(std::min<size_t>(
        Utf8Length(normalized[static_cast<size_t>(start)]), static_cast<size_t>(size - start)));
    bool single_character = false;
    const auto offer = [&](int64_t end, int32_t id, float score) {
      Best& target = best[static_cast<size_t>(end)];
      if (target.starts_at == -1 || so_far + score > target.score) {
        target = {id, so_far + score, start};
      }
    };
    for (int64_t length = 1;
         length <= static_cast<int64_t>(longest_piece_) && start + length <= size; ++length) {
      const auto it =
          ids_.find(normalized.substr(static_cast<size_t>(start), static_cast<size_t>(length)));
      if (it == ids_.end()) continue;
      const Piece& piece = pieces_[static_cast<size_t>(it->second)];
      if (piece.type != PieceType::kNormal && piece.type != PieceType::kUserDefined) continue;
      offer(start + length, it->second,
            piece.type == PieceType::kUserDefined ? static_cast<float>(length) * max_score_ - 0.1f
                                                  : piece.score);
      single_character = single_character || length == char_length;
    }
    if (!single_character) offer(start + char_length, unk_id_, min_score_ - kUnknownPenalty);
    start += char_length;
  }
  std::vector<std::pair<std::string_view, int32_t>> path;
  for (int64_t end = size; end > 0;) {
    const Best& node = best[static_cast<size_t>(end)];
    path.emplace_back(
        std::string_view(normalized)
            .substr(static_cast<size_t>(node.starts_at), static_cast<size_t>(end - node.starts_at)),
        node.id);
    end = node.starts_at;
  }
  std::vector<int32_t> ids;
  for (auto it = path.rbegin(); it != path.rend(); ++it) AppendPiece(it->first, it->second, ids);
  return ids;
}

std::vector<int32_t> SentencePieceTokenizer::EncodeBpe(const std::string& normalized) const {
  // Symbols: user-defined pieces whole, otherwise one UTF-8 character each.
  struct Symbol {
    size_t begin, length;
    int prev, next;
  };
  std::vector<Symbol> symbols;
  for (size_t at = 0; at < normalized.size();) {
    size_t length = 0;
    for (const std::string& user : user_defined_) {
      if (normalized.compare(at, user.size(), user) == 0) {
        length = user.size();
        break;
      }
    }
    if (length == 0) length = std::min(Utf8Length(normalized[at]), normalized.size() - at);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({at, length, index - 1, index + 1});
    at += length;
  }
  symbols.back().next = -1;

  // BPE: repeatedly merge the adjacent pair whose union is the highest-scoring piece (ties to
  // the leftmost pair), as sentencepiece's bpe_model.cc does. Stale queue entries are skipped.
  struct Pair {
    int left, right;
    float score;
    size_t length;
  };
  auto lower = [](const Pair& a, const Pair& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(lower)> agenda(lower);
  auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t length =
        symbols[static_cast<size_t>(left)].length + symbols[static_cast<size_t>(right)].length;
    const auto it = ids_.find(normalized.substr(symbols[static_cast<size_t>(left)].begin, length));
    if (it == ids_.end() || it->second == unk_id_ ||
        pieces_[static_cast<size_t>(it->second)].type == PieceType::kUnused) {
      return;
    }
    agenda.push({left, right, pieces_[static_cast<size_t>(it->second)].score, length});
  };
  for (size_t i = 1; i < symbols.size(); ++i)
    consider(static_cast<int>(i - 1), static_cast<int>(i));
  while (!agenda.empty()) {
    const Pair top = agenda.top();
    agenda.pop();
    Symbol& left = symbols[static_cast<size_t>(top.left)];
    Symbol& right = symbols[static_cast<size_t>(top.right)];
    if (left.length == 0 || right.length == 0 || left.length + right.length != top.length) continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.left;
    consider(left.prev, top.left);
    consider(top.left, left.next);
  }

  std::vector<int32_t> ids;
  for (int i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
    const Symbol& symbol = symbols[static_cast<size_t>(i)];
    const std::string_view piece(normalized.data() + symbol.begin, symbol.length);
    AppendPiece(piece, IdOf(piece), ids);
  }
  return ids;
}

std::string SentencePieceTokenizer::TokenText(int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw UserError(file_.string() + ": token id " + std::to_string(id) +
                    " is outside the vocabulary (0.." + std::to_string(vocab_size() - 1) + ")");
  }
  return pieces_[static_cast<size_t>(id)].text;
}

std::string SentencePieceTokenizer::Decode(std::span<const int32_t> ids) const {
  std::string text;
  std::string bytes;  // consecutive <0xXX> pieces, turned into text together
  bool prefix_removed = false;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw UserError(file_.string() + ": token id " + std::to_string(id) +
                      " is outside the vocabulary (0.." + std::to_string(vocab_size() - 1) + ")");
    }
    const Piece& piece = pieces_[static_cast<size_t>(id)];
    if (piece.type == PieceType::kByte) {
      bytes.push_back(static_cast<char>(std::find(std::begin(byte_ids_), std::end(byte_ids_), id) -
                                        std::begin(byte_ids_)));
      continue;
    }
    AppendUtf8OrReplacement(text, bytes);
    bytes.clear();
    if (piece.type == PieceType::kUnknown) {
      text += " \xE2\x81\x87 ";  // " ⁇ ", sentencepiece's surface for unknown pieces
    } else if (piece.type != PieceType::kControl) {
      // The first space symbol at the start of the text is the dummy prefix, not text.
      const bool prefix =
          !prefix_removed && text.empty() && std::string_view(piece.text).starts_with(kSpace);
      prefix_removed = prefix_removed || prefix;
      text += std::string_view(piece.text).substr(prefix ? kSpace.size() : 0);
    }
  }
  AppendUtf8OrReplacement(text, bytes);
  std::string out;
  for (size_t at = 0; at < text.size();) {
    if (text.compare(at, kSpace.size(), kSpace) == 0) {
      out.push_back(' ');
      at += kSpace.size();
    } else {
      out.push_back(text[at++]);
    }
  }
  return out;
}

}  // namespace tune::sentencepiece

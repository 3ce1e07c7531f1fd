#include "normalizer.h"

#include <cstring>

#include "tune/error.h"

namespace tune::sentencepiece {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";        // "▁"
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// darts-clone's unit encoding.
bool HasLeaf(uint32_t unit) { return ((unit >> 8) & 1) == 1; }
uint32_t Value(uint32_t unit) { return unit & ((1U << 31) - 1); }
uint32_t Label(uint32_t unit) { return unit & ((1U << 31) | 0xFF); }
uint32_t Offset(uint32_t unit) { return (unit >> 10) << ((unit & (1U << 9)) >> 6); }

}  // namespace

size_t ValidUtf8Length(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  if (s.empty()) return 0;
  if (b(0) < 0x80) return 1;
  const size_t n = (b(0) >> 5) == 0x6 ? 2 : (b(0) >> 4) == 0xE ? 3 : (b(0) >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || s.size() < n) return 0;
  uint32_t code = b(0) & (0xFF >> (n + 1));
  for (size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (b(i) & 0x3F);
  }
  static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < kSmallest[n] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return n;
}

Normalizer::Normalizer(NormalizerSettings settings, const std::filesystem::path& file)
    : settings_(std::move(settings)) {
  const std::string& blob = settings_.precompiled_charsmap;
  if (blob.empty()) return;
  // uint32 little-endian trie size in bytes, the trie, then the replacement strings.
  uint32_t trie_bytes = 0;
  if (blob.size() < 4)
    throw UserError(file.string() + ": the precompiled character map is truncated");
  std::memcpy(&trie_bytes, blob.data(), 4);
  if (trie_bytes % 4 != 0 || trie_bytes > blob.size() - 4 || trie_bytes == 0) {
    throw UserError(file.string() + ": the precompiled character map is malformed (trie of " +
                    std::to_string(trie_bytes) + " bytes in " + std::to_string(blob.size()) + ")");
  }
  trie_.resize(trie_bytes / 4);
  std::memcpy(trie_.data(), blob.data() + 4, trie_bytes);
  normalized_ = blob.substr(4 + trie_bytes);
}

std::pair<std::string_view, size_t> Normalizer::NormalizePrefix(std::string_view input) const {
  for (const std::string& user : settings_.user_defined) {
    if (input.starts_with(user)) return {input.substr(0, user.size()), user.size()};
  }
  size_t longest = 0;
  uint32_t value = 0;
  if (!trie_.empty()) {
    size_t node = Offset(trie_[0]);
    for (size_t i = 0; i < input.size(); ++i) {
      node ^= static_cast<unsigned char>(input[i]);
      if (node >= trie_.size()) break;
      const uint32_t unit = trie_[node];
      if (Label(unit) != static_cast<unsigned char>(input[i])) break;
      node ^= Offset(unit);
      if (node >= trie_.size()) break;
      if (HasLeaf(unit)) {
        longest = i + 1;
        value = Value(trie_[node]);
      }
    }
  }
  if (longest > 0 && value < normalized_.size()) {
    return {std::string_view(normalized_.c_str() + value), longest};
  }
  const size_t length = ValidUtf8Length(input);
  if (length == 0) return {kReplacement, 1};
  return {input.substr(0, length), length};
}

std::string Normalizer::Normalize(std::string_view input) const {
  std::string out;
  if (input.empty()) return out;
  const std::string_view space = settings_.escape_whitespaces ? kSpace : std::string_view(" ");
  if (settings_.add_dummy_prefix) out += space;
  bool previous_space = settings_.remove_extra_whitespaces;
  while (!input.empty()) {
    auto [piece, consumed] = NormalizePrefix(input);
    if (previous_space) {
      while (!piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    }
    if (!piece.empty()) {
      for (const char c : piece) {
        if (settings_.escape_whitespaces && c == ' ') {
          out += kSpace;
        } else {
          out += c;
        }
      }
      previous_space = piece.back() == ' ';
    }
    input.remove_prefix(consumed);
    if (!settings_.remove_extra_whitespaces) previous_space = false;
  }
  size_t kept = out.size();
  while (settings_.remove_extra_whitespaces && kept >= space.size() &&
         std::string_view(out).substr(kept - space.size(), space.size()) == space) {
    kept -= space.size();
  }
  out.erase(kept);
  return out;
}

}  // namespace tune::sentencepiece

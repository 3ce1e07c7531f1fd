// sentencepiece's normaliser (normalizer.cc): the model's precompiled character map (a
// darts-clone double-array trie of byte sequences and the strings they become: NFKC for the
// default nmt_nfkc rule), user-defined pieces passed through whole, extra white space removed,
// the dummy prefix, and spaces written as "▁".
//
// Immutable after construction; Normalize may be called from several threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace tune::sentencepiece {

// Length of the valid UTF-8 character at the start of `s` (RFC 3629: no overlong forms, no
// surrogates, at most U+10FFFF), or 0 if it does not start with one.
size_t ValidUtf8Length(std::string_view s);

struct NormalizerSettings {
  std::string precompiled_charsmap;  // empty: the identity rule
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
  std::vector<std::string> user_defined;  // matched whole, before the map, longest first
};

class Normalizer {
 public:
  // Throws UserError naming `file` when the character map is malformed.
  Normalizer(NormalizerSettings settings, const std::filesystem::path& file);

  std::string Normalize(std::string_view text) const;

 private:
  // The normalised form of the longest rule that matches the start of `input`, and the bytes it
  // consumes; without a match one character (U+FFFD for a malformed byte) stands for itself.
  std::pair<std::string_view, size_t> NormalizePrefix(std::string_view input) const;

  NormalizerSettings settings_;
  std::vector<uint32_t> trie_;  // darts-clone units
  std::string normalized_;      // NUL-terminated replacement strings, indexed by trie values
};

}  // namespace tune::sentencepiece

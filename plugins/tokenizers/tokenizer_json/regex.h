// A PCRE2 pattern compiled for tokenizer.json's Split pre-tokenizers: UTF-8 with Unicode properties
// (PCRE2_UTF | PCRE2_UCP, so \p{L}, \s and \w follow Unicode) over text that may hold invalid
// UTF-8 (PCRE2_MATCH_INVALID_UTF: such bytes never match a character class, and never throw).
//
// Immutable after construction; FindAll may be called from several threads at once.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pcre2_real_code_8;

namespace tune::tokenizer_json {

class Regex {
 public:
  // Throws std::invalid_argument with PCRE2's message and the offset in `pattern`.
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // The [begin, end) byte spans of the non-overlapping, non-empty matches, left to right.
  std::vector<std::pair<size_t, size_t>> FindAll(std::string_view text) const;

  // `text` with every character PCRE2 treats as special escaped, to match it literally.
  static std::string Quote(std::string_view text);

 private:
  pcre2_real_code_8* code_;
};

}  // namespace tune::tokenizer_json

// Text normalisation shared by answer-matching metrics, following the SQuAD v1.1 evaluation
// script (Rajpurkar et al., 2016): lower-case, drop ASCII punctuation, drop the articles
// "a", "an", "the", collapse whitespace. Each step can be turned off.
//
// Operates on bytes: case folding and punctuation are ASCII only; bytes of multi-byte UTF-8
// characters count as word characters and pass through unchanged.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tune/options.h"

namespace tune {

struct NormalizeOptions {
  bool lowercase = true;
  bool strip_punctuation = true;
  bool strip_articles = true;
  bool collapse_whitespace = true;
};

namespace text_detail {
inline bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
inline bool IsPunct(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u < 0x80 && ((u >= '!' && u <= '/') || (u >= ':' && u <= '@') || (u >= '[' && u <= '`') ||
                      (u >= '{' && u <= '~'));
}
// A regex \w character: ASCII letters, digits, '_', and any non-ASCII byte.
inline bool IsWordChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u >= 0x80 || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
         u == '_';
}
}  // namespace text_detail

// Splits on runs of ASCII whitespace, dropping empty pieces: Python's str.split() on ASCII text
// (Python also splits on Unicode spaces such as U+00A0; this does not).
inline std::vector<std::string> SplitWhitespace(std::string_view s) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && text_detail::IsSpace(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !text_detail::IsSpace(s[i])) ++i;
    if (i > start) words.emplace_back(s.substr(start, i - start));
  }
  return words;
}

inline std::string NormalizeText(std::string_view s, const NormalizeOptions& options) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (options.strip_punctuation && text_detail::IsPunct(c)) continue;
    if (options.lowercase && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    out.push_back(c);
  }
  if (options.strip_articles) {
    // Replace each whole word "a", "an" or "the" with one space, as re.sub(r'\b(a|an|the)\b', ' ').
    std::string kept;
    kept.reserve(out.size());
    size_t i = 0;
    while (i < out.size()) {
      if (!text_detail::IsWordChar(out[i])) {
        kept.push_back(out[i++]);
        continue;
      }
      size_t start = i;
      while (i < out.size() && text_detail::IsWordChar(out[i])) ++i;
      std::string_view word(out.data() + start, i - start);
      if (word == "a" || word == "an" || word == "the") {
        kept.push_back(' ');
      } else {
        kept.append(word);
      }
    }
    out = std::move(kept);
  }
  if (options.collapse_whitespace) {
    std::string joined;
    for (const std::string& word : SplitWhitespace(out)) {
      if (!joined.empty()) joined.push_back(' ');
      joined += word;
    }
    out = std::move(joined);
  }
  return out;
}

// The four steps as plugin options, so every metric that normalises offers the same keys.
inline std::vector<OptionSpec> NormalizeOptionSpecs() {
  return {
      OptionSpec::Bool("lowercase", true, "Compare ASCII letters case-insensitively."),
      OptionSpec::Bool("strip_punctuation", true, "Ignore ASCII punctuation."),
      OptionSpec::Bool("strip_articles", true, "Ignore the words 'a', 'an' and 'the'."),
      OptionSpec::Bool("collapse_whitespace", true,
                       "Treat runs of whitespace as one space; ignore leading and trailing space."),
  };
}

inline NormalizeOptions NormalizeOptionsFrom(const Options& options) {
  return {options.Bool("lowercase"), options.Bool("strip_punctuation"),
          options.Bool("strip_articles"), options.Bool("collapse_whitespace")};
}

}  // namespace tune

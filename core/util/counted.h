// A count with its noun, in the singular for one: Counted(1, "version") is "1 version",
// Counted(3, "version") is "3 versions"; nouns whose plural is not noun + "s" name it. Grouped
// writes a count with thousands separators, as a summary line shows it: 4812 is "4,812".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tune {

inline std::string Grouped(int64_t n) {
  const std::string digits = std::to_string(n < 0 ? -n : n);
  std::string text = n < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) text += ',';
    text += digits[i];
  }
  return text;
}

// `digits` (n written out) followed by the noun, singular for one.
inline std::string CountedAs(std::string digits, int64_t n, std::string_view noun,
                             std::string_view plural) {
  digits += ' ';
  if (n == 1) return digits.append(noun);
  return plural.empty() ? digits.append(noun).append("s") : digits.append(plural);
}

inline std::string Counted(int64_t n, std::string_view noun, std::string_view plural = {}) {
  return CountedAs(std::to_string(n), n, noun, plural);
}

// Counted with Grouped's digits: "4,812 rows".
inline std::string CountedGrouped(int64_t n, std::string_view noun, std::string_view plural = {}) {
  return CountedAs(Grouped(n), n, noun, plural);
}

}  // namespace tune

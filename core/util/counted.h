// A count with its noun, in the singular for one: Counted(1, "version") is "1 version",
// Counted(3, "version") is "3 versions"; nouns whose plural is not noun + "s" name it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tune {

inline std::string Counted(int64_t n, std::string_view noun, std::string_view plural = {}) {
  std::string text = std::to_string(n) + " ";
  if (n == 1) return text.append(noun);
  return plural.empty() ? text.append(noun).append("s") : text.append(plural);
}

}  // namespace tune

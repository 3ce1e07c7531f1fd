// Numbers as people read them and as TOML reads them back: the shortest text that parses to the
// same double (0.003, not 0.0030000000000000001), integers without a point or exponent
// (1048576, not 1.04858e+06), and inf, -inf, nan.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

namespace tune {

inline std::string NumberText(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (std::floor(value) == value && std::abs(value) < 9007199254740992.0) {  // 2^53: exact
    return std::to_string(static_cast<int64_t>(value));
  }
  char text[32];
  const auto result = std::to_chars(text, text + sizeof(text), value);
  return std::string(text, result.ptr);
}

}  // namespace tune

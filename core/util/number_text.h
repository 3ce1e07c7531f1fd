// Numbers as people read them and as TOML reads them back: the shortest text that parses to the
// same double, in fixed notation from 1e-4 up to 1e16 and in scientific notation outside (the
// rule of Python's repr: 0.003, 0.0001, 1e-05, 1e+16, never 0.0030000000000000001).
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace tune {

// The shortest round-trip text of a finite `value`; integral values keep no point ("16").
inline std::string ShortestText(double value) {
  char text[64];
  const auto scientific =
      std::to_chars(text, text + sizeof(text), value, std::chars_format::scientific);
  const std::string written(text, scientific.ptr);
  const int exponent = std::atoi(written.c_str() + written.find('e') + 1);
  if (exponent < -4 || exponent >= 16) return written;
  const auto fixed = std::to_chars(text, text + sizeof(text), value, std::chars_format::fixed);
  return std::string(text, fixed.ptr);
}

// For messages: integers as integers (1048576, not 1.04858e+06), and inf, -inf, nan.
inline std::string NumberText(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (std::floor(value) == value && std::abs(value) < 9007199254740992.0) {  // 2^53: exact
    return std::to_string(static_cast<int64_t>(value));
  }
  return ShortestText(value);
}

}  // namespace tune

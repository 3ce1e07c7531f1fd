// User input as an error message repeats it: on one line and short. Control characters are
// escaped (\n, \t, \xNN) and text past `max_bytes` is cut at a character boundary and marked with
// "...", so a pasted file or a 10,000-character argument cannot flood or break the message.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tune {

inline std::string Echo(std::string_view text, size_t max_bytes = 80) {
  size_t end = text.size();
  if (end > max_bytes) {
    end = max_bytes;
    // Back up over UTF-8 continuation bytes, so no character is cut in two.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  }
  static const char* kHex = "0123456789abcdef";
  std::string echoed;
  for (size_t i = 0; i < end; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      echoed.append("\\n");
    } else if (c == '\t') {
      echoed.append("\\t");
    } else if (c < 0x20 || c == 0x7f) {
      echoed.append("\\x").append(1, kHex[c >> 4]).append(1, kHex[c & 15]);
    } else {
      echoed.push_back(static_cast<char>(c));
    }
  }
  if (end < text.size()) echoed.append("...");
  return echoed;
}

}  // namespace tune

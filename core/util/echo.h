// User input as an error message repeats it: on one line, short, and valid UTF-8. Control
// characters and bytes that are not UTF-8 are escaped (\n, \t, \xNN), and text past `max_bytes`
// is cut at a character boundary and marked with "...", so a pasted file, a 10,000-character
// argument or a Latin-1 dataset row cannot flood or break the message (or the JSON it goes into).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tune {

// The length of the well-formed UTF-8 sequence at the start of `text`, or 0 if there is none.
inline size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
  }
  return length;
}

inline std::string Echo(std::string_view text, size_t max_bytes = 80) {
  static const char* kHex = "0123456789abcdef";
  std::string echoed;
  size_t i = 0;
  while (i < text.size() && i < max_bytes) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t length = Utf8SequenceLength(text.substr(i));
    if (length > 1) {
      if (i + length > max_bytes) break;  // no character is cut in two
      echoed.append(text.substr(i, length));
    } else if (c == '\n') {
      echoed.append("\\n");
    } else if (c == '\t') {
      echoed.append("\\t");
    } else if (length == 0 || c < 0x20 || c == 0x7f) {
      echoed.append("\\x").append(1, kHex[c >> 4]).append(1, kHex[c & 15]);
    } else {
      echoed.push_back(static_cast<char>(c));
    }
    i += length > 1 ? length : 1;
  }
  if (i < text.size()) echoed.append("...");
  return echoed;
}

}  // namespace tune

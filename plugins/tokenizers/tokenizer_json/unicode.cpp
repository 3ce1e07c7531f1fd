#include "unicode.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

namespace tune::tokenizer_json {
namespace {

// Length of the valid UTF-8 sequence at text[at], or 0 when the bytes there are not one.
size_t ValidSequenceLength(std::string_view text, size_t at) {
  utf8proc_int32_t code_point = 0;
  const utf8proc_ssize_t n =
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + at),
                       static_cast<utf8proc_ssize_t>(text.size() - at), &code_point);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

struct ByteLevelTables {
  std::array<std::string, 256> chars;  // byte -> its character, UTF-8
  std::array<int16_t, 324> byte_of{};  // code point (< 324) -> byte, or -1
  ByteLevelTables() {
    byte_of.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const char32_t c =
          printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      chars[b] = EncodeUtf8(c);
      byte_of[c] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTables& Tables() {
  static const ByteLevelTables tables;
  return tables;
}

}  // namespace

std::vector<std::string_view> Utf8Chars(std::string_view text) {
  std::vector<std::string_view> chars;
  chars.reserve(text.size());
  for (size_t at = 0; at < text.size();) {
    const size_t n = std::max<size_t>(ValidSequenceLength(text, at), 1);
    chars.push_back(text.substr(at, n));
    at += n;
  }
  return chars;
}

namespace {

utf8proc_int32_t CodePoint(std::string_view ch) {
  utf8proc_int32_t c = -1;
  utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(ch.data()),
                   static_cast<utf8proc_ssize_t>(ch.size()), &c);
  return c;
}

}  // namespace

bool IsWhitespace(std::string_view ch) {
  const utf8proc_int32_t c = CodePoint(ch);
  if (c < 0) return false;
  if ((c >= 9 && c <= 13) || c == 0x85) return true;
  const utf8proc_category_t category = utf8proc_category(c);
  return category == UTF8PROC_CATEGORY_ZS || category == UTF8PROC_CATEGORY_ZL ||
         category == UTF8PROC_CATEGORY_ZP;
}

bool IsWordChar(std::string_view ch) {
  const utf8proc_int32_t c = CodePoint(ch);
  if (c == '_') return true;
  if (c < 0) return false;
  switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

std::string EncodeUtf8(char32_t c) {
  utf8proc_uint8_t buffer[4];
  const utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buffer);
  return std::string(reinterpret_cast<const char*>(buffer), static_cast<size_t>(n));
}

std::string ToByteLevel(std::string_view bytes) {
  const ByteLevelTables& tables = Tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char b : bytes) out += tables.chars[static_cast<unsigned char>(b)];
  return out;
}

std::string FromByteLevel(std::string_view text) {
  const ByteLevelTables& tables = Tables();
  std::string out;
  out.reserve(text.size());
  for (const std::string_view ch : Utf8Chars(text)) {
    utf8proc_int32_t c = -1;
    utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(ch.data()),
                     static_cast<utf8proc_ssize_t>(ch.size()), &c);
    if (c >= 0 && c < static_cast<utf8proc_int32_t>(tables.byte_of.size()) &&
        tables.byte_of[c] >= 0) {
      out.push_back(static_cast<char>(tables.byte_of[c]));
    } else {
      out += ch;
    }
  }
  return out;
}

std::string Normalize(std::string_view text, NormalForm form) {
  int options = UTF8PROC_STABLE;
  switch (form) {
    case NormalForm::kNfc:
      options |= UTF8PROC_COMPOSE;
      break;
    case NormalForm::kNfkc:
      options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
      break;
    case NormalForm::kNfd:
      options |= UTF8PROC_DECOMPOSE;
      break;
    case NormalForm::kNfkd:
      options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
      break;
  }
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &result,
                                          static_cast<utf8proc_option_t>(options));
  if (n < 0) return std::string(text);
  const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(result, &std::free);
  return std::string(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
}

std::string Lowercase(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const std::string_view ch : Utf8Chars(text)) {
    utf8proc_int32_t c = -1;
    if (ValidSequenceLength(ch, 0) == ch.size()) {
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(ch.data()),
                       static_cast<utf8proc_ssize_t>(ch.size()), &c);
    }
    out += c < 0 ? std::string(ch) : EncodeUtf8(static_cast<char32_t>(utf8proc_tolower(c)));
  }
  return out;
}

}  // namespace tune::tokenizer_json

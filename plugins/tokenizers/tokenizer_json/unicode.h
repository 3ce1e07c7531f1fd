// UTF-8 and GPT-2's byte-level alphabet, as tokenizer.json files use them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tune::tokenizer_json {

// Splits `text` into characters: each valid UTF-8 sequence, and each byte of an invalid one.
std::vector<std::string_view> Utf8Chars(std::string_view text);

// The UTF-8 encoding of code point `c`.
std::string EncodeUtf8(char32_t c);

// Whether the character `ch` (one UTF-8 sequence) is white space: Unicode's Zs, Zl, Zp and the
// ASCII and C1 controls that are spaces, as Rust's char::is_whitespace.
bool IsWhitespace(std::string_view ch);
// Whether `ch` is a letter, a number or '_' (a regex \w character), as Rust's alphanumeric.
bool IsWordChar(std::string_view ch);

// GPT-2's byte-level alphabet: every byte stands as one printable character ('Ġ' for a space).
std::string ToByteLevel(std::string_view bytes);
// The bytes byte-level text stands for; characters outside the alphabet are kept as UTF-8.
std::string FromByteLevel(std::string_view text);

// Unicode normalisation forms (utf8proc). Invalid UTF-8 is returned unchanged.
enum class NormalForm { kNfc, kNfkc, kNfd, kNfkd };
std::string Normalize(std::string_view text, NormalForm form);
std::string Lowercase(std::string_view text);

}  // namespace tune::tokenizer_json

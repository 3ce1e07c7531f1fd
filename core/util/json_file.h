// JSON files of a model folder (tokenizer.json, tokenizer_config.json, config.json, ...), which
// people download: untrusted input, read with its nesting bounded.
//
// nlohmann::json parses and destroys without recursion, but copies, compares, dumps and converts
// documents recursively: a 200 KB file nested 100,000 deep parses, then overflows the stack the
// first time one of those touches it. Published files nest fewer than 10 levels.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "util/echo.h"
#include "util/error.h"

namespace tune {

inline constexpr int kMaxJsonDepth = 128;

// Throws UserError "FILE:LINE:COLUMN: ..." at the first array or object nested deeper than
// kMaxJsonDepth. Only brackets outside strings count; whether `text` is valid JSON is left to the
// parser.
inline void CheckJsonDepth(std::string_view text, const std::string& file) {
  int depth = 0;
  size_t line = 1, line_start = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      line_start = i + 1;
    } else if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        throw UserError(file + ":" + std::to_string(line) + ":" +
                        std::to_string(i - line_start + 1) + ": JSON nested deeper than " +
                        std::to_string(kMaxJsonDepth) +
                        " levels (tune's limit for a model folder's files; published ones nest "
                        "fewer than 10); the file is damaged or not what it claims to be");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// What nlohmann::json says went wrong, without its bracketed id ("[json.exception.type_error.302]
// type must be string, but is number" -> "type must be string, but is number"), cut and escaped.
inline std::string JsonErrorDetail(const nlohmann::json::exception& error) {
  std::string_view detail = error.what();
  if (const size_t id_end = detail.find("] "); id_end != std::string_view::npos) {
    detail.remove_prefix(id_end + 2);
  }
  return Echo(detail, 240);
}

// `text`, the contents of `file`, parsed. Throws UserError naming the file for nesting past
// kMaxJsonDepth and for text that is not JSON. Json: nlohmann::json or nlohmann::ordered_json.
template <typename Json = nlohmann::json>
Json ParseJsonFile(const std::string& text, const std::string& file) {
  CheckJsonDepth(text, file);
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw UserError(file + ": not valid JSON (" + JsonErrorDetail(e) +
                    "); download it again or fix it");
  }
}

// `value` as JSON text to repeat in an error message: cut and escaped as Echo does, with bytes
// that are not UTF-8 replaced (dump() would throw on them).
template <typename Json>
std::string EchoJson(const Json& value, size_t max_bytes = 80) {
  return Echo(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), max_bytes);
}

// Reads and parses `file` as ParseJsonFile does; UserError when it cannot be read.
template <typename Json = nlohmann::json>
Json ReadJsonFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw UserError(file.string() + ": cannot read; check that it exists and is readable");
  std::stringstream text;
  text << in.rdbuf();
  return ParseJsonFile<Json>(text.str(), file.string());
}

}  // namespace tune

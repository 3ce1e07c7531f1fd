// What the built-in dataset plugins share: reading a file line by line and describing bad JSON.
// Header-only, so that each plugin stays one self-contained library.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tune/dataset.h"

namespace tune::datasets {

// The whole of `path`; throws std::runtime_error naming it if it cannot be read.
inline std::string ReadFileText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open dataset file " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read dataset file " + path.string());
  std::string result = std::move(text).str();
  if (result.starts_with("\xEF\xBB\xBF")) result.erase(0, 3);  // a UTF-8 byte-order mark
  return result;
}

inline bool IsBlank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// nlohmann's parse error without its "[json.exception.parse_error.101] " prefix.
inline std::string DescribeParseError(const nlohmann::json::exception& e) {
  std::string_view what = e.what();
  if (what.starts_with("[json.exception.")) {
    if (size_t end = what.find("] "); end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  std::string reason = "not JSON: ";
  reason += what;
  return reason;
}

// Calls `row(line_number, line_text)` for each line of `text` that is not blank, without its
// line ending (LF or CRLF). Line numbers are 1-based.
template <typename Row>
void ForEachLine(std::string_view text, Row&& row) {
  int64_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (!IsBlank(line)) row(line_number, line);
  }
}

// The JSON value `line` holds, or nullopt with `reason` set.
inline std::optional<nlohmann::json> ParseLine(std::string_view line, std::string& reason) {
  try {
    return nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    reason = DescribeParseError(e);
    return std::nullopt;
  }
}

// The rows of JSONL `text`: each non-blank line is parsed as JSON and handed to
// `parse(row, reason)`, which returns the example or nullopt with `reason` set. A line that is not
// JSON or that `parse` refuses becomes a bad row; each keeps its 1-based line number.
template <typename Parse>
DatasetRows ReadJsonLines(std::string_view text, Parse&& parse) {
  DatasetRows rows;
  ForEachLine(text, [&](int64_t line, std::string_view line_text) {
    std::string reason;
    const std::optional<nlohmann::json> row = ParseLine(line_text, reason);
    std::optional<TextExample> example = row ? parse(*row, reason) : std::nullopt;
    if (example) {
      example->line = line;
      rows.examples.push_back(std::move(*example));
    } else {
      rows.bad_rows.push_back({line, std::move(reason)});
    }
  });
  return rows;
}

// The string field `name` of `object`, or nullptr with `reason` set.
inline const std::string* StringField(const nlohmann::json& object, const std::string& name,
                                      std::string& reason) {
  const auto it = object.find(name);
  if (it == object.end()) {
    reason = "missing field '";
    reason += name;
    reason += "'";
    return nullptr;
  }
  if (!it->is_string()) {
    reason = "field '";
    reason += name;
    reason += "' is not a string";
    return nullptr;
  }
  return it->get_ptr<const std::string*>();
}

}  // namespace tune::datasets

#include "util/toml_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include "util/number_text.h"

namespace tune {
namespace {

bool IsBareKey(std::string_view key) {
  if (key.empty()) return false;
  for (const char c : key) {
    const bool bare = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-';
    if (!bare) return false;
  }
  return true;
}

// A literal string ('text') when the text allows one, as toml++ writes it; a basic string with
// escapes otherwise.
std::string StringText(std::string_view text) {
  const bool literal_ok = std::none_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == '\'' || (u < 0x20 && c != '\t') || u == 0x7f;
  });
  // Built with append: GCC 12 reports a false -Wrestrict for "'" + std::string(...).
  if (literal_ok) return std::string("'").append(text).append("'");
  static const char* kHex = "0123456789ABCDEF";
  std::string quoted = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        quoted += "\\\"";
        break;
      case '\\':
        quoted += "\\\\";
        break;
      case '\n':
        quoted += "\\n";
        break;
      case '\t':
        quoted += "\\t";
        break;
      case '\r':
        quoted += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          quoted.append("\\u00").append(1, kHex[u >> 4]).append(1, kHex[u & 15]);
        } else {
          quoted += c;
        }
    }
  }
  return quoted.append("\"");
}

std::string KeyText(std::string_view key) {
  return IsBareKey(key) ? std::string(key) : StringText(key);
}

std::string FloatText(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  std::string written = ShortestText(value);
  // TOML floats need a point or an exponent: 16 would read back as an integer.
  if (written.find_first_of(".e") == std::string::npos) written += ".0";
  return written;
}

// Whether `node` is written as a [header] section rather than as key = value.
bool IsSection(const toml::node& node) {
  if (const toml::table* table = node.as_table()) return !table->is_inline();
  if (const toml::array* array = node.as_array()) {
    return !array->empty() && array->is_array_of_tables();
  }
  return false;
}

void WriteTable(const toml::table& table, const std::string& path, int depth, std::string& out) {
  const std::string indent(static_cast<size_t>(depth > 1 ? 4 * (depth - 1) : 0), ' ');
  for (const auto& [key, node] : table) {
    if (IsSection(node)) continue;
    out.append(indent).append(KeyText(key.str())).append(" = ").append(TomlValueText(node));
    out.append("\n");
  }
  // Tables, then arrays of tables, as toml++ orders them.
  for (const bool arrays : {false, true}) {
    for (const auto& [key, node] : table) {
      if (!IsSection(node) || node.is_array() != arrays) continue;
      std::string inner = path;
      if (!inner.empty()) inner.append(".");
      inner.append(KeyText(key.str()));
      const std::string header_indent(static_cast<size_t>(depth > 0 ? 4 * depth : 0), ' ');
      if (const toml::table* section = node.as_table()) {
        if (!out.empty()) out += "\n";
        out.append(header_indent).append("[").append(inner).append("]\n");
        WriteTable(*section, inner, depth + 1, out);
      } else {
        for (const toml::node& element : *node.as_array()) {
          if (!out.empty()) out += "\n";
          out.append(header_indent).append("[[").append(inner).append("]]\n");
          WriteTable(*element.as_table(), inner, depth + 1, out);
        }
      }
    }
  }
}

}  // namespace

std::string TomlValueText(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return StringText(node.as_string()->get());
    case toml::node_type::integer:
      return std::to_string(node.as_integer()->get());
    case toml::node_type::floating_point:
      return FloatText(node.as_floating_point()->get());
    case toml::node_type::boolean:
      return node.as_boolean()->get() ? "true" : "false";
    case toml::node_type::array: {
      const toml::array& array = *node.as_array();
      if (array.empty()) return "[]";
      std::string text = "[ ";
      for (size_t i = 0; i < array.size(); ++i) {
        text.append(i > 0 ? ", " : "").append(TomlValueText(*array.get(i)));
      }
      return text.append(" ]");
    }
    case toml::node_type::table: {
      const toml::table& table = *node.as_table();
      if (table.empty()) return "{}";
      std::string text = "{ ";
      bool first = true;
      for (const auto& [key, value] : table) {
        text.append(first ? "" : ", ").append(KeyText(key.str())).append(" = ");
        text.append(TomlValueText(value));
        first = false;
      }
      return text.append(" }");
    }
    default: {  // dates and times: toml++ writes them exactly
      std::ostringstream text;
      node.visit([&](const auto& leaf) { text << leaf; });
      return text.str();
    }
  }
}

std::string TomlText(const toml::table& table) {
  std::string out;
  WriteTable(table, "", 0, out);
  return out;
}

}  // namespace tune

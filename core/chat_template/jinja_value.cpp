// Values of the Jinja subset (jinja.h): Python's truthiness, str(), repr() and json.dumps().
#include <charconv>
#include <cmath>
#include <cstdio>
#include <variant>

#include "chat_template/jinja.h"
#include "chat_template/jinja_builtins.h"

namespace tune::jinja {
namespace {

using Container = std::variant<List*, Object*>;

// The lists and dicts waiting to be freed by the outermost Free on this thread, or null.
thread_local std::vector<Container>* freeing = nullptr;

// Values hold lists and dicts by shared pointer, so freeing a list nested 100,000 deep would
// recurse 100,000 times and overflow the stack. Each is freed here instead: one whose last
// reference goes while another is being freed waits in the queue, and the outermost call frees
// them in a loop.
void Free(Container container) {
  if (freeing != nullptr) {
    freeing->push_back(container);
    return;
  }
  std::vector<Container> queue = {container};
  freeing = &queue;
  while (!queue.empty()) {
    const Container next = queue.back();
    queue.pop_back();
    std::visit([](auto* p) { delete p; }, next);
  }
  freeing = nullptr;
}

// Python's repr(float): the shortest digits that read back, in positional notation for
// exponents from -4 to 15 and scientific otherwise, always with a '.' or an exponent.
std::string FloatRepr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buffer[64];
  const auto [end, ec] =
      std::to_chars(buffer, buffer + sizeof(buffer), v, std::chars_format::scientific);
  std::string sci(buffer, end);  // "-1.2345e+05"
  const size_t e = sci.find('e');
  const int exponent = std::stoi(sci.substr(e + 1));
  std::string digits;
  const bool negative = sci[0] == '-';
  for (size_t i = negative ? 1 : 0; i < e; ++i) {
    if (sci[i] != '.') digits += sci[i];
  }
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) {
      out += '.';
      out += digits.substr(1);
    }
    char exp[16];
    std::snprintf(exp, sizeof(exp), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out + exp;
  }
  if (exponent < 0) {
    out += "0.";
    out.append(static_cast<size_t>(-exponent - 1), '0');
    return out + digits;
  }
  if (static_cast<int>(digits.size()) <= exponent + 1) {
    return out + digits + std::string(exponent + 1 - digits.size(), '0') + ".0";
  }
  return out + digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof(escape), "\\u%04x", c);
          out += escape;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string StringRepr(const std::string& s) {
  const char quote =
      s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (const char c : s) {
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  return out + quote;
}

void AppendJson(const Value& v, int64_t indent, int depth, std::string& out) {
  CheckText(out, depth);
  const auto newline = [&](int level) {
    if (indent < 0) return;
    const uint64_t spaces = static_cast<uint64_t>(std::min<int64_t>(indent, kMaxBytes)) * level;
    CheckBytes(out.size() + 1 + std::min<uint64_t>(spaces, kMaxBytes + 1), "a value's text");
    out += '\n';
    out.append(static_cast<size_t>(spaces), ' ');
  };
  if (v.is_list()) {
    const List& list = v.as_list();
    if (list.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < list.size(); ++i) {
      if (i > 0) out += indent >= 0 ? "," : ", ";
      newline(depth + 1);
      AppendJson(list[i], indent, depth + 1, out);
    }
    newline(depth);
    out += ']';
  } else if (v.is_object()) {
    const Object& object = v.as_object();
    if (object.items.empty()) {
      out += "{}";
      return;
    }
    out += '{';
    for (size_t i = 0; i < object.items.size(); ++i) {
      if (i > 0) out += indent >= 0 ? "," : ", ";
      newline(depth + 1);
      out += JsonString(object.items[i].first) + ": ";
      AppendJson(object.items[i].second, indent, depth + 1, out);
    }
    newline(depth);
    out += '}';
  } else if (v.is_string()) {
    out += JsonString(v.as_string());
    CheckText(out, depth);
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
  } else if (v.is_float()) {
    const double d = v.as_number();
    out += std::isnan(d)   ? "NaN"
           : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity")
                           : FloatRepr(d);
  } else {
    out += "null";
  }
}

void AppendRepr(const Value& v, int depth, std::string& out) {
  CheckText(out, depth);
  if (v.is_list()) {
    out += '[';
    for (size_t i = 0; i < v.as_list().size(); ++i) {
      if (i > 0) out += ", ";
      AppendRepr(v.as_list()[i], depth + 1, out);
    }
    out += ']';
  } else if (v.is_object()) {
    out += '{';
    for (size_t i = 0; i < v.as_object().items.size(); ++i) {
      const auto& [key, value] = v.as_object().items[i];
      if (i > 0) out += ", ";
      out += StringRepr(key);
      out += ": ";
      AppendRepr(value, depth + 1, out);
    }
    out += '}';
  } else if (v.is_undefined()) {
  } else if (v.is_none()) {
    out += "None";
  } else if (v.is_bool()) {
    out += v.as_bool() ? "True" : "False";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
  } else if (v.is_float()) {
    out += FloatRepr(v.as_number());
  } else if (v.is_string()) {
    out += StringRepr(v.as_string());
    CheckText(out, depth);
  } else {
    out += "<function>";
  }
}

}  // namespace

Value::Value(List list)
    : data_(std::shared_ptr<List>(new List(std::move(list)), [](List* p) { Free(p); })) {}
Value::Value(Object object)
    : data_(std::shared_ptr<Object>(new Object(std::move(object)), [](Object* p) { Free(p); })) {}

const Value* Object::Find(std::string_view key) const {
  for (const auto& [name, value] : items) {
    if (name == key) return &value;
  }
  return nullptr;
}

void Object::Set(const std::string& key, Value value) {
  for (auto& [name, existing] : items) {
    if (name == key) {
      existing = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

bool Value::Truthy() const {
  if (is_undefined() || is_none()) return false;
  if (is_bool()) return as_bool();
  if (is_int()) return as_int() != 0;
  if (is_float()) return as_number() != 0.0;
  if (is_string()) return !as_string().empty();
  if (is_list()) return !as_list().empty();
  if (is_object()) return !as_object().items.empty() || as_object().is_namespace;
  return true;
}

std::string Value::Str() const {
  if (is_undefined()) return "";
  if (is_string()) return as_string();
  return Repr();
}

std::string Value::Repr() const {
  std::string out;
  AppendRepr(*this, 0, out);
  return out;
}

std::string Value::Json(int64_t indent) const {
  std::string out;
  AppendJson(*this, indent, 0, out);
  return out;
}

std::string Value::TypeName() const {
  if (is_undefined()) return "undefined";
  if (is_none()) return "none";
  if (is_bool()) return "boolean";
  if (is_int()) return "integer";
  if (is_float()) return "float";
  if (is_string()) return "string";
  if (is_list()) return "list";
  if (is_object()) return "dict";
  return "function";
}

}  // namespace tune::jinja

#include "chat_template/jinja_builtins.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "util/counted.h"

namespace tune::jinja {
namespace {

using Kwargs = std::vector<std::pair<std::string, Value>>;

constexpr const char* kLimitNote = " (tune's limit for a chat template)";

// The first `needle` in `text` at or after `from`, or npos. glibc's memmem takes time linear in
// the text (the two-way algorithm), where std::string::find may take text times needle.
size_t Find(std::string_view text, std::string_view needle, size_t from = 0) {
  if (from > text.size()) return std::string::npos;
  if (needle.empty()) return from;
  const void* found = memmem(text.data() + from, text.size() - from, needle.data(), needle.size());
  return found == nullptr ? std::string::npos
                          : static_cast<size_t>(static_cast<const char*>(found) - text.data());
}

bool IsPySpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Python's str.strip family: `chars` (none: white space) removed from the chosen ends.
std::string Strip(const std::string& s, const Value& chars, bool left, bool right) {
  const auto strip = [&](char c) {
    return chars.is_string() ? chars.as_string().find(c) != std::string::npos : IsPySpace(c);
  };
  size_t begin = 0, end = s.size();
  while (left && begin < end && strip(s[begin])) ++begin;
  while (right && end > begin && strip(s[end - 1])) --end;
  return s.substr(begin, end - begin);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
// Python's str.title() on ASCII letters: the first letter of each run of letters upper-cased.
std::string Title(std::string s) {
  bool previous_letter = false;
  for (char& c : s) {
    const bool letter = std::isalpha(static_cast<unsigned char>(c)) != 0;
    c = static_cast<char>(previous_letter ? std::tolower(static_cast<unsigned char>(c))
                                          : std::toupper(static_cast<unsigned char>(c)));
    previous_letter = letter;
  }
  return s;
}
std::string Capitalize(const std::string& s) {
  if (s.empty()) return s;
  return Upper(s.substr(0, 1)) + Lower(s.substr(1));
}

std::string ReplaceAll(const std::string& s, const std::string& from, const std::string& to,
                       int64_t count) {
  if (from.empty()) return s;
  std::string out;
  size_t at = 0;
  for (int64_t done = 0; count < 0 || done < count; ++done) {
    const size_t found = Find(s, from, at);
    if (found == std::string::npos) break;
    CheckBytes(out.size() + (found - at) + to.size(), "replace()'s result");
    out.append(s, at, found - at).append(to);
    at = found + from.size();
  }
  CheckBytes(out.size() + (s.size() - at), "replace()'s result");
  return out.append(s, at);
}

List Split(const std::string& s, const Value& separator, int64_t max_split) {
  List parts;
  if (!separator.is_string()) {  // runs of white space, ends ignored
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && IsPySpace(s[i])) ++i;
      if (i >= s.size()) break;
      if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
        parts.emplace_back(Strip(s.substr(i), Value(), false, true));
        break;
      }
      size_t j = i;
      while (j < s.size() && !IsPySpace(s[j])) ++j;
      CheckItems(parts.size() + 1, "split()'s list");
      parts.emplace_back(s.substr(i, j - i));
      i = j;
    }
    return parts;
  }
  const std::string& sep = separator.as_string();
  if (sep.empty()) throw std::runtime_error("split() separator is empty");
  size_t at = 0;
  while (max_split < 0 || static_cast<int64_t>(parts.size()) < max_split) {
    const size_t found = Find(s, sep, at);
    if (found == std::string::npos) break;
    CheckItems(parts.size() + 2, "split()'s list");
    parts.emplace_back(s.substr(at, found - at));
    at = found + sep.size();
  }
  parts.emplace_back(s.substr(at));
  return parts;
}

int64_t CodePoints(const std::string& s) {
  return std::count_if(s.begin(), s.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

const Value& Arg(const std::vector<Value>& args, const Kwargs& kwargs, size_t index,
                 const char* name) {
  static const Value undefined;
  for (const auto& [key, value] : kwargs) {
    if (key == name) return value;
  }
  return index < args.size() ? args[index] : undefined;
}

void NeedString(const Value& v, const std::string& what, int line) {
  if (!v.is_string()) Fail(line, what + " needs a string, got a " + v.TypeName());
}

// `d` as an integer, refused outside int64_t (where the conversion is undefined in C++; Python's
// integers would grow).
int64_t IntOf(double d, int line) {
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
    Fail(line, "an integer too large for tune's templates (" + Value(d).Repr() + ")");
  }
  return static_cast<int64_t>(d);
}

int64_t ToInt(const Value& v, int line, const std::string& what) {
  if (v.is_int()) return v.as_int();
  if (v.is_bool()) return v.as_bool() ? 1 : 0;
  if (v.is_float()) return IntOf(v.as_number(), line);
  Fail(line, what + " needs an integer, got a " + v.TypeName());
}

// The text of `items` (or of their `attribute`, when it is a string) with `separator` between.
std::string Join(const List& items, const std::string& separator, const Value& attribute,
                 int line = 0) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string text =
        (attribute.is_string() ? GetAttribute(items[i], attribute.as_string(), line) : items[i])
            .Str();
    CheckBytes(out.size() + (i > 0 ? separator.size() : 0) + text.size(), "join()'s result");
    if (i > 0) out += separator;
    out += text;
  }
  return out;
}

Value StringMethod(const std::string& s, const std::string& name, const std::vector<Value>& args,
                   const Kwargs& kwargs, int line) {
  if (name == "strip") return Value(Strip(s, Arg(args, kwargs, 0, "chars"), true, true));
  if (name == "lstrip") return Value(Strip(s, Arg(args, kwargs, 0, "chars"), true, false));
  if (name == "rstrip") return Value(Strip(s, Arg(args, kwargs, 0, "chars"), false, true));
  if (name == "upper") return Value(Upper(s));
  if (name == "lower") return Value(Lower(s));
  if (name == "title") return Value(Title(s));
  if (name == "capitalize") return Value(Capitalize(s));
  if (name == "startswith" || name == "endswith") {
    const Value& affix = Arg(args, kwargs, 0, "prefix");
    const auto matches = [&](const Value& a) {
      NeedString(a, name + "()", line);
      const std::string& t = a.as_string();
      return name == "startswith" ? s.starts_with(t) : s.ends_with(t);
    };
    if (affix.is_list()) {
      return Value(std::any_of(affix.as_list().begin(), affix.as_list().end(), matches));
    }
    return Value(matches(affix));
  }
  if (name == "split") {
    const Value& max = Arg(args, kwargs, 1, "maxsplit");
    return Value(Split(s, Arg(args, kwargs, 0, "sep"),
                       max.is_undefined() ? -1 : ToInt(max, line, "split()")));
  }
  if (name == "replace") {
    NeedString(Arg(args, kwargs, 0, "old"), "replace()", line);
    NeedString(Arg(args, kwargs, 1, "new"), "replace()", line);
    const Value& count = Arg(args, kwargs, 2, "count");
    return Value(ReplaceAll(s, args[0].as_string(), args[1].as_string(),
                            count.is_undefined() ? -1 : ToInt(count, line, "replace()")));
  }
  if (name == "find" || name == "count") {
    NeedString(Arg(args, kwargs, 0, "sub"), name + "()", line);
    const std::string& sub = args[0].as_string();
    if (name == "find") {
      const size_t at = Find(s, sub);
      return Value(at == std::string::npos ? int64_t{-1} : static_cast<int64_t>(at));
    }
    int64_t n = 0;
    for (size_t at = Find(s, sub); !sub.empty() && at != std::string::npos;
         at = Find(s, sub, at + sub.size()))
      ++n;
    return Value(n);
  }
  if (name == "join") {
    const Value& items = Arg(args, kwargs, 0, "iterable");
    if (!items.is_list()) Fail(line, "join() needs a list");
    return Value(Join(items.as_list(), s, Value()));
  }
  Fail(line, "string method '" + name + "' is not supported");
}

Value BoundMethod(const Value& self, const std::string& name, int line) {
  return Value(Function([self, name, line](std::vector<Value> args, Kwargs kwargs) -> Value {
    if (self.is_string()) return StringMethod(self.as_string(), name, args, kwargs, line);
    if (self.is_list()) {
      if (name == "append") {
        Fail(line,
             "lists cannot be changed: transformers renders templates in an immutable sandbox, "
             "which refuses append(); build a new list with + instead");
      }
      Fail(line, "list method '" + name + "' is not supported");
    }
    const Object& object = self.as_object();
    if (name == "items") {
      List items;
      for (const auto& [key, value] : object.items) items.emplace_back(List{Value(key), value});
      return Value(std::move(items));
    }
    if (name == "keys" || name == "values") {
      List items;
      for (const auto& [key, value] : object.items)
        items.push_back(name == "keys" ? Value(key) : value);
      return Value(std::move(items));
    }
    if (name == "get") {
      const Value& key = Arg(args, kwargs, 0, "key");
      NeedString(key, "get()", line);
      const Value* found = object.Find(key.as_string());
      if (found != nullptr) return *found;
      const Value& fallback = Arg(args, kwargs, 1, "default");
      return fallback.is_undefined() ? Value(None{}) : fallback;
    }
    Fail(line, "dict method '" + name + "' is not supported");
  }));
}

bool IsStringMethod(const std::string& name) {
  static const char* const kNames[] = {"strip",   "lstrip",     "rstrip",     "upper",    "lower",
                                       "title",   "capitalize", "startswith", "endswith", "split",
                                       "replace", "find",       "count",      "join"};
  return std::any_of(std::begin(kNames), std::end(kNames),
                     [&](const char* n) { return name == n; });
}

int Compare(const Value& a, const Value& b, int line) {
  if (a.is_number() && b.is_number()) {
    const double x = a.as_number(), y = b.as_number();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string())
    return a.as_string().compare(b.as_string()) < 0 ? -1 : (a.as_string() == b.as_string() ? 0 : 1);
  Fail(line, "cannot compare a " + a.TypeName() + " with a " + b.TypeName());
}

double FloorDiv(double a, double b) { return std::floor(a / b); }

// Item `k` of range(start, step, ...), computed without signed overflow (k < its length).
int64_t RangeItem(int64_t start, int64_t step, uint64_t k) {
  return static_cast<int64_t>(static_cast<uint64_t>(start) + k * static_cast<uint64_t>(step));
}

// The length of range(start, stop, step), without overflow.
uint64_t RangeLength(int64_t start, int64_t stop, int64_t step) {
  if (step > 0 && start < stop) {
    return (static_cast<uint64_t>(stop) - static_cast<uint64_t>(start) - 1) /
               static_cast<uint64_t>(step) +
           1;
  }
  if (step < 0 && start > stop) {
    return (static_cast<uint64_t>(start) - static_cast<uint64_t>(stop) - 1) /
               (0 - static_cast<uint64_t>(step)) +
           1;
  }
  return 0;
}

bool EqualAt(const Value& a, const Value& b, Budget& budget, int depth) {
  budget.Spend(1);
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.as_int() == b.as_int();
    return a.as_number() == b.as_number();
  }
  if (!a.SameType(b)) return false;
  if (a.is_undefined() || a.is_none()) return true;
  if (a.is_bool()) return a.as_bool() == b.as_bool();
  if (a.is_string()) {
    budget.Spend(static_cast<int64_t>(std::min(a.as_string().size(), b.as_string().size())) /
                 kBytesPerStep);
    return a.as_string() == b.as_string();
  }
  if (a.is_function()) return &a.as_function() == &b.as_function();
  if (depth >= kMaxNesting) {
    throw std::length_error("values compared nested deeper than " + std::to_string(kMaxNesting) +
                            " levels" + kLimitNote);
  }
  if (a.is_list()) {
    const List &x = a.as_list(), &y = b.as_list();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (!EqualAt(x[i], y[i], budget, depth + 1)) return false;
    }
    return true;
  }
  const Object &x = a.as_object(), &y = b.as_object();
  if (x.items.size() != y.items.size()) return false;
  for (const auto& [key, value] : x.items) {
    budget.Spend(static_cast<int64_t>(y.items.size()) / 16);  // Find reads the keys
    const Value* other = y.Find(key);
    if (other == nullptr || !EqualAt(value, *other, budget, depth + 1)) return false;
  }
  return true;
}

}  // namespace

void Budget::Spend(int64_t steps) {
  steps_ += steps;
  if (steps_ > kMaxSteps) {
    throw std::length_error("rendering takes more than " + Grouped(kMaxSteps) + " steps" +
                            kLimitNote);
  }
}

void Budget::Count(const Value& value) {
  int64_t steps = 1;
  if (value.is_string()) {
    CheckBytes(value.as_string().size(), "a string");
    steps += static_cast<int64_t>(value.as_string().size()) / kBytesPerStep;
  } else if (value.is_list()) {
    CheckItems(value.as_list().size(), "a list");
    steps += static_cast<int64_t>(value.as_list().size());
  } else if (value.is_object()) {
    CheckItems(value.as_object().items.size(), "a dict");
    steps += static_cast<int64_t>(value.as_object().items.size());
  }
  Spend(steps);
}

void CheckBytes(size_t bytes, const std::string& what) {
  if (bytes <= kMaxBytes) return;
  throw std::length_error(what + " would be longer than " + std::to_string(kMaxBytes >> 20) +
                          " MiB" + kLimitNote);
}

void CheckItems(size_t items, const std::string& what) {
  if (items <= kMaxItems) return;
  throw std::length_error(what + " would have more than " + Grouped(kMaxItems) + " items" +
                          kLimitNote);
}

void CheckText(const std::string& text, int depth) {
  CheckBytes(text.size(), "a value's text");
  if (depth > kMaxNesting) {
    throw std::length_error("a value nested deeper than " + std::to_string(kMaxNesting) +
                            " levels is printed" + kLimitNote);
  }
}

bool Equal(const Value& a, const Value& b, Budget& budget) { return EqualAt(a, b, budget, 0); }

Object Globals() {
  Object globals;
  globals.Set("range", Value(Function([](std::vector<Value> args, Kwargs) -> Value {
                if (args.empty() || args.size() > 3)
                  throw std::runtime_error("range() takes 1 to 3 arguments");
                for (const Value& a : args) {
                  if (!a.is_int()) throw std::runtime_error("range() needs integers");
                }
                const int64_t start = args.size() > 1 ? args[0].as_int() : 0;
                const int64_t stop = args.size() > 1 ? args[1].as_int() : args[0].as_int();
                const int64_t step = args.size() > 2 ? args[2].as_int() : 1;
                if (step == 0) throw std::runtime_error("range() step must not be zero");
                const uint64_t length = RangeLength(start, stop, step);
                CheckItems(length > kMaxItems ? kMaxItems + 1 : static_cast<size_t>(length),
                           "range(" + std::to_string(length) + ")");
                List out;
                out.reserve(static_cast<size_t>(length));
                for (uint64_t k = 0; k < length; ++k) out.emplace_back(RangeItem(start, step, k));
                return Value(std::move(out));
              })));
  globals.Set("namespace", Value(Function([](std::vector<Value> args, Kwargs kwargs) -> Value {
                Object ns;
                ns.is_namespace = true;
                // Object::Set looks for the key; an index keeps this linear for many keys.
                std::unordered_map<std::string, size_t> index;
                const auto set = [&](const std::string& key, Value value) {
                  const auto [at, added] = index.try_emplace(key, ns.items.size());
                  if (added) {
                    ns.items.emplace_back(key, std::move(value));
                  } else {
                    ns.items[at->second].second = std::move(value);
                  }
                };
                for (const Value& a : args) {
                  if (a.is_object()) {
                    for (const auto& [key, value] : a.as_object().items) set(key, value);
                  }
                }
                for (auto& [key, value] : kwargs) set(key, std::move(value));
                return Value(std::move(ns));
              })));
  globals.Set("raise_exception", Value(Function([](std::vector<Value> args, Kwargs) -> Value {
                throw std::runtime_error("the template raised: " +
                                         (args.empty() ? std::string() : args[0].Str()));
              })));
  globals.Set("strftime_now", Value(Function([](std::vector<Value> args, Kwargs) -> Value {
                if (args.empty() || !args[0].is_string())
                  throw std::runtime_error("strftime_now() needs a format");
                const std::time_t now = std::time(nullptr);
                std::tm local{};
                localtime_r(&now, &local);
                char buffer[256];
                const size_t n =
                    std::strftime(buffer, sizeof(buffer), args[0].as_string().c_str(), &local);
                return Value(std::string(buffer, n));
              })));
  return globals;
}

Value GetAttribute(const Value& value, const std::string& name, int line) {
  if (value.is_object()) {
    const Object& object = value.as_object();
    if (!object.is_namespace &&
        (name == "items" || name == "keys" || name == "values" || name == "get")) {
      return BoundMethod(value, name, line);
    }
    const Value* found = object.Find(name);
    return found != nullptr ? *found : Value();
  }
  if (value.is_string() && IsStringMethod(name)) return BoundMethod(value, name, line);
  if (value.is_list() && name == "append") return BoundMethod(value, name, line);
  return Value();
}

Value GetItem(const Value& value, const Value& key, int line) {
  if (value.is_list() || value.is_string()) {
    if (!key.is_int()) {
      if (value.is_list()) Fail(line, "list indices must be integers, got a " + key.TypeName());
      return Value();
    }
    const auto size =
        static_cast<int64_t>(value.is_list() ? value.as_list().size() : value.as_string().size());
    int64_t i = key.as_int();
    if (i < 0) i += size;
    if (i < 0 || i >= size) return Value();
    return value.is_list() ? value.as_list()[static_cast<size_t>(i)]
                           : Value(value.as_string().substr(static_cast<size_t>(i), 1));
  }
  if (value.is_object()) {
    if (!key.is_string()) return Value();
    const Value* found = value.as_object().Find(key.as_string());
    return found != nullptr ? *found : Value();
  }
  return Value();
}

Value Slice(const Value& value, const Value& start_value, const Value& stop_value,
            const Value& step_value, int line) {
  if (!value.is_list() && !value.is_string()) Fail(line, "cannot slice a " + value.TypeName());
  const auto size =
      static_cast<int64_t>(value.is_list() ? value.as_list().size() : value.as_string().size());
  const int64_t step =
      step_value.is_undefined() || step_value.is_none() ? 1 : ToInt(step_value, line, "a slice");
  if (step == 0) Fail(line, "slice step cannot be zero");
  const auto bound = [&](const Value& v, int64_t fallback) {
    if (v.is_undefined() || v.is_none()) return fallback;
    int64_t i = ToInt(v, line, "a slice");
    if (i < 0) i += size;
    return step > 0 ? std::clamp<int64_t>(i, 0, size) : std::clamp<int64_t>(i, -1, size - 1);
  };
  const int64_t start = bound(start_value, step > 0 ? 0 : size - 1);
  const int64_t stop = bound(stop_value, step > 0 ? size : -1);
  List items;
  std::string text;
  const uint64_t length = RangeLength(start, stop, step);
  for (uint64_t k = 0; k < length; ++k) {
    const int64_t i = RangeItem(start, step, k);
    if (value.is_list()) {
      items.push_back(value.as_list()[static_cast<size_t>(i)]);
    } else {
      text += value.as_string()[static_cast<size_t>(i)];
    }
  }
  return value.is_list() ? Value(std::move(items)) : Value(text);
}

Value Binary(const std::string& op, const Value& left, const Value& right, bool negated, int line,
             Budget& budget) {
  if (op == "==") return Value(Equal(left, right, budget));
  if (op == "!=") return Value(!Equal(left, right, budget));
  if (op == "<") return Value(Compare(left, right, line) < 0);
  if (op == ">") return Value(Compare(left, right, line) > 0);
  if (op == "<=") return Value(Compare(left, right, line) <= 0);
  if (op == ">=") return Value(Compare(left, right, line) >= 0);
  if (op == "~") {
    std::string text = left.Str();
    const std::string more = right.Str();
    CheckBytes(text.size() + more.size(), "a string");
    return Value(text += more);
  }
  if (op == "in") {
    bool found;
    if (right.is_string()) {
      NeedString(left, "'in' on a string", line);
      found = Find(right.as_string(), left.as_string()) != std::string::npos;
    } else if (right.is_list()) {
      found = std::any_of(right.as_list().begin(), right.as_list().end(),
                          [&](const Value& item) { return Equal(left, item, budget); });
    } else if (right.is_object()) {
      found = left.is_string() && right.as_object().Find(left.as_string()) != nullptr;
    } else {
      Fail(line, "'in' needs a string, list or dict on its right, got a " + right.TypeName());
    }
    return Value(found != negated);
  }
  if (op == "+") {
    if (left.is_string() && right.is_string()) {
      CheckBytes(left.as_string().size() + right.as_string().size(), "a string");
      return Value(left.as_string() + right.as_string());
    }
    if (left.is_list() && right.is_list()) {
      CheckItems(left.as_list().size() + right.as_list().size(), "a list");
      List joined = left.as_list();
      joined.insert(joined.end(), right.as_list().begin(), right.as_list().end());
      return Value(std::move(joined));
    }
  }
  if (op == "*" && left.is_string() && right.is_int()) {
    const std::string& text = left.as_string();
    const int64_t times = text.empty() ? 0 : std::max<int64_t>(right.as_int(), 0);
    if (static_cast<uint64_t>(times) > kMaxBytes / std::max<size_t>(text.size(), 1)) {
      CheckBytes(kMaxBytes + 1, "a string repeated " + std::to_string(times) + " times");
    }
    std::string out;
    out.reserve(text.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += text;
    return Value(out);
  }
  if (!left.is_number() || !right.is_number()) {
    Fail(line, "cannot apply '" + op + "' to a " + left.TypeName() + " and a " + right.TypeName());
  }
  const bool ints = left.is_int() && right.is_int();
  const double x = left.as_number(), y = right.as_number();
  if (ints && (op == "+" || op == "-" || op == "*")) {
    int64_t result;
    const bool overflow = op == "+" ? __builtin_add_overflow(left.as_int(), right.as_int(), &result)
                          : op == "-"
                              ? __builtin_sub_overflow(left.as_int(), right.as_int(), &result)
                              : __builtin_mul_overflow(left.as_int(), right.as_int(), &result);
    if (overflow) Fail(line, "an integer too large for tune's templates");
    return Value(result);
  }
  if (op == "+") return Value(x + y);
  if (op == "-") return Value(x - y);
  if (op == "*") return Value(x * y);
  if (y == 0 && (op == "/" || op == "//" || op == "%")) Fail(line, "division by zero");
  if (op == "/") return Value(x / y);
  if (op == "//") return ints ? Value(IntOf(FloorDiv(x, y), line)) : Value(FloorDiv(x, y));
  if (op == "%") {
    const double r = x - y * FloorDiv(x, y);  // Python's sign: that of the divisor
    return ints ? Value(IntOf(r, line)) : Value(r);
  }
  Fail(line, "unknown operator '" + op + "'");
}

bool IsKnownFilter(const std::string& name) {
  static const char* const kFilters[] = {
      "safe",    "trim",   "upper",  "lower",      "title",      "capitalize", "string",
      "tojson",  "length", "count",  "default",    "d",          "first",      "last",
      "join",    "int",    "float",  "abs",        "list",       "items",      "replace",
      "reverse", "select", "reject", "selectattr", "rejectattr", "map"};
  return std::any_of(std::begin(kFilters), std::end(kFilters),
                     [&](const char* f) { return name == f; });
}

bool IsKnownTest(const std::string& name) {
  static const char* const kTests[] = {
      "defined", "undefined", "none",        "string",   "number",   "integer",     "float",
      "boolean", "mapping",   "iterable",    "sequence", "callable", "true",        "false",
      "odd",     "even",      "divisibleby", "equalto",  "eq",       "==",          "sameas",
      "ne",      "!=",        "lt",          "lessthan", "gt",       "greaterthan", "le",
      "ge",      "in",        "lower",       "upper"};
  return std::any_of(std::begin(kTests), std::end(kTests),
                     [&](const char* t) { return name == t; });
}

Value ApplyFilter(const std::string& name, std::vector<Value> args, Kwargs kwargs, int line,
                  Budget& budget) {
  const Value v = args.empty() ? Value() : args[0];
  const auto arg = [&](size_t i, const char* key) -> const Value& {
    return Arg(args, kwargs, i, key);
  };
  if (name == "safe") return v;
  if (name == "trim") return Value(Strip(v.Str(), arg(1, "chars"), true, true));
  if (name == "upper") return Value(Upper(v.Str()));
  if (name == "lower") return Value(Lower(v.Str()));
  if (name == "title") return Value(Title(v.Str()));
  if (name == "capitalize") return Value(Capitalize(v.Str()));
  if (name == "string") return Value(v.Str());
  if (name == "tojson") {
    const Value& indent = arg(1, "indent");
    return Value(v.Json(indent.is_int() ? indent.as_int() : -1));
  }
  if (name == "length" || name == "count") {
    if (v.is_string()) return Value(CodePoints(v.as_string()));
    if (v.is_list()) return Value(static_cast<int64_t>(v.as_list().size()));
    if (v.is_object()) return Value(static_cast<int64_t>(v.as_object().items.size()));
    if (v.is_undefined()) return Value(int64_t{0});
    Fail(line, "length of a " + v.TypeName());
  }
  if (name == "default" || name == "d") {
    const bool boolean = arg(2, "boolean").Truthy();
    return (v.is_undefined() || (boolean && !v.Truthy())) ? arg(1, "default_value") : v;
  }
  if (name == "first" || name == "last") {
    if (v.is_list()) {
      if (v.as_list().empty()) return Value();
      return name == "first" ? v.as_list().front() : v.as_list().back();
    }
    if (v.is_string()) return GetItem(v, Value(int64_t{name == "first" ? 0 : -1}), line);
    Fail(line, name + " of a " + v.TypeName());
  }
  if (name == "join") {
    if (!v.is_list()) Fail(line, "join needs a list, got a " + v.TypeName());
    return Value(Join(v.as_list(), arg(1, "d").Str(), arg(2, "attribute"), line));
  }
  if (name == "int") {
    if (v.is_string()) {
      try {
        return Value(static_cast<int64_t>(std::stoll(Strip(v.as_string(), Value(), true, true))));
      } catch (const std::exception&) {
        return arg(1, "default").is_undefined() ? Value(int64_t{0}) : arg(1, "default");
      }
    }
    return v.is_number() || v.is_bool() ? Value(ToInt(v, line, "int")) : Value(int64_t{0});
  }
  if (name == "float") {
    if (v.is_number()) return Value(v.as_number());
    try {
      return Value(std::stod(v.Str()));
    } catch (const std::exception&) {
      return Value(0.0);
    }
  }
  if (name == "abs") {
    if (v.is_int())
      return Binary(v.as_int() < 0 ? "-" : "+", Value(int64_t{0}), v, false, line, budget);
    if (v.is_float()) return Value(std::fabs(v.as_number()));
    Fail(line, "abs of a " + v.TypeName());
  }
  if (name == "list") {
    if (v.is_list()) return Value(List(v.as_list()));
    List items;
    if (v.is_string()) {
      CheckItems(v.as_string().size(), "a list of characters");
      for (const char c : v.as_string()) items.emplace_back(std::string(1, c));
    } else if (v.is_object()) {
      for (const auto& [key, value] : v.as_object().items) items.emplace_back(key);
    }
    return Value(std::move(items));
  }
  if (name == "items") {
    if (!v.is_object()) Fail(line, "items of a " + v.TypeName());
    return GetAttribute(v, "items", line).as_function()({}, {});
  }
  if (name == "replace") {
    NeedString(arg(1, "old"), "replace", line);
    NeedString(arg(2, "new"), "replace", line);
    const Value& count = arg(3, "count");
    return Value(ReplaceAll(v.Str(), arg(1, "old").as_string(), arg(2, "new").as_string(),
                            count.is_undefined() ? -1 : ToInt(count, line, "replace")));
  }
  if (name == "reverse") {
    if (v.is_list()) return Value(List(v.as_list().rbegin(), v.as_list().rend()));
    const std::string s = v.Str();
    return Value(std::string(s.rbegin(), s.rend()));
  }
  if (name == "select" || name == "reject") {
    if (!v.is_list()) Fail(line, name + " needs a list, got a " + v.TypeName());
    List kept;
    for (const Value& item : v.as_list()) {
      bool pass = item.Truthy();
      if (args.size() > 1) {
        NeedString(args[1], name + "'s test", line);
        std::vector<Value> test_args = {item};
        test_args.insert(test_args.end(), args.begin() + 2, args.end());
        pass = ApplyTest(args[1].as_string(), test_args, line, budget);
      }
      if (pass == (name == "select")) kept.push_back(item);
    }
    return Value(std::move(kept));
  }
  if (name == "selectattr" || name == "rejectattr") {
    if (!v.is_list()) Fail(line, name + " needs a list, got a " + v.TypeName());
    NeedString(arg(1, "attribute"), name, line);
    List kept;
    for (const Value& item : v.as_list()) {
      const Value attribute = GetAttribute(item, args[1].as_string(), line);
      bool pass;
      if (args.size() > 2) {
        NeedString(args[2], name + "'s test", line);
        std::vector<Value> test_args = {attribute};
        test_args.insert(test_args.end(), args.begin() + 3, args.end());
        pass = ApplyTest(args[2].as_string(), test_args, line, budget);
      } else {
        pass = attribute.Truthy();
      }
      if (pass == (name == "selectattr")) kept.push_back(item);
    }
    return Value(std::move(kept));
  }
  if (name == "map") {
    if (!v.is_list()) Fail(line, "map needs a list, got a " + v.TypeName());
    List mapped;
    const Value& attribute = arg(99, "attribute");
    for (const Value& item : v.as_list()) {
      // Each result is new (a filter's text, a copy), counted as it is made.
      if (attribute.is_string()) {
        mapped.push_back(GetAttribute(item, attribute.as_string(), line));
      } else if (args.size() > 1 && args[1].is_string()) {
        std::vector<Value> filter_args = {item};
        filter_args.insert(filter_args.end(), args.begin() + 2, args.end());
        mapped.push_back(
            ApplyFilter(args[1].as_string(), std::move(filter_args), {}, line, budget));
      } else {
        Fail(line, "map needs a filter name or attribute=");
      }
      budget.Count(mapped.back());
    }
    return Value(std::move(mapped));
  }
  Fail(line, "filter '" + name + "' is not supported");
}

bool ApplyTest(const std::string& name, const std::vector<Value>& args, int line, Budget& budget) {
  const Value v = args.empty() ? Value() : args[0];
  const auto other = [&]() -> const Value& {
    if (args.size() < 2) Fail(line, "test '" + name + "' needs an argument");
    return args[1];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "boolean") return v.is_bool();
  if (name == "mapping") return v.is_object();
  if (name == "iterable") return v.is_list() || v.is_object() || v.is_string();
  if (name == "sequence") return v.is_list() || v.is_string() || v.is_object();
  if (name == "callable") return v.is_function();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "odd" || name == "even") {
    if (!v.is_int()) Fail(line, "test '" + name + "' needs an integer");
    return (v.as_int() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    const int64_t d = ToInt(other(), line, "divisibleby");
    if (d == 0) Fail(line, "divisibleby 0");
    return ToInt(v, line, "divisibleby") % d == 0;
  }
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") {
    return Equal(v, other(), budget);
  }
  if (name == "ne" || name == "!=") return !Equal(v, other(), budget);
  if (name == "lt" || name == "lessthan") return Compare(v, other(), line) < 0;
  if (name == "gt" || name == "greaterthan") return Compare(v, other(), line) > 0;
  if (name == "le") return Compare(v, other(), line) <= 0;
  if (name == "ge") return Compare(v, other(), line) >= 0;
  if (name == "in") return Binary("in", v, other(), false, line, budget).as_bool();
  if (name == "lower") return v.is_string() && Lower(v.as_string()) == v.as_string();
  if (name == "upper") return v.is_string() && Upper(v.as_string()) == v.as_string();
  Fail(line, "test '" + name + "' is not supported");
}

}  // namespace tune::jinja

// Internal to the Jinja renderer (jinja.cpp): operators, attribute and item access, filters,
// tests, string/list/dict methods, the global functions, and the budget of jinja.h's limits. Each
// throws TemplateError naming `line` for what it cannot do, and std::length_error for a limit it
// passes (the renderer, which knows the line, turns that into TemplateLimit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "chat_template/jinja.h"

namespace tune::jinja {

[[noreturn]] void Fail(int line, const std::string& message);

// The steps one rendering has taken (kMaxSteps); not thread-safe, one per rendering.
class Budget {
 public:
  // Counts `steps`; throws std::length_error past kMaxSteps.
  void Spend(int64_t steps);
  // Counts a value an expression made or read: a step, and its text's bytes (kBytesPerStep a
  // step) and a list's or dict's items, after checking them against kMaxBytes and kMaxItems.
  void Count(const Value& value);

 private:
  int64_t steps_ = 0;
};

// Throw std::length_error when `bytes` passes kMaxBytes, `items` kMaxItems; `what` names the
// value ("a string", "range()'s list").
void CheckBytes(size_t bytes, const std::string& what);
void CheckItems(size_t items, const std::string& what);
// `text` is a value's text (str, repr, json), `depth` how deep in the value it is: throws
// std::length_error past kMaxBytes or kMaxNesting.
void CheckText(const std::string& text, int depth);

// Python's ==: numbers across int and float, lists and dicts by their items. Each pair of values
// visited is a step.
bool Equal(const Value& a, const Value& b, Budget& budget);

// range, namespace, raise_exception and strftime_now, as transformers provides them.
Object Globals();

// value.name: a dict's key, a string's, list's or dict's method (bound), else undefined.
Value GetAttribute(const Value& value, const std::string& name, int line);
// value[key]: list index (negative from the end), dict key, string character.
Value GetItem(const Value& value, const Value& key, int line);
Value Slice(const Value& value, const Value& start, const Value& stop, const Value& step, int line);
// op: == != < > <= >= in + - * / // % ~; `negated` turns `in` into `not in`.
Value Binary(const std::string& op, const Value& left, const Value& right, bool negated, int line,
             Budget& budget);

// Whether ApplyFilter and ApplyTest know `name`; the parser refuses the others up front.
bool IsKnownFilter(const std::string& name);
bool IsKnownTest(const std::string& name);

Value ApplyFilter(const std::string& name, std::vector<Value> args,
                  std::vector<std::pair<std::string, Value>> kwargs, int line, Budget& budget);
// args[0] is the value tested.
bool ApplyTest(const std::string& name, const std::vector<Value>& args, int line, Budget& budget);

}  // namespace tune::jinja

// Internal to the Jinja renderer (jinja.cpp): operators, attribute and item access, filters,
// tests, string/list/dict methods and the global functions. Each throws TemplateError naming
// `line` for what it cannot do.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "chat_template/jinja.h"

namespace tune::jinja {

[[noreturn]] void Fail(int line, const std::string& message);

// range, namespace, raise_exception and strftime_now, as transformers provides them.
Object Globals();

// value.name: a dict's key, a string's, list's or dict's method (bound), else undefined.
Value GetAttribute(const Value& value, const std::string& name, int line);
// value[key]: list index (negative from the end), dict key, string character.
Value GetItem(const Value& value, const Value& key, int line);
Value Slice(const Value& value, const Value& start, const Value& stop, const Value& step, int line);
// op: == != < > <= >= in + - * / // % ~; `negated` turns `in` into `not in`.
Value Binary(const std::string& op, const Value& left, const Value& right, bool negated, int line);

// Whether ApplyFilter and ApplyTest know `name`; the parser refuses the others up front.
bool IsKnownFilter(const std::string& name);
bool IsKnownTest(const std::string& name);

Value ApplyFilter(const std::string& name, std::vector<Value> args,
                  std::vector<std::pair<std::string, Value>> kwargs, int line);
// args[0] is the value tested.
bool ApplyTest(const std::string& name, const std::vector<Value>& args, int line);

}  // namespace tune::jinja

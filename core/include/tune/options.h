// Options: the typed settings a plugin declares and the host fills in from the run file.
//
// A plugin lists its options as OptionSpecs when it registers. The host checks every key the
// user wrote against that list (unknown key, wrong type, out of range: each a one-line error with
// file:line), fills in defaults, and hands the plugin's factory an Options holding exactly one
// value of the declared type for every declared name. A plugin never sees raw TOML.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tune {

enum class OptionType { kBool, kInt, kFloat, kString, kStringList };

inline std::string_view OptionTypeName(OptionType type) {
  switch (type) {
    case OptionType::kBool:
      return "boolean";
    case OptionType::kInt:
      return "integer";
    case OptionType::kFloat:
      return "float";
    case OptionType::kString:
      return "string";
    case OptionType::kStringList:
      return "array of strings";
  }
  return "?";
}

// std::monostate means "no value": in a spec's default it marks the option as required.
using OptionValue =
    std::variant<std::monostate, bool, int64_t, double, std::string, std::vector<std::string>>;

// One declared option. Built with the named constructors and refined with the chained setters:
//   OptionSpec::Int("rank", 8, "LoRA rank r").Range(1, 4096)
//   OptionSpec::String("schedule", "cosine", "Learning-rate schedule").Choices({"constant",
//   "cosine"}) OptionSpec::String("path", {}, "Model directory").Required()
struct OptionSpec {
  std::string name;
  OptionType type = OptionType::kString;
  std::string help;
  OptionValue default_value;  // monostate: the user must set it
  // Inclusive numeric bounds for kInt and kFloat, unless the matching *_exclusive flag is set.
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;
  bool max_exclusive = false;
  std::vector<std::string> choices;  // kString only; empty means any string

  static OptionSpec Bool(std::string name, bool fallback, std::string help) {
    return Make(std::move(name), OptionType::kBool, std::move(help), fallback);
  }
  static OptionSpec Int(std::string name, int64_t fallback, std::string help) {
    return Make(std::move(name), OptionType::kInt, std::move(help), fallback);
  }
  static OptionSpec Float(std::string name, double fallback, std::string help) {
    return Make(std::move(name), OptionType::kFloat, std::move(help), fallback);
  }
  static OptionSpec String(std::string name, std::string fallback, std::string help) {
    return Make(std::move(name), OptionType::kString, std::move(help), std::move(fallback));
  }
  static OptionSpec StringList(std::string name, std::vector<std::string> fallback,
                               std::string help) {
    return Make(std::move(name), OptionType::kStringList, std::move(help), std::move(fallback));
  }

  OptionSpec Required() && {
    default_value = std::monostate{};
    return std::move(*this);
  }
  OptionSpec Range(double lo, double hi) && {
    min = lo;
    max = hi;
    return std::move(*this);
  }
  // Bounds where an end is excluded, e.g. a fraction in [0, 1).
  OptionSpec Range(double lo, double hi, bool lo_exclusive, bool hi_exclusive) && {
    min = lo;
    max = hi;
    min_exclusive = lo_exclusive;
    max_exclusive = hi_exclusive;
    return std::move(*this);
  }
  OptionSpec Choices(std::vector<std::string> allowed) && {
    choices = std::move(allowed);
    return std::move(*this);
  }
  bool required() const { return std::holds_alternative<std::monostate>(default_value); }

 private:
  static OptionSpec Make(std::string name, OptionType type, std::string help,
                         OptionValue fallback) {
    OptionSpec spec;
    spec.name = std::move(name);
    spec.type = type;
    spec.help = std::move(help);
    spec.default_value = std::move(fallback);
    return spec;
  }
};

// Resolved option values: one per declared name, of the declared type. Asking for a name that
// was not declared, or with the wrong type, is a bug in the plugin and throws std::logic_error.
class Options {
 public:
  void Set(std::string name, OptionValue value) { values_[std::move(name)] = std::move(value); }

  bool Bool(std::string_view name) const { return Get<bool>(name); }
  int64_t Int(std::string_view name) const { return Get<int64_t>(name); }
  double Float(std::string_view name) const { return Get<double>(name); }
  const std::string& String(std::string_view name) const { return Get<std::string>(name); }
  const std::vector<std::string>& StringList(std::string_view name) const {
    return Get<std::vector<std::string>>(name);
  }

  const std::map<std::string, OptionValue, std::less<>>& values() const { return values_; }

 private:
  template <typename T>
  const T& Get(std::string_view name) const {
    auto it = values_.find(name);
    if (it == values_.end()) {
      throw std::logic_error("option '" + std::string(name) + "' was not declared");
    }
    const T* value = std::get_if<T>(&it->second);
    if (value == nullptr) {
      throw std::logic_error("option '" + std::string(name) + "' has another type");
    }
    return *value;
  }

  std::map<std::string, OptionValue, std::less<>> values_;
};

}  // namespace tune

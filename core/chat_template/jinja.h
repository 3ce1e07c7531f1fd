// The Jinja subset that Hugging Face chat templates are written in, rendered as transformers'
// apply_chat_template renders them (jinja2 with trim_blocks and lstrip_blocks).
//
// Supported: text, {{ }}, {% %} and {# #} with '-' whitespace control; if/elif/else, for (with
// tuple targets, an inline `if` filter, `else`, and loop.index/index0/revindex/revindex0/first/
// last/length/previtem/nextitem), set (names and namespace attributes), and the HF extension
// {% generation %} (rendered as its body). Expressions: literals (strings, numbers, booleans,
// none, lists, dicts), attribute and item access, slices, calls, the operators of Python's
// precedence (or and not, comparisons, in, is, + - * / // % ~, unary -), `a if b else c`, filters
// and tests. Anything else (macros, call and filter blocks, include, ...) is refused naming the
// construct and the template's line.
//
// Values follow Python's semantics where templates can see them: truthiness, == across int and
// float, str() of None/True/False and of lists and dicts, and tojson as json.dumps with
// ensure_ascii=False. Lists cannot be changed (no append), as in transformers' immutable sandbox;
// namespace() attributes can. Immutable after Parse; Render may be called from several threads at
// once.
//
// A template comes with a model folder, which people download: it is untrusted, and parsing and
// rendering it are bounded whatever it says (a template past a limit throws TemplateLimit):
//   kMaxNesting  blocks inside blocks; an expression's parts inside each other, where every
//                operator, filter, test, attribute, index, call, list and dict is a level, so a
//                chain `a|f|g` or `a ~ b ~ c` is as deep as it is long; and values nested inside
//                each other where they are printed or compared.
//   kMaxSteps    the work of one rendering, counted: each tag and expression evaluated is a step,
//                a loop iteration (which makes the loop variables) kStepsPerIteration, and each
//                item, dict entry or kBytesPerStep bytes of text that an expression makes,
//                compares or searches one more.
//   kMaxBytes    the rendered text, and any one string made while rendering.
//   kMaxItems    any one list or dict made while rendering, and a loop's items.
// The published templates of Llama 3.1, Mistral v0.3, Qwen2.5, Zephyr and Gemma 2 nest fewer than
// 10 levels, and render a conversation of 2,000 messages and 4 MB in about 2,000,000 steps.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tune::jinja {

inline constexpr int kMaxNesting = 256;
inline constexpr int64_t kMaxSteps = 20'000'000;
inline constexpr int64_t kStepsPerIteration = 20;
inline constexpr int64_t kBytesPerStep = 16;
inline constexpr size_t kMaxBytes = size_t{16} << 20;
inline constexpr size_t kMaxItems = size_t{1} << 20;

// A template that cannot be parsed or rendered. what(): "line N: ..." (the template's line).
class TemplateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A template past one of the limits above: the template is at fault, whatever it renders.
class TemplateLimit : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

class Value;
using List = std::vector<Value>;
// A dict: insertion-ordered, as Python's; attribute and item access read it the same way.
struct Object {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;  // namespace(): attributes may be set with {% set ns.x = ... %}
  const Value* Find(std::string_view key) const;
  void Set(const std::string& key, Value value);
};
using Function = std::function<Value(std::vector<Value> args,
                                     std::vector<std::pair<std::string, Value>> kwargs)>;

struct Undefined {};
struct None {};

class Value {
 public:
  Value() : data_(Undefined{}) {}
  Value(None) : data_(None{}) {}
  Value(bool b) : data_(b) {}
  Value(int v) : data_(static_cast<int64_t>(v)) {}
  Value(int64_t v) : data_(v) {}
  Value(double v) : data_(v) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(std::string s) : data_(std::move(s)) {}
  // Lists and dicts are freed without recursion, however deep they nest (jinja_value.cpp).
  Value(List list);
  Value(Object object);
  Value(Function function) : data_(std::make_shared<Function>(std::move(function))) {}

  bool is_undefined() const { return std::holds_alternative<Undefined>(data_); }
  bool is_none() const { return std::holds_alternative<None>(data_); }
  bool is_bool() const { return std::holds_alternative<bool>(data_); }
  bool is_int() const { return std::holds_alternative<int64_t>(data_); }
  bool is_float() const { return std::holds_alternative<double>(data_); }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return std::holds_alternative<std::string>(data_); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<List>>(data_); }
  bool is_object() const { return std::holds_alternative<std::shared_ptr<Object>>(data_); }
  bool is_function() const { return std::holds_alternative<std::shared_ptr<Function>>(data_); }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_number() const {
    return is_int() ? static_cast<double>(as_int()) : std::get<double>(data_);
  }
  const std::string& as_string() const { return std::get<std::string>(data_); }
  // Lists and objects are shared: copies of a Value see the same elements (as Python's do).
  List& as_list() const { return *std::get<std::shared_ptr<List>>(data_); }
  Object& as_object() const { return *std::get<std::shared_ptr<Object>>(data_); }
  const Function& as_function() const { return *std::get<std::shared_ptr<Function>>(data_); }

  bool Truthy() const;
  // str(value) in Python; undefined is "". Str, Repr and Json throw std::length_error for text
  // past kMaxBytes, or a list or dict nested past kMaxNesting (or inside itself).
  std::string Str() const;
  // repr(value) in Python, which str() uses for the elements of lists and dicts.
  std::string Repr() const;
  // json.dumps(value, ensure_ascii=False, indent=indent) (indent < 0: none, separators ", " ": ").
  std::string Json(int64_t indent = -1) const;
  std::string TypeName() const;
  // Whether `other` holds the same alternative (int and float differ).
  bool SameType(const Value& other) const { return data_.index() == other.data_.index(); }

 private:
  std::variant<Undefined, None, bool, int64_t, double, std::string, std::shared_ptr<List>,
               std::shared_ptr<Object>, std::shared_ptr<Function>>
      data_;
};

class Template {
 public:
  // Throws TemplateError naming the line of the first construct it cannot parse or does not
  // support.
  explicit Template(std::string_view source);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Renders with `context`'s variables (plus the globals range, namespace and raise_exception).
  // Throws TemplateError naming the line for an error while rendering, including the message of
  // the template's own raise_exception, and TemplateLimit past a limit.
  std::string Render(const Object& context) const;

  struct Node;

 private:
  std::vector<std::unique_ptr<Node>> body_;
};

}  // namespace tune::jinja

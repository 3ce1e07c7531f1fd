#include "registry/filter.h"

#include <charconv>
#include <cmath>

#include "util/echo.h"
#include "util/error.h"

namespace tune::registry_internal {
namespace {

FilterValue FromParam(const ParamValue& value) {
  return std::visit(
      [](const auto& v) -> FilterValue {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return std::string(v ? "true" : "false");
        } else if constexpr (std::is_same_v<T, std::string>) {
          return v;
        } else {
          return static_cast<double>(v);
        }
      },
      value);
}

double Number(int64_t value) { return static_cast<double>(value); }

// The attributes every record has, in the order `CollectKeys` lists them.
constexpr std::string_view kAttributes[] = {"name",
                                            "version",
                                            "created_ms",
                                            "method",
                                            "seed",
                                            "dataset.hash",
                                            "dataset.train_examples",
                                            "dataset.eval_examples",
                                            "base_model.name",
                                            "base_model.path",
                                            "base_model.hash",
                                            "tokenizer_hash",
                                            "wall_time_s",
                                            "trainable_parameters",
                                            "peak_memory_bytes",
                                            "peak_gpu_memory_bytes",
                                            "tokens_per_second",
                                            "tune_version",
                                            "sweep",
                                            "trial",
                                            "configuration",
                                            "run_id",
                                            "artifact.digest",
                                            "artifact.size_bytes"};

std::optional<FilterValue> Attribute(const VersionRecord& r, std::string_view key) {
  if (key == "name") return r.name;
  if (key == "version") return Number(r.version);
  if (key == "created_ms") return Number(r.created_ms);
  if (key == "method") return r.method;
  if (key == "seed") return Number(r.seed);
  if (key == "dataset.hash") return r.dataset_hash;
  if (key == "dataset.train_examples") return Number(r.train_examples);
  if (key == "dataset.eval_examples") return Number(r.eval_examples);
  if (key == "base_model.name") return r.base_model_name;
  if (key == "base_model.path") return r.base_model_path;
  if (key == "base_model.hash") return r.base_model_hash;
  if (key == "tokenizer_hash") return r.tokenizer_hash;
  if (key == "wall_time_s") return r.wall_time_s;
  if (key == "trainable_parameters") return Number(r.trainable_parameters);
  if (key == "peak_memory_bytes") return Number(r.peak_memory_bytes);
  if (key == "peak_gpu_memory_bytes") return Number(r.peak_gpu_memory_bytes);
  if (key == "tokens_per_second") return r.tokens_per_second;
  if (key == "tune_version") return r.tune_version;
  if (key == "sweep") return r.sweep ? std::optional<FilterValue>(*r.sweep) : std::nullopt;
  if (key == "trial") return r.trial ? std::optional<FilterValue>(Number(*r.trial)) : std::nullopt;
  if (key == "configuration") {
    return r.configuration ? std::optional<FilterValue>(Number(*r.configuration)) : std::nullopt;
  }
  if (key == "run_id") return r.run_id;
  if (key == "artifact.digest") return r.artifact_digest;
  if (key == "artifact.size_bytes") return Number(r.artifact_size_bytes);
  return std::nullopt;
}

bool IsAttribute(std::string_view key) {
  for (const std::string_view attribute : kAttributes) {
    if (key == attribute) return true;
  }
  return false;
}

}  // namespace

std::optional<FilterValue> LookupKey(const VersionRecord& record, std::string_view key) {
  const auto score = [&](const std::map<std::string, double>& scores,
                         std::string_view metric) -> std::optional<FilterValue> {
    const auto it = scores.find(std::string(metric));
    if (it == scores.end()) return std::nullopt;
    return it->second;
  };
  if (key.starts_with("scores.")) return score(record.scores, key.substr(7));
  if (key.starts_with("base_scores.")) return score(record.base_scores, key.substr(12));
  if (key.starts_with("few_shot_scores.")) return score(record.few_shot_scores, key.substr(16));
  if (IsAttribute(key)) return Attribute(record, key);
  std::string_view param = key.starts_with("params.") ? key.substr(7) : key;
  const auto it = record.params.find(std::string(param));
  if (it == record.params.end()) return std::nullopt;
  return FromParam(it->second);
}

void CollectKeys(const VersionRecord& record, std::set<std::string>& keys) {
  for (const std::string_view attribute : kAttributes) keys.emplace(attribute);
  for (const auto& [metric, value] : record.scores) keys.insert("scores." + metric);
  for (const auto& [metric, value] : record.base_scores) keys.insert("base_scores." + metric);
  for (const auto& [metric, value] : record.few_shot_scores) {
    keys.insert("few_shot_scores." + metric);
  }
  for (const auto& [param, value] : record.params) {
    keys.insert(param);
    keys.insert("params." + param);
  }
}

// Recursive descent over:
//   or      := and ("or" and)*
//   and     := unary ("and" unary)*
//   unary   := "not" unary | "(" or ")" | key op value
class FilterParser {
 public:
  // Filters come from command lines and, through the web view, from any browser: their size and
  // nesting are bounded rather than left to memory and the stack.
  static constexpr size_t kMaxLength = 4096;
  static constexpr int kMaxNesting = 64;

  explicit FilterParser(std::string_view text) : text_(text) {}

  Filter Parse() {
    if (text_.size() > kMaxLength) {
      Fail(kMaxLength, "the filter is " + std::to_string(text_.size()) + " bytes long, over the " +
                           std::to_string(kMaxLength) + " a filter may have");
    }
    filter_.text_ = std::string(text_);
    SkipSpace();
    if (pos_ == text_.size()) return std::move(filter_);
    filter_.root_ = ParseOr();
    SkipSpace();
    if (pos_ != text_.size()) Fail(pos_, "expected 'and', 'or' or the end, found " + Found());
    return std::move(filter_);
  }

 private:
  [[noreturn]] void Fail(size_t at, const std::string& why) const {
    throw UserError("filter `" + Echo(text_) + "`, column " + std::to_string(at + 1) + ": " + why +
                    "; write comparisons like `scores.exact_match > 0.8 and adapter.rank = 16`");
  }

  // What comes next, for messages: "'adapter.ran...'" or "the end". Built by appending: GCC 12
  // reports a false -Wrestrict for "'" + std::string + "'".
  std::string Found() const {
    if (pos_ >= text_.size()) return "the end";
    // Appended, not "'" + ...: GCC 12 reports a false -Wrestrict for that.
    std::string found = "'";
    return found.append(Echo(text_.substr(pos_), 12)).append("'");
  }

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }

  static bool IsWordChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == ':' || c == '/';
  }

  // A keyword, case-insensitive, followed by something that is not part of a word.
  bool TakeKeyword(std::string_view keyword) {
    SkipSpace();
    if (text_.size() - pos_ < keyword.size()) return false;
    for (size_t i = 0; i < keyword.size(); ++i) {
      char c = text_[pos_ + i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != keyword[i]) return false;
    }
    const size_t end = pos_ + keyword.size();
    if (end < text_.size() && IsWordChar(text_[end])) return false;
    pos_ = end;
    return true;
  }

  int Add(Filter::Node node) {
    filter_.nodes_.push_back(std::move(node));
    return static_cast<int>(filter_.nodes_.size()) - 1;
  }

  int ParseOr() {
    int left = ParseAnd();
    while (TakeKeyword("or")) {
      Filter::Node node;
      node.kind = Filter::Node::Kind::kOr;
      node.left = left;
      node.right = ParseAnd();
      left = Add(std::move(node));
    }
    return left;
  }

  int ParseAnd() {
    int left = ParseUnary();
    while (TakeKeyword("and")) {
      Filter::Node node;
      node.kind = Filter::Node::Kind::kAnd;
      node.left = left;
      node.right = ParseUnary();
      left = Add(std::move(node));
    }
    return left;
  }

  int ParseUnary() {
    SkipSpace();
    if (++depth_ > kMaxNesting) {
      Fail(pos_,
           "parentheses and 'not' nest deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    const int node = ParseNested();
    --depth_;
    return node;
  }

  int ParseNested() {
    if (TakeKeyword("not")) {
      Filter::Node node;
      node.kind = Filter::Node::Kind::kNot;
      node.left = ParseUnary();
      return Add(std::move(node));
    }
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '(') {
      const size_t open = pos_++;
      const int inner = ParseOr();
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ')') {
        Fail(pos_, "expected ')' to close the '(' at column " + std::to_string(open + 1));
      }
      ++pos_;
      return inner;
    }
    return ParseComparison();
  }

  int ParseComparison() {
    SkipSpace();
    const size_t key_start = pos_;
    if (pos_ == text_.size())
      Fail(pos_, "expected a key such as scores.exact_match, found the end");
    if (!IsWordChar(text_[pos_]) || (text_[pos_] >= '0' && text_[pos_] <= '9')) {
      Fail(pos_, "expected a key such as scores.exact_match, found " + Found());
    }
    while (pos_ < text_.size() && IsWordChar(text_[pos_])) ++pos_;
    Filter::Node node;
    node.key = std::string(text_.substr(key_start, pos_ - key_start));
    if (node.key == "and" || node.key == "or") {
      Fail(key_start, "expected a key before '" + Echo(node.key, 40) + "'");
    }
    filter_.keys_.push_back({node.key, key_start + 1});

    SkipSpace();
    const size_t op_start = pos_;
    const auto next = [&](size_t i) { return pos_ + i < text_.size() ? text_[pos_ + i] : '\0'; };
    if (next(0) == '=' && next(1) == '=') {
      node.op = Filter::Op::kEq, pos_ += 2;
    } else if (next(0) == '=') {
      node.op = Filter::Op::kEq, pos_ += 1;
    } else if (next(0) == '!' && next(1) == '=') {
      node.op = Filter::Op::kNe, pos_ += 2;
    } else if (next(0) == '<' && next(1) == '=') {
      node.op = Filter::Op::kLe, pos_ += 2;
    } else if (next(0) == '>' && next(1) == '=') {
      node.op = Filter::Op::kGe, pos_ += 2;
    } else if (next(0) == '<') {
      node.op = Filter::Op::kLt, pos_ += 1;
    } else if (next(0) == '>') {
      node.op = Filter::Op::kGt, pos_ += 1;
    } else {
      Fail(op_start,
           "expected one of = != < <= > >= after '" + Echo(node.key, 40) + "', found " + Found());
    }
    const std::string op_text(text_.substr(op_start, pos_ - op_start));

    SkipSpace();
    const size_t value_start = pos_;
    if (pos_ == text_.size()) Fail(pos_, "expected a value after '" + op_text + "', found the end");
    const char c = text_[pos_];
    if (c == '\'' || c == '"') {
      const size_t close = text_.find(c, pos_ + 1);
      if (close == std::string_view::npos) {
        Fail(value_start, std::string("the string is not closed (no matching ") + c + ")");
      }
      node.value = std::string(text_.substr(pos_ + 1, close - pos_ - 1));
      pos_ = close + 1;
    } else if (IsWordChar(c) || c == '+') {
      const size_t start = pos_;
      while (pos_ < text_.size() && (IsWordChar(text_[pos_]) || text_[pos_] == '+')) ++pos_;
      const std::string_view word = text_.substr(start, pos_ - start);
      const bool numeric_start =
          (c >= '0' && c <= '9') || ((c == '-' || c == '+' || c == '.') && word.size() > 1);
      double number = 0.0;
      const char* first = word.data() + (word[0] == '+' ? 1 : 0);
      const auto [end, error] = std::from_chars(first, word.data() + word.size(), number);
      if (numeric_start && error == std::errc() && end == word.data() + word.size()) {
        node.value = number;
      } else if (numeric_start && ((c >= '0' && c <= '9') || c == '-' || c == '+')) {
        Fail(value_start, "'" + Echo(word, 40) + "' is not a number");
      } else {
        node.value = std::string(word);
      }
    } else {
      Fail(value_start, "expected a value after '" + op_text + "', found " + Found());
    }
    return Add(std::move(node));
  }

  std::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;
  Filter filter_;
};

Filter Filter::Parse(std::string_view text) { return FilterParser(text).Parse(); }

bool Filter::Matches(const VersionRecord& record) const {
  return root_ < 0 || Evaluate(root_, record);
}

bool Filter::Evaluate(int index, const VersionRecord& record) const {
  const Node& node = nodes_[static_cast<size_t>(index)];
  switch (node.kind) {
    case Node::Kind::kAnd:
      return Evaluate(node.left, record) && Evaluate(node.right, record);
    case Node::Kind::kOr:
      return Evaluate(node.left, record) || Evaluate(node.right, record);
    case Node::Kind::kNot:
      return !Evaluate(node.left, record);
    case Node::Kind::kCompare:
      break;
  }
  const std::optional<FilterValue> actual = LookupKey(record, node.key);
  if (!actual) return false;
  if (actual->index() != node.value.index()) return node.op == Op::kNe;
  const auto compare = [&](const auto& a, const auto& b) {
    switch (node.op) {
      case Op::kEq:
        return a == b;
      case Op::kNe:
        return a != b;
      case Op::kLt:
        return a < b;
      case Op::kLe:
        return a <= b;
      case Op::kGt:
        return a > b;
      case Op::kGe:
        return a >= b;
    }
    return false;
  };
  if (const double* number = std::get_if<double>(&*actual)) {
    return compare(*number, std::get<double>(node.value));
  }
  return compare(std::get<std::string>(*actual), std::get<std::string>(node.value));
}

SortKey SortKey::Parse(std::string_view text) {
  SortKey sort;
  if (text.starts_with('-')) {
    sort.descending = true;
    text.remove_prefix(1);
  }
  if (text.empty()) {
    throw UserError(
        "sort key is empty; write a key such as scores.exact_match, with '-' in front "
        "for descending");
  }
  sort.key = std::string(text);
  return sort;
}

SortEntry MakeSortEntry(const SortKey& sort, const VersionRecord& record) {
  return {sort.key.empty() ? std::nullopt : LookupKey(record, sort.key), &record};
}

bool SortBefore(const SortKey& sort, const SortEntry& a, const SortEntry& b) {
  const std::optional<FilterValue>& va = a.value;
  const std::optional<FilterValue>& vb = b.value;
  if (va.has_value() != vb.has_value()) return va.has_value();  // missing values last
  if (va && *va != *vb) return sort.descending ? *vb < *va : *va < *vb;
  if (a.record->name != b.record->name) return a.record->name < b.record->name;
  return a.record->version < b.record->version;
}

bool SortBefore(const SortKey& sort, const VersionRecord& a, const VersionRecord& b) {
  return SortBefore(sort, MakeSortEntry(sort, a), MakeSortEntry(sort, b));
}

}  // namespace tune::registry_internal

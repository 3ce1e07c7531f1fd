#include "config/sweep_space.h"

#include <algorithm>
#include <cmath>

#include "util/echo.h"
#include "util/error.h"
#include "util/number_text.h"

namespace tune {
namespace {

// Recursive descent over: sum := product (('+'|'-') product)*; product := unary (('*'|'/')
// unary)*; unary := '-' unary | atom; atom := number | key | '(' sum ')'.
class ExpressionParser {
 public:
  ExpressionParser(const std::string& text, const Assignment& values)
      : text_(text), values_(values) {}

  double Parse() {
    const double value = Sum();
    Skip();
    if (pos_ != text_.size()) Fail("unexpected '" + std::string(1, text_[pos_]) + "'");
    return value;
  }

 private:
  void Skip() {
    while (pos_ < text_.size() && text_[pos_] == ' ') ++pos_;
  }
  bool Eat(char c) {
    Skip();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  [[noreturn]] void Fail(const std::string& what) const {
    throw UserError("sweep expression \"" + Echo(text_) + "\", column " + std::to_string(pos_ + 1) +
                    ": " + what);
  }
  // Bounds the recursion, so that "((((..." is an error and not a stack overflow.
  void Nest() {
    if (++depth_ > 64) Fail("parentheses and '-' nest deeper than 64 levels");
  }
  double Sum() {
    double value = Product();
    while (true) {
      if (Eat('+')) {
        value += Product();
      } else if (Eat('-')) {
        value -= Product();
      } else {
        return value;
      }
    }
  }
  double Product() {
    double value = Unary();
    while (true) {
      if (Eat('*')) {
        value *= Unary();
      } else if (Eat('/')) {
        value /= Unary();
      } else {
        return value;
      }
    }
  }
  double Unary() {
    Nest();
    const double value = Eat('-') ? -Unary() : Atom();
    --depth_;
    return value;
  }
  double Atom() {
    Skip();
    if (Eat('(')) {
      Nest();
      const double value = Sum();
      if (!Eat(')')) Fail("missing ')'");
      --depth_;
      return value;
    }
    const size_t start = pos_;
    auto is_name = [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
    };
    while (pos_ < text_.size() &&
           (is_name(text_[pos_]) || ((text_[pos_] == '+' || text_[pos_] == '-') && pos_ > start &&
                                     (text_[pos_ - 1] == 'e')))) {
      ++pos_;
    }
    const std::string word = text_.substr(start, pos_ - start);
    if (word.empty()) Fail("expected a number or a key");
    if ((word[0] >= '0' && word[0] <= '9') || word[0] == '.') {
      size_t used = 0;
      double value = 0;
      try {
        value = std::stod(word, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != word.size()) Fail("'" + Echo(word, 40) + "' is not a number");
      return value;
    }
    const auto it = values_.find(word);
    pos_ = start;  // errors about the word point at its start
    if (it == values_.end()) {
      Fail("'" + Echo(word, 40) +
           "' is not a swept parameter; tied parameters refer to swept keys");
    }
    const double value = AsNumber(it->second);
    if (std::isnan(value)) Fail("'" + Echo(word, 40) + "' is not a number");
    pos_ = start + word.size();
    return value;
  }

  const std::string& text_;
  const Assignment& values_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// Whether `expression` names `key` as a whole word.
bool Mentions(const std::string& expression, const std::string& key) {
  const auto is_name = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
  };
  for (size_t at = expression.find(key); at != std::string::npos;
       at = expression.find(key, at + 1)) {
    const size_t end = at + key.size();
    if ((at == 0 || !is_name(expression[at - 1])) &&
        (end == expression.size() || !is_name(expression[end]))) {
      return true;
    }
  }
  return false;
}

// The values a parameter can take that a check tries: each listed value, each end of a range.
std::vector<OptionValue> ValuesToTry(const SweepParameter& p) {
  if (p.kind == SweepParameter::Kind::kValues || p.distribution == "categorical") return p.values;
  const bool integer = p.distribution == "int_uniform";
  return {SampledValue(p, p.min, integer), SampledValue(p, p.max, integer)};
}

std::string AssignmentText(const Assignment& assignment) {
  std::string text;
  for (const auto& [key, value] : assignment) {
    text += (text.empty() ? "" : ", ") + key + " = " + NumberText(AsNumber(value));
  }
  return text;
}

}  // namespace

double AsNumber(const OptionValue& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&value)) return *d;
  return NAN;
}

OptionValue SampledValue(const SweepParameter& p, double x, bool integer) {
  if (p.q) x = std::round(x / *p.q) * *p.q;
  x = std::clamp(x, p.min, p.max);
  if (integer) return static_cast<int64_t>(std::llround(x));
  return x;
}

double EvaluateExpression(const std::string& expression, const Assignment& assignment) {
  return ExpressionParser(expression, assignment).Parse();
}

void CheckTiedParameter(const SweepConfig& sweep, const SweepParameter& tied,
                        const OptionSpec& target) {
  std::vector<const SweepParameter*> referenced;
  for (const SweepParameter& p : sweep.parameters) {
    if (!Mentions(tied.expression, p.path)) continue;
    if (p.kind == SweepParameter::Kind::kExpression) {
      throw UserError(
          "sweep expression \"" + Echo(tied.expression) + "\" refers to '" + p.path + "', " +
          (&p == &tied ? std::string("the key it sets") : std::string("which is tied itself")) +
          "; tied parameters refer to listed or sampled parameters only");
    }
    referenced.push_back(&p);
  }
  // Every combination of the referenced parameters' values to try, at most 256 of them.
  std::vector<Assignment> assignments = {{}};
  for (const SweepParameter* p : referenced) {
    std::vector<Assignment> next;
    for (const Assignment& partial : assignments) {
      for (const OptionValue& value : ValuesToTry(*p)) {
        if (next.size() == 256) break;
        Assignment extended = partial;
        extended[p->path] = value;
        next.push_back(std::move(extended));
      }
    }
    assignments = std::move(next);
  }
  for (const Assignment& assignment : assignments) {
    const double value = EvaluateExpression(tied.expression, assignment);
    const std::string gives = "sweep expression \"" + Echo(tied.expression) + "\" gives " +
                              NumberText(value) +
                              (assignment.empty() ? "" : " at " + AssignmentText(assignment));
    if (!std::isfinite(value)) throw UserError(gives + "; it must give a finite number");
    if (target.type == OptionType::kInt && std::floor(value) != value) {
      throw UserError(gives + ", but '" + tied.path + "' takes integers");
    }
    if (target.type != OptionType::kInt && target.type != OptionType::kFloat) {
      throw UserError("sweep expression \"" + Echo(tied.expression) + "\" sets '" + tied.path +
                      "', which is not a number; give a list of values instead");
    }
    const bool in_range = (target.min_exclusive ? value > target.min : value >= target.min) &&
                          (target.max_exclusive ? value < target.max : value <= target.max);
    if (!in_range) {
      throw UserError(gives + ", outside the range of '" + tied.path + "', " + RangeText(target));
    }
  }
}

std::vector<const SweepParameter*> GridAxes(const SweepConfig& sweep) {
  std::vector<const SweepParameter*> axes;
  for (const SweepParameter& p : sweep.parameters) {
    if (p.kind == SweepParameter::Kind::kExpression) continue;
    if (p.kind == SweepParameter::Kind::kDistribution && p.distribution != "categorical") {
      throw UserError("sweep parameter '" + p.path + "' is a " + p.distribution +
                      " distribution, which a grid cannot enumerate; give a list of values, or "
                      "use sweep.method = \"random\" or \"tpe\"");
    }
    axes.push_back(&p);
  }
  return axes;
}

int64_t GridSize(const SweepConfig& sweep) {
  int64_t size = 1;
  for (const SweepParameter* p : GridAxes(sweep)) {
    const auto n = static_cast<int64_t>(p->values.size());
    if (n != 0 && size > INT64_MAX / n) return INT64_MAX;
    size *= n;
  }
  return size;
}

int64_t SweepConfigurations(const SweepConfig& sweep) {
  if (sweep.method == "grid") {
    const int64_t size = GridSize(sweep);
    return sweep.max_trials > 0 ? std::min(size, sweep.max_trials) : size;
  }
  return sweep.max_trials > 0 ? sweep.max_trials : kDefaultSearchTrials;
}

}  // namespace tune

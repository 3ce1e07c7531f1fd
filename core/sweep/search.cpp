#include "sweep/search.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

#include "util/echo.h"
#include "util/error.h"
#include "util/number_text.h"

namespace tune {
namespace {

double AsNumber(const OptionValue& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&value)) return *d;
  return NAN;
}

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

// Rounds to a multiple of q when set; integers for integer keys.
OptionValue Finish(const SweepParameter& p, double x, bool integer) {
  if (p.q) x = std::round(x / *p.q) * *p.q;
  x = std::clamp(x, p.min, p.max);
  if (integer) return static_cast<int64_t>(std::llround(x));
  return x;
}

bool IsInteger(const SweepParameter& p) {
  if (p.distribution == "int_uniform") return true;
  return false;
}

OptionValue Sample(const SweepParameter& p, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  if (p.kind == SweepParameter::Kind::kValues || p.distribution == "categorical") {
    return p.values[static_cast<size_t>(rng() % p.values.size())];
  }
  if (p.distribution == "log_uniform") {
    return Finish(p, std::exp(std::log(p.min) + unit(rng) * (std::log(p.max) - std::log(p.min))),
                  false);
  }
  if (p.distribution == "int_uniform") {
    const auto lo = static_cast<int64_t>(std::ceil(p.min));
    const auto hi = static_cast<int64_t>(std::floor(p.max));
    return Finish(p, static_cast<double>(lo + static_cast<int64_t>(rng() % (hi - lo + 1))), true);
  }
  return Finish(p, p.min + unit(rng) * (p.max - p.min), false);
}

void Tie(const SweepConfig& sweep, Assignment& assignment) {
  for (const SweepParameter& p : sweep.parameters) {
    if (p.kind != SweepParameter::Kind::kExpression) continue;
    const double value = EvaluateExpression(p.expression, assignment);
    // An expression over integers that lands on an integer stays one (2 * adapter.rank).
    if (std::floor(value) == value && std::abs(value) < 9e15) {
      assignment[p.path] = static_cast<int64_t>(value);
    } else {
      assignment[p.path] = value;
    }
  }
}

std::mt19937_64 TrialRng(uint64_t seed, int64_t index) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(index), 0x7457u};
  return std::mt19937_64(seq);
}

// Position of a value on the parameter's search axis: log for log_uniform, the index for lists.
double Axis(const SweepParameter& p, const OptionValue& value) {
  if (p.kind == SweepParameter::Kind::kValues || p.distribution == "categorical") {
    for (size_t i = 0; i < p.values.size(); ++i) {
      if (p.values[i] == value) return static_cast<double>(i);
    }
    return 0.0;
  }
  const double x = AsNumber(value);
  return p.distribution == "log_uniform" ? std::log(x) : x;
}

// Parzen density on one axis: a Gaussian per observation plus one for the prior (the whole
// range), bandwidth from the spread of the observations (Bergstra et al. 2011, section 4).
double ParzenDensity(double x, const std::vector<double>& points, double lo, double hi) {
  const double range = hi - lo > 0 ? hi - lo : 1.0;
  const double sigma =
      std::max(range / std::max<double>(1.0, std::sqrt(points.size())), 1e-3 * range);
  double density = 0.0;
  auto gauss = [](double z, double s) {
    return std::exp(-0.5 * z * z / (s * s)) / (s * std::sqrt(2 * std::numbers::pi));
  };
  for (double point : points) density += gauss(x - point, sigma);
  density += gauss(x - (lo + hi) / 2, range);  // the prior
  return density / static_cast<double>(points.size() + 1);
}

// Probability of index x among n choices from smoothed counts of `points`.
double CategoricalDensity(double x, const std::vector<double>& points, size_t n) {
  double count = 1.0;  // add-one smoothing
  for (double point : points) count += point == x ? 1.0 : 0.0;
  return count / (static_cast<double>(points.size()) + static_cast<double>(n));
}

}  // namespace

double EvaluateExpression(const std::string& expression, const Assignment& assignment) {
  return ExpressionParser(expression, assignment).Parse();
}

namespace {

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
  return {Finish(p, p.min, integer), Finish(p, p.max, integer)};
}

std::string AssignmentText(const Assignment& assignment) {
  std::string text;
  for (const auto& [key, value] : assignment) {
    text += (text.empty() ? "" : ", ") + key + " = " + NumberText(AsNumber(value));
  }
  return text;
}

}  // namespace

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

namespace {

// The parameters a grid enumerates, in declaration order; refuses continuous distributions.
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

}  // namespace

int64_t GridSize(const SweepConfig& sweep) {
  int64_t size = 1;
  for (const SweepParameter* p : GridAxes(sweep)) {
    const auto n = static_cast<int64_t>(p->values.size());
    if (n != 0 && size > INT64_MAX / n) return INT64_MAX;
    size *= n;
  }
  return size;
}

Assignment GridTrial(const SweepConfig& sweep, int64_t index) {
  const std::vector<const SweepParameter*> axes = GridAxes(sweep);
  Assignment assignment;
  // Mixed-radix digits of `index`, the last parameter the least significant.
  for (auto it = axes.rbegin(); it != axes.rend(); ++it) {
    const auto n = static_cast<int64_t>((*it)->values.size());
    assignment[(*it)->path] = (*it)->values[static_cast<size_t>(index % n)];
    index /= n;
  }
  Tie(sweep, assignment);
  return assignment;
}

std::vector<std::string> GridKeysVaried(const SweepConfig& sweep, int64_t count) {
  const std::vector<const SweepParameter*> axes = GridAxes(sweep);
  std::vector<std::string> varied;
  // A parameter changes within the first `count` points when the points that share each of its
  // values (the product of the sizes after it) are fewer than `count`.
  int64_t block = 1;
  for (auto it = axes.rbegin(); it != axes.rend(); ++it) {
    if (block < count && (*it)->values.size() > 1) varied.insert(varied.begin(), (*it)->path);
    const auto n = static_cast<int64_t>((*it)->values.size());
    block = block > INT64_MAX / n ? INT64_MAX : block * n;
  }
  return varied;
}

int64_t SweepConfigurations(const SweepConfig& sweep) {
  if (sweep.method == "grid") {
    const int64_t size = GridSize(sweep);
    return sweep.max_trials > 0 ? std::min(size, sweep.max_trials) : size;
  }
  return sweep.max_trials > 0 ? sweep.max_trials : kDefaultSearchTrials;
}

Assignment RandomTrial(const SweepConfig& sweep, uint64_t seed, int64_t index) {
  std::mt19937_64 rng = TrialRng(seed, index);
  Assignment assignment;
  for (const SweepParameter& p : sweep.parameters) {
    if (p.kind != SweepParameter::Kind::kExpression) assignment[p.path] = Sample(p, rng);
  }
  Tie(sweep, assignment);
  return assignment;
}

Assignment TpeTrial(const SweepConfig& sweep, uint64_t seed, int64_t index,
                    const std::vector<FinishedTrial>& finished, int64_t startup) {
  if (static_cast<int64_t>(finished.size()) < startup) return RandomTrial(sweep, seed, index);
  std::vector<FinishedTrial> sorted = finished;
  std::sort(sorted.begin(), sorted.end(), [](const FinishedTrial& a, const FinishedTrial& b) {
    return a.objective > b.objective;
  });
  const size_t good_count = std::max<size_t>(
      1, static_cast<size_t>(std::ceil(0.25 * static_cast<double>(sorted.size()))));
  std::mt19937_64 rng = TrialRng(seed, index);
  constexpr int kCandidates = 24;
  Assignment best;
  double best_score = -INFINITY;
  for (int c = 0; c < kCandidates; ++c) {
    // Candidates come from the good trials' estimator: perturb a good trial's value on each axis.
    Assignment candidate;
    double score = 0.0;
    for (const SweepParameter& p : sweep.parameters) {
      if (p.kind == SweepParameter::Kind::kExpression) continue;
      std::vector<double> good, bad;
      for (size_t i = 0; i < sorted.size(); ++i) {
        const auto it = sorted[i].assignment.find(p.path);
        if (it == sorted[i].assignment.end()) continue;
        (i < good_count ? good : bad).push_back(Axis(p, it->second));
      }
      const bool listed =
          p.kind == SweepParameter::Kind::kValues || p.distribution == "categorical";
      OptionValue value;
      if (listed) {
        // Sample an index from the good trials' smoothed counts.
        std::vector<double> weights;
        for (size_t i = 0; i < p.values.size(); ++i) {
          weights.push_back(CategoricalDensity(static_cast<double>(i), good, p.values.size()));
        }
        std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
        const size_t i = pick(rng);
        value = p.values[i];
        score += std::log(CategoricalDensity(static_cast<double>(i), good, p.values.size())) -
                 std::log(CategoricalDensity(static_cast<double>(i), bad, p.values.size()));
      } else {
        const bool log_axis = p.distribution == "log_uniform";
        const double lo = log_axis ? std::log(p.min) : p.min;
        const double hi = log_axis ? std::log(p.max) : p.max;
        const double range = hi - lo;
        const double sigma = std::max(
            range / std::max(1.0, std::sqrt(static_cast<double>(good.size()))), 1e-3 * range);
        std::uniform_int_distribution<size_t> which(0, good.size());  // good.size(): the prior
        const size_t k = which(rng);
        std::normal_distribution<double> noise(k < good.size() ? good[k] : (lo + hi) / 2,
                                               k < good.size() ? sigma : range);
        const double x = std::clamp(noise(rng), lo, hi);
        value = Finish(p, log_axis ? std::exp(x) : x, IsInteger(p));
        const double axis = Axis(p, value);
        score += std::log(ParzenDensity(axis, good, lo, hi)) -
                 std::log(ParzenDensity(axis, bad, lo, hi) + 1e-300);
      }
      candidate[p.path] = value;
    }
    if (score > best_score) {
      best_score = score;
      best = std::move(candidate);
    }
  }
  Tie(sweep, best);
  return best;
}

}  // namespace tune

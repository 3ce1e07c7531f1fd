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
    return SampledValue(
        p, std::exp(std::log(p.min) + unit(rng) * (std::log(p.max) - std::log(p.min))), false);
  }
  if (p.distribution == "int_uniform") {
    const auto lo = static_cast<int64_t>(std::ceil(p.min));
    const auto hi = static_cast<int64_t>(std::floor(p.max));
    return SampledValue(p, static_cast<double>(lo + static_cast<int64_t>(rng() % (hi - lo + 1))),
                        true);
  }
  return SampledValue(p, p.min + unit(rng) * (p.max - p.min), false);
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
        value = SampledValue(p, log_axis ? std::exp(x) : x, IsInteger(p));
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

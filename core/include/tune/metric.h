// Metric plugins: score a model's outputs on the evaluation split.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "tune/plugin.h"

namespace tune {

// Whether a larger score is better. Sweeps use it to rank trials on their objective.
enum class MetricGoal { kMaximize, kMinimize };

// One evaluation example as the metric sees it.
struct MetricExample {
  std::string prompt;
  std::string prediction;               // what the model generated for `prompt`
  std::vector<std::string> references;  // acceptable answers; never empty
};

struct MetricScore {
  double value = 0.0;  // the score of the whole split
  // One score per example, in input order, when the metric is a mean of per-example scores;
  // empty for corpus-level metrics (BLEU). Used to show people which examples failed.
  std::vector<double> per_example;
};

// A configured metric. Score may be called many times; it must not keep state between calls.
class Metric {
 public:
  virtual ~Metric() = default;
  // `examples` is never empty.
  virtual MetricScore Score(std::span<const MetricExample> examples) const = 0;
};

// The score of a metric that averages a per-example score: `score_one(example)` returns the
// example's score as a double.
template <typename ScoreOne>
MetricScore MeanOverExamples(std::span<const MetricExample> examples, ScoreOne&& score_one) {
  MetricScore score;
  score.per_example.reserve(examples.size());
  for (const MetricExample& example : examples) {
    score.per_example.push_back(score_one(example));
    score.value += score.per_example.back();
  }
  if (!examples.empty()) score.value /= static_cast<double>(examples.size());
  return score;
}

}  // namespace tune

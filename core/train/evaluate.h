// Evaluation of a model (with whatever adapter is attached) on the eval split.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "train/examples.h"

namespace tune {

class Metric;
class Model;

// Mean cross-entropy (nats per target token) of `examples`, masked as in training, in batches
// of `batch_size`, without recording gradients. `examples` must not be empty.
double EvalLoss(Model& model, const std::vector<TokenizedExample>& examples, int64_t batch_size,
                bool train_on_prompt);

struct NamedMetric {
  std::string name;
  const Metric* metric;
};

// What the model generated for one example, and its score under each metric that scores
// examples one by one (corpus-level metrics such as BLEU have none).
struct ExampleOutput {
  std::string prediction;
  std::map<std::string, double> scores;  // metric name -> this example's score
};

struct GenerationEval {
  std::map<std::string, double> scores;  // metric name -> score of the split
  std::vector<ExampleOutput> outputs;    // one per example, in order
  int64_t reached_context = 0;           // outputs cut where the model's context ends
};

// Greedy-decodes each example's prompt (at most `max_new_tokens`, stopping at any of `end_ids`
// or at the end of the model's context; prompts of equal length `batch_size` at a time) and
// scores the outputs against the completions with every metric. With `stop_text`, each output is
// cut before its first occurrence (a few-shot prompt's separator) before it is kept and scored.
GenerationEval EvalGeneration(Model& model, const std::vector<TextExample>& examples,
                              const std::vector<NamedMetric>& metrics, int64_t max_new_tokens,
                              int64_t batch_size, std::span<const int32_t> end_ids,
                              std::string_view stop_text = {});

}  // namespace tune

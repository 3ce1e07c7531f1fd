#include "train/evaluate.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "generate/generate.h"
#include "tune/metric.h"
#include "tune/model.h"

namespace tune {

double EvalLoss(Model& model, const std::vector<TokenizedExample>& examples, int64_t batch_size,
                bool train_on_prompt) {
  c10::NoGradGuard no_grad;
  double loss_sum = 0.0;
  int64_t targets = 0;
  for (size_t begin = 0; begin < examples.size(); begin += batch_size) {
    std::vector<const TokenizedExample*> rows;
    for (size_t i = begin; i < std::min(examples.size(), begin + batch_size); ++i) {
      rows.push_back(&examples[i]);
    }
    const Batch batch = MakeBatch(rows, train_on_prompt);
    if (batch.target_tokens == 0) continue;
    const at::Tensor logits = model.Forward(batch.inputs, nullptr);
    const at::Tensor loss = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}),
                                                   batch.targets.reshape({-1}).to(logits.device()),
                                                   {}, at::Reduction::Sum, -100);
    loss_sum += loss.item<double>();
    targets += batch.target_tokens;
  }
  return targets > 0 ? loss_sum / static_cast<double>(targets) : 0.0;
}

GenerationEval EvalGeneration(Model& model, const std::vector<TextExample>& examples,
                              const std::vector<NamedMetric>& metrics, int64_t max_new_tokens,
                              int64_t batch_size, std::span<const int32_t> end_ids,
                              std::string_view stop_text) {
  const Tokenizer& tokenizer = model.tokenizer();
  std::vector<std::vector<int32_t>> prompts;
  for (const TextExample& example : examples) {
    prompts.push_back(EncodeWithBos(tokenizer, example.prompt));
  }
  const std::vector<Generation> outputs =
      GenerateGreedyBatched(model, prompts, max_new_tokens, batch_size, end_ids);
  GenerationEval eval;
  std::vector<MetricExample> scored;
  for (size_t i = 0; i < examples.size(); ++i) {
    std::string prediction = tokenizer.Decode(outputs[i].ids);
    if (!stop_text.empty())
      prediction.resize(std::min(prediction.find(stop_text), prediction.size()));
    eval.outputs.push_back({std::move(prediction), {}});
    if (outputs[i].reached_context) ++eval.reached_context;
    scored.push_back(
        {examples[i].prompt, eval.outputs.back().prediction, {examples[i].completion}});
  }
  for (const NamedMetric& metric : metrics) {
    const MetricScore score = metric.metric->Score(scored);
    eval.scores[metric.name] = score.value;
    if (score.per_example.size() != eval.outputs.size()) continue;  // a corpus-level metric
    for (size_t i = 0; i < eval.outputs.size(); ++i) {
      eval.outputs[i].scores[metric.name] = score.per_example[i];
    }
  }
  return eval;
}

}  // namespace tune

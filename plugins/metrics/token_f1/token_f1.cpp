// token_f1: SQuAD's word-overlap F1 between prediction and reference, best reference per example,
// averaged over examples.
#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "tune/metric.h"
#include "tune/text.h"

namespace {

// F1 of the multiset overlap of two word lists. Two empty lists agree (1); one empty list
// against a non-empty one scores 0, as in the SQuAD v2.0 script.
double WordF1(const std::vector<std::string>& prediction,
              const std::vector<std::string>& reference) {
  if (prediction.empty() || reference.empty()) {
    return prediction.empty() && reference.empty() ? 1.0 : 0.0;
  }
  std::map<std::string_view, int> reference_counts;
  for (const std::string& word : reference) ++reference_counts[word];
  int overlap = 0;
  for (const std::string& word : prediction) {
    auto it = reference_counts.find(word);
    if (it != reference_counts.end() && it->second > 0) {
      --it->second;
      ++overlap;
    }
  }
  if (overlap == 0) return 0.0;
  const double precision = static_cast<double>(overlap) / static_cast<double>(prediction.size());
  const double recall = static_cast<double>(overlap) / static_cast<double>(reference.size());
  return 2.0 * precision * recall / (precision + recall);
}

class TokenF1 final : public tune::Metric {
 public:
  explicit TokenF1(tune::NormalizeOptions normalize) : normalize_(normalize) {}

  tune::MetricScore Score(std::span<const tune::MetricExample> examples) const override {
    return tune::MeanOverExamples(examples, [&](const tune::MetricExample& example) {
      const std::vector<std::string> prediction =
          tune::SplitWhitespace(tune::NormalizeText(example.prediction, normalize_));
      double best = 0.0;
      for (const std::string& ref : example.references) {
        best = std::max(
            best, WordF1(prediction, tune::SplitWhitespace(tune::NormalizeText(ref, normalize_))));
      }
      return best;
    });
  }

 private:
  tune::NormalizeOptions normalize_;
};

void Register(tune::Registrar& registrar) {
  // Words are compared after splitting on whitespace, so spacing never matters and the
  // collapse_whitespace step would be an option that changes nothing.
  std::vector<tune::OptionSpec> options = tune::NormalizeOptionSpecs();
  std::erase_if(options,
                [](const tune::OptionSpec& spec) { return spec.name == "collapse_whitespace"; });
  registrar.Add(tune::MetricPlugin{
      .info = {.name = "token_f1",
               .version = "1.0.0",
               .description = "Mean word-overlap F1 against the best reference (SQuAD-style; "
                              "two empty answers agree, as in SQuAD v2.0).",
               .options = std::move(options)},
      .goal = tune::MetricGoal::kMaximize,
      .range = {.min = 0.0, .max = 1.0},
      .create = [](const tune::Options& options) -> std::unique_ptr<tune::Metric> {
        return std::make_unique<TokenF1>(
            tune::NormalizeOptions{.lowercase = options.Bool("lowercase"),
                                   .strip_punctuation = options.Bool("strip_punctuation"),
                                   .strip_articles = options.Bool("strip_articles"),
                                   .collapse_whitespace = true});
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

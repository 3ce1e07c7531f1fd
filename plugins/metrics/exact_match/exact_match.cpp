// exact_match: the fraction of predictions equal to one of their references after normalisation.
#include <algorithm>
#include <memory>

#include "tune/metric.h"
#include "tune/text.h"

namespace {

class ExactMatch final : public tune::Metric {
 public:
  explicit ExactMatch(tune::NormalizeOptions normalize) : normalize_(normalize) {}

  tune::MetricScore Score(std::span<const tune::MetricExample> examples) const override {
    return tune::MeanOverExamples(examples, [&](const tune::MetricExample& example) {
      const std::string prediction = tune::NormalizeText(example.prediction, normalize_);
      return std::any_of(example.references.begin(), example.references.end(),
                         [&](const std::string& ref) {
                           return tune::NormalizeText(ref, normalize_) == prediction;
                         })
                 ? 1.0
                 : 0.0;
    });
  }

 private:
  tune::NormalizeOptions normalize_;
};

void Register(tune::Registrar& registrar) {
  registrar.Add(tune::MetricPlugin{
      .info = {.name = "exact_match",
               .version = "1.0.0",
               .description = "Fraction of predictions equal to a reference after normalisation "
                              "(SQuAD-style by default).",
               .options = tune::NormalizeOptionSpecs()},
      .goal = tune::MetricGoal::kMaximize,
      .range = {.min = 0.0, .max = 1.0},
      .create = [](const tune::Options& options) -> std::unique_ptr<tune::Metric> {
        return std::make_unique<ExactMatch>(tune::NormalizeOptionsFrom(options));
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

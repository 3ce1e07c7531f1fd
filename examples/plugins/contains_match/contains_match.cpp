// contains_match: the fraction of predictions that contain a reference as a run of whole words,
// after the same normalisation exact_match uses. Useful when a model answers correctly but
// wraps the answer in a sentence ("The capital is Paris.").
#include <algorithm>
#include <memory>

#include <tune/error.h>
#include <tune/metric.h>
#include <tune/text.h>

namespace {

// Whether `needle` occurs in `haystack` starting and ending at word boundaries.
bool ContainsWords(const std::vector<std::string>& haystack,
                   const std::vector<std::string>& needle) {
  if (needle.empty()) return haystack.empty();
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

class ContainsMatch final : public tune::Metric {
 public:
  explicit ContainsMatch(tune::NormalizeOptions normalize) : normalize_(normalize) {}

  tune::MetricScore Score(std::span<const tune::MetricExample> examples) const override {
    return tune::MeanOverExamples(examples, [&](const tune::MetricExample& example) {
      // The user's data, not this plugin, is at fault: a UserError says so and how to fix it.
      if (example.references.empty()) {
        throw tune::UserError("contains_match: an example has no reference to look for in '" +
                              example.prediction.substr(0, 40) +
                              "'; give every eval example a completion");
      }
      const auto prediction =
          tune::SplitWhitespace(tune::NormalizeText(example.prediction, normalize_));
      return std::any_of(example.references.begin(), example.references.end(),
                         [&](const std::string& ref) {
                           return ContainsWords(
                               prediction,
                               tune::SplitWhitespace(tune::NormalizeText(ref, normalize_)));
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
      .info = {.name = "contains_match",
               .version = "1.0.0",
               .description = "Fraction of predictions containing a reference as whole words.",
               .options = tune::NormalizeOptionSpecs()},
      .goal = tune::MetricGoal::kMaximize,
      .range = {.min = 0.0, .max = 1.0},
      .create = [](const tune::Options& options) -> std::unique_ptr<tune::Metric> {
        return std::make_unique<ContainsMatch>(tune::NormalizeOptionsFrom(options));
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

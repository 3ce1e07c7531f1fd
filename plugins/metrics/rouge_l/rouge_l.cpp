// rouge_l: ROUGE-L F-measure (Lin, 2004, section 3.1) on words, the best reference per example,
// averaged over examples. Follows Google's rouge-score package
// (rouge_scorer.RougeScorer(["rougeL"]) without stemming), so scores are comparable with it and
// with Hugging Face evaluate's "rouge".
#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tune/metric.h"

namespace {

// rouge-score's default tokenizer: text.lower(), then every run of characters outside [a-z0-9]
// separates words. Python lower-cases all of Unicode, but only two non-ASCII characters become
// ASCII letters by it: U+0130 'İ' -> "i" + U+0307 and U+212A KELVIN SIGN -> "k". Every other
// non-ASCII character (é, ß, ...) separates words, as in rouge-score.
std::vector<std::string> RougeWords(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  const auto end_word = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      word.push_back(c);
    } else if (c >= 'A' && c <= 'Z') {
      word.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if (text.substr(i, 2) == "\xC4\xB0") {  // U+0130
      word.push_back('i');
      end_word();  // the combining dot U+0307 that follows the 'i' is not in [a-z0-9]
      ++i;
    } else if (text.substr(i, 3) == "\xE2\x84\xAA") {  // U+212A
      word.push_back('k');
      i += 2;
    } else {
      end_word();
    }
  }
  end_word();
  return words;
}

size_t LongestCommonSubsequence(const std::vector<std::string>& a,
                                const std::vector<std::string>& b) {
  // One row of the usual (|a|+1) x (|b|+1) table at a time.
  std::vector<size_t> previous(b.size() + 1, 0);
  std::vector<size_t> current(b.size() + 1, 0);
  for (const std::string& word : a) {
    for (size_t j = 1; j <= b.size(); ++j) {
      current[j] = word == b[j - 1] ? previous[j - 1] + 1 : std::max(previous[j], current[j - 1]);
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

// F = 2PR / (P + R) with P = LCS / |prediction| and R = LCS / |reference| (Lin's F_lcs with
// beta = 1). No common word scores 0; so does an empty word list on either side, including both
// empty, as rouge-score's _score_lcs does.
double RougeL(const std::vector<std::string>& prediction,
              const std::vector<std::string>& reference) {
  if (prediction.empty() || reference.empty()) return 0.0;
  const size_t lcs = LongestCommonSubsequence(prediction, reference);
  if (lcs == 0) return 0.0;
  const double precision = static_cast<double>(lcs) / static_cast<double>(prediction.size());
  const double recall = static_cast<double>(lcs) / static_cast<double>(reference.size());
  return 2.0 * precision * recall / (precision + recall);
}

class RougeLMetric final : public tune::Metric {
 public:
  tune::MetricScore Score(std::span<const tune::MetricExample> examples) const override {
    return tune::MeanOverExamples(examples, [](const tune::MetricExample& example) {
      const std::vector<std::string> prediction = RougeWords(example.prediction);
      double best = 0.0;  // rouge-score's score_multi: the reference with the highest F
      for (const std::string& ref : example.references) {
        best = std::max(best, RougeL(prediction, RougeWords(ref)));
      }
      return best;
    });
  }
};

void Register(tune::Registrar& registrar) {
  registrar.Add(tune::MetricPlugin{
      .info = {.name = "rouge_l",
               .version = "1.0.0",
               .description =
                   "Mean ROUGE-L F-measure (longest common word subsequence, 0..1) against the "
                   "best reference, tokenised as Google's rouge-score (lower-case, words are runs "
                   "of [a-z0-9]); an empty word list on either side scores 0.",
               .options = {}},
      .goal = tune::MetricGoal::kMaximize,
      .range = {.min = 0.0, .max = 1.0},
      .create = [](const tune::Options&) -> std::unique_ptr<tune::Metric> {
        return std::make_unique<RougeLMetric>();
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

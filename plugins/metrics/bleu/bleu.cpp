// bleu: corpus BLEU (Papineni et al., 2002) as sacreBLEU 2.x computes it with its defaults
// (BLEU().corpus_score: tokenize="13a", smooth_method="exp", max_ngram_order=4,
// effective_order=False), on sacreBLEU's 0..100 scale, so scores are comparable with
// `sacrebleu -tok 13a` (and `-lc` when lowercase is set).
//
// Text is UTF-8. Lower-casing is ASCII only (Python's str.lower(), which sacreBLEU uses, also
// lower-cases other scripts); whitespace is Python's str.isspace(), Unicode spaces included.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tune/metric.h"

namespace {

constexpr size_t kMaxOrder = 4;

// The length in bytes of the character that starts at s[i] if Python's str.isspace() holds for
// it, else 0: U+0009..U+000D, U+001C..U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028,
// U+2029, U+202F, U+205F, U+3000.
size_t PythonSpaceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u;
  };
  const unsigned b0 = byte(0);
  if ((b0 >= 0x09 && b0 <= 0x0D) || (b0 >= 0x1C && b0 <= 0x20)) return 1;
  if (b0 == 0xC2 && (byte(1) == 0x85 || byte(1) == 0xA0)) return 2;
  if (b0 == 0xE1 && byte(1) == 0x9A && byte(2) == 0x80) return 3;
  if (b0 == 0xE2 && byte(1) == 0x80) {
    const unsigned b2 = byte(2);
    if ((b2 >= 0x80 && b2 <= 0x8A) || b2 == 0xA8 || b2 == 0xA9 || b2 == 0xAF) return 3;
  }
  if (b0 == 0xE2 && byte(1) == 0x81 && byte(2) == 0x9F) return 3;
  if (b0 == 0xE3 && byte(1) == 0x80 && byte(2) == 0x80) return 3;
  return 0;
}

// Python's str.split() with no argument.
std::vector<std::string> PythonSplit(std::string_view s) {
  std::vector<std::string> words;
  size_t start = 0;
  size_t i = 0;
  while (i < s.size()) {
    const size_t space = PythonSpaceLength(s, i);
    if (space == 0) {
      ++i;
      continue;
    }
    if (i > start) words.emplace_back(s.substr(start, i - start));
    i += space;
    start = i;
  }
  if (i > start) words.emplace_back(s.substr(start, i - start));
  return words;
}

// Python's str.rstrip() with no argument.
std::string_view PythonRstrip(std::string_view s) {
  size_t kept = 0;  // the end of the last character that is not whitespace
  size_t i = 0;
  while (i < s.size()) {
    const size_t space = PythonSpaceLength(s, i);
    if (space == 0) {
      kept = ++i;
    } else {
      i += space;
    }
  }
  return s.substr(0, kept);
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  size_t start = 0;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, start)) {
    out.append(s, start, at - start);
    out.append(to);
    start = at + from.size();
  }
  out.append(s, start);
  s = std::move(out);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsPeriodOrComma(char c) { return c == '.' || c == ','; }

// Python's re.sub for a pattern of two one-character classes, ([first])([second]): scans left to
// right; where s[i] and s[i+1] match, `replace` writes their replacement and the scan resumes
// after them. On UTF-8 bytes this gives what Python gives on code points for the 13a patterns:
// every class that can match a non-ASCII character is paired with an ASCII-only one.
template <typename First, typename Second, typename Replace>
std::string SubstitutePairs(std::string_view s, First first, Second second, Replace replace) {
  std::string out;
  out.reserve(s.size() + s.size() / 2);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && first(s[i]) && second(s[i + 1])) {
      replace(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

// sacreBLEU's Tokenizer13a (mteval-v13a.pl's tokenisation), applied to a segment after
// BLEU._preprocess_segment's optional lower-casing and rstrip().
std::vector<std::string> Tokenize13a(std::string_view segment, bool lowercase) {
  std::string line(segment);
  if (lowercase) {
    for (char& c : line) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
  }
  line.resize(PythonRstrip(line).size());

  // The language-independent part, in sacreBLEU's order (so "&amp;lt;" becomes "<").
  ReplaceAll(line, "<skipped>", "");
  ReplaceAll(line, "-\n", "");
  ReplaceAll(line, "\n", " ");
  ReplaceAll(line, "&quot;", "\"");
  ReplaceAll(line, "&amp;", "&");
  ReplaceAll(line, "&lt;", "<");
  ReplaceAll(line, "&gt;", ">");
  // The padding matters: it lets the period rule below split a leading ".5" into ". 5".
  line = " " + line + " ";

  // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 ": ASCII punctuation and symbols other than
  // ' , - . (those four have the rules below, or none).
  std::string spaced;
  spaced.reserve(line.size() * 2);
  for (char c : line) {
    if ((c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
        (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/') {
      spaced.append({' ', c, ' '});
    } else {
      spaced.push_back(c);
    }
  }
  const auto not_digit = [](char c) { return !IsDigit(c); };
  // ([^0-9])([\.,]) -> "\1 \2 ": a period or comma not preceded by a digit.
  spaced =
      SubstitutePairs(spaced, not_digit, IsPeriodOrComma, [](std::string& out, char a, char b) {
        out.append({a, ' ', b, ' '});
      });
  // ([\.,])([^0-9]) -> " \1 \2": a period or comma not followed by a digit.
  spaced =
      SubstitutePairs(spaced, IsPeriodOrComma, not_digit, [](std::string& out, char a, char b) {
        out.append({' ', a, ' ', b});
      });
  // ([0-9])(-) -> "\1 \2 ": a dash after a digit.
  spaced = SubstitutePairs(
      spaced, IsDigit, [](char c) { return c == '-'; },
      [](std::string& out, char a, char b) {
        out.append({a, ' ', b, ' '});
      });
  return PythonSplit(spaced);
}

// Every n-gram of order 1..kMaxOrder with its count. Words never contain whitespace, so an
// n-gram's words joined by ' ' name it unambiguously, order included.
std::unordered_map<std::string, int64_t> CountNgrams(const std::vector<std::string>& words) {
  std::unordered_map<std::string, int64_t> counts;
  for (size_t n = 1; n <= kMaxOrder; ++n) {
    for (size_t i = 0; i + n <= words.size(); ++i) {
      std::string ngram = words[i];
      for (size_t k = i + 1; k < i + n; ++k) ngram.append(" ").append(words[k]);
      ++counts[ngram];
    }
  }
  return counts;
}

// The sufficient statistics of corpus BLEU, summed over segments.
struct BleuStatistics {
  int64_t prediction_words = 0;
  int64_t reference_words = 0;               // the closest reference's length, per segment
  std::array<int64_t, kMaxOrder> matches{};  // clipped n-gram matches, [n - 1]
  std::array<int64_t, kMaxOrder> totals{};   // n-grams in the predictions, [n - 1]
};

// sacreBLEU's BLEU._get_closest_ref_len: the reference length nearest the prediction's, the
// shorter one on a tie.
int64_t ClosestReferenceLength(int64_t prediction_words, const std::vector<int64_t>& lengths) {
  int64_t closest_diff = -1;
  int64_t closest = -1;
  for (int64_t length : lengths) {
    const int64_t diff = std::abs(prediction_words - length);
    if (closest_diff == -1 || diff < closest_diff) {
      closest_diff = diff;
      closest = length;
    } else if (diff == closest_diff && length < closest) {
      closest = length;
    }
  }
  return closest;
}

void AddSegment(const tune::MetricExample& example, size_t index, size_t count, bool lowercase,
                BleuStatistics& stats) {
  // Each n-gram's largest count in any one reference: the clip of Papineni et al.'s modified
  // n-gram precision.
  std::unordered_map<std::string, int64_t> reference_counts;
  std::vector<int64_t> reference_lengths;
  for (const std::string& reference : example.references) {
    // sacreBLEU drops empty references ("" only: " " is a reference of no words) and refuses a
    // segment that has none left.
    if (reference.empty()) continue;
    const std::vector<std::string> words = Tokenize13a(reference, lowercase);
    reference_lengths.push_back(static_cast<int64_t>(words.size()));
    for (const auto& [ngram, n] : CountNgrams(words)) {
      int64_t& most = reference_counts[ngram];
      most = std::max(most, n);
    }
  }
  if (reference_lengths.empty()) {
    throw std::invalid_argument("example " + std::to_string(index + 1) + " of " +
                                std::to_string(count) +
                                " has only empty references; BLEU needs a non-empty reference for "
                                "every example (sacreBLEU refuses these too)");
  }

  const std::vector<std::string> words = Tokenize13a(example.prediction, lowercase);
  const auto prediction_words = static_cast<int64_t>(words.size());
  stats.prediction_words += prediction_words;
  stats.reference_words += ClosestReferenceLength(prediction_words, reference_lengths);
  for (const auto& [ngram, n] : CountNgrams(words)) {
    const size_t order = static_cast<size_t>(std::count(ngram.begin(), ngram.end(), ' ')) + 1;
    stats.totals[order - 1] += n;
    auto it = reference_counts.find(ngram);
    if (it != reference_counts.end()) stats.matches[order - 1] += std::min(n, it->second);
  }
}

// sacreBLEU's BLEU.compute_bleu with smooth_method="exp" and effective_order=False: the
// brevity penalty times the geometric mean of the n-gram precisions, in percent. An order with
// no match gets precision 100 / (2^k * total), k counting such orders from 1 (NIST's smoothing,
// Chen & Cherry 2014 method 3); an order the predictions have no n-gram of makes the score 0.
double CorpusBleu(const BleuStatistics& stats) {
  if (std::all_of(stats.matches.begin(), stats.matches.end(), [](int64_t m) { return m == 0; })) {
    return 0.0;
  }
  double log_precision_sum = 0.0;
  double smoothing = 1.0;
  for (size_t n = 0; n < kMaxOrder; ++n) {
    // sacreBLEU stops here and takes log(0) as -9999999999 for this and the higher orders, so
    // the score underflows to exactly 0.
    if (stats.totals[n] == 0) return 0.0;
    const auto total = static_cast<double>(stats.totals[n]);
    double precision = 0.0;
    if (stats.matches[n] == 0) {
      smoothing *= 2.0;
      precision = 100.0 / (smoothing * total);
    } else {
      precision = 100.0 * static_cast<double>(stats.matches[n]) / total;
    }
    log_precision_sum += std::log(precision);
  }
  // Some n-gram matched, so the predictions have words.
  const double brevity_penalty =
      stats.prediction_words < stats.reference_words
          ? std::exp(1.0 - static_cast<double>(stats.reference_words) /
                               static_cast<double>(stats.prediction_words))
          : 1.0;
  return brevity_penalty * std::exp(log_precision_sum / static_cast<double>(kMaxOrder));
}

class Bleu final : public tune::Metric {
 public:
  explicit Bleu(bool lowercase) : lowercase_(lowercase) {}

  tune::MetricScore Score(std::span<const tune::MetricExample> examples) const override {
    BleuStatistics stats;
    for (size_t i = 0; i < examples.size(); ++i) {
      AddSegment(examples[i], i, examples.size(), lowercase_, stats);
    }
    // Corpus-level: BLEU is not a mean of per-example scores, so per_example stays empty.
    return tune::MetricScore{.value = CorpusBleu(stats), .per_example = {}};
  }

 private:
  bool lowercase_;
};

void Register(tune::Registrar& registrar) {
  registrar.Add(tune::MetricPlugin{
      .info = {.name = "bleu",
               .version = "1.0.0",
               .description = "Corpus BLEU (0..100) as sacreBLEU computes it by default: 13a "
                              "tokenisation, 1- to 4-grams clipped by the most any reference has, "
                              "brevity penalty against the closest reference length, 'exp' "
                              "smoothing.",
               .options = {tune::OptionSpec::Bool(
                   "lowercase", false,
                   "Compare case-insensitively, as sacreBLEU's -lc (ASCII letters only).")}},
      .goal = tune::MetricGoal::kMaximize,
      .range = {.min = 0.0, .max = 100.0},
      .create = [](const tune::Options& options) -> std::unique_ptr<tune::Metric> {
        return std::make_unique<Bleu>(options.Bool("lowercase"));
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

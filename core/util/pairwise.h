// People's pairwise judgements as numbers (DESIGN section 11): win rates, Bradley-Terry ratings
// with bootstrap intervals, and agreement between raters. Plain functions over data; no libtorch,
// no clock, no global random state: the registry, the web view and the CLI compute the same
// numbers from the same judgements.
//
// The model (Bradley & Terry 1952; Hunter 2004, "MM algorithms for generalized Bradley-Terry
// models"): contestant i has a strength theta_i, and beats j with probability
// sigma(theta_i - theta_j) = 1 / (1 + exp(theta_j - theta_i)). A tie (and "both bad", which
// prefers neither) counts half a win to each side, as Chatbot Arena and Elo count draws.
// Maximum likelihood alone diverges for a contestant that never lost (or never won), which a
// review of a few dozen judgements often has, so every contestant also plays one virtual tie
// against an anchor of strength 0: a prior that keeps every rating finite, pulls ratings with
// little evidence towards the anchor, and makes the estimate unique (no sum-to-zero constraint
// needed). Its weight is one judgement; with 30 judgements a contestant's rating moves by a few
// percent of its width.
//
// Ratings are reported on the Elo scale: 1000 + 400 * log10(e) * theta, so the anchor is 1000 and
// a difference of 400 means odds of 10 to 1.
//
// The bootstrap resamples judgements with replacement from SplitMix64 (Vigna), each index
// next() % n, so the reference in tests/tools/pairwise_reference.py draws the very same resamples;
// intervals are the 2.5th and 97.5th percentiles of the refitted ratings, interpolated linearly
// between order statistics (numpy's default).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace tune {

// How a judgement of `first` against `second` came out.
enum class PairOutcome { kFirstWins, kSecondWins, kTie, kBothBad };

struct PairwiseJudgement {
  int first = 0;  // contestant indices, 0 .. contestants - 1, different
  int second = 0;
  PairOutcome outcome = PairOutcome::kTie;
  int64_t item = 0;  // what was judged (a prompt and a pair): agreement compares raters per item
  int rater = 0;
};

// Strengths theta (natural log-odds scale, anchor 0) of `contestants`, by Newton's method on the
// log-likelihood with the anchor's ties; contestants without judgements get 0.
std::vector<double> BradleyTerryStrengths(int contestants,
                                          const std::vector<PairwiseJudgement>& judgements);

// theta on the Elo scale: 1000 + 400 * theta / ln(10).
double EloRating(double theta);

struct RatingInterval {
  double rating = 0.0;  // Elo scale, from all the judgements
  double ci95_low = 0.0;
  double ci95_high = 0.0;
};

// Ratings with 95% percentile-bootstrap intervals over `resamples` resamples of the judgements,
// drawn from `seed`. With no judgements every interval is the anchor's point.
std::vector<RatingInterval> BootstrapRatings(int contestants,
                                             const std::vector<PairwiseJudgement>& judgements,
                                             int resamples, uint64_t seed);

// The q-quantile (0..1) of `values` as numpy.percentile computes it by default (linear
// interpolation between the closest order statistics). `values` must not be empty.
double Quantile(std::vector<double> values, double q);

// SplitMix64: a tiny generator both this code and the Python reference implement, so a
// bootstrap can be compared draw for draw.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next();

 private:
  uint64_t state_;
};

struct WinRate {
  int64_t judgements = 0;  // of the pair, either order
  double wins = 0.0;       // of the row's contestant, ties counted half
  // wins / judgements; nullopt without judgements.
  std::optional<double> rate() const;
};
// [i][j]: how i fared against j.
std::vector<std::vector<WinRate>> WinRates(int contestants,
                                           const std::vector<PairwiseJudgement>& judgements);

// Krippendorff's alpha for nominal data (Krippendorff 2011, "Computing Krippendorff's
// Alpha-Reliability"): agreement between raters on the items two or more of them judged, 1 for
// perfect agreement, 0 for what chance gives, below 0 for systematic disagreement. Outcomes are
// compared as judged of the item's pair (first wins, second wins, tie, both bad), whichever
// order each rater saw. nullopt when no item was judged twice, or when every judgement of those
// items has one value (the measure is undefined without variation).
struct Agreement {
  std::optional<double> alpha;
  int64_t items = 0;       // items judged by two or more raters
  int64_t judgements = 0;  // the judgements of those items
};
Agreement KrippendorffAlpha(const std::vector<PairwiseJudgement>& judgements);

}  // namespace tune

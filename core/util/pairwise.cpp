#include "util/pairwise.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace tune {
namespace {

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Wins (ties half) of i over j, and comparisons of i and j, from the judgements.
struct Tally {
  std::vector<std::vector<double>> wins;
  std::vector<std::vector<double>> games;
};

Tally Count(int contestants, const std::vector<PairwiseJudgement>& judgements,
            const std::vector<size_t>* picks = nullptr) {
  Tally tally{std::vector<std::vector<double>>(contestants, std::vector<double>(contestants)),
              std::vector<std::vector<double>>(contestants, std::vector<double>(contestants))};
  const auto add = [&](const PairwiseJudgement& j) {
    if (j.first == j.second || j.first < 0 || j.second < 0 || j.first >= contestants ||
        j.second >= contestants) {
      return;
    }
    tally.games[j.first][j.second] += 1;
    tally.games[j.second][j.first] += 1;
    switch (j.outcome) {
      case PairOutcome::kFirstWins:
        tally.wins[j.first][j.second] += 1;
        break;
      case PairOutcome::kSecondWins:
        tally.wins[j.second][j.first] += 1;
        break;
      case PairOutcome::kTie:
      case PairOutcome::kBothBad:
        tally.wins[j.first][j.second] += 0.5;
        tally.wins[j.second][j.first] += 0.5;
        break;
    }
  };
  if (picks == nullptr) {
    for (const PairwiseJudgement& j : judgements) add(j);
  } else {
    for (const size_t i : *picks) add(judgements[i]);
  }
  return tally;
}

// Solves a * x = b for a symmetric negative-definite `a` (the Hessian of a concave function) by
// Gaussian elimination with partial pivoting; n is a review's contestants, a handful.
std::vector<double> Solve(std::vector<std::vector<double>> a, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t col = 0; col < n; ++col) {
    size_t pivot = col;
    for (size_t row = col + 1; row < n; ++row) {
      if (std::abs(a[row][col]) > std::abs(a[pivot][col])) pivot = row;
    }
    std::swap(a[col], a[pivot]);
    std::swap(b[col], b[pivot]);
    for (size_t row = col + 1; row < n; ++row) {
      const double factor = a[row][col] / a[col][col];
      for (size_t k = col; k < n; ++k) a[row][k] -= factor * a[col][k];
      b[row] -= factor * b[col];
    }
  }
  std::vector<double> x(n);
  for (size_t row = n; row-- > 0;) {
    double sum = b[row];
    for (size_t k = row + 1; k < n; ++k) sum -= a[row][k] * x[k];
    x[row] = sum / a[row][row];
  }
  return x;
}

// log-likelihood of theta, with the anchor's virtual ties.
double LogLikelihood(const Tally& tally, const std::vector<double>& theta) {
  double sum = 0.0;
  const size_t n = theta.size();
  for (size_t i = 0; i < n; ++i) {
    sum += 0.5 * std::log(Sigmoid(theta[i])) + 0.5 * std::log(Sigmoid(-theta[i]));
    for (size_t j = 0; j < n; ++j) {
      if (tally.wins[i][j] > 0) sum += tally.wins[i][j] * std::log(Sigmoid(theta[i] - theta[j]));
    }
  }
  return sum;
}

std::vector<double> Fit(const Tally& tally, int contestants) {
  const auto n = static_cast<size_t>(contestants);
  std::vector<double> theta(n, 0.0);
  double current = LogLikelihood(tally, theta);
  // The objective is strictly concave (the anchor's term is), so Newton's steps, halved until
  // they gain, converge from 0 in a few iterations.
  for (int iteration = 0; iteration < 100; ++iteration) {
    std::vector<double> gradient(n, 0.0);
    std::vector<std::vector<double>> hessian(n, std::vector<double>(n, 0.0));
    for (size_t i = 0; i < n; ++i) {
      const double p = Sigmoid(theta[i]);
      gradient[i] += 0.5 - p;
      hessian[i][i] -= p * (1 - p);
      for (size_t j = 0; j < n; ++j) {
        if (i == j || tally.games[i][j] == 0) continue;
        const double pij = Sigmoid(theta[i] - theta[j]);
        gradient[i] += tally.wins[i][j] - tally.games[i][j] * pij;
        const double w = tally.games[i][j] * pij * (1 - pij);
        hessian[i][i] -= w;
        hessian[i][j] += w;
      }
    }
    double largest = 0.0;
    for (const double g : gradient) largest = std::max(largest, std::abs(g));
    if (largest < 1e-11) break;
    const std::vector<double> step = Solve(hessian, gradient);
    double scale = 1.0;
    for (int halving = 0; halving < 40; ++halving, scale /= 2) {
      std::vector<double> next(n);
      for (size_t i = 0; i < n; ++i) next[i] = theta[i] - scale * step[i];
      const double value = LogLikelihood(tally, next);
      if (value >= current) {
        theta = std::move(next);
        current = value;
        break;
      }
    }
  }
  return theta;
}

}  // namespace

std::vector<double> BradleyTerryStrengths(int contestants,
                                          const std::vector<PairwiseJudgement>& judgements) {
  if (contestants <= 0) return {};
  return Fit(Count(contestants, judgements), contestants);
}

double EloRating(double theta) { return 1000.0 + 400.0 * theta / std::log(10.0); }

uint64_t SplitMix64::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double Quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double at = q * static_cast<double>(values.size() - 1);
  const auto below = static_cast<size_t>(std::floor(at));
  const size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (at - static_cast<double>(below)) * (values[above] - values[below]);
}

std::vector<RatingInterval> BootstrapRatings(int contestants,
                                             const std::vector<PairwiseJudgement>& judgements,
                                             int resamples, uint64_t seed) {
  if (contestants <= 0) return {};
  const std::vector<double> theta = BradleyTerryStrengths(contestants, judgements);
  std::vector<RatingInterval> ratings(static_cast<size_t>(contestants));
  for (size_t i = 0; i < ratings.size(); ++i) {
    ratings[i].rating = ratings[i].ci95_low = ratings[i].ci95_high = EloRating(theta[i]);
  }
  if (judgements.empty() || resamples <= 0) return ratings;
  SplitMix64 random(seed);
  std::vector<std::vector<double>> drawn(ratings.size());
  std::vector<size_t> picks(judgements.size());
  for (int r = 0; r < resamples; ++r) {
    for (size_t& pick : picks) pick = static_cast<size_t>(random.Next() % judgements.size());
    const std::vector<double> refit = Fit(Count(contestants, judgements, &picks), contestants);
    for (size_t i = 0; i < ratings.size(); ++i) drawn[i].push_back(EloRating(refit[i]));
  }
  for (size_t i = 0; i < ratings.size(); ++i) {
    ratings[i].ci95_low = Quantile(drawn[i], 0.025);
    ratings[i].ci95_high = Quantile(drawn[i], 0.975);
  }
  return ratings;
}

std::optional<double> WinRate::rate() const {
  if (judgements == 0) return std::nullopt;
  return wins / static_cast<double>(judgements);
}

std::vector<std::vector<WinRate>> WinRates(int contestants,
                                           const std::vector<PairwiseJudgement>& judgements) {
  if (contestants <= 0) return {};
  const Tally tally = Count(contestants, judgements);
  std::vector<std::vector<WinRate>> rates(contestants, std::vector<WinRate>(contestants));
  for (int i = 0; i < contestants; ++i) {
    for (int j = 0; j < contestants; ++j) {
      rates[i][j].judgements = static_cast<int64_t>(tally.games[i][j]);
      rates[i][j].wins = tally.wins[i][j];
    }
  }
  return rates;
}

Agreement KrippendorffAlpha(const std::vector<PairwiseJudgement>& judgements) {
  // Each judgement's value, whichever order its rater saw the pair in: the winner's index, or
  // -1 for a tie, -2 for both bad.
  std::map<int64_t, std::vector<int>> values_by_item;
  for (const PairwiseJudgement& j : judgements) {
    int value = -1;
    if (j.outcome == PairOutcome::kFirstWins) value = j.first;
    if (j.outcome == PairOutcome::kSecondWins) value = j.second;
    if (j.outcome == PairOutcome::kBothBad) value = -2;
    values_by_item[j.item].push_back(value);
  }
  // The coincidence matrix o[c][k]: pairable values of each item, each pair weighted 1/(m - 1).
  std::map<int, std::map<int, double>> coincidences;
  Agreement agreement;
  for (const auto& [item, values] : values_by_item) {
    const size_t m = values.size();
    if (m < 2) continue;
    ++agreement.items;
    agreement.judgements += static_cast<int64_t>(m);
    for (size_t a = 0; a < m; ++a) {
      for (size_t b = 0; b < m; ++b) {
        if (a != b) coincidences[values[a]][values[b]] += 1.0 / static_cast<double>(m - 1);
      }
    }
  }
  std::map<int, double> totals;  // n_c
  double n = 0.0;
  double observed = 0.0;  // sum of o[c][k], c != k
  for (const auto& [c, row] : coincidences) {
    for (const auto& [k, count] : row) {
      totals[c] += count;
      n += count;
      if (c != k) observed += count;
    }
  }
  double expected = 0.0;  // sum of n_c * n_k, c != k
  for (const auto& [c, nc] : totals) {
    for (const auto& [k, nk] : totals) {
      if (c != k) expected += nc * nk;
    }
  }
  if (agreement.items == 0 || expected == 0.0) return agreement;
  agreement.alpha = 1.0 - (n - 1.0) * observed / expected;
  return agreement;
}

}  // namespace tune

#include "registry/review.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "util/echo.h"

namespace tune {
namespace registry_internal {
namespace {

PairOutcome OutcomeOf(Verdict verdict) {
  switch (verdict) {
    case Verdict::kLeft:
      return PairOutcome::kFirstWins;
    case Verdict::kRight:
      return PairOutcome::kSecondWins;
    case Verdict::kTie:
      return PairOutcome::kTie;
    case Verdict::kBothBad:
      break;
  }
  return PairOutcome::kBothBad;
}

std::vector<std::string> ContestantsOf(const ReviewRecord& review) {
  std::vector<std::string> contestants;
  for (const ReviewOutputs& outputs : review.outputs) contestants.push_back(outputs.contestant);
  return contestants;
}

int IndexOf(const std::vector<std::string>& contestants, const std::string& contestant) {
  const auto it = std::find(contestants.begin(), contestants.end(), contestant);
  return it == contestants.end() ? -1 : static_cast<int>(it - contestants.begin());
}

}  // namespace

std::vector<std::string> ParseOutputs(std::string_view jsonl, int64_t prompts,
                                      const std::string& where) {
  std::vector<std::string> outputs;
  size_t at = 0;
  while (at < jsonl.size()) {
    const size_t end = std::min(jsonl.find('\n', at), jsonl.size());
    const std::string_view line = jsonl.substr(at, end - at);
    at = end + 1;
    const std::string place = where + ":" + std::to_string(outputs.size() + 1);
    const nlohmann::json row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!row.is_object() || !row.contains("prompt") || !row["prompt"].is_number_integer() ||
        !row.contains("output") || !row["output"].is_string()) {
      throw UserError(place + ": '" + Echo(line, 60) +
                      "' is not {\"prompt\": INDEX, \"output\": TEXT}; write one such line per "
                      "prompt, in order");
    }
    if (row["prompt"].get<int64_t>() != static_cast<int64_t>(outputs.size())) {
      throw UserError(place + ": the output of prompt " +
                      std::to_string(row["prompt"].get<int64_t>()) + " where prompt " +
                      std::to_string(outputs.size()) + "'s belongs; write one line per prompt, " +
                      "in the review set's order");
    }
    outputs.push_back(row["output"].get<std::string>());
  }
  if (static_cast<int64_t>(outputs.size()) != prompts) {
    throw UserError(where + ": " + std::to_string(outputs.size()) + " outputs for a review of " +
                    std::to_string(prompts) + " prompts; generate one for every prompt");
  }
  return outputs;
}

bool IsContestant(std::string_view contestant) {
  if (contestant == kBaseContestant) return true;
  const size_t colon = contestant.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == contestant.size()) return false;
  const std::string_view digits = contestant.substr(colon + 1);
  return digits.size() <= 18 && digits.front() != '0' &&
         std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::vector<PairwiseJudgement> ToPairwise(const std::vector<std::string>& contestants,
                                          const std::vector<ShownPair>& pairs) {
  const auto n = static_cast<int64_t>(contestants.size());
  std::map<std::string, int> raters;
  std::vector<PairwiseJudgement> judgements;
  for (const ShownPair& pair : pairs) {
    if (!pair.verdict) continue;
    const int left = IndexOf(contestants, pair.left);
    const int right = IndexOf(contestants, pair.right);
    if (left < 0 || right < 0 || left == right) continue;
    const int rater = raters.emplace(pair.rater, static_cast<int>(raters.size())).first->second;
    const int64_t item = pair.prompt * n * n + std::min(left, right) * n + std::max(left, right);
    judgements.push_back({left, right, OutcomeOf(*pair.verdict), item, rater});
  }
  return judgements;
}

ReviewResults ComputeResults(const ReviewRecord& review, const std::vector<ShownPair>& pairs) {
  const std::vector<std::string> contestants = ContestantsOf(review);
  const int n = static_cast<int>(contestants.size());
  const std::vector<PairwiseJudgement> judgements = ToPairwise(contestants, pairs);
  ReviewResults results;
  results.review = review.name;
  results.closed = review.closed_ms != 0;
  results.judgements = static_cast<int64_t>(judgements.size());
  std::set<int> raters;
  for (const PairwiseJudgement& j : judgements) raters.insert(j.rater);
  results.raters = static_cast<int64_t>(raters.size());
  results.resamples = kBootstrapResamples;
  results.agreement = KrippendorffAlpha(judgements);
  const std::vector<RatingInterval> ratings =
      BootstrapRatings(n, judgements, kBootstrapResamples, kBootstrapSeed);
  const std::vector<std::vector<WinRate>> rates = WinRates(n, judgements);
  for (int i = 0; i < n; ++i) {
    ContestantResult result;
    result.contestant = contestants[i];
    result.rating = ratings[i];
    for (int k = 0; k < n; ++k) {
      if (k == i) continue;
      result.against[contestants[k]] = rates[i][k];
      result.judgements += rates[i][k].judgements;
    }
    results.contestants.push_back(std::move(result));
  }
  std::stable_sort(results.contestants.begin(), results.contestants.end(),
                   [](const ContestantResult& a, const ContestantResult& b) {
                     return a.rating.rating > b.rating.rating;
                   });
  return results;
}

std::optional<PairChoice> ChoosePair(const ReviewRecord& review,
                                     const std::vector<ShownPair>& pairs, std::string_view rater,
                                     uint64_t random) {
  const std::vector<std::string> contestants = ContestantsOf(review);
  const int n = static_cast<int>(contestants.size());
  if (n < 2) return std::nullopt;
  // (prompt, lower index, higher index): a pair, whichever side each contestant was shown on.
  using Item = std::tuple<int64_t, int, int>;
  std::set<Item> seen_by_rater;
  std::map<Item, int64_t> item_judgements;
  std::vector<std::vector<int64_t>> pair_judgements(n, std::vector<int64_t>(n, 0));
  for (const ShownPair& pair : pairs) {
    const int a = IndexOf(contestants, pair.left);
    const int b = IndexOf(contestants, pair.right);
    if (a < 0 || b < 0) continue;
    const Item item{pair.prompt, std::min(a, b), std::max(a, b)};
    if (pair.rater == rater) seen_by_rater.insert(item);
    if (pair.verdict) {
      ++item_judgements[item];
      ++pair_judgements[std::min(a, b)][std::max(a, b)];
    }
  }
  const std::vector<double> theta = BradleyTerryStrengths(n, ToPairwise(contestants, pairs));
  std::optional<Item> best;
  std::tuple<int64_t, double, int64_t, uint64_t> best_key;
  int64_t remaining = 0;
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      for (int64_t prompt = 0; prompt < review.prompts; ++prompt) {
        const Item item{prompt, i, j};
        if (seen_by_rater.count(item)) continue;
        ++remaining;
        const auto judged = item_judgements.find(item);
        SplitMix64 tie_break(random ^ (static_cast<uint64_t>(prompt) * 0x9e3779b97f4a7c15ULL) ^
                             (static_cast<uint64_t>(i * n + j) << 40));
        const std::tuple<int64_t, double, int64_t, uint64_t> key{
            pair_judgements[i][j], std::abs(theta[i] - theta[j]),
            judged == item_judgements.end() ? 0 : judged->second, tie_break.Next()};
        if (!best || key < best_key) {
          best = item;
          best_key = key;
        }
      }
    }
  }
  if (!best) return std::nullopt;
  const auto [prompt, i, j] = *best;
  const bool swap = (SplitMix64(random).Next() & 1) != 0;
  return PairChoice{prompt, contestants[swap ? j : i], contestants[swap ? i : j], remaining};
}

}  // namespace registry_internal

std::vector<ReviewPrompt> ParseReviewSet(std::string_view jsonl, const std::string& where) {
  std::vector<ReviewPrompt> prompts;
  size_t at = 0;
  int64_t line_number = 0;
  while (at < jsonl.size()) {
    const size_t end = std::min(jsonl.find('\n', at), jsonl.size());
    const std::string_view line = jsonl.substr(at, end - at);
    at = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string place = where + ":" + std::to_string(line_number);
    const nlohmann::json row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!row.is_object() || !row.contains("prompt") || !row["prompt"].is_string()) {
      throw UserError(place + ": '" + Echo(line, 60) +
                      "' is not {\"prompt\": TEXT} (with an optional \"reference\": TEXT); "
                      "write one such object per line");
    }
    ReviewPrompt prompt{row["prompt"].get<std::string>(), ""};
    if (const auto it = row.find("reference"); it != row.end() && !it->is_null()) {
      if (!it->is_string()) {
        throw UserError(place + ": \"reference\" is text (or leave it out)");
      }
      prompt.reference = it->get<std::string>();
    }
    if (prompt.prompt.empty()) throw UserError(place + ": the prompt is empty");
    prompts.push_back(std::move(prompt));
  }
  if (prompts.empty()) {
    throw UserError(where + ": no prompts; a review set holds one {\"prompt\": TEXT} per line");
  }
  return prompts;
}

}  // namespace tune

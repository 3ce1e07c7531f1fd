// What a review's judgements mean, and which pair a rater sees next: plain functions over a
// review's records, without the database (local_registry.cpp stores what they compute). Private
// to the registry.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "registry/registry.h"

namespace tune::registry_internal {

// The bootstrap behind every interval a review reports: fixed, so that the same judgements always
// give the same intervals.
inline constexpr int kBootstrapResamples = 1000;
inline constexpr uint64_t kBootstrapSeed = 20261207;

// The judged pairs among `pairs` as pairwise.h's data, over `contestants` (their indices). An item
// is one prompt and one unordered pair of contestants, whichever side each was shown on.
std::vector<PairwiseJudgement> ToPairwise(const std::vector<std::string>& contestants,
                                          const std::vector<ShownPair>& pairs);

// Win rates, ratings with intervals and agreement for the review's contestants (those with
// outputs), highest rating first.
ReviewResults ComputeResults(const ReviewRecord& review, const std::vector<ShownPair>& pairs);

// The pair `rater` should judge next: one (prompt, two contestants) they have not been shown,
// between the contestants with the fewest judgements between them, then the closest ratings,
// then the prompt judged least for that pair; ties broken by `random`, which also picks the side
// each is shown on. nullopt when the rater has seen every pair.
struct PairChoice {
  int64_t prompt = 0;
  std::string left;
  std::string right;
  int64_t remaining = 0;  // pairs the rater had not been shown, this one included
};
std::optional<PairChoice> ChoosePair(const ReviewRecord& review,
                                     const std::vector<ShownPair>& pairs, std::string_view rater,
                                     uint64_t random);

// The outputs in a contestant's file (ReviewOutputs::object's format), one per prompt of a
// review of `prompts` prompts, in order. UserError naming `where` and the line.
std::vector<std::string> ParseOutputs(std::string_view jsonl, int64_t prompts,
                                      const std::string& where);

// Whether `contestant` names one: base, or NAME:N.
bool IsContestant(std::string_view contestant);

}  // namespace tune::registry_internal

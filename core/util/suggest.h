// "Did you mean" suggestions for misspelled names.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tune {

// Edit distance counting insertions, deletions, substitutions and swaps of two adjacent
// characters, each as 1 (optimal string alignment distance).
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `input`, if it is close enough to be a plausible typo: at most a third
// of the input's length in edits (at least 1, at most 3). Ties go to the earliest candidate.
std::optional<std::string> ClosestMatch(std::string_view input,
                                        std::span<const std::string> candidates);

// " (did you mean 'X'?)" when ClosestMatch finds one, otherwise "".
std::string DidYouMean(std::string_view input, std::span<const std::string> candidates);

// "a, b, c" for listing what is allowed.
std::string JoinNames(std::span<const std::string> names);

}  // namespace tune

#include "util/suggest.h"

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tune {
namespace {

using Names = std::vector<std::string>;

TEST(EditDistance, IsZeroForEqualStrings) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("rank", "rank"), 0u);
}

TEST(EditDistance, CountsEachInsertionDeletionAndSubstitutionAsOne) {
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("abc", ""), 3u);
  EXPECT_EQ(EditDistance("rank", "ranks"), 1u);
  EXPECT_EQ(EditDistance("ranks", "rank"), 1u);
  EXPECT_EQ(EditDistance("rank", "bank"), 1u);
  // kitten -> sitten -> sittin -> sitting.
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(EditDistance("sitting", "kitten"), 3u);
}

TEST(EditDistance, CountsSwapOfAdjacentCharactersAsOne) {
  EXPECT_EQ(EditDistance("ab", "ba"), 1u);
  EXPECT_EQ(EditDistance("rnak", "rank"), 1u);
  EXPECT_EQ(EditDistance("laerning_rtae", "learning_rate"), 2u);  // two swaps
}

TEST(EditDistance, IsOptimalStringAlignmentNotFullDamerauLevenshtein) {
  // A swapped pair cannot be edited again: "ca" -> "abc" is 3 here (2 with unrestricted
  // Damerau-Levenshtein: swap to "ac", then insert "b").
  EXPECT_EQ(EditDistance("ca", "abc"), 3u);
}

TEST(ClosestMatch, FindsTheCandidateATypoWasMeantToBe) {
  const Names candidates = {"alpha", "rank", "dropout"};
  EXPECT_EQ(ClosestMatch("rnak", candidates), "rank");
  EXPECT_EQ(ClosestMatch("dropuot", candidates), "dropout");
  EXPECT_EQ(ClosestMatch("rank", candidates), "rank");
}

TEST(ClosestMatch, PrefersTheNearerCandidateOverAnEarlierOne) {
  EXPECT_EQ(ClosestMatch("cat", Names{"cats", "cat"}), "cat");
}

TEST(ClosestMatch, GivesNulloptForATooDistantInput) {
  EXPECT_EQ(ClosestMatch("xyz", Names{"rank", "alpha"}), std::nullopt);
  EXPECT_EQ(ClosestMatch("rank", Names{}), std::nullopt);
}

TEST(ClosestMatch, AllowsAThirdOfTheInputLengthInEdits) {
  // 6 characters: up to 2 edits.
  EXPECT_EQ(ClosestMatch("abcdef", Names{"abxyef"}), "abxyef");
  EXPECT_EQ(ClosestMatch("abcdef", Names{"axyzef"}), std::nullopt);
}

TEST(ClosestMatch, AllowsAtLeastOneEditForShortInputs) {
  // 2 characters: 2 / 3 = 0, raised to 1.
  EXPECT_EQ(ClosestMatch("ab", Names{"ac"}), "ac");
  EXPECT_EQ(ClosestMatch("ab", Names{"xy"}), std::nullopt);
}

TEST(ClosestMatch, AllowsAtMostThreeEditsForLongInputs) {
  // 15 characters: 15 / 3 = 5, capped at 3.
  const std::string input = "abcdefghijklmno";
  EXPECT_EQ(ClosestMatch(input, Names{"abcdefghijklXYZ"}), "abcdefghijklXYZ");
  EXPECT_EQ(ClosestMatch(input, Names{"abcdefghijkWXYZ"}), std::nullopt);
}

TEST(ClosestMatch, BreaksTiesInFavourOfTheEarliestCandidate) {
  // All three are one substitution from "cat".
  EXPECT_EQ(ClosestMatch("cat", Names{"bat", "cut", "car"}), "bat");
  EXPECT_EQ(ClosestMatch("cat", Names{"car", "cut", "bat"}), "car");
}

TEST(DidYouMean, SuggestsTheClosestMatchInParentheses) {
  EXPECT_EQ(DidYouMean("rnak", Names{"alpha", "rank"}), " (did you mean 'rank'?)");
}

TEST(DidYouMean, IsEmptyWhenNothingIsClose) {
  EXPECT_EQ(DidYouMean("xyz", Names{"alpha", "rank"}), "");
  EXPECT_EQ(DidYouMean("rank", Names{}), "");
}

TEST(JoinNames, SeparatesNamesWithCommaAndSpace) {
  EXPECT_EQ(JoinNames(Names{"a", "b", "c"}), "a, b, c");
}

TEST(JoinNames, GivesTheNameAloneOrNothing) {
  EXPECT_EQ(JoinNames(Names{"exact_match"}), "exact_match");
  EXPECT_EQ(JoinNames(Names{}), "");
}

}  // namespace
}  // namespace tune

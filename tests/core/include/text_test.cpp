// NormalizeText is checked against the SQuAD v1.1 evaluation script's normalize_answer:
//   white_space_fix(remove_articles(remove_punc(lower(s))))
// where remove_articles is re.sub(r'\b(a|an|the)\b', ' ', text) and white_space_fix is
// ' '.join(text.split()). Every expected string below is what that script returns for the input
// (with the steps that are turned off left out), except where a comment says otherwise.
#include "tune/text.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tune {
namespace {

using Step = bool NormalizeOptions::*;

// Every step on except `step`.
NormalizeOptions Without(Step step) {
  NormalizeOptions options;
  options.*step = false;
  return options;
}

// Only `step` on.
NormalizeOptions Only(Step step) {
  NormalizeOptions options{.lowercase = false,
                           .strip_punctuation = false,
                           .strip_articles = false,
                           .collapse_whitespace = false};
  options.*step = true;
  return options;
}

constexpr NormalizeOptions kNothing{.lowercase = false,
                                    .strip_punctuation = false,
                                    .strip_articles = false,
                                    .collapse_whitespace = false};

TEST(NormalizeText, MatchesSquadNormalizeAnswerByDefault) {
  EXPECT_EQ(NormalizeText("The Cat!", {}), "cat");
  EXPECT_EQ(NormalizeText("  Hello,   World.  ", {}), "hello world");
  EXPECT_EQ(NormalizeText("An apple a day", {}), "apple day");
  EXPECT_EQ(NormalizeText("Denver Broncos", {}), "denver broncos");
}

TEST(NormalizeText, LowercaseFoldsAsciiLettersOnly) {
  EXPECT_EQ(NormalizeText("MiXeD Case 123 _Z_", Only(&NormalizeOptions::lowercase)),
            "mixed case 123 _z_");
}

TEST(NormalizeText, StripPunctuationRemovesEveryAsciiPunctuationCharacter) {
  // Python's string.punctuation: all 32 of them.
  EXPECT_EQ(NormalizeText(R"(x!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~y)",
                          Only(&NormalizeOptions::strip_punctuation)),
            "xy");
  // Removed, not replaced: the pieces of a word join up.
  EXPECT_EQ(NormalizeText("Don't stop-start", Only(&NormalizeOptions::strip_punctuation)),
            "Dont stopstart");
}

TEST(NormalizeText, StripArticlesReplacesEachWholeArticleWithOneSpace) {
  // re.sub(r'\b(a|an|the)\b', ' ', ...) leaves the surrounding spaces where they were.
  EXPECT_EQ(NormalizeText("a cat", Only(&NormalizeOptions::strip_articles)), "  cat");
  EXPECT_EQ(NormalizeText("cat the dog an", Only(&NormalizeOptions::strip_articles)),
            "cat   dog  ");
  // Punctuation is a word boundary, so the article next to it still goes.
  EXPECT_EQ(NormalizeText("the,cat", Only(&NormalizeOptions::strip_articles)), " ,cat");
  // Case-sensitive on its own: only lowercase turns "The" into an article.
  EXPECT_EQ(NormalizeText("The cat", Only(&NormalizeOptions::strip_articles)), "The cat");
}

TEST(NormalizeText, StripArticlesKeepsArticlesInsideLongerWords) {
  EXPECT_EQ(NormalizeText("theater band another anthem", {}), "theater band another anthem");
  EXPECT_EQ(NormalizeText("thecat a1 an2", {}), "thecat a1 an2");
  // '_' is a word character for \b, so with punctuation kept "the_end" is one word.
  EXPECT_EQ(NormalizeText("the_end", Without(&NormalizeOptions::strip_punctuation)), "the_end");
}

TEST(NormalizeText, RemovesArticlesNextToPunctuation) {
  // Punctuation goes first: "the," -> "the" -> removed.
  EXPECT_EQ(NormalizeText("the, cat", {}), "cat");
  EXPECT_EQ(NormalizeText("(a) dog", {}), "dog");
  EXPECT_EQ(NormalizeText("cat, the.", {}), "cat");
  EXPECT_EQ(NormalizeText("The.", {}), "");
}

TEST(NormalizeText, StripsPunctuationBeforeArticlesSoJoinedWordsSurvive) {
  // "the-end" -> "theend", no longer the word "the"; "a.m." -> "am", not "an" or "a".
  EXPECT_EQ(NormalizeText("the-end", {}), "theend");
  EXPECT_EQ(NormalizeText("at 9 a.m.", {}), "at 9 am");
}

TEST(NormalizeText, CollapseWhitespaceJoinsRunsOfAsciiWhitespaceAndTrims) {
  EXPECT_EQ(NormalizeText(" \t x\n\ny \r\f\v z ", Only(&NormalizeOptions::collapse_whitespace)),
            "x y z");
}

TEST(NormalizeText, LowercaseOffKeepsCaseAndCapitalisedArticles) {
  // remove_articles is case-sensitive, so "The" is not an article without lower().
  EXPECT_EQ(NormalizeText("The Cat, a dog", Without(&NormalizeOptions::lowercase)), "The Cat dog");
}

TEST(NormalizeText, StripPunctuationOffKeepsPunctuation) {
  EXPECT_EQ(NormalizeText("Hello, World!", Without(&NormalizeOptions::strip_punctuation)),
            "hello, world!");
  // '-' is a word boundary: "the" is removed -> " -end" -> "-end".
  EXPECT_EQ(NormalizeText("the-end", Without(&NormalizeOptions::strip_punctuation)), "-end");
  // "the," -> " ," -> ",".
  EXPECT_EQ(NormalizeText("the, cat", Without(&NormalizeOptions::strip_punctuation)), ", cat");
}

TEST(NormalizeText, StripArticlesOffKeepsArticles) {
  EXPECT_EQ(NormalizeText("The cat and a dog.", Without(&NormalizeOptions::strip_articles)),
            "the cat and a dog");
}

TEST(NormalizeText, CollapseWhitespaceOffKeepsSpacesLeftByArticles) {
  // "  the  cat\t": "the" -> one space, giving 2 + 1 + 2 = 5 spaces before "cat".
  EXPECT_EQ(NormalizeText("  The  cat\t", Without(&NormalizeOptions::collapse_whitespace)),
            "     cat\t");
}

TEST(NormalizeText, EveryStepOffReturnsInputUnchanged) {
  EXPECT_EQ(NormalizeText("  The, CAT!\t", kNothing), "  The, CAT!\t");
}

TEST(NormalizeText, PassesNonAsciiBytesThroughUnchanged) {
  EXPECT_EQ(NormalizeText("Café au lait", {}), "café au lait");
  // Multi-byte characters are word characters: "thé" is not the article "the".
  EXPECT_EQ(NormalizeText("the thé", {}), "thé");
  EXPECT_EQ(NormalizeText("日本 the 東京", {}), "日本 東京");
  // Case folding is ASCII only (Python's lower() would also fold "È" and "Ü"): the bytes of
  // non-ASCII letters are left as they are.
  EXPECT_EQ(NormalizeText("CRÈME Über", {}), "crÈme Über");
}

TEST(NormalizeText, EmptyInputGivesEmptyOutput) {
  EXPECT_EQ(NormalizeText("", {}), "");
  EXPECT_EQ(NormalizeText("", kNothing), "");
  EXPECT_EQ(NormalizeText(" \t\n", {}), "");
  EXPECT_EQ(NormalizeText("?!", {}), "");
  EXPECT_EQ(NormalizeText("a an the", {}), "");
}

TEST(SplitWhitespace, EmptyOrBlankInputGivesNoWords) {
  EXPECT_TRUE(SplitWhitespace("").empty());
  EXPECT_TRUE(SplitWhitespace(" \t\n\r\f\v").empty());
}

TEST(SplitWhitespace, SplitsOnRunsOfAsciiWhitespace) {
  EXPECT_EQ(SplitWhitespace(" a  b\tc\n\r\f\vd "), (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(SplitWhitespace, KeepsPunctuationAndNonAsciiInsideWords) {
  EXPECT_EQ(SplitWhitespace("naïve, café!"), (std::vector<std::string>{"naïve,", "café!"}));
}

}  // namespace
}  // namespace tune

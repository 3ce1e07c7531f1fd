// People's judgement in the registry: review sets, blind pairs, judgements, results, promotion
// policies and approvals (DESIGN section 11).
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "registry/local_registry.h"
#include "registry/registry_test_util.h"
#include "support/test_support.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::MakeArtifact;
using testing::SampleRecord;
using testing::TempDir;

using testing::ErrorOf;

class ReviewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = LocalRegistry::Open(dir_.path() / "registry", Registry::OpenMode::kCreate);
  }

  // A version of `rank` with `exact_match`, from the one base model every sample record has.
  int64_t AddVersion(double exact_match) {
    const int n = files_++;
    const fs::path artifact = MakeArtifact(dir_.path() / ("artifact-" + std::to_string(n)),
                                           "weights " + std::to_string(n));
    VersionRecord record = SampleRecord(8, exact_match);
    record.run_id.clear();
    return registry_->Register("rank", record, artifact);
  }

  fs::path Write(const std::string& text) {
    const fs::path file = dir_.path() / ("file-" + std::to_string(files_++));
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

  // A review set of `prompts` prompts registered as dataset `qa`, and review `name` of it.
  void CreateReview(const std::string& name, int prompts) {
    std::string content;
    for (int i = 0; i < prompts; ++i) {
      content += "{\"prompt\": \"question " + std::to_string(i) + "\", \"reference\": \"answer " +
                 std::to_string(i) + "\"}\n";
    }
    DatasetRecord set;
    set.sha256 = "set of " + std::to_string(prompts);
    set.source = "prompts.jsonl";
    set.rows = prompts;
    registry_->RegisterDataset("qa", set, Write("rows"), Write(content));
    registry_->CreateReview(name, "qa");
  }

  // Records outputs for `contestant` on every prompt of the review: "CONTESTANT on I".
  void AddOutputs(const std::string& review, const std::string& contestant) {
    std::string lines;
    for (int64_t i = 0; i < registry_->GetReview(review).prompts; ++i) {
      lines += "{\"prompt\": " + std::to_string(i) + ", \"output\": \"" + contestant + " on " +
               std::to_string(i) + "\"}\n";
    }
    registry_->AddReviewOutputs(review, contestant, Write(lines), "greedy, seed 0");
  }

  // Who wrote a blind pair's left output, read from the text AddOutputs wrote.
  static std::string Writer(const std::string& output) {
    return output.substr(0, output.find(' '));
  }

  // `rater` judges every pair they are shown in favour of `winner` (a tie when it is not shown).
  int Judge(const std::string& review, const std::string& rater, const std::string& winner,
            int most = 1000) {
    const std::unique_ptr<LocalRegistry> as = registry_->Acting(rater);
    int judged = 0;
    while (judged < most) {
      const std::optional<BlindPair> pair = as->NextPair(review);
      if (!pair) break;
      const Verdict verdict = Writer(pair->left) == winner    ? Verdict::kLeft
                              : Writer(pair->right) == winner ? Verdict::kRight
                                                              : Verdict::kTie;
      as->Judge(review, pair->id, verdict);
      ++judged;
    }
    return judged;
  }

  TempDir dir_;
  std::unique_ptr<LocalRegistry> registry_;
  int files_ = 0;
};

TEST_F(ReviewTest, ReviewOfATrainingFileIsRefusedWithTheFix) {
  DatasetRecord training;
  training.sha256 = "training";
  training.source = "train.jsonl";
  training.rows = 3;
  registry_->RegisterDataset("train", training, Write("rows"));
  EXPECT_NE(ErrorOf([&] { registry_->CreateReview("r", "train"); })
                .find("is a training file, whose rows the registry does not hold; a review needs "
                      "a review set: `tune review create NAME --prompts FILE`"),
            std::string::npos);
}

// A review set never becomes a version of a training dataset's name (the latest version a
// training run's rows are compared with), nor the other way round.
TEST_F(ReviewTest, AReviewSetAndTrainingDataNeverShareAName) {
  DatasetRecord training;
  training.sha256 = "training";
  training.source = "train.jsonl";
  training.rows = 3;
  registry_->RegisterDataset("train", training, Write("rows"));
  DatasetRecord set;
  set.sha256 = "set";
  set.source = "prompts.jsonl";
  set.rows = 1;
  EXPECT_EQ(ErrorOf([&] {
              registry_->RegisterDataset("train", set, Write("rows"),
                                         Write("{\"prompt\": \"a?\"}\n"));
            }),
            "dataset train in registry " + (dir_.path() / "registry").string() +
                " holds training data, and this is a review set; give it a name of its own");
  CreateReview("r", 1);
  training.sha256 = "other training";
  EXPECT_NE(ErrorOf([&] {
              registry_->RegisterDataset("qa", training, Write("rows"));
            }).find("holds review sets, and this is training data"),
            std::string::npos);
  EXPECT_EQ(registry_->GetDataset("train").version, 1);
  EXPECT_EQ(registry_->GetDataset("qa").version, 1);
}

TEST_F(ReviewTest, MalformedReviewSetNamesTheLine) {
  DatasetRecord set;
  set.sha256 = "bad";
  set.source = "prompts.jsonl";
  set.rows = 2;
  registry_->RegisterDataset("qa", set, Write("rows"),
                             Write("{\"prompt\": \"fine\"}\n{\"question\": \"no prompt\"}\n"));
  const std::string error = ErrorOf([&] { registry_->CreateReview("r", "qa"); });
  EXPECT_NE(error.find("qa:1:2: '{\"question\": \"no prompt\"}' is not {\"prompt\": TEXT}"),
            std::string::npos)
      << error;
}

TEST_F(ReviewTest, OutputsCoverEveryPromptInOrderAndAreRecordedOnce) {
  AddVersion(0.5);
  CreateReview("r", 2);
  EXPECT_NE(ErrorOf([&] {
              registry_->AddReviewOutputs("r", "rank:1",
                                          Write("{\"prompt\": 0, \"output\": \"a\"}\n"), "g");
            }).find("1 outputs for a review of 2 prompts"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] {
              registry_->AddReviewOutputs(
                  "r", "rank:1",
                  Write("{\"prompt\": 1, \"output\": \"a\"}\n{\"prompt\": 0, \"output\": \"b\"}\n"),
                  "g");
            }).find(":1: the output of prompt 1 where prompt 0's belongs"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { AddOutputs("r", "rank:7"); }).find("has no version 7"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { AddOutputs("r", "rank"); }).find("is not a contestant"),
            std::string::npos);
  AddOutputs("r", "rank:1");
  AddOutputs("r", "rank:1");  // the same bytes again add nothing
  EXPECT_EQ(registry_->GetReview("r").outputs.size(), 1u);
  EXPECT_NE(ErrorOf([&] {
              registry_->AddReviewOutputs(
                  "r", "rank:1",
                  Write("{\"prompt\": 0, \"output\": \"x\"}\n{\"prompt\": 1, \"output\": \"y\"}\n"),
                  "g");
            }).find("has the outputs of rank:1 already"),
            std::string::npos);
}

TEST_F(ReviewTest, VersionsOfAnotherBaseModelAreRefused) {
  AddVersion(0.5);
  const fs::path artifact = MakeArtifact(dir_.path() / "other", "other weights");
  VersionRecord other = SampleRecord();
  other.run_id.clear();
  other.base_model_hash = std::string(64, 'c');
  registry_->Register("rank", other, artifact);
  CreateReview("r", 2);
  AddOutputs("r", "rank:1");
  EXPECT_NE(ErrorOf([&] {
              AddOutputs("r", "rank:2");
            }).find("compare versions of one base model per review"),
            std::string::npos);
}

TEST_F(ReviewTest, PairsAreBlindAndEachRaterSeesEveryPairOnce) {
  AddVersion(0.5);
  CreateReview("r", 3);
  AddOutputs("r", "rank:1");
  AddOutputs("r", kBaseContestant.data());
  const std::unique_ptr<LocalRegistry> alice = registry_->Acting("alice");
  std::set<int64_t> prompts;
  for (int i = 0; i < 3; ++i) {
    const std::optional<BlindPair> pair = alice->NextPair("r");
    ASSERT_TRUE(pair);
    EXPECT_EQ(pair->remaining, 3 - i);
    EXPECT_EQ(pair->judged, i);
    EXPECT_EQ(pair->prompt_text, "question " + std::to_string(pair->prompt));
    EXPECT_EQ(pair->reference, "answer " + std::to_string(pair->prompt));
    // Asked again before judging, the same pair comes back.
    EXPECT_EQ(alice->NextPair("r")->id, pair->id);
    prompts.insert(pair->prompt);
    alice->Judge("r", pair->id, Verdict::kTie);
  }
  EXPECT_EQ(prompts.size(), 3u);
  EXPECT_FALSE(alice->NextPair("r"));
  // Bob has seen none of them.
  EXPECT_TRUE(registry_->Acting("bob")->NextPair("r"));
}

TEST_F(ReviewTest, SidesAreShownInRandomOrder) {
  AddVersion(0.5);
  CreateReview("r", 40);
  AddOutputs("r", "rank:1");
  AddOutputs("r", "base");
  std::set<std::string> left;
  const std::unique_ptr<LocalRegistry> alice = registry_->Acting("alice");
  while (const std::optional<BlindPair> pair = alice->NextPair("r")) {
    left.insert(Writer(pair->left));
    alice->Judge("r", pair->id, Verdict::kTie);
  }
  EXPECT_EQ(left, (std::set<std::string>{"base", "rank:1"}));  // both sides: 1 - 2^-39
}

TEST_F(ReviewTest, RaterCannotJudgeTheSamePairTwice) {
  AddVersion(0.5);
  CreateReview("r", 2);
  AddOutputs("r", "rank:1");
  AddOutputs("r", "base");
  const std::unique_ptr<LocalRegistry> alice = registry_->Acting("alice");
  const BlindPair pair = *alice->NextPair("r");
  alice->Judge("r", pair.id, Verdict::kLeft);
  EXPECT_NE(ErrorOf([&] {
              alice->Judge("r", pair.id, Verdict::kRight);
            }).find("alice judged pair 1 of review 'r' already (left)"),
            std::string::npos);
}

TEST_F(ReviewTest, JudgementOfAPairNeverShownToTheRaterIsRefused) {
  AddVersion(0.5);
  CreateReview("r", 2);
  AddOutputs("r", "rank:1");
  AddOutputs("r", "base");
  const BlindPair pair = *registry_->Acting("alice")->NextPair("r");
  EXPECT_NE(ErrorOf([&] {
              registry_->Acting("bob")->Judge("r", pair.id, Verdict::kLeft);
            }).find("pair 1 of review 'r' was never shown to bob"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] {
              registry_->Acting("alice")->Judge("r", 99, Verdict::kLeft);
            }).find("pair 99 of review 'r' was never shown to alice"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] {
              registry_->Acting("alice")->Judge("r", pair.id, Verdict::kLeft,
                                                std::string(1001, 'x'));
            }).find("say it in 1,000 at most"),
            std::string::npos);
}

TEST_F(ReviewTest, ClosedReviewTakesNoJudgementsAndShowsWhoWroteWhat) {
  AddVersion(0.5);
  CreateReview("r", 2);
  AddOutputs("r", "rank:1");
  AddOutputs("r", "base");
  const std::unique_ptr<LocalRegistry> alice = registry_->Acting("alice");
  const BlindPair pair = *alice->NextPair("r");
  EXPECT_NE(ErrorOf([&] { registry_->Judgements("r"); }).find("who wrote what stays hidden"),
            std::string::npos);
  registry_->Acting("carol")->CloseReview("r");
  EXPECT_NE(ErrorOf([&] {
              alice->Judge("r", pair.id, Verdict::kLeft);
            }).find("review 'r' was closed by carol; it takes no more judgements"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { alice->NextPair("r"); }).find("was closed by carol"), std::string::npos);
  const std::vector<ShownPair> shown = registry_->Judgements("r");
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0].rater, "alice");
  EXPECT_EQ(Writer(pair.left), shown[0].left);
  EXPECT_FALSE(shown[0].verdict);
}

TEST_F(ReviewTest, NextPairPrefersTheContestantsWithFewestJudgementsBetweenThem) {
  AddVersion(0.5);
  AddVersion(0.6);
  CreateReview("r", 4);
  AddOutputs("r", "rank:1");
  AddOutputs("r", "rank:2");
  // Alice judges the four prompts of rank:1 against rank:2 only (base has no outputs yet).
  EXPECT_EQ(Judge("r", "alice", "rank:2"), 4);
  AddOutputs("r", "base");
  // Bob's first pairs are base against each version, which nobody has judged.
  const std::unique_ptr<LocalRegistry> bob = registry_->Acting("bob");
  for (int i = 0; i < 2; ++i) {
    const BlindPair pair = *bob->NextPair("r");
    const std::set<std::string> writers = {Writer(pair.left), Writer(pair.right)};
    EXPECT_TRUE(writers.count("base")) << pair.left << " / " << pair.right;
    bob->Judge("r", pair.id, Verdict::kBothBad, "neither answers");
  }
}

TEST_F(ReviewTest, WithJudgementsEvenNextPairPrefersTheClosestRatings) {
  AddVersion(0.5);
  AddVersion(0.6);
  CreateReview("r", 2);
  AddOutputs("r", "rank:1");
  AddOutputs("r", "rank:2");
  AddOutputs("r", "base");
  // Every pair judged twice: rank:2 beats both others, which tie with each other.
  EXPECT_EQ(Judge("r", "alice", "rank:2"), 6);
  const BlindPair pair = *registry_->Acting("bob")->NextPair("r");
  EXPECT_EQ((std::set<std::string>{Writer(pair.left), Writer(pair.right)}),
            (std::set<std::string>{"rank:1", "base"}));
}

TEST_F(ReviewTest, ResultsRateTheBetterVersionHigherWithIntervalsWinRatesAndAgreement) {
  AddVersion(0.5);
  AddVersion(0.6);
  CreateReview("r", 10);
  AddOutputs("r", "rank:1");
  AddOutputs("r", "rank:2");
  AddOutputs("r", "base");
  Judge("r", "alice", "rank:2");
  Judge("r", "bob", "rank:2");
  const ReviewResults results = registry_->Results("r");
  EXPECT_EQ(results.judgements, 60);
  EXPECT_EQ(results.raters, 2);
  EXPECT_EQ(results.resamples, 1000);
  EXPECT_FALSE(results.closed);
  ASSERT_EQ(results.contestants.size(), 3u);
  const ContestantResult& best = results.contestants[0];
  EXPECT_EQ(best.contestant, "rank:2");
  EXPECT_EQ(best.judgements, 40);
  EXPECT_DOUBLE_EQ(*best.against.at("rank:1").rate(), 1.0);
  EXPECT_DOUBLE_EQ(*best.against.at("base").rate(), 1.0);
  EXPECT_LE(best.rating.ci95_low, best.rating.rating);
  EXPECT_GE(best.rating.ci95_high, best.rating.rating);
  EXPECT_GT(best.rating.rating, results.contestants[1].rating.rating);
  // rank:1 against base: every judgement a tie, so half a win each.
  const ContestantResult& other = results.contestants[1].contestant == "rank:1"
                                      ? results.contestants[1]
                                      : results.contestants[2];
  EXPECT_DOUBLE_EQ(*other.against.at("base").rate(), 0.5);
  // Both raters judged the same 30 items the same way.
  EXPECT_EQ(results.agreement.items, 30);
  ASSERT_TRUE(results.agreement.alpha);
  EXPECT_DOUBLE_EQ(*results.agreement.alpha, 1.0);
  // The same judgements give the same intervals every time (a fixed bootstrap seed).
  EXPECT_EQ(registry_->Results("r").contestants[0].rating.ci95_low, best.rating.ci95_low);
}

TEST_F(ReviewTest, GcKeepsReviewSetsAndOutputs) {
  AddVersion(0.5);
  CreateReview("r", 2);
  AddOutputs("r", "rank:1");
  AddOutputs("r", "base");
  registry_->Gc(std::chrono::seconds(0));
  EXPECT_TRUE(registry_->Acting("alice")->NextPair("r"));
  EXPECT_TRUE(registry_->Verify().problems.empty());
}

TEST_F(ReviewTest, VerifyFindsADamagedOutputsObject) {
  AddVersion(0.5);
  CreateReview("r", 2);
  AddOutputs("r", "rank:1");
  const ManifestEntry outputs = registry_->GetReview("r").outputs.at(0).object;
  const fs::path object = registry_->ObjectPath(outputs.digest);
  fs::permissions(object, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(object, std::ios::binary | std::ios::trunc) << "damaged";
  const VerifyReport report = registry_->Verify();
  bool named = false;
  for (const std::string& problem : report.problems) {
    named = named || problem == "review r outputs of rank:1: object sha256:" + outputs.digest +
                                    " is corrupted";
  }
  EXPECT_TRUE(named) << ::testing::PrintToString(report.problems);
}

// ---- Promotion policies ----

class PolicyTest : public ReviewTest {
 protected:
  void SetPolicy(const std::string& toml) {
    for (const AliasPolicy& policy : ParsePolicies(toml, "policy.toml", "rank")) {
      registry_->SetPolicy(policy);
    }
  }
};

TEST_F(PolicyTest, PolicyFileMistakesNameTheFileLineAndKey) {
  EXPECT_NE(ErrorOf([] { ParsePolicies("[policy.production]\nrequre = []\n", "p.toml", "rank"); })
                .find("p.toml:2: policy.production.requre: unknown key 'requre' (did you mean "
                      "'require'?)"),
            std::string::npos);
  EXPECT_NE(ErrorOf([] {
              ParsePolicies("[policy.production]\napprovers = -1\n", "p.toml", "rank");
            }).find("p.toml:2: policy.production.approvers is a whole number from 0 to 10"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf([] { ParsePolicies("[policy.production\n", "p.toml", "rank"); }).find("p.toml:1: "),
      std::string::npos);
  AddVersion(0.5);
  const std::string malformed = ErrorOf([&] {
    SetPolicy(
        "[policy.production]\nrequire = [\n  \"exact_match >= 0.8\",\n  \"exact_match = 0.8\"]\n");
  });
  EXPECT_NE(malformed.find("policy.toml:4: policy.production.require[1]: 'exact_match = 0.8' "
                           "compares with '='"),
            std::string::npos)
      << malformed;
  EXPECT_NE(
      ErrorOf([&] { SetPolicy("[policy.production]\nrequire = [\"exact_match >= high\"]\n"); })
          .find("policy.toml:2: policy.production.require[0]: 'exact_match >= high' compares "
                "with 'high', which is not a number"),
      std::string::npos);
}

TEST_F(PolicyTest, UnknownMetricIsRefusedWithTheKnownOnes) {
  AddVersion(0.5);
  const std::string error =
      ErrorOf([&] { SetPolicy("[policy.production]\nrequire = [\"exact_mach >= 0.8\"]\n"); });
  EXPECT_NE(error.find("policy.toml:2: policy.production.require[0]: unknown metric "
                       "'exact_mach' (did you mean 'exact_match'?); the versions of rank have the "
                       "scores exact_match, token_f1"),
            std::string::npos)
      << error;
  EXPECT_NE(ErrorOf([&] {
              SetPolicy("[policy.production]\nrequire = [\"human.winrate >= 0.5\"]\n");
            }).find("unknown metric 'human.winrate'"),
            std::string::npos);
  EXPECT_TRUE(registry_->Policies("rank").empty());
}

TEST_F(PolicyTest, ProtectedAliasMovesOnlyByPromotionOrAnOverrideKeptInHistory) {
  AddVersion(0.5);
  SetPolicy("[policy.production]\nrequire = [\"exact_match >= 0.8\"]\n");
  EXPECT_NE(ErrorOf([&] { registry_->MoveAlias("rank", "production", 1); })
                .find("has a promotion policy: promote with `tune adapters promote rank:1 "
                      "production`, or, as an admin, override the policy with --override REASON"),
            std::string::npos);
  EXPECT_TRUE(registry_->Aliases("rank").empty());
  registry_->Acting("admin")->MoveAlias("rank", "production", 1, std::nullopt,
                                        "hotfix for the outage");
  const std::vector<AliasMove> history = registry_->History("rank");
  ASSERT_EQ(history.size(), 1u);
  EXPECT_TRUE(history[0].overridden);
  EXPECT_EQ(history[0].reason, "hotfix for the outage");
  EXPECT_EQ(history[0].by, "admin");
  // Other aliases move freely.
  registry_->MoveAlias("rank", "staging", 1);
}

TEST_F(PolicyTest, PromotionSaysWhichConditionFailsAndByHowMuch) {
  AddVersion(0.74);
  SetPolicy(
      "[policy.production]\nrequire = [\"exact_match >= 0.80\", \"token_f1 >= 0.5\", "
      "\"human.judgements >= 30\"]\n");
  try {
    registry_->Promote("rank", "production", 1);
    FAIL() << "promoted";
  } catch (const PolicyRefused& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot promote rank:1 to production: its policy (policy.toml) is not met: "
              "exact_match >= 0.80: 0.74, 0.06 short (needs >= 0.8); human.judgements >= 30: 0, "
              "30 short (needs >= 30)");
    ASSERT_EQ(e.checks().size(), 3u);
    EXPECT_TRUE(e.checks()[1].met);
  }
  EXPECT_TRUE(registry_->Aliases("rank").empty());
}

TEST_F(PolicyTest, HumanWinRateAgainstTheCurrentVersionComesFromReviews) {
  AddVersion(0.9);
  AddVersion(0.9);
  registry_->MoveAlias("rank", "production", 1);
  SetPolicy(
      "[policy.production]\nrequire = [\"human.win_rate_vs_current >= 0.55\", "
      "\"human.judgements >= 10\", \"human.win_rate_vs_base >= 0.5\"]\n");
  const std::vector<PolicyCheck> before = registry_->CheckPolicy("rank", "production", 2);
  ASSERT_EQ(before.size(), 3u);
  EXPECT_FALSE(before[0].met);
  EXPECT_EQ(before[0].detail, "no judgements of rank:2 against rank:1 yet");
  CreateReview("r", 6);
  AddOutputs("r", "rank:1");
  AddOutputs("r", "rank:2");
  AddOutputs("r", "base");
  Judge("r", "alice", "rank:2");
  const std::vector<PolicyCheck> after = registry_->CheckPolicy("rank", "production", 2);
  EXPECT_TRUE(after[0].met) << after[0].detail;
  EXPECT_DOUBLE_EQ(*after[0].value, 1.0);
  EXPECT_DOUBLE_EQ(*after[1].value, 6.0);
  EXPECT_FALSE(after[1].met);
  EXPECT_EQ(after[1].detail, "6, 4 short (needs >= 10)");
  EXPECT_TRUE(after[2].met);
  Judge("r", "bob", "rank:2");
  EXPECT_EQ(registry_->Promote("rank", "production", 2).status, "moved");
  EXPECT_EQ(registry_->Aliases("rank").at("production"), 2);
  EXPECT_EQ(registry_->History("rank").back().reason, "its policy is met");
}

TEST_F(PolicyTest, PromotionWaitsForAnApproverOtherThanTheOneWhoAsked) {
  AddVersion(0.9);
  SetPolicy("[policy.production]\nrequire = [\"exact_match >= 0.8\"]\napprovers = 1\n");
  const PromotionRequest asked = registry_->Acting("alice")->Promote("rank", "production", 1);
  EXPECT_EQ(asked.status, "waiting");
  EXPECT_EQ(asked.id, 1);
  EXPECT_TRUE(registry_->Aliases("rank").empty());
  // Asking again returns the same request.
  EXPECT_EQ(registry_->Acting("alice")->Promote("rank", "production", 1).id, 1);
  EXPECT_NE(ErrorOf([&] { registry_->Acting("alice")->Approve("rank", 1); })
                .find("alice asked for request 1 (rank:1 to production); another person with the "
                      "promote role must approve it"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] {
              registry_->Acting("bob")->Approve("rank", 7);
            }).find("adapter 'rank' has no promotion request 7"),
            std::string::npos);
  const PromotionRequest approved = registry_->Acting("bob")->Approve("rank", 1);
  EXPECT_EQ(approved.status, "moved");
  EXPECT_EQ(registry_->Aliases("rank").at("production"), 1);
  EXPECT_EQ(registry_->History("rank").back().reason, "request 1 by alice, approved by bob");
  EXPECT_EQ(registry_->History("rank").back().by, "bob");
  EXPECT_NE(ErrorOf([&] {
              registry_->Acting("carol")->Approve("rank", 1);
            }).find("is moved; only a waiting request is approved"),
            std::string::npos);
}

TEST_F(PolicyTest, ApprovalOfARequestWhoseAliasMovedMeanwhileIsRefusedAsStale) {
  AddVersion(0.9);
  AddVersion(0.9);
  SetPolicy("[policy.production]\nrequire = [\"exact_match >= 0.8\"]\napprovers = 1\n");
  registry_->Acting("alice")->Promote("rank", "production", 2);
  registry_->Acting("admin")->MoveAlias("rank", "production", 1, std::nullopt, "rollback drill");
  EXPECT_THROW(registry_->Acting("bob")->Approve("rank", 1), AliasConflict);
  EXPECT_EQ(registry_->PromotionRequests("rank").at(0).status, "stale");
  EXPECT_EQ(registry_->Aliases("rank").at("production"), 1);
}

TEST_F(PolicyTest, AliasWithoutPolicyPromotesAtOnce) {
  AddVersion(0.1);
  const PromotionRequest moved = registry_->Promote("rank", "staging", 1);
  EXPECT_EQ(moved.status, "moved");
  EXPECT_EQ(moved.from_version, 0);
  EXPECT_EQ(registry_->Aliases("rank").at("staging"), 1);
}

TEST_F(PolicyTest, BackupKeepsThePolicySoARestoredAliasStaysProtected) {
  AddVersion(0.9);
  SetPolicy("[policy.production]\nrequire = [\"exact_match >= 0.8\"]\n");
  registry_->Backup(dir_.path() / "backup");
  const std::unique_ptr<LocalRegistry> restored =
      LocalRegistry::Open(dir_.path() / "backup", Registry::OpenMode::kReadWrite);
  EXPECT_THROW(restored->MoveAlias("rank", "production", 1), PolicyRefused);
  EXPECT_EQ(restored->Policies("rank").size(), 1u);
}

}  // namespace
}  // namespace tune

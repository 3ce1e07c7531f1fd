// What tune sweep prints: the progress line counts the search's size, and with repeats the
// ranking gives each configuration's mean, standard deviation and 95% confidence interval.
#include "sweep/report.h"

#include <gtest/gtest.h>

namespace tune {
namespace {

Trial Finished(int64_t number, int64_t configuration, int64_t repeat, double score, int64_t rank) {
  Trial t;
  t.number = number;
  t.configuration = configuration;
  t.repeat = repeat;
  t.assignment = {{"adapter.rank", rank}};
  t.status = TrialStatus::kFinished;
  t.version = number;
  t.scores = {{"exact_match", score}, {"eval_loss", 1.0 - score}};
  t.base_objective = 0.1;
  t.wall_seconds = 10.0;
  return t;
}

const ReportContext kContext{"rank", "exact_match", true};

TEST(SweepReport, ProgressCountsTheSearchsSizeNotMaxTrials) {
  SweepState state;
  state.name = "rank-1";
  state.trials = {Finished(1, 1, 0, 0.5, 2), Finished(2, 2, 0, 0.7, 4)};
  EXPECT_EQ(ProgressLine(state, kContext, /*total_trials=*/6, /*training=*/1, 20.0),
            "sweep rank-1: 2/6 done, 1 running, 0 failed, 0 pruned, best exact_match 0.7000 "
            "(trial 2), elapsed 0:00:20, ETA 0:00:40");
}

// With [eval] few_shot, the gain over the prompted base model stands beside the gain over the
// base model alone, per trial and per configuration.
TEST(SweepReport, APromptedBaselineAddsItsGainColumn) {
  SweepState state;
  state.name = "rank-1";
  state.trials = {Finished(1, 1, 0, 0.5, 2), Finished(2, 2, 0, 0.7, 4)};
  const std::string without = RankingTable(state, kContext);
  EXPECT_EQ(without.find("vs few-shot"), std::string::npos) << without;
  for (Trial& t : state.trials) t.few_shot_objective = 0.6;
  const std::string table = RankingTable(state, kContext);
  EXPECT_NE(table.find("gain vs few-shot"), std::string::npos) << table;
  EXPECT_NE(table.find("   +0.6000     +0.1000"), std::string::npos) << table;  // trial 2
  EXPECT_NE(table.find("   +0.4000     -0.1000"), std::string::npos) << table;  // trial 1
  state.repeats = 2;
  state.trials = {Finished(1, 1, 0, 0.5, 2), Finished(2, 1, 1, 0.7, 2)};
  state.trials[0].few_shot_objective = 0.5;
  state.trials[1].few_shot_objective = 0.7;
  const std::string ranked = RankingTable(state, kContext);
  EXPECT_NE(ranked.find("   +0.5000     +0.0000"), std::string::npos) << ranked;
}

TEST(SweepReport, WithRepeatsEachConfigurationShowsItsMeanSpreadAndInterval) {
  SweepState state;
  state.name = "rank-1";
  state.repeats = 3;
  // Configuration 1: 0.5, 0.7, 0.9 (mean 0.7, sd 0.2, half-width 4.303 * 0.2 / sqrt(3) =
  // 0.4969); configuration 2: 0.6 twice and a failed repeat.
  state.trials = {Finished(1, 1, 0, 0.5, 2), Finished(2, 1, 1, 0.7, 2), Finished(3, 1, 2, 0.9, 2),
                  Finished(4, 2, 0, 0.6, 4), Finished(5, 2, 1, 0.6, 4), Finished(6, 2, 2, 0, 4)};
  state.trials[5].status = TrialStatus::kFailed;
  state.trials[5].version = 0;
  state.trials[5].error = "killed by signal 9 (out of memory?)";
  const std::string table = RankingTable(state, kContext);
  EXPECT_NE(table.find("config trials  versions      exact_match       sd 95% CI (t)              "
                       "gain  eval_loss      wall  parameters\n"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("1      3/3     rank:v1,v2,v3      0.7000   0.2000 [0.2031, 1.1969]  "
                       "   +0.6000     0.3000   0:00:10  adapter.rank=2\n"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("2      2/3     rank:v4,v5         0.6000   0.0000 [0.6000, 0.6000]"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("trial 6 (configuration 2, repeat 3) failed: killed by signal 9"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("best: configuration 1 (adapter.rank=2), exact_match 0.7000 ± 0.2000 "
                       "over 3 repeats (95% CI 0.2031 to 1.1969); its best repeat rank:v3 "
                       "(trial 3, exact_match = 0.9000)\n"),
            std::string::npos)
      << table;
  EXPECT_EQ(ProgressLine(state, kContext, 6, 0, 60.0),
            "sweep rank-1: 6/6 done, 0 running, 1 failed, 0 pruned, best exact_match 0.7000 ± "
            "0.2000 (configuration 1, 3 of 3 repeats), elapsed 0:01:00, ETA 0:00:00");
}

// Exact match is a fraction: its interval over the seeds stays within [0, 1] (Student's t gave
// 1.1969 above), and the header says which interval it is.
TEST(SweepReport, TheIntervalOfABoundedObjectiveStaysWithinItsBoundsAndIsNamed) {
  SweepState state;
  state.name = "rank-1";
  state.repeats = 3;
  state.trials = {Finished(1, 1, 0, 0.5, 2), Finished(2, 1, 1, 0.7, 2), Finished(3, 1, 2, 0.9, 2)};
  ReportContext context = kContext;
  context.bounds = {{"exact_match", {0.0, 1.0}}};
  const std::string table = RankingTable(state, context);
  EXPECT_NE(table.find("exact_match       sd 95% CI (t, in [0, 1])       gain"), std::string::npos)
      << table;
  EXPECT_NE(table.find("0.7000   0.2000 [0.2031, 1.0000]         +0.6000"), std::string::npos)
      << table;
  EXPECT_NE(table.find("(95% CI 0.2031 to 1.0000)"), std::string::npos) << table;
}

}  // namespace
}  // namespace tune

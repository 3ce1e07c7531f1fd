// The sweep's decisions on plain data: which trial trains when, which is readied ahead, how
// repeats are laid out, and ASHA over configuration means. No processes and no clocks.
#include "sweep/scheduler.h"

#include <gtest/gtest.h>

namespace tune {
namespace {

// Configuration k (0-based) sweeps adapter.rank = 2^(k+1); `seen` keeps what each proposal saw.
struct Grid {
  std::vector<std::vector<FinishedTrial>> seen;
  SweepScheduler::Propose propose() {
    return [this](int64_t index, const std::vector<FinishedTrial>& finished) {
      seen.push_back(finished);
      return Assignment{{"adapter.rank", int64_t{2} << index}};
    };
  }
};

SchedulePlan Plan(int64_t configurations, int64_t repeats = 1, int64_t slots = 1) {
  SchedulePlan plan;
  plan.configurations = configurations;
  plan.repeats = repeats;
  plan.slots = slots;
  plan.objective = "exact_match";
  plan.maximize = true;
  return plan;
}

TrialDone Done(int64_t version, double score) {
  return {version, {{"exact_match", score}}, {{"exact_match", 0.0}}, 1.0, {}};
}

std::vector<int64_t> Launched(const SweepScheduler::Actions& actions, bool ready_ahead) {
  std::vector<int64_t> trials;
  for (const SweepScheduler::Launch& launch : actions.launch) {
    if (launch.ready_ahead == ready_ahead) trials.push_back(launch.trial);
  }
  return trials;
}

TEST(SweepScheduler, FillsEverySlotThenReadiesTheNextTrialAheadWhenThereIsRoom) {
  SweepState state;
  Grid grid;
  SchedulePlan plan = Plan(3, 1, 2);
  plan.ready_ahead = true;
  SweepScheduler scheduler(plan, state, grid.propose());

  auto actions = scheduler.Next(/*room_to_ready=*/true);
  EXPECT_EQ(Launched(actions, false), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(Launched(actions, true), (std::vector<int64_t>{3}));
  EXPECT_EQ(actions.launch[0].slot, 0);
  EXPECT_EQ(actions.launch[1].slot, 1);
  EXPECT_EQ(actions.launch[2].slot, -1);  // its slot is the one that frees first
  EXPECT_TRUE(scheduler.readied(3));
  EXPECT_EQ(state.trials[2].status, TrialStatus::kPending);
  EXPECT_TRUE(scheduler.Next(true).launch.empty());  // nothing changed, nothing to do

  scheduler.Finished(2, Done(1, 0.5));
  scheduler.Ended(2, AttemptEnd::kFinished, "", 1.0);
  actions = scheduler.Next(true);
  ASSERT_EQ(actions.go.size(), 1u);
  EXPECT_EQ(actions.go[0].trial, 3);
  EXPECT_EQ(actions.go[0].slot, 1);     // trial 2's
  EXPECT_TRUE(actions.launch.empty());  // the grid has no fourth trial
  EXPECT_EQ(state.trials[2].status, TrialStatus::kRunning);
  EXPECT_FALSE(scheduler.done());

  scheduler.Finished(1, Done(2, 0.6));
  scheduler.Ended(1, AttemptEnd::kFinished, "", 1.0);
  scheduler.Finished(3, Done(3, 0.7));
  scheduler.Ended(3, AttemptEnd::kFinished, "", 1.0);
  EXPECT_TRUE(scheduler.Next(true).launch.empty());
  EXPECT_TRUE(scheduler.done());
}

TEST(SweepScheduler, ReadiesNothingAheadWithoutRoomOrWhenThePlanForbidsIt) {
  for (const bool allowed : {false, true}) {
    SweepState state;
    Grid grid;
    SchedulePlan plan = Plan(3);
    plan.ready_ahead = allowed;
    SweepScheduler scheduler(plan, state, grid.propose());
    const auto actions = scheduler.Next(/*room_to_ready=*/!allowed);
    EXPECT_EQ(Launched(actions, false), (std::vector<int64_t>{1}));
    EXPECT_TRUE(Launched(actions, true).empty());
  }
}

TEST(SweepScheduler, InterruptedTrialsRunBeforePendingOnesAndFinishedOnesNeverAgain) {
  SweepState state;
  Grid grid;
  SweepScheduler scheduler(Plan(3), state, grid.propose());
  for (int64_t number = 1; number <= 3; ++number) {
    scheduler.Next(false);
    scheduler.Ended(number, AttemptEnd::kFailed, "x", 0.0);
  }
  // As a killed sweep leaves it: 1 finished, 2 running without a process, 3 pending.
  state.trials[0].status = TrialStatus::kFinished;
  state.trials[1].status = TrialStatus::kRunning;
  state.trials[2].status = TrialStatus::kPending;
  SweepScheduler resumed(Plan(3), state, grid.propose());
  auto actions = resumed.Next(false);
  EXPECT_EQ(Launched(actions, false), (std::vector<int64_t>{2}));
  resumed.Ended(2, AttemptEnd::kFinished, "", 1.0);
  actions = resumed.Next(false);
  EXPECT_EQ(Launched(actions, false), (std::vector<int64_t>{3}));
  EXPECT_EQ(state.trials.size(), 3u);  // no configuration proposed again
}

TEST(SweepScheduler, AFailingTrialFailsAloneAndTheNextOneStarts) {
  SweepState state;
  Grid grid;
  SweepScheduler scheduler(Plan(2), state, grid.propose());
  scheduler.Next(false);
  scheduler.Ended(1, AttemptEnd::kKilled, "killed by signal 9 (out of memory?)", 3.0);
  EXPECT_EQ(state.trials[0].status, TrialStatus::kFailed);
  EXPECT_EQ(state.trials[0].error, "killed by signal 9 (out of memory?)");
  EXPECT_EQ(Launched(scheduler.Next(false), false), (std::vector<int64_t>{2}));
  // One that exits cleanly without a result failed too.
  scheduler.Ended(2, AttemptEnd::kFinished, "", 1.0);
  EXPECT_EQ(state.trials[1].error, "ended without reporting a result");
  EXPECT_TRUE(scheduler.done());
}

TEST(SweepScheduler, RepeatsRunEveryConfigurationSeveralTimesAndProposalsSeeTheirMeans) {
  SweepState state;
  Grid grid;
  SweepScheduler scheduler(Plan(2, /*repeats=*/3), state, grid.propose());
  EXPECT_EQ(scheduler.total_trials(), 6);
  for (int64_t number = 1; number <= 3; ++number) {
    EXPECT_EQ(Launched(scheduler.Next(false), false), (std::vector<int64_t>{number}));
    scheduler.Finished(number, Done(number, 0.2 * static_cast<double>(number)));
    scheduler.Ended(number, AttemptEnd::kFinished, "", 1.0);
  }
  scheduler.Next(false);  // configuration 2's first repeat
  ASSERT_EQ(state.trials.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(state.trials[i].number, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(state.trials[i].configuration, static_cast<int64_t>(i) / 3 + 1);
    EXPECT_EQ(state.trials[i].repeat, static_cast<int64_t>(i) % 3);
  }
  EXPECT_EQ(state.trials[3].assignment.at("adapter.rank"), OptionValue(int64_t{4}));
  // Configuration 2 was proposed knowing configuration 1's mean over its repeats, not one seed.
  ASSERT_EQ(grid.seen.size(), 2u);
  ASSERT_EQ(grid.seen[1].size(), 1u);
  EXPECT_NEAR(grid.seen[1][0].objective, 0.4, 1e-12);
}

TEST(Asha, KeepsTheBestOneInEtaOfTheMeansAtARung) {
  EXPECT_TRUE(AshaKeeps({2.0}, 2.0, 3));  // the first to reach a rung goes on
  EXPECT_TRUE(AshaKeeps({1.0, 2.0}, 1.0, 2));
  EXPECT_FALSE(AshaKeeps({1.0, 2.0}, 2.0, 2));
  EXPECT_TRUE(AshaKeeps({3.0, 1.0, 2.0}, 2.0, 2));  // ceil(3 / 2) = 2 go on
  EXPECT_FALSE(AshaKeeps({3.0, 1.0, 2.0}, 3.0, 2));
}

TEST(SweepScheduler, AshaComparesConfigurationsByTheirMeanNotSingleSeeds) {
  SweepState state;
  Grid grid;
  SchedulePlan plan = Plan(3, /*repeats=*/2, /*slots=*/6);
  plan.rungs = {5, 10};
  plan.eta = 2;
  plan.maximize = false;
  SweepScheduler scheduler(plan, state, grid.propose());
  scheduler.Next(false);
  ASSERT_EQ(state.trials.size(), 6u);
  // Not a rung: no decision.
  EXPECT_TRUE(scheduler.Evaluated(1, 3, 99.0).go_on);
  // Configuration 1: losses 1.0 and 3.0 (mean 2.0); configuration 2: 1.5 and 1.8 (mean 1.65).
  EXPECT_TRUE(scheduler.Evaluated(1, 5, 1.0).go_on);
  EXPECT_TRUE(scheduler.Evaluated(2, 5, 3.0).go_on);
  EXPECT_TRUE(scheduler.Evaluated(3, 5, 1.5).go_on);
  // Ranked as single seeds {1.0, 1.5, 1.8, 3.0}, 1.8 would not be in the best half; as
  // configurations {1.65, 2.0} its configuration leads.
  EXPECT_TRUE(scheduler.Evaluated(4, 5, 1.8).go_on);
  // Configuration 3 at 2.5 trails both means: pruned, with its reason.
  const TrialVerdict verdict = scheduler.Evaluated(5, 5, 2.5);
  EXPECT_FALSE(verdict.go_on);
  EXPECT_EQ(verdict.reason,
            "pruned at step 5 (configuration 3: mean eval_loss 2.5000 over 1 repeats)");
  EXPECT_EQ(state.trials[4].status, TrialStatus::kPruned);
  EXPECT_EQ(state.trials[4].pruned_at, 5);
  // Its other repeat, still training, stops at its next eval whatever its loss.
  EXPECT_FALSE(scheduler.Evaluated(6, 5, 0.1).go_on);
  EXPECT_EQ(state.trials[5].status, TrialStatus::kPruned);
  scheduler.Ended(5, AttemptEnd::kFinished, "", 1.0);
  scheduler.Ended(6, AttemptEnd::kFinished, "", 1.0);
  EXPECT_EQ(state.trials[4].status, TrialStatus::kPruned);  // not failed
}

TEST(SweepScheduler, APrunedConfigurationsRepeatsThatHaveNotStartedNeverRun) {
  SweepState state;
  Grid grid;
  SchedulePlan plan = Plan(2, /*repeats=*/2, /*slots=*/1);
  plan.rungs = {5};
  plan.eta = 2;
  SweepScheduler scheduler(plan, state, grid.propose());
  scheduler.Next(false);
  EXPECT_TRUE(scheduler.Evaluated(1, 5, 1.0).go_on);
  scheduler.Finished(1, Done(1, 0.5));
  scheduler.Ended(1, AttemptEnd::kFinished, "", 1.0);
  scheduler.Next(false);
  EXPECT_TRUE(scheduler.Evaluated(2, 5, 1.0).go_on);
  scheduler.Finished(2, Done(2, 0.5));
  scheduler.Ended(2, AttemptEnd::kFinished, "", 1.0);
  EXPECT_EQ(Launched(scheduler.Next(false), false), (std::vector<int64_t>{3}));
  EXPECT_FALSE(scheduler.Evaluated(3, 5, 4.0).go_on);
  scheduler.Ended(3, AttemptEnd::kFinished, "", 1.0);
  // Trial 4 repeats configuration 2: it is pruned with it and never launched.
  EXPECT_EQ(state.trials[3].status, TrialStatus::kPruned);
  EXPECT_TRUE(scheduler.Next(false).launch.empty());
  EXPECT_TRUE(scheduler.done());
}

// A lost node, a preemption or a cancellation is not the trial's fault: it runs again, before any
// pending trial, until it has had 1 + max_retries attempts; each attempt keeps why it ended.
TEST(SweepScheduler, RetriesAnAttemptThatEndedWithoutItsFaultUntilRetriesRunOut) {
  SweepState state;
  Grid grid;
  SchedulePlan plan = Plan(2);
  plan.max_retries = 2;
  SweepScheduler scheduler(plan, state, grid.propose());
  EXPECT_EQ(Launched(scheduler.Next(false), false), (std::vector<int64_t>{1}));
  EXPECT_TRUE(scheduler.Ended(1, AttemptEnd::kNodeFailure, "its node failed", 2.0));
  EXPECT_EQ(state.trials[0].status, TrialStatus::kPending);
  EXPECT_EQ(Launched(scheduler.Next(false), false), (std::vector<int64_t>{1}));
  EXPECT_TRUE(scheduler.Ended(1, AttemptEnd::kPreempted, "preempted", 2.0));
  EXPECT_EQ(Launched(scheduler.Next(false), false), (std::vector<int64_t>{1}));
  EXPECT_FALSE(scheduler.Ended(1, AttemptEnd::kCancelled, "cancelled", 2.0));
  EXPECT_EQ(state.trials[0].status, TrialStatus::kFailed);
  EXPECT_EQ(state.trials[0].error, "cancelled (attempt 3 of 3; no retries left)");
  ASSERT_EQ(state.trials[0].attempts.size(), 3u);
  EXPECT_EQ(state.trials[0].attempts[0].end, "node_failure");
  EXPECT_EQ(state.trials[0].attempts[1].end, "preempted");
  EXPECT_EQ(state.trials[0].attempts[2].end, "cancelled");
  EXPECT_EQ(Launched(scheduler.Next(false), false), (std::vector<int64_t>{2}));
}

// The trial's own error, or running out of memory, would happen again: no second attempt.
TEST(SweepScheduler, NeverRetriesATrialsOwnFailureOrOneThatRanOutOfMemory) {
  for (const AttemptEnd end : {AttemptEnd::kFailed, AttemptEnd::kOutOfMemory}) {
    SweepState state;
    Grid grid;
    SchedulePlan plan = Plan(1);
    plan.max_retries = 5;
    SweepScheduler scheduler(plan, state, grid.propose());
    scheduler.Next(false);
    EXPECT_FALSE(scheduler.Ended(1, end, "no", 1.0));
    EXPECT_EQ(state.trials[0].status, TrialStatus::kFailed);
    EXPECT_EQ(state.trials[0].attempts.back().end, AttemptEndName(end));
    EXPECT_TRUE(scheduler.done());
  }
}

// Whatever ends a trial's process after it registered (a cancellation on its way out) leaves it
// finished: the result counts, and nothing runs again.
TEST(SweepScheduler, AFinishedTrialStaysFinishedWhateverEndsItsProcess) {
  SweepState state;
  Grid grid;
  SchedulePlan plan = Plan(1);
  plan.max_retries = 2;
  SweepScheduler scheduler(plan, state, grid.propose());
  scheduler.Next(false);
  scheduler.Finished(1, Done(1, 0.5));
  EXPECT_FALSE(scheduler.Ended(1, AttemptEnd::kCancelled, "cancelled", 1.0));
  EXPECT_EQ(state.trials[0].status, TrialStatus::kFinished);
  EXPECT_EQ(state.trials[0].attempts.back().end, "finished");
  EXPECT_TRUE(scheduler.done());
}

// A driver that attaches to a sweep whose trials still run in Slurm takes them back on their
// slots: nothing is launched in their place, and their end is handled as any other.
TEST(SweepScheduler, AnAdoptedTrialTakesItsSlotAndIsNotLaunchedAgain) {
  SweepState state;
  Grid grid;
  SweepScheduler first(Plan(2), state, grid.propose());
  first.Next(false);  // trial 1, then its driver goes away
  SweepScheduler attached(Plan(2), state, grid.propose());
  attached.Adopt(1);
  EXPECT_TRUE(attached.Next(false).launch.empty());
  EXPECT_EQ(attached.live(), (std::vector<int64_t>{1}));
  attached.Finished(1, Done(1, 0.5));
  attached.Ended(1, AttemptEnd::kFinished, "", 1.0);
  EXPECT_EQ(state.trials[0].attempts.size(), 1u);
  EXPECT_EQ(Launched(attached.Next(false), false), (std::vector<int64_t>{2}));
}

}  // namespace
}  // namespace tune

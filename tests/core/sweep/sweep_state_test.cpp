#include "sweep/sweep_state.h"

#include <gtest/gtest.h>

#include "support/test_support.h"
#include "util/error.h"

namespace tune {
namespace {

TEST(SweepState, ReadsBackWhatItSaved) {
  testing::TempDir dir;
  SweepState state;
  state.name = "rank-3";
  state.sweep_sha256 = "aa";
  state.dataset_sha256 = "bb";
  state.repeats = 2;
  Trial t;
  t.number = 2;
  t.configuration = 1;
  t.repeat = 1;
  t.assignment = {{"adapter.rank", int64_t{8}}, {"optimizer.lr", 0.001}};
  t.status = TrialStatus::kPruned;
  t.pruned_at = 20;
  t.rung_losses = {{20, 1.5}};
  t.error = "pruned at step 20 (eval_loss 1.5000)";
  t.run_id = "0123456789abcdef";
  state.trials = {t};
  SaveSweepState(dir.path(), state);
  const SweepState read = LoadSweepState(dir.path());
  EXPECT_EQ(read.name, "rank-3");
  EXPECT_EQ(read.repeats, 2);
  ASSERT_EQ(read.trials.size(), 1u);
  EXPECT_EQ(read.trials[0].configuration, 1);
  EXPECT_EQ(read.trials[0].repeat, 1);
  EXPECT_EQ(read.trials[0].assignment, t.assignment);
  EXPECT_EQ(read.trials[0].status, TrialStatus::kPruned);
  EXPECT_EQ(read.trials[0].rung_losses, t.rung_losses);
  EXPECT_EQ(read.trials[0].run_id, t.run_id);
}

// A sweep started by an earlier tune resumes: each of its trials is a configuration of its own.
TEST(SweepState, AnOlderSweepFileHasOneTrialPerConfiguration) {
  testing::TempDir dir;
  dir.Write("sweep.json",
            R"({"name": "s-1", "sweep_sha256": "a", "dataset_sha256": "b", "trials": [
  {"number": 1, "overrides": ["adapter.rank=2"], "parameters": {"adapter.rank": 2},
   "status": "finished", "version": 1, "wall_seconds": 3.0, "error": "", "scores": {}},
  {"number": 2, "overrides": ["adapter.rank=4"], "parameters": {"adapter.rank": 4},
   "status": "running", "version": 0, "wall_seconds": 0.0, "error": ""}]})");
  const SweepState state = LoadSweepState(dir.path());
  EXPECT_EQ(state.repeats, 1);
  ASSERT_EQ(state.trials.size(), 2u);
  EXPECT_EQ(state.trials[1].configuration, 2);
  EXPECT_EQ(state.trials[1].repeat, 0);
  EXPECT_EQ(state.trials[1].status, TrialStatus::kRunning);
}

TEST(SweepState, AnUnreadableFileSaysHowToGoOn) {
  testing::TempDir dir;
  dir.Write("sweep.json", "{\"name\": ");
  try {
    LoadSweepState(dir.path());
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("; start a new sweep without --resume"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tune

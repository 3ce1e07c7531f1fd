// The sweep driver with a fake runner, a fake clock and a fake memory probe: no processes, no
// waiting. Each fake trial holds the trial's end of a real TrialChannel (a socket pair) and acts as
// `tune train` does: prepared, then waits for its go, trains for a number of the driver's waits,
// then reports its result and exits, or fails.
#include "sweep/sweep_driver.h"

#include <poll.h>
#include <sys/socket.h>

#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "orchestrate/tracker.h"
#include "registry/registry.h"
#include "support/test_support.h"

namespace tune {
namespace {

using Clock = std::chrono::steady_clock;

// What the fake trials share: the time, how they behave, and what the test looks at afterwards.
struct FakeWorld {
  Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);
  int trains_for = 2;              // the driver's waits between a trial's go and its result
  std::set<int64_t> failing_rank;  // trials of these ranks exit with status 1 instead
  // Trials of these ranks write their run.toml, then Slurm preempts them.
  std::set<int64_t> preempted_rank;
  std::map<int64_t, TrialGo> go;        // what each trial was told, by trial number
  int loaded = 0, most_loaded = 0;      // trials started and not ended
  int training = 0, most_training = 0;  // trials told to go and not ended
  int64_t versions = 0;
};

class FakeTrial final : public RunningTrial {
 public:
  FakeTrial(FakeWorld& world, std::filesystem::path run_folder)
      : world_(world), run_folder_(std::move(run_folder)) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) throw std::runtime_error("socketpair");
    driver_end_ = std::make_unique<TrialChannel>(fds[0]);
    trial_end_ = std::make_unique<TrialChannel>(fds[1]);
    trial_end_->Send(TrialPrepared{});
    world_.most_loaded = std::max(world_.most_loaded, ++world_.loaded);
  }

  TrialChannel* channel() override { return driver_end_.get(); }
  TrialPlace place() const override { return {"fake-node", ""}; }
  std::optional<TrialExit> Exited() override { return exit_; }
  TrialExit Kill() override {
    if (!exit_) End({true, 9, LocalAttemptEnd(true, 9), ""});
    return *exit_;
  }

  // One wait of the driver's, as the trial's process spends it.
  void Step() {
    if (exit_) return;
    if (!go_) {
      pollfd readable{trial_end_->fd(), POLLIN, 0};
      if (poll(&readable, 1, 0) != 1) return;
      const DriverMessage message = trial_end_->ReceiveFromDriver();
      if (const auto* go = std::get_if<TrialGo>(&message)) {
        go_ = *go;
        world_.go[go->trial] = *go;
        world_.most_training = std::max(world_.most_training, ++world_.training);
        left_ = world_.trains_for;
      }
      return;
    }
    if (--left_ > 0) return;
    const auto rank = std::get<int64_t>(go_->parameters.at("adapter.rank"));
    if (world_.failing_rank.contains(rank)) {
      End({false, 1, AttemptEnd::kFailed, ""});
      return;
    }
    if (world_.preempted_rank.contains(rank)) {
      std::filesystem::create_directories(run_folder_);
      std::ofstream(run_folder_ / "run.toml") << "[adapter]\nrank = " << rank << "\n";
      End({false, 0, AttemptEnd::kPreempted, "Slurm: PREEMPTED on node7"});
      return;
    }
    trial_end_->Send(TrialDone{++world_.versions,
                               {{"exact_match", static_cast<double>(rank) / 100}},
                               {{"exact_match", 0.01}},
                               1.0,
                               {}});
    End(TrialExit{});
  }

 private:
  void End(TrialExit exit) {
    exit_ = exit;
    trial_end_.reset();  // the process is gone
    --world_.loaded;
    if (go_) --world_.training;
  }

  FakeWorld& world_;
  std::filesystem::path run_folder_;
  std::unique_ptr<TrialChannel> driver_end_, trial_end_;
  std::optional<TrialGo> go_;
  int left_ = 0;
  std::optional<TrialExit> exit_;
};

class FakeRunner final : public TrialRunner {
 public:
  explicit FakeRunner(FakeWorld& world) : world_(world) {}

  std::vector<std::unique_ptr<RunningTrial>> Start(std::span<const TrialLaunch> launches) override {
    std::vector<std::unique_ptr<RunningTrial>> started;
    for (const TrialLaunch& launch : launches) {
      started.push_back(std::make_unique<FakeTrial>(world_, TrialRunFolder(launch)));
    }
    return started;
  }
  std::vector<std::unique_ptr<RunningTrial>> Adopt(std::span<const TrialLaunch> launches) override {
    return std::vector<std::unique_ptr<RunningTrial>>(launches.size());
  }
  // A second passes for every wait, and each trial takes its step.
  void WaitForAny(std::span<RunningTrial* const> trials, std::chrono::milliseconds) override {
    world_.now += std::chrono::seconds(1);
    for (RunningTrial* trial : trials) static_cast<FakeTrial*>(trial)->Step();
  }

 private:
  FakeWorld& world_;
};

// A grid over adapter.rank = 2, 4, 8, each `repeats` times, `slots` at once.
class SweepDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.name = "rank";
    config_.sweep = SweepConfig{};
    config_.sweep->method = "grid";
    config_.sweep->objective_metric = "exact_match";
    config_.metric_traits["exact_match"] = {MetricGoal::kMaximize, {.min = 0.0, .max = 1.0}};
    config_.registry.location = (dir_.path() / "registry").string();
    std::filesystem::create_directories(dir_.path() / "sweep");
  }

  // Runs the sweep to the end and returns what it printed.
  std::string Run(int64_t repeats, int slots, bool ready_ahead, int64_t available_memory) {
    state_.name = "rank-1";
    state_.repeats = repeats;
    SchedulePlan plan;
    plan.configurations = 3;
    plan.repeats = repeats;
    plan.slots = slots;
    plan.ready_ahead = ready_ahead;
    plan.objective = "exact_match";
    SweepScheduler scheduler(plan, state_, [](int64_t index, const std::vector<FinishedTrial>&) {
      return Assignment{{"adapter.rank", int64_t{2} << index}};
    });
    const std::unique_ptr<Tracker> tracker = OpenRegistryTracker(config_.registry);
    FakeRunner runner(world_);
    DriverSetup setup;
    setup.file = dir_.path() / "sweep.toml";
    setup.config = &config_;
    setup.dir = dir_.path() / "sweep";
    setup.model_weight_bytes = int64_t{1} << 30;
    setup.available_memory = [available_memory] { return available_memory; };
    setup.now = [this] { return world_.now; };
    ::testing::internal::CaptureStdout();
    SweepDriver(std::move(setup), scheduler, state_, *tracker, runner).Run();
    return ::testing::internal::GetCapturedStdout();
  }

  testing::TempDir dir_;
  RunConfig config_;
  SweepState state_;
  FakeWorld world_;
};

TEST_F(SweepDriverTest, EveryTrialRunsWithItsTypedValuesAndRecordsItsResult) {
  const std::string printed = Run(/*repeats=*/2, /*slots=*/2, false, int64_t{1} << 40);
  ASSERT_EQ(state_.trials.size(), 6u) << printed;
  std::set<int64_t> versions;
  for (const Trial& trial : state_.trials) {
    EXPECT_EQ(trial.status, TrialStatus::kFinished) << printed;
    const int64_t rank = std::get<int64_t>(trial.assignment.at("adapter.rank"));
    EXPECT_EQ(trial.scores.at("exact_match"), static_cast<double>(rank) / 100);
    EXPECT_EQ(trial.base_objective, 0.01);
    versions.insert(trial.version);
    // The go carried the configuration's values as typed values, not text.
    EXPECT_EQ(world_.go.at(trial.number).parameters,
              (std::map<std::string, ParamValue>{{"adapter.rank", rank}}));
    EXPECT_EQ(world_.go.at(trial.number).configuration, trial.configuration);
  }
  EXPECT_EQ(versions.size(), 6u);
  EXPECT_EQ(world_.most_training, 2);  // the slots
}

TEST_F(SweepDriverTest, AFailingTrialFailsAloneAndSaysHowItEnded) {
  world_.failing_rank = {4};
  const std::string printed = Run(/*repeats=*/1, /*slots=*/1, false, int64_t{1} << 40);
  ASSERT_EQ(state_.trials.size(), 3u) << printed;
  for (const Trial& trial : state_.trials) {
    const int64_t rank = std::get<int64_t>(trial.assignment.at("adapter.rank"));
    EXPECT_EQ(trial.status, rank == 4 ? TrialStatus::kFailed : TrialStatus::kFinished) << printed;
    if (rank == 4) {
      EXPECT_NE(trial.error.find("exited with status 1"), std::string::npos) << trial.error;
    }
  }
  EXPECT_NE(printed.find("trial 2 failed: exited with status 1"), std::string::npos) << printed;
}

// The next trial loads while the slots train only when memory holds it besides them.
TEST_F(SweepDriverTest, ATrialLoadsAheadOnlyWhenMemoryHoldsIt) {
  world_.trains_for = 4;
  Run(/*repeats=*/1, /*slots=*/1, /*ready_ahead=*/true, /*available_memory=*/int64_t{1} << 40);
  EXPECT_EQ(world_.most_training, 1);
  EXPECT_EQ(world_.most_loaded, 2);
}

TEST_F(SweepDriverTest, NoTrialLoadsAheadWhenMemoryIsShort) {
  world_.trains_for = 4;
  Run(/*repeats=*/1, /*slots=*/1, /*ready_ahead=*/true, /*available_memory=*/0);
  EXPECT_EQ(world_.most_training, 1);
  EXPECT_EQ(world_.most_loaded, 1);
  for (const Trial& trial : state_.trials) EXPECT_EQ(trial.status, TrialStatus::kFinished);
}

// A trial that something else ended (here Slurm's preemption) has its run recorded by the driver,
// with the config the trial wrote for itself and its swept values.
TEST_F(SweepDriverTest, ARunEndedByTheClusterKeepsItsOwnConfig) {
  world_.preempted_rank = {8};
  const std::string printed = Run(/*repeats=*/1, /*slots=*/1, false, int64_t{1} << 40);
  ASSERT_EQ(state_.trials.size(), 3u) << printed;
  EXPECT_EQ(state_.trials[2].status, TrialStatus::kFailed) << printed;
  const auto registry = Registry::Open(config_.registry.location, Registry::OpenMode::kReadOnly);
  std::vector<RunRecord> preempted;
  for (const RunRecord& run : registry->ListRuns()) {
    if (run.end_reason == "preempted") preempted.push_back(run);
  }
  ASSERT_EQ(preempted.size(), 1u) << printed;
  EXPECT_EQ(preempted[0].info.trial, 3);
  EXPECT_EQ(preempted[0].info.config_toml, "[adapter]\nrank = 8\n");
  EXPECT_EQ(preempted[0].info.params,
            (std::map<std::string, ParamValue>{{"adapter.rank", int64_t{8}}}));
  EXPECT_EQ(preempted[0].status, RunStatus::kKilled);
}

// Progress is printed every five seconds of the driver's clock, with the time gone by on it.
TEST_F(SweepDriverTest, ProgressFollowsTheDriversClock) {
  world_.trains_for = 5;
  const std::string printed = Run(/*repeats=*/1, /*slots=*/1, false, int64_t{1} << 40);
  EXPECT_NE(printed.find("elapsed 0:00:06"), std::string::npos) << printed;
  EXPECT_NE(printed.find("elapsed 0:00:12"), std::string::npos) << printed;
}

}  // namespace
}  // namespace tune

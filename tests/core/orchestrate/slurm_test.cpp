// Slurm without Slurm: the tools' output read back, how a task's end reads as an attempt's, the
// batch script, and the Slurm runner's decisions against a fake scheduler (and real TCP
// connections from trials played here), on a clock the tests move.
#include "orchestrate/slurm.h"

#include <fstream>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "orchestrate/remote_channel.h"
#include "orchestrate/slurm_runner.h"
#include "support/test_support.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

TEST(SlurmOutput, SacctListsEachTaskAndEachOfARangeNotYetStarted) {
  const std::string text =
      "1234_1|1240|COMPLETED|0:0|node7\n"
      "1234_2|1241|CANCELLED by 1000|0:15|node8\n"
      "1234_3|1242|FAILED|143:0|node7\n"
      "1234_[4-5,7%2]|1234|PENDING|0:0|None assigned\n";
  const std::vector<SlurmTask> tasks = ParseSacct(text);
  ASSERT_EQ(tasks.size(), 6u);
  EXPECT_EQ(tasks[0], (SlurmTask{"1234_1", "1240", "COMPLETED", "node7", 0, 0}));
  EXPECT_EQ(tasks[1], (SlurmTask{"1234_2", "1241", "CANCELLED", "node8", 0, 15}));
  EXPECT_EQ(tasks[2].exit_code, 143);
  EXPECT_EQ(tasks[3], (SlurmTask{"1234_4", "", "PENDING", "", 0, 0}));
  EXPECT_EQ(tasks[4].id, "1234_5");
  EXPECT_EQ(tasks[5].id, "1234_7");
}

TEST(SlurmOutput, SqueueGivesTheWaitStatusWhichReadsAsExitStatusAndSignal) {
  // As squeue -O "JobID:|,ArrayJobID:|,ArrayTaskID:|,State:|,NodeList:|,exit_code:|" prints.
  const std::string text =
      "11|10|3|RUNNING|vm|0|\n"
      "12|10|4|FAILED|vm|768|\n"
      "13|10|5|CANCELLED|vm|15|\n"
      "10|10|6|PENDING||0|\n"
      "20|20|N/A|COMPLETED|vm|0|\n";
  const std::vector<SlurmTask> tasks = ParseSqueue(text);
  ASSERT_EQ(tasks.size(), 5u);
  EXPECT_EQ(tasks[0], (SlurmTask{"10_3", "11", "RUNNING", "vm", 0, 0}));
  EXPECT_EQ(tasks[1].exit_code, 3);
  EXPECT_EQ(tasks[2].signal, 15);
  EXPECT_EQ(tasks[3], (SlurmTask{"10_6", "", "PENDING", "", 0, 0}));  // no number of its own yet
  EXPECT_EQ(tasks[4].id, "20");
}

TEST(SlurmOutput, TheCompletionLogKnowsTasksByTheirOwnJobNumbers) {
  const std::vector<SlurmTask> tasks = ParseJobCompletions("2|FAILED|1:0|vm\n3|COMPLETED|0:0|vm\n");
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0], (SlurmTask{"", "2", "FAILED", "vm", 1, 0}));
}

TEST(SlurmOutput, ATasksEndReadsAsTheAttemptsEnd) {
  const auto end = [](const std::string& state, int exit_code = 0, int signal = 0) {
    return SlurmAttemptEnd({"1_1", "2", state, "vm", exit_code, signal});
  };
  EXPECT_EQ(end("COMPLETED"), AttemptEnd::kFinished);
  EXPECT_EQ(end("FAILED", 1), AttemptEnd::kFailed);
  // tune train's own exits after it checkpointed on SIGINT or SIGTERM (the signal before the
  // time limit): to run again from the checkpoint.
  EXPECT_EQ(end("FAILED", 143), AttemptEnd::kInterrupted);
  EXPECT_EQ(end("FAILED", 130), AttemptEnd::kInterrupted);
  EXPECT_EQ(end("FAILED", 0, 9), AttemptEnd::kKilled);
  EXPECT_EQ(end("CANCELLED", 143), AttemptEnd::kCancelled);
  EXPECT_EQ(end("PREEMPTED"), AttemptEnd::kPreempted);
  EXPECT_EQ(end("TIMEOUT"), AttemptEnd::kTimeLimit);
  EXPECT_EQ(end("NODE_FAIL"), AttemptEnd::kNodeFailure);
  EXPECT_EQ(end("OUT_OF_MEMORY"), AttemptEnd::kOutOfMemory);
  EXPECT_EQ(end("REQUEUED"), AttemptEnd::kRequeued);
  EXPECT_TRUE(AttemptRetryable(end("NODE_FAIL")));
  EXPECT_FALSE(AttemptRetryable(end("OUT_OF_MEMORY")));
  EXPECT_FALSE(SlurmTaskEnded({"1_1", "", "RUNNING", "", 0, 0}));
  EXPECT_TRUE(SlurmTaskEnded({"1_1", "", "TIMEOUT", "", 0, 0}));
}

TEST(SlurmOutput, MaxArraySizeIsReadFromTheConfigSlurmShows) {
  EXPECT_EQ(ParseMaxArraySize("JobAcctGatherType       = jobacct_gather/none\n"
                              "MaxArraySize            = 1001\nMaxJobCount = 10000\n"),
            1001);
  EXPECT_EQ(ParseMaxArraySize("MaxJobCount = 10000\n"), std::nullopt);
}

TEST(SlurmScript, OptionsComeFromTheExecutorThenItsSbatchArgsAsTheyAre) {
  ExecutorConfig executor;
  executor.kind = "slurm";
  executor.partition = "gpu";
  executor.gres = "gpu:1";
  executor.time = "02:00:00";
  executor.cpus_per_task = 8;
  executor.mem = "64G";
  executor.signal_seconds = 90;
  executor.sbatch_args = {"--account=ml", "--qos=normal"};
  EXPECT_EQ(
      SbatchOptions(executor),
      (std::vector<std::string>{"--requeue", "--open-mode=append", "--signal=B:TERM@90",
                                "--partition=gpu", "--gres=gpu:1", "--time=02:00:00",
                                "--cpus-per-task=8", "--mem=64G", "--account=ml", "--qos=normal"}));
  EXPECT_EQ(ArrayIndices({7, 1, 2, 3, 5, 8}), "1-3,5,7-8");
}

// The script runs as bash runs it: each task's own arguments, quoted whatever they hold, and
// --resume once the run folder has a checkpoint.
TEST(SlurmScript, TaskNRunsTrialNWithItsArgumentsAsTheyAre) {
  testing::TempDir dir;
  ArrayScript script;
  script.sweep = "s-1";
  script.tune = (dir.path() / "fake-tune").string();
  script.options = {"--array=1,3%2"};
  const fs::path run3 = dir.path() / "trial-003";
  script.tasks = {{1, {"train", "a b.toml"}, dir.path() / "trial-001", {"--trial", "1"}},
                  {3, {"train", "it's.toml", "x=\"q\""}, run3, {"--trial", "3"}}};
  // The fake tune prints its arguments, one a line.
  dir.Write("fake-tune", "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n");
  fs::permissions(dir.path() / "fake-tune", fs::perms::owner_all);
  const fs::path file = dir.Write("array.sh", RenderArrayScript(script));
  EXPECT_NE(testing::ReadText(file).find("#SBATCH --array=1,3%2\n"), std::string::npos);
  auto run = [&](const std::string& task) {
    return testing::RunCommand({"/bin/bash", file.string()}, {{"SLURM_ARRAY_TASK_ID", task}});
  };
  auto result = run("3");
  EXPECT_EQ(result.out, "train\nit's.toml\nx=\"q\"\n--restart\n--trial\n3\n") << result.err;
  fs::create_directories(run3 / "checkpoints" / "step-000000010");
  EXPECT_EQ(run("3").out, "train\nit's.toml\nx=\"q\"\n--resume\n--trial\n3\n");
  EXPECT_EQ(run("1").out, "train\na b.toml\n--restart\n--trial\n1\n");
  result = run("2");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("task 2 is not a trial of this script; set SLURM_ARRAY_TASK_ID to "
                            "one of 1,3"),
            std::string::npos)
      << result.err;
}

// A scheduler that answers as the test says, and remembers what it was asked.
struct FakeSlurmState {
  std::vector<std::string> scripts;
  std::vector<std::string> requeued, cancelled, released;
  std::map<std::string, SlurmTask> tasks;
  bool refuse_requeue = false;
  int next_array = 100;
};

class FakeSlurm : public SlurmCommands {
 public:
  explicit FakeSlurm(std::shared_ptr<FakeSlurmState> state) : state_(std::move(state)) {}
  std::string Submit(const fs::path& script) override {
    const std::string text = testing::ReadText(script);
    state_->scripts.push_back(text);
    const std::string array = std::to_string(state_->next_array++);
    static const std::regex task(R"(\n  (\d+)\)\n)");
    for (std::sregex_iterator it(text.begin(), text.end(), task), end; it != end; ++it) {
      const std::string id = array + "_" + (*it)[1].str();
      state_->tasks[id] = {id, "", "PENDING", "", 0, 0};
    }
    return array;
  }
  std::vector<SlurmTask> Query(const std::vector<std::string>& arrays,
                               const std::vector<std::string>&) override {
    std::vector<SlurmTask> answer;
    for (const auto& [id, task] : state_->tasks) {
      for (const std::string& array : arrays) {
        if (id.starts_with(array + "_")) answer.push_back(task);
      }
    }
    return answer;
  }
  bool Requeue(const std::string& task) override {
    if (state_->refuse_requeue) return false;
    state_->requeued.push_back(task);
    state_->tasks[task].state = "PENDING";
    return true;
  }
  void Release(const std::string& task) override { state_->released.push_back(task); }
  void Cancel(const std::string& task) override {
    state_->cancelled.push_back(task);
    state_->tasks[task].state = "CANCELLED";
  }

 private:
  std::shared_ptr<FakeSlurmState> state_;
};

class SlurmRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SlurmRunnerSetup setup;
    setup.executor.kind = "slurm";
    setup.executor.array_parallelism = 2;
    setup.executor.heartbeat_timeout_seconds = 60;
    setup.sweep = "s-1";
    setup.dir = dir_.path();
    setup.tune = "/opt/tune/bin/tune";
    setup.host = "127.0.0.1";
    setup.now = [this] { return now_; };
    runner_ = MakeSlurmRunner(setup, std::make_unique<FakeSlurm>(slurm_));
  }

  TrialLaunch Launch(int64_t trial, const std::string& job = "") {
    TrialLaunch launch;
    launch.trial = trial;
    launch.train_args = {"train", "sweep.toml", "-o", (dir_.path() / TrialName(trial)).string()};
    launch.go = TrialGo{"s-1", trial, trial, {{"adapter.rank", int64_t{2}}}, "", "/registry", 1};
    launch.job = job;
    return launch;
  }
  static std::string TrialName(int64_t trial) { return "trial-00" + std::to_string(trial); }

  // Plays trial `trial` connecting to the driver, while the runner is polled; returns the trial's
  // end of the channel.
  std::unique_ptr<TrialChannel> Connect(int64_t trial, RunningTrial& running) {
    Connected connected;
    std::thread player([&] {
      connected = ConnectToDriver(ReadDriverAddress(DriverFile(dir_.path())), trial,
                                  std::chrono::seconds(10));
    });
    RunningTrial* trials[] = {&running};
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (running.channel() == nullptr && Clock::now() < deadline) {
      runner_->WaitForAny(trials, std::chrono::milliseconds(50));
    }
    player.join();
    return std::move(connected.channel);
  }

  // Polls as the driver does, with the clock moved on by `step` each time, until `trial` ends.
  std::optional<TrialExit> PollUntilEnded(RunningTrial& trial, std::chrono::seconds step,
                                          int rounds = 20) {
    RunningTrial* trials[] = {&trial};
    for (int i = 0; i < rounds; ++i) {
      now_ += step;
      runner_->WaitForAny(trials, std::chrono::milliseconds(10));
      if (TrialChannel* channel = trial.channel()) channel->TakeTrialMessages();
      if (std::optional<TrialExit> exit = trial.Exited()) return exit;
    }
    return std::nullopt;
  }

  testing::TempDir dir_;
  Clock::time_point now_ = Clock::now();
  std::shared_ptr<FakeSlurmState> slurm_ = std::make_shared<FakeSlurmState>();
  std::unique_ptr<TrialRunner> runner_;
};

TEST_F(SlurmRunnerTest, SubmitsTheTrialsItStartsTogetherAsOneArrayAndTakesTheirConnections) {
  const std::vector<TrialLaunch> launches = {Launch(1), Launch(2), Launch(3)};
  std::vector<std::unique_ptr<RunningTrial>> started = runner_->Start(launches);
  ASSERT_EQ(slurm_->scripts.size(), 1u);
  const std::string& script = slurm_->scripts[0];
  EXPECT_NE(script.find("#SBATCH --array=1-3%2\n"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --output=" + (dir_.path() / "trial-%3a.log").string()),
            std::string::npos)
      << script;
  EXPECT_TRUE(fs::exists(dir_.path() / "slurm" / "array-1.sh"));
  EXPECT_EQ(ReadGo(DriverFile(dir_.path()), 2), launches[1].go);  // for a trial left alone
  EXPECT_EQ(fs::status(DriverFile(dir_.path())).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  ASSERT_EQ(started.size(), 3u);
  EXPECT_EQ(started[1]->place().job, "100_2");
  EXPECT_EQ(started[1]->channel(), nullptr);  // queued: nothing to say to it yet
  EXPECT_FALSE(started[1]->Exited());

  const std::unique_ptr<TrialChannel> trial = Connect(2, *started[1]);
  ASSERT_NE(trial, nullptr);
  ASSERT_NE(started[1]->channel(), nullptr);
  EXPECT_EQ(started[0]->channel(), nullptr);
  trial->Send(TrialPrepared{});
  std::vector<TrialMessage> heard;
  RunningTrial* trials[] = {started[1].get()};
  for (int i = 0; i < 100 && heard.empty(); ++i) {
    runner_->WaitForAny(trials, std::chrono::milliseconds(50));
    heard = started[1]->channel()->TakeTrialMessages();
  }
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<TrialPrepared>(heard[0]));
}

// The attempt ends once the process has (its channel closed) and Slurm has said how.
TEST_F(SlurmRunnerTest, AnAttemptEndsWhenItsChannelClosesAndSlurmSaysHow) {
  std::vector<std::unique_ptr<RunningTrial>> started = runner_->Start(std::vector{Launch(1)});
  std::unique_ptr<TrialChannel> trial = Connect(1, *started[0]);
  ASSERT_NE(trial, nullptr);
  slurm_->tasks["100_1"] = {"100_1", "101", "RUNNING", "node7", 0, 0};
  trial.reset();                                                          // the process ended
  EXPECT_FALSE(PollUntilEnded(*started[0], std::chrono::seconds(1), 3));  // Slurm: still running
  slurm_->tasks["100_1"] = {"100_1", "101", "CANCELLED", "node7", 143, 0};
  const std::optional<TrialExit> exit = PollUntilEnded(*started[0], std::chrono::seconds(1));
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->end, AttemptEnd::kCancelled);
  EXPECT_EQ(exit->Describe(), "Slurm: CANCELLED (exit status 143), task 100_1 on node7");
  EXPECT_EQ(started[0]->place(), (TrialPlace{"node7", "100_1"}));
}

TEST_F(SlurmRunnerTest, ATrialSilentForTheHeartbeatTimeoutIsCancelledAndEnds) {
  std::vector<std::unique_ptr<RunningTrial>> started = runner_->Start(std::vector{Launch(1)});
  const std::unique_ptr<TrialChannel> trial = Connect(1, *started[0]);
  ASSERT_NE(trial, nullptr);
  slurm_->tasks["100_1"].state = "RUNNING";
  EXPECT_FALSE(PollUntilEnded(*started[0], std::chrono::seconds(20), 2));  // 40 s: not yet
  trial->Send(TrialHeartbeat{});
  EXPECT_FALSE(PollUntilEnded(*started[0], std::chrono::seconds(30), 1));  // heard from again
  const std::optional<TrialExit> exit = PollUntilEnded(*started[0], std::chrono::seconds(31), 2);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->end, AttemptEnd::kHeartbeatLost);
  EXPECT_NE(exit->Describe().find("sent nothing for 60 s"), std::string::npos) << exit->Describe();
  EXPECT_EQ(slurm_->cancelled, (std::vector<std::string>{"100_1"}));
}

// Running without ever connecting is a trial that cannot reach its driver (or hangs before):
// cancelled after the heartbeat timeout with a line that says where it looked.
TEST_F(SlurmRunnerTest, ATaskRunningWithoutConnectingIsCancelledSayingWhereTheDriverListens) {
  std::vector<std::unique_ptr<RunningTrial>> started = runner_->Start(std::vector{Launch(1)});
  slurm_->tasks["100_1"] = {"100_1", "101", "PENDING", "", 0, 0};
  EXPECT_FALSE(PollUntilEnded(*started[0], std::chrono::seconds(100), 3));  // waits: no limit
  slurm_->tasks["100_1"] = {"100_1", "101", "RUNNING", "node7", 0, 0};
  const std::optional<TrialExit> exit = PollUntilEnded(*started[0], std::chrono::seconds(10), 10);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->end, AttemptEnd::kHeartbeatLost);
  EXPECT_NE(exit->Describe().find("without reaching the driver at 127.0.0.1:"), std::string::npos)
      << exit->Describe();
}

// Another attempt is the same task requeued, so the array's limit holds; a new array only when
// Slurm refuses the requeue (it has forgotten the task).
TEST_F(SlurmRunnerTest, RunsATrialAgainByRequeueingItsTaskOrInANewArrayWhenSlurmRefuses) {
  std::vector<std::unique_ptr<RunningTrial>> first = runner_->Start(std::vector{Launch(1)});
  slurm_->tasks["100_1"].state = "NODE_FAIL";
  ASSERT_TRUE(PollUntilEnded(*first[0], std::chrono::seconds(1)));
  first.clear();
  std::vector<std::unique_ptr<RunningTrial>> again =
      runner_->Start(std::vector{Launch(1, "100_1")});
  EXPECT_EQ(slurm_->requeued, (std::vector<std::string>{"100_1"}));
  EXPECT_EQ(slurm_->scripts.size(), 1u);
  EXPECT_EQ(again[0]->place().job, "100_1");
  // Slurm holds a requeued task back two minutes: let go once it is seen waiting, but not in the
  // second its last run ended.
  EXPECT_FALSE(PollUntilEnded(*again[0], std::chrono::seconds(1), 1));
  EXPECT_TRUE(slurm_->released.empty());
  EXPECT_FALSE(PollUntilEnded(*again[0], std::chrono::seconds(1), 2));
  EXPECT_EQ(slurm_->released, (std::vector<std::string>{"100_1"}));

  slurm_->tasks["100_1"].state = "NODE_FAIL";
  ASSERT_TRUE(PollUntilEnded(*again[0], std::chrono::seconds(1)));
  again.clear();
  slurm_->refuse_requeue = true;
  std::vector<std::unique_ptr<RunningTrial>> third =
      runner_->Start(std::vector{Launch(1, "100_1")});
  ASSERT_EQ(slurm_->scripts.size(), 2u);
  EXPECT_EQ(third[0]->place().job, "101_1");
  EXPECT_TRUE(fs::exists(dir_.path() / "slurm" / "array-2.sh"));
}

// A trial's own failure comes after it connected; one that failed before did not start (its node
// refused it): not the trial's fault, so another attempt may run it.
TEST_F(SlurmRunnerTest, ATaskThatFailedBeforeItConnectedFailedToStartNotOnItsOwn) {
  std::vector<std::unique_ptr<RunningTrial>> started = runner_->Start(std::vector{Launch(1)});
  slurm_->tasks["100_1"] = {"100_1", "101", "FAILED", "node7", 1, 0};
  const std::optional<TrialExit> exit = PollUntilEnded(*started[0], std::chrono::seconds(1));
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->end, AttemptEnd::kNodeFailure);
  EXPECT_NE(exit->Describe().find("it never reached its driver, so it did not start"),
            std::string::npos)
      << exit->Describe();
}

TEST_F(SlurmRunnerTest, ATaskSlurmNoLongerKnowsIsLost) {
  std::vector<std::unique_ptr<RunningTrial>> started = runner_->Start(std::vector{Launch(1)});
  slurm_->tasks.clear();
  const std::optional<TrialExit> exit = PollUntilEnded(*started[0], std::chrono::seconds(1));
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->end, AttemptEnd::kLost);
}

// A driver that takes over watches what still runs; a trial already running trained alone since
// its driver went, so nothing (no connection, no heartbeat) is expected of it.
TEST_F(SlurmRunnerTest, AdoptsWhatStillRunsAndExpectsNothingOfATrialAlreadyRunning) {
  slurm_->tasks["90_1"] = {"90_1", "91", "RUNNING", "node7", 0, 0};
  slurm_->tasks["90_2"] = {"90_2", "92", "COMPLETED", "node7", 0, 0};
  std::vector<std::unique_ptr<RunningTrial>> adopted =
      runner_->Adopt(std::vector{Launch(1, "90_1"), Launch(2, "90_2"), Launch(3)});
  ASSERT_EQ(adopted.size(), 3u);
  ASSERT_NE(adopted[0], nullptr);
  EXPECT_EQ(adopted[1], nullptr);  // ended: its run folder tells how
  EXPECT_EQ(adopted[2], nullptr);
  EXPECT_FALSE(PollUntilEnded(*adopted[0], std::chrono::seconds(100), 3));
  slurm_->tasks["90_1"].state = "COMPLETED";
  const std::optional<TrialExit> exit = PollUntilEnded(*adopted[0], std::chrono::seconds(1));
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->ok());
  EXPECT_TRUE(slurm_->cancelled.empty());
}

}  // namespace
}  // namespace tune

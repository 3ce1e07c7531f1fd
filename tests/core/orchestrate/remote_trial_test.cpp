// A trial on another machine (a Slurm task) outlives its driver: it trains alone when the driver
// cannot be reached, or goes on alone when it goes away, and registers through the registry as
// the sweep's trial. The test plays the driver; no Slurm.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "orchestrate/remote_channel.h"
#include "registry/registry.h"
#include "support/test_support.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

class RemoteTrial : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared_ = new testing::TempDir();
    testing::MakeTinyLlama(shared_->path() / "model", {"--seed", "6"});
    shared_->Write("data.jsonl", testing::TwiceRows(80));
  }
  static void TearDownTestSuite() { delete shared_; }

  void SetUp() override {
    dir_.Write("run.toml", "name = \"s\"\n[model]\npath = \"" +
                               (shared_->path() / "model").string() + "\"\n[dataset]\npath = \"" +
                               (shared_->path() / "data.jsonl").string() +
                               "\"\neval_fraction = 0.1\n[adapter]\nmethod = \"lora\"\n"
                               "[train]\nsteps = 40\nbatch_size = 4\nseq_len = 32\n"
                               "eval_max_examples = 4\neval_max_new_tokens = 4\n"
                               "[[metrics]]\nplugin = \"exact_match\"\n[registry]\npath = \"" +
                               registry().string() + "\"\n");
    WriteGo(driver_file(),
            TrialGo{"s-1", 3, 2, {{"adapter.rank", int64_t{8}}}, "", registry().string(), 2});
  }

  fs::path registry() const { return dir_.path() / "registry"; }
  fs::path driver_file() const { return dir_.path() / "slurm" / "driver.json"; }

  testing::CommandResult Train() {
    return testing::RunTune({"train", (dir_.path() / "run.toml").string(), "-o",
                             (dir_.path() / "trial-003").string(), "--restart", "--driver",
                             driver_file().string(), "--trial", "3"});
  }

  // The version the trial registered, as tune adapters ls lists it.
  nlohmann::json Version() {
    const auto listed =
        testing::RunTune({"adapters", "ls", "s", "--json", "--registry", registry().string()});
    EXPECT_EQ(listed.exit_code, 0) << listed.err;
    const auto versions = nlohmann::json::parse(listed.out);
    EXPECT_EQ(versions.size(), 1u);
    return versions.empty() ? nlohmann::json() : versions[0];
  }

  static testing::TempDir* shared_;
  testing::TempDir dir_;
};
testing::TempDir* RemoteTrial::shared_ = nullptr;

TEST_F(RemoteTrial, ATrialThatCannotReachItsDriverTrainsAloneAsItsSweepsTrial) {
  int port = 0;
  {
    ChannelListener gone(RandomHex32(), 7);
    port = gone.port();
  }
  WriteDriverAddress(driver_file(), {"127.0.0.1", port, RandomHex32()});
  const auto result = Train();
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("does not answer; training alone, recording in " + registry().string() +
                            " (tune sweep --attach s-1 picks the result up)"),
            std::string::npos)
      << result.err;
  const nlohmann::json version = Version();
  EXPECT_EQ(version["sweep"], "s-1");
  EXPECT_EQ(version["trial"], 3);
  EXPECT_EQ(version["configuration"], 2);
  const std::vector<RunRecord> runs =
      Registry::Open(registry(), Registry::OpenMode::kReadOnly)->ListRuns();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, RunStatus::kFinished);
  EXPECT_EQ(runs[0].info.attempt, 2);
  EXPECT_FALSE(runs[0].info.node.empty());
  EXPECT_EQ(runs[0].end_reason, "finished");
}

// The driver says go, creates the trial's run, and goes away: the trial trains on alone, without
// verdicts, and finishes that run and registers through the registry its go named.
TEST_F(RemoteTrial, ATrialThatLosesItsDriverTrainsOnAloneAndRegistersItsRun) {
  const std::string secret = RandomHex32();
  ChannelListener listener(secret, 7);
  WriteDriverAddress(driver_file(), {"127.0.0.1", listener.port(), secret});
  testing::CommandResult result;
  std::thread trial([&] { result = Train(); });

  std::unique_ptr<TrialChannel> channel;
  std::string run_id;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (run_id.empty() && Clock::now() < deadline) {
    for (ChannelListener::Accepted& accepted : listener.Poll())
      channel = std::move(accepted.channel);
    if (channel == nullptr) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    for (const TrialMessage& message : channel->TakeTrialMessages()) {
      if (std::holds_alternative<TrialPrepared>(message)) {
        channel->Send(
            TrialGo{"s-1", 3, 2, {{"adapter.rank", int64_t{8}}}, "", registry().string(), 1});
      } else if (const auto* create = std::get_if<TrackerCreateRun>(&message)) {
        run_id = Registry::Open(registry(), Registry::OpenMode::kCreate)->CreateRun(create->info);
        channel->Send(TrackerReply{run_id, 0, ""});
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(run_id.empty()) << "the trial never asked for its run";
  channel.reset();  // the driver goes away
  trial.join();
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("lost the sweep's driver; training on alone, recording in " +
                            registry().string()),
            std::string::npos)
      << result.err;
  const nlohmann::json version = Version();
  EXPECT_EQ(version["trial"], 3);
  EXPECT_EQ(version["run_id"], run_id);
  const RunRecord run = Registry::Open(registry(), Registry::OpenMode::kReadOnly)->GetRun(run_id);
  EXPECT_EQ(run.status, RunStatus::kFinished);
}

}  // namespace
}  // namespace tune

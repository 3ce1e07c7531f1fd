// tune train and tune sweep against a registry server (tune serve as a process of its own, on the
// loopback address): several clients at once, and a run whose server is down while it trains.
#include <atomic>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "registry/registry.h"
#include "support/test_support.h"
#include "web/serve_process.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::RunTuneIn;
using testing::TempDir;

constexpr const char* kOwner = "owner-secret";

class ServerTracker : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared_ = new TempDir();
    testing::MakeTinyLlama(shared_->path() / "model", {"--seed", "7"});
    shared_->Write("data.jsonl", testing::TwiceRows(60));
  }
  static void TearDownTestSuite() { delete shared_; }

  void SetUp() override {
    Registry::Open((dir_.path() / "served").string(), Registry::OpenMode::kCreate);
    token_file_ = dir_.Write("token", kOwner);
  }

  // A run file for `name`, with no [registry]: TUNE_REGISTRY names the server. `sweep`: a grid
  // over two ranks.
  fs::path RunFile(const std::string& name, bool sweep, const std::string& extra = "") {
    return dir_.Write(
        name + ".toml",
        "name = \"" + name + "\"\n[model]\npath = \"" + (shared_->path() / "model").string() +
            "\"\n[dataset]\npath = \"" + (shared_->path() / "data.jsonl").string() +
            "\"\neval_fraction = 0.1\n[adapter]\nmethod = \"lora\"\n[optimizer]\nlr = 5e-3\n"
            "[train]\nsteps = 6\nbatch_size = 4\nseq_len = 32\neval_max_examples = 2\n"
            "eval_max_new_tokens = 2\n[[metrics]]\nplugin = \"exact_match\"\n" +
            (sweep ? "[sweep]\nmethod = \"grid\"\nobjective = { metric = \"eval_loss\", goal = "
                     "\"minimize\" }\n[sweep.parameters]\n\"adapter.rank\" = [2, 4]\n"
                   : "") +
            extra);
  }

  std::map<std::string, std::string> Env(const std::string& url) const {
    return {{"TUNE_REGISTRY", url}, {"TUNE_TOKEN", kOwner}};
  }

  std::unique_ptr<testing::ServeProcess> Serve(int port = 0) {
    return std::make_unique<testing::ServeProcess>(
        dir_.path() / "served", std::vector<std::string>{"--token-file", token_file_.string()},
        port);
  }

  std::unique_ptr<Registry> Client(const std::string& url) {
    return Registry::Open(url, Registry::OpenMode::kReadWrite,
                          Registry::OpenOptions{{}, {kOwner, ""}});
  }

  static TempDir* shared_;
  TempDir dir_;
  fs::path token_file_;
};
TempDir* ServerTracker::shared_ = nullptr;

// Two clients train and one sweeps against one server at once: every run and version arrives,
// versions are numbered densely without duplicates, and the registry verifies clean.
TEST_F(ServerTracker, ClientsTrainingAndSweepingAtOnceGetDenseVersions) {
  const auto server = Serve();
  const fs::path train = RunFile("shared", false);
  const fs::path sweep = RunFile("shared", true);
  struct Result {
    testing::CommandResult result;
  };
  std::vector<Result> results(3);
  std::vector<std::thread> clients;
  clients.emplace_back([&] {
    results[0].result =
        RunTuneIn(dir_.path(), {"train", train.string(), "-o", (dir_.path() / "first").string()},
                  Env(server->url()));
  });
  clients.emplace_back([&] {
    results[1].result = RunTuneIn(
        dir_.path(),
        {"train", train.string(), "-o", (dir_.path() / "second").string(), "train.seed=1"},
        Env(server->url()));
  });
  clients.emplace_back([&] {
    results[2].result = RunTuneIn(dir_.path(), {"sweep", sweep.string()}, Env(server->url()));
  });
  for (std::thread& client : clients) client.join();
  for (const Result& r : results) {
    ASSERT_EQ(r.result.exit_code, 0) << r.result.out << r.result.err;
  }
  const auto registry = Client(server->url());
  const std::vector<VersionRecord> versions = registry->List({"shared", "", ""});
  ASSERT_EQ(versions.size(), 4u);
  std::set<int64_t> numbers;
  for (const VersionRecord& v : versions) {
    numbers.insert(v.version);
    EXPECT_EQ(v.registered_by, "owner");
    EXPECT_FALSE(registry->GetRunMetrics(v.run_id).empty()) << v.run_id;
    EXPECT_EQ(registry->GetRun(v.run_id).status, RunStatus::kFinished);
  }
  EXPECT_EQ(numbers, (std::set<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(registry->ListDatasets().size(), 1u);  // the same rows: one dataset version
  const VerifyReport report = registry->Verify();
  EXPECT_TRUE(report.problems.empty()) << report.problems[0];
  // The same listing from the server as from its folder, read by the folder's owner.
  const auto listed = RunTuneIn(dir_.path(), {"adapters", "ls", "shared"}, Env(server->url()));
  const auto local = RunTuneIn(
      dir_.path(), {"adapters", "ls", "shared", "--registry", (dir_.path() / "served").string()});
  EXPECT_EQ(listed.out, local.out);
}

// Training never waits on the network: with the server down the run trains to its end, keeps
// everything in its folder and says how to register it; `tune registry push` does, once.
TEST_F(ServerTracker, ARunWhoseServerIsDownTrainsAndIsPushedLaterOnce) {
  int port = 0;
  {
    const auto probe = Serve();
    port = probe->port();
  }  // stopped: nothing listens there now
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  const fs::path run_dir = dir_.path() / "offline";
  const auto trained = RunTuneIn(dir_.path(),
                                 {"train", RunFile("offline", false).string(), "-o",
                                  run_dir.string(), "registry.retry_seconds=2"},
                                 Env(url));
  EXPECT_EQ(trained.exit_code, 1) << trained.out << trained.err;
  EXPECT_NE(trained.err.find("could not be reached for 2 s"), std::string::npos) << trained.err;
  EXPECT_NE(trained.err.find("`tune registry push RUN_DIR` registers it"), std::string::npos);
  EXPECT_TRUE(fs::exists(run_dir / "adapter" / "adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(run_dir / "registration.json"));

  const auto server = Serve(port);
  ASSERT_EQ(server->port(), port) << server->first_lines();
  for (int push = 0; push < 2; ++push) {
    const auto pushed = RunTuneIn(dir_.path(), {"registry", "push", run_dir.string()}, Env(url));
    ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
    EXPECT_NE(pushed.out.find(": version 1\n"), std::string::npos) << pushed.out;
  }
  const auto registry = Client(url);
  ASSERT_EQ(registry->List().size(), 1u);
  const VersionRecord version = registry->Resolve("offline");
  const std::vector<MetricsAtStep> metrics = registry->GetRunMetrics(version.run_id);
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(metrics.front().step, 1);
  EXPECT_EQ(metrics.back().step, 6);
  EXPECT_EQ(registry->GetRun(version.run_id).status, RunStatus::kFinished);
}

// A server that comes back while the run waits to register gets the whole run: its metrics from
// the first step, and its version.
TEST_F(ServerTracker, AServerThatComesBackBeforeTheRunGivesUpGetsAllOfIt) {
  int port = 0;
  {
    const auto probe = Serve();
    port = probe->port();
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  std::unique_ptr<testing::ServeProcess> server;
  // The server starts once the run has finished training and waits for it: whatever the
  // machine's speed, every call the run made went out while nothing listened.
  testing::CommandResult trained;
  std::atomic<bool> done = false;
  std::thread training([&] {
    trained = RunTuneIn(dir_.path(),
                        {"train", RunFile("later", false).string(), "-o",
                         (dir_.path() / "later").string(), "registry.retry_seconds=600"},
                        Env(url));
    done = true;
  });
  while (!fs::exists(dir_.path() / "later" / "registration.json") && !done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  server = Serve(port);
  training.join();
  ASSERT_EQ(trained.exit_code, 0) << trained.out << trained.err;
  EXPECT_NE(trained.err.find("training goes on, and the calls wait for the server"),
            std::string::npos)
      << trained.err;
  const auto registry = Client(url);
  const VersionRecord version = registry->Resolve("later");
  const std::vector<MetricsAtStep> metrics = registry->GetRunMetrics(version.run_id);
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(metrics.front().step, 1);
  EXPECT_EQ(registry->GetRun(version.run_id).status, RunStatus::kFinished);
}

// A trial waiting to register (its server is down) holds up no other: the sweep's other trial
// gets its verdicts and trains to its end meanwhile, and both register once the server is back.
TEST_F(ServerTracker, ATrialWaitingToRegisterHoldsUpNoOtherTrial) {
  int port = 0;
  {
    const auto probe = Serve();
    port = probe->port();
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  const fs::path file = RunFile("waits", false,
                                "[sweep]\nmethod = \"grid\"\nparallel = 2\nobjective = { metric = "
                                "\"eval_loss\", goal = \"minimize\" }\n[sweep.parameters]\n"
                                "\"train.steps\" = [2, 30]\n");
  testing::CommandResult swept;
  std::atomic<bool> done = false;
  std::thread sweeping([&] {
    swept = RunTuneIn(dir_.path(),
                      {"sweep", file.string(), "train.eval_every=2", "registry.retry_seconds=600"},
                      Env(url));
    done = true;
  });
  // Trial 1 waits to register from its second step on; trial 2 needs a verdict every two steps.
  const fs::path sweep_dir = dir_.path() / ".tune/sweeps/waits-1";
  const auto waiting = [&](const char* trial) {
    return fs::exists(sweep_dir / trial / "registration.json");
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (!(waiting("trial-001") && waiting("trial-002")) && !done &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(waiting("trial-002")) << "trial 2 stopped while trial 1 waited to register";
  const auto server = Serve(port);
  sweeping.join();
  ASSERT_EQ(swept.exit_code, 0) << swept.out << swept.err;
  EXPECT_EQ(Client(url)->List({"waits", "", ""}).size(), 2u);
}

}  // namespace
}  // namespace tune

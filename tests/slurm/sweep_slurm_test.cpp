// tune sweep through a real Slurm: the one-host cluster scripts/slurm-cluster.sh starts (ctest
// fixture "slurm"; SLURM_CONF names it). Trials are tiny; every wait is for an outcome, with a
// deadline far beyond what a slow machine needs, never for a time.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "orchestrate/slurm.h"
#include "registry/registry.h"
#include "support/test_support.h"
#include "web/serve_process.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::RunCommand;
using testing::RunTune;
using testing::RunTuneIn;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

constexpr auto kDeadline = std::chrono::minutes(5);

// Waits until `ready()` holds; false after kDeadline.
template <typename Ready>
bool Await(Ready ready) {
  const auto deadline = Clock::now() + kDeadline;
  while (!ready()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// `tune sweep ARGS` in `dir`, in the background; its PID is known once it has started.
class BackgroundSweep {
 public:
  BackgroundSweep(const fs::path& dir, std::vector<std::string> args) : dir_(dir) {
    thread_ = std::thread([this, args] {
      std::vector<std::string> argv = {"/bin/bash", "-c",
                                       "cd \"$0\" || exit 90; \"$1\" sweep \"${@:2}\" & "
                                       "echo $! > sweep.pid; wait $!",
                                       dir_.string(), TUNE_BINARY};
      argv.insert(argv.end(), args.begin(), args.end());
      result_ = RunCommand(argv);
    });
  }
  ~BackgroundSweep() {
    if (thread_.joinable()) thread_.join();
  }
  pid_t pid() const { return std::stoi(testing::ReadText(dir_ / "sweep.pid")); }
  CommandResult Wait() {
    thread_.join();
    return result_;
  }

 private:
  fs::path dir_;
  std::thread thread_;
  CommandResult result_;
};

class SlurmSweep : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared_ = new TempDir();
    testing::MakeTinyLlama(shared_->path() / "model", {"--seed", "6"});
    shared_->Write("data.jsonl", testing::TwiceRows(80));
  }
  static void TearDownTestSuite() { delete shared_; }

  void SetUp() override {
    ASSERT_NE(std::getenv("SLURM_CONF"), nullptr)
        << "run these through ctest (ctest -L slurm), whose fixture starts the cluster";
  }
  // Nothing of this test's may keep running in the cluster.
  void TearDown() override {
    RunCommand({"/bin/bash", "-c",
                "scancel --name=\"tune-$0-1\"; scancel --name=\"tune-driver-$0-1\"", name_});
  }

  // A grid over adapter.rank = `ranks` of `steps` steps each, under Slurm with `executor` (more
  // keys of [sweep.executor]) or, with "local", in local processes; any `extra` parameter lines.
  void SweepFile(const std::string& name, const std::string& ranks, int steps,
                 const std::string& executor, const std::string& extra = "",
                 const fs::path& where = {}) {
    name_ = name;
    std::string text = "name = \"" + name + "\"\n[model]\npath = \"" +
                       (shared_->path() / "model").string() + "\"\n[dataset]\npath = \"" +
                       (shared_->path() / "data.jsonl").string() +
                       "\"\neval_fraction = 0.1\n[adapter]\nmethod = \"lora\"\n[optimizer]\n"
                       "lr = 5e-3\n[train]\nsteps = ";
    text += std::to_string(steps);
    text +=
        "\nbatch_size = 4\nseq_len = 32\ncheckpoint_every = 50\neval_max_examples = 4\n"
        "eval_max_new_tokens = 4\nthreads = 1\n[[metrics]]\nplugin = \"exact_match\"\n"
        "[registry]\n" +
        registry_ +
        "[sweep]\nmethod = \"grid\"\n"
        "objective = { metric = \"eval_loss\", goal = \"minimize\" }\nparallel = 2\n";
    if (executor != "local") text += "[sweep.executor]\nkind = \"slurm\"\n" + executor;
    text += "[sweep.parameters]\n\"adapter.rank\" = " + ranks +
            "\n\"adapter.alpha\" = \"2 * adapter.rank\"\n" + extra;
    std::ofstream((where.empty() ? dir_.path() : where) / "sweep.toml") << text;
  }

  CommandResult Sweep(const std::vector<std::string>& extra = {}, const fs::path& where = {}) {
    std::vector<std::string> args = {"sweep", "sweep.toml"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunTuneIn(where.empty() ? dir_.path() : where, args);
  }

  fs::path SweepDir(const fs::path& where = {}) const {
    return (where.empty() ? dir_.path() : where) / ".tune/sweeps" / (name_ + "-1");
  }
  nlohmann::json State(const fs::path& where = {}) const {
    return nlohmann::json::parse(std::ifstream(SweepDir(where) / "sweep.json"));
  }
  // The Slurm task of trial `trial`'s latest attempt, once it has one.
  std::string TaskOf(int trial) const {
    std::string job;
    Await([&] {
      try {
        const auto attempts = State()["trials"].at(trial - 1)["attempts"];
        job = attempts.empty() ? "" : attempts.back()["job"].get<std::string>();
      } catch (const std::exception&) {
        job.clear();  // sweep.json not there yet, or mid-rename
      }
      return !job.empty();
    });
    return job;
  }
  // The step of trial `trial`'s newest checkpoint; 0 when it has none.
  int64_t LatestCheckpoint(int trial) const {
    char name[32];
    std::snprintf(name, sizeof(name), "trial-%03d/checkpoints", trial);
    int64_t latest = 0;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(SweepDir() / name, error)) {
      const std::string step = entry.path().filename().string();
      if (step.starts_with("step-")) latest = std::max<int64_t>(latest, std::stoll(step.substr(5)));
    }
    return latest;
  }
  bool HasCheckpoint(int trial, int step) const {
    char name[64];
    std::snprintf(name, sizeof(name), "trial-%03d/checkpoints/step-%09d", trial, step);
    return fs::exists(SweepDir() / name);
  }
  nlohmann::json Versions(const fs::path& where = {}) const {
    const auto listed = RunTune({"adapters", "ls", name_, "--json", "--registry",
                                 ((where.empty() ? dir_.path() : where) / "registry").string()});
    EXPECT_EQ(listed.exit_code, 0) << listed.err;
    return nlohmann::json::parse(listed.out.empty() ? "[]" : listed.out);
  }
  std::vector<RunRecord> Runs() const {
    return Registry::Open(dir_.path() / "registry", Registry::OpenMode::kReadOnly)->ListRuns();
  }
  // The attempts' ends of `trial`, in order.
  std::vector<std::string> Ends(int trial) const {
    std::vector<std::string> ends;
    const nlohmann::json state = State();
    for (const auto& attempt : state["trials"].at(trial - 1)["attempts"]) {
      ends.push_back(attempt["end"]);
    }
    return ends;
  }

  // `tune serve` over the test's registry folder, which the sweep files name from then on (its
  // URL and the owner's token file): the driver and its trials record there over HTTP.
  std::unique_ptr<testing::ServeProcess> ServeRegistry() {
    const fs::path token = dir_.Write("token", "owner.0123456789abcdef0123456789abcdef");
    Registry::Open(dir_.path() / "registry", Registry::OpenMode::kCreate);
    auto server = std::make_unique<testing::ServeProcess>(
        dir_.path() / "registry", std::vector<std::string>{"--token-file", token.string()});
    registry_ = "path = \"" + server->url() + "\"\ntoken_file = \"" + token.string() + "\"\n";
    return server;
  }

  static TempDir* shared_;
  TempDir dir_;
  std::string name_ = "s";
  std::string registry_ = "path = \"registry\"\n";  // the sweep file's [registry] keys
};
TempDir* SlurmSweep::shared_ = nullptr;

// Four trials as one array, recording on a registry server (tune serve over its folder): four
// versions, each run saying where it ran and who recorded it, and the ranking a local run of the
// same seeds gives (on the CPU, a trial's numbers do not depend on who started it).
TEST_F(SlurmSweep, FourTrialsRegisterFourVersionsOnAServerRankedAsALocalRunRanksThem) {
  const std::unique_ptr<testing::ServeProcess> server = ServeRegistry();
  ASSERT_GT(server->port(), 0) << server->Log();
  SweepFile("four", "[1, 2, 4, 8]", 20, "array_parallelism = 2\n");
  const CommandResult slurm = Sweep();
  ASSERT_EQ(slurm.exit_code, 0) << slurm.out << slurm.err;
  EXPECT_NE(slurm.out.find("where each trial ran, attempt by attempt:"), std::string::npos)
      << slurm.out;
  const std::string script = testing::ReadText(SweepDir() / "slurm/array-1.sh");
  EXPECT_NE(script.find("#SBATCH --array=1-4%2\n"), std::string::npos) << script;
  const nlohmann::json versions = Versions();
  ASSERT_EQ(versions.size(), 4u);
  const nlohmann::json state = State();
  for (const auto& trial : state["trials"]) {
    ASSERT_EQ(trial["attempts"].size(), 1u) << trial;
    EXPECT_NE(trial["attempts"][0]["job"].get<std::string>().find('_'), std::string::npos);
    EXPECT_FALSE(trial["attempts"][0]["node"].get<std::string>().empty()) << trial;
  }
  for (const RunRecord& run : Runs()) {
    EXPECT_FALSE(run.info.job.empty());
    EXPECT_FALSE(run.info.node.empty());
    EXPECT_EQ(run.info.attempt, 1);
    EXPECT_EQ(run.end_reason, "finished");
    EXPECT_EQ(run.created_by, "owner");
  }

  TempDir local;
  registry_ = "path = \"registry\"\n";
  SweepFile("four", "[1, 2, 4, 8]", 20, "local", "", local.path());
  const CommandResult here = Sweep({}, local.path());
  ASSERT_EQ(here.exit_code, 0) << here.out << here.err;
  std::map<int64_t, double> slurm_loss, local_loss;
  for (const auto& v : versions) slurm_loss[v["trial"]] = v["scores"]["eval_loss"];
  for (const auto& v : Versions(local.path())) local_loss[v["trial"]] = v["scores"]["eval_loss"];
  EXPECT_EQ(slurm_loss, local_loss);
  // The ranking's trials, best first.
  const auto ranking = [](const std::string& out) {
    std::vector<std::string> trials;
    std::istringstream lines(out.substr(out.find("\ntrial  status") + 1));
    std::string line;
    std::getline(lines, line);  // the header
    while (std::getline(lines, line) && !line.empty())
      trials.push_back(line.substr(0, line.find(' ')));
    return trials;
  };
  EXPECT_EQ(ranking(slurm.out).size(), 4u) << slurm.out;
  EXPECT_EQ(ranking(slurm.out), ranking(here.out)) << slurm.out << here.out;
}

// scancel of a running task: the attempt is recorded as cancelled, the task runs again (from its
// checkpoint) and the sweep finishes with every trial registered.
TEST_F(SlurmSweep, ACancelledTaskIsRecordedRetriedAndTheSweepFinishes) {
  SweepFile("cancel", "[2, 4]", 2000, "array_parallelism = 2\n");
  BackgroundSweep sweep(dir_.path(), {"sweep.toml"});
  ASSERT_TRUE(Await([&] { return HasCheckpoint(1, 100); })) << "trial 1 never checkpointed";
  ASSERT_EQ(RunCommand({"/bin/bash", "-c", "scancel \"$0\"", TaskOf(1)}).exit_code, 0);
  const CommandResult result = sweep.Wait();
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("trial 1 attempt 1 ended (cancelled): Slurm: CANCELLED"),
            std::string::npos)
      << result.out;
  EXPECT_EQ(Ends(1), (std::vector<std::string>{"cancelled", "finished"}));
  EXPECT_EQ(Versions().size(), 2u);
  std::vector<std::string> trial1;
  for (const RunRecord& run : Runs()) {
    if (run.info.trial == 1) trial1.push_back(run.end_reason + std::to_string(*run.info.attempt));
  }
  EXPECT_EQ(trial1, (std::vector<std::string>{"cancelled1", "finished2"}));
  EXPECT_NE(testing::ReadText(SweepDir() / "trial-001.log").find("resuming"), std::string::npos);
}

// A preemption, twice: the warning signal a time limit or preemption sends (SIGTERM to the batch
// step: the trial checkpoints and exits for requeueing), then Slurm's own requeue. The trial
// resumes each time and ends with the adapter an uninterrupted run makes, byte for byte.
TEST_F(SlurmSweep, APreemptedTrialResumesFromItsCheckpointToTheSameAdapterBytes) {
  SweepFile("preempt", "[4]", 1500, "max_retries = 2\n");
  BackgroundSweep sweep(dir_.path(), {"sweep.toml"});
  ASSERT_TRUE(Await([&] { return HasCheckpoint(1, 100); }));
  const std::string task = TaskOf(1);
  ASSERT_EQ(RunCommand({"/bin/bash", "-c", "scancel --batch --signal=TERM \"$0\"", task}).exit_code,
            0);
  ASSERT_TRUE(Await([&] { return State()["trials"][0]["attempts"].size() == 2; }));
  // Once the second attempt has checkpointed past where the first stopped, Slurm requeues it.
  const int64_t stopped = LatestCheckpoint(1);
  ASSERT_TRUE(Await([&] { return LatestCheckpoint(1) > stopped || Ends(1).back() == "finished"; }));
  const CommandResult requeued = RunCommand({"/bin/bash", "-c", "scontrol requeue \"$0\"", task});
  // Refused only when the trial had finished already (a fast machine): nothing to preempt.
  EXPECT_TRUE(requeued.exit_code == 0 || Ends(1).back() == "finished") << requeued.err;
  const CommandResult result = sweep.Wait();
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const std::vector<std::string> ends = Ends(1);
  ASSERT_GE(ends.size(), 2u) << result.out;
  EXPECT_EQ(ends.front(), "interrupted");
  EXPECT_EQ(ends.back(), "finished");
  if (ends.size() == 3) {  // unless it had finished first
    EXPECT_EQ(ends[1], "requeued");
  }
  const std::string log = testing::ReadText(SweepDir() / "trial-001.log");
  EXPECT_NE(log.find("resuming"), std::string::npos) << log;

  TempDir reference;
  SweepFile("preempt", "[4]", 1500, "local", "", reference.path());
  ASSERT_EQ(Sweep({}, reference.path()).exit_code, 0);
  const std::string adapter = "trial-001/adapter/adapter_model.safetensors";
  const std::string resumed = testing::ReadText(SweepDir() / adapter);
  ASSERT_FALSE(resumed.empty());
  EXPECT_TRUE(resumed == testing::ReadText(SweepDir(reference.path()) / adapter))
      << "the preempted trial's adapter differs from an uninterrupted run's";
}

TEST_F(SlurmSweep, AshaPrunesASlurmTrialAtARungAsItDoesALocalOne) {
  SweepFile("asha", "[4]", 20, "array_parallelism = 1\n",
            "\"optimizer.lr\" = [5e-3, 1e-7]\n[sweep.early_stop]\ntype = \"asha\"\nmin_steps = "
            "5\neta = 2\n");
  const CommandResult result = Sweep();
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const auto state = State();
  EXPECT_EQ(state["trials"][0]["status"], "finished");
  EXPECT_EQ(state["trials"][1]["status"], "pruned");
  EXPECT_EQ(state["trials"][1]["pruned_at"].get<int64_t>(), 5);
  EXPECT_NE(result.out.find("trial 2 pruned at step 5"), std::string::npos) << result.out;
  std::ifstream metrics(SweepDir() / "trial-002/metrics.jsonl");
  int64_t last_step = 0;
  for (std::string line; std::getline(metrics, line);) {
    last_step = nlohmann::json::parse(line)["step"].get<int64_t>();
  }
  EXPECT_EQ(last_step, 5);
  EXPECT_EQ(Versions().size(), 1u);
  EXPECT_EQ(Ends(2), (std::vector<std::string>{"pruned"}));
}

// A trial frozen on its node (SIGSTOP: its heartbeats stop too) is cancelled once it has been
// silent for heartbeat_timeout_seconds, and runs again.
TEST_F(SlurmSweep, ATrialThatStopsReportingIsFailedAndRetried) {
  SweepFile("silent", "[2]", 2000, "heartbeat_timeout_seconds = 5\n");
  BackgroundSweep sweep(dir_.path(), {"sweep.toml"});
  ASSERT_TRUE(Await([&] { return HasCheckpoint(1, 100); }));
  const std::string run_dir = (SweepDir() / "trial-001").string();
  ASSERT_EQ(RunCommand({"/bin/bash", "-c", "pkill -STOP -f -- \"-o $0 \"", run_dir}).exit_code, 0);
  const CommandResult result = sweep.Wait();
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const std::vector<std::string> ends = Ends(1);
  ASSERT_EQ(ends.size(), 2u) << result.out;
  EXPECT_EQ(ends[0], "heartbeat_lost");
  EXPECT_EQ(ends[1], "finished");
  EXPECT_NE(State()["trials"][0]["attempts"][0]["error"].get<std::string>().find(
                "sent nothing for 5 s (sweep.executor.heartbeat_timeout_seconds); cancelled"),
            std::string::npos)
      << State()["trials"][0];
}

// The driver goes away (killed): its trials train on alone and register themselves on the registry
// server; `tune sweep --attach` drives the sweep again, picks up what finished alone, and ranks it.
TEST_F(SlurmSweep, ADriverThatGoesAwayLeavesItsTrialsTrainingAndAttachPicksThemUp) {
  const std::unique_ptr<testing::ServeProcess> server = ServeRegistry();
  ASSERT_GT(server->port(), 0) << server->Log();
  SweepFile("orphan", "[2, 4]", 1500, "array_parallelism = 1\n");
  BackgroundSweep sweep(dir_.path(), {"sweep.toml"});
  ASSERT_TRUE(Await([&] { return HasCheckpoint(1, 100); }));
  kill(sweep.pid(), SIGKILL);
  sweep.Wait();
  ASSERT_TRUE(Await([&] { return fs::exists(SweepDir() / "trial-001/registered.json"); }))
      << "trial 1 did not train on without its driver";
  EXPECT_NE(testing::ReadText(SweepDir() / "trial-001.log")
                .find("lost the sweep's driver; training on alone"),
            std::string::npos);
  const CommandResult attached = RunTuneIn(dir_.path(), {"sweep", "--attach", "orphan-1"});
  ASSERT_EQ(attached.exit_code, 0) << attached.out << attached.err;
  EXPECT_NE(attached.out.find("resuming sweep orphan-1"), std::string::npos) << attached.out;
  EXPECT_EQ(Versions().size(), 2u);
  const nlohmann::json state = State();
  for (const auto& trial : state["trials"]) EXPECT_EQ(trial["status"], "finished") << trial;
  EXPECT_TRUE(State()["finished"].get<bool>());
}

// --detach submits the driver as a Slurm job and returns; --attach follows it to the ranking.
TEST_F(SlurmSweep, DetachSubmitsTheDriverAsAJobAndAttachFollowsItToTheRanking) {
  SweepFile("detach", "[2, 4]", 20, "array_parallelism = 1\n");
  const CommandResult detached = Sweep({"--detach"});
  ASSERT_EQ(detached.exit_code, 0) << detached.out << detached.err;
  EXPECT_NE(detached.out.find("sweep detach-1: its driver is Slurm job "), std::string::npos)
      << detached.out;
  EXPECT_TRUE(fs::exists(SweepDir() / "slurm/driver.sh"));
  // Once the job drives the sweep (it listens), attaching follows it.
  ASSERT_TRUE(Await([&] { return fs::exists(SweepDir() / "slurm/driver.json"); }))
      << testing::ReadText(SweepDir() / "driver.log");
  const CommandResult attached = RunTuneIn(dir_.path(), {"sweep", "--attach", "detach-1"});
  ASSERT_EQ(attached.exit_code, 0) << attached.out << attached.err;
  EXPECT_NE(attached.out.find("sweep detach-1 has a driver running; following it"),
            std::string::npos)
      << attached.out;
  EXPECT_NE(attached.out.find("\nbest: detach:v"), std::string::npos) << attached.out;
  EXPECT_NE(testing::ReadText(SweepDir() / "driver.log").find("\nbest: detach:v"),
            std::string::npos);
  EXPECT_EQ(Versions().size(), 2u);
}

// Each refusal is one line saying what and where, and leaves no sweep and no job behind.
TEST_F(SlurmSweep, BadInputIsOneLineAndLeavesNoHalfMadeSweep) {
  const auto refused = [&](const std::string& executor,
                           const std::map<std::string, std::string>& env = {}) {
    SweepFile("bad", "[2]", 5, executor);
    const CommandResult result = RunTuneIn(dir_.path(), {"sweep", "sweep.toml"}, env);
    EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
    EXPECT_EQ(testing::CountLinesStartingWith(result.err, "error: "), 1) << result.err;
    EXPECT_EQ(result.err.find('\n'), result.err.size() - 1) << result.err;
    EXPECT_FALSE(fs::exists(SweepDir())) << "a half-made sweep was left behind";
    return result.err;
  };
  EXPECT_EQ(refused("", {{"PATH", "/nonexistent"}}),
            "error: sweep.toml:28:8: sweep.executor.kind = \"slurm\", but there is no sbatch on "
            "PATH; run tune "
            "sweep on a Slurm login node, or add Slurm's bin folder to PATH\n");
  EXPECT_EQ(refused("partition = \"gpus\"\n"),
            "error: sweep.toml:29:13: sweep.executor.partition = \"gpus\" is not a partition of "
            "this cluster; "
            "sinfo lists: debug\n");
  EXPECT_EQ(
      refused("gres = \"gpu:1\"\n"),
      "error: sweep.toml:29:8: Slurm refuses the sweep's trials: Invalid generic resource (gres) "
      "specification (check sweep.executor.gres)\n");
  const CommandResult jobs =
      RunCommand({"/bin/bash", "-c", "squeue -h -t all -n tune-bad-1 -o %i"});
  EXPECT_EQ(jobs.out, "") << "a refused sweep submitted jobs";
}

// The tools themselves: squeue for what the controller holds, and the job completion log
// (jobcomp/filetxt, sacct --completion) for tasks by their own job numbers.
TEST(SlurmCommands, ReadsTasksFromSqueueAndEndedOnesFromTheCompletionLog) {
  ASSERT_NE(std::getenv("SLURM_CONF"), nullptr) << "run these through ctest (ctest -L slurm)";
  TempDir dir;
  const fs::path script =
      dir.Write("array.sh",
                "#!/bin/bash\n#SBATCH --array=1-2\n#SBATCH --job-name=tune-commands-test\n"
                "#SBATCH --output=" +
                    (dir.path() / "%a.log").string() + "\nexit $((SLURM_ARRAY_TASK_ID * 3 - 3))\n");
  const std::unique_ptr<SlurmCommands> slurm = MakeSlurmCommands();
  const std::string array = slurm->Submit(script);
  std::vector<SlurmTask> tasks;
  ASSERT_TRUE(Await([&] {
    tasks = slurm->Query({array}, {});
    return tasks.size() == 2 && SlurmTaskEnded(tasks[0]) && SlurmTaskEnded(tasks[1]);
  }));
  std::sort(tasks.begin(), tasks.end(),
            [](const SlurmTask& a, const SlurmTask& b) { return a.id < b.id; });
  EXPECT_EQ(tasks[0].id, array + "_1");
  EXPECT_EQ(tasks[0].state, "COMPLETED");
  EXPECT_EQ(tasks[1].state, "FAILED");
  EXPECT_EQ(tasks[1].exit_code, 3);
  EXPECT_EQ(SlurmAttemptEnd(tasks[1]), AttemptEnd::kFailed);
  // As after the controller forgot them: by their own numbers, from the completion log.
  std::vector<SlurmTask> logged;
  ASSERT_TRUE(Await([&] {
    logged = slurm->Query({}, {tasks[0].raw_id, tasks[1].raw_id});
    return logged.size() == 2;
  })) << "sacct --completion did not list the tasks (JobCompType=jobcomp/filetxt?)";
  std::map<std::string, SlurmTask> by_raw;
  for (const SlurmTask& task : logged) by_raw[task.raw_id] = task;
  EXPECT_EQ(by_raw[tasks[1].raw_id].state, "FAILED");
  EXPECT_EQ(by_raw[tasks[1].raw_id].exit_code, 3);
  EXPECT_EQ(by_raw[tasks[0].raw_id].state, "COMPLETED");
}

}  // namespace
}  // namespace tune

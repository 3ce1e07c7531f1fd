// tune sweep end to end on a tiny random model: every trial registered with its sweep and trial,
// a failing trial fails alone, a killed sweep resumes, a second run starts a new sweep.
#include "sweep/sweep.h"

#include <cctype>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;
using testing::RunTune;
using testing::RunTuneIn;
using testing::TempDir;

class SweepCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared_ = new TempDir();
    testing::MakeTinyLlama(shared_->path() / "model", {"--seed", "6"});
    shared_->Write("data.jsonl", testing::TwiceRows(80));
  }
  static void TearDownTestSuite() { delete shared_; }

  // A grid over `values` of adapter.rank (and a tied alpha), `steps` steps per trial, and any
  // `extra` parameter lines.
  fs::path SweepFile(const std::string& values, int steps, int parallel = 1,
                     const std::string& extra = "") {
    return dir_.Write(
        "sweep.toml",
        "name = \"s\"\n[model]\npath = \"" + (shared_->path() / "model").string() +
            "\"\n[dataset]\npath = \"" + (shared_->path() / "data.jsonl").string() +
            "\"\neval_fraction = 0.1\n[adapter]\nmethod = \"lora\"\n[optimizer]\nlr = 5e-3\n"
            "[train]\nsteps = " +
            std::to_string(steps) +
            "\nbatch_size = 4\nseq_len = 32\ncheckpoint_every = 5\neval_max_examples = 4\n"
            "eval_max_new_tokens = 4\n[[metrics]]\nplugin = \"exact_match\"\n"
            "[registry]\npath = \"" +
            (dir_.path() / "registry").string() +
            "\"\n[sweep]\nmethod = \"grid\"\nobjective = { metric = \"eval_loss\", goal = "
            "\"minimize\" }\nparallel = " +
            std::to_string(parallel) + "\n[sweep.parameters]\n\"adapter.rank\" = " + values +
            "\n\"adapter.alpha\" = \"2 * adapter.rank\"\n" + extra);
  }

  testing::CommandResult Sweep(const std::vector<std::string>& extra,
                               const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> args = {"sweep", (dir_.path() / "sweep.toml").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunTuneIn(dir_.path(), args, env);
  }

  nlohmann::json State(const std::string& sweep) {
    return nlohmann::json::parse(
        std::ifstream(dir_.path() / ".tune/sweeps" / sweep / "sweep.json"));
  }

  static TempDir* shared_;
  TempDir dir_;
};
TempDir* SweepCommand::shared_ = nullptr;

TEST_F(SweepCommand, RegistersEveryTrialAndRanksThem) {
  SweepFile("[2, 4, 8]", 10, 2);
  const auto result = Sweep({});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("best: s:v"), std::string::npos) << result.out;
  // The table: the objective and its gain, then the other scores, of every trial.
  EXPECT_NE(result.out.find("trial  status    version  eval_loss       gain exact_match "
                            "perplexity      wall  parameters"),
            std::string::npos)
      << result.out;
  for (const char* params : {"adapter.alpha=4 adapter.rank=2", "adapter.alpha=8 adapter.rank=4",
                             "adapter.alpha=16 adapter.rank=8"}) {
    EXPECT_NE(result.out.find(params), std::string::npos) << params << "\n" << result.out;
  }
  const std::string registry = (dir_.path() / "registry").string();
  const auto listed = RunTune({"adapters", "ls", "s", "--json", "--registry", registry});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  const auto versions = nlohmann::json::parse(listed.out);
  ASSERT_EQ(versions.size(), 3u);
  const auto finished = State("s-1");
  std::set<int64_t> trials;
  for (const auto& v : versions) {
    EXPECT_EQ(v["sweep"], "s-1");
    trials.insert(v["trial"].get<int64_t>());
    EXPECT_EQ(v["params"]["adapter.alpha"].get<int64_t>(),
              2 * v["params"]["adapter.rank"].get<int64_t>());
    EXPECT_EQ(v["curve"].size(), 10u);
    // sweep.json keeps each trial's scores, as registered.
    const auto trial = finished["trials"][v["trial"].get<size_t>() - 1];
    EXPECT_EQ(trial["scores"], v["scores"]) << trial;
    EXPECT_TRUE(trial["scores"].contains("exact_match")) << trial;
    // The version holds the trial's own resolved config, with what the sweep set for it.
    std::ifstream run_toml(dir_.path() / ".tune/sweeps/s-1" /
                           ("trial-00" + std::to_string(v["trial"].get<int64_t>())) / "run.toml");
    const std::string trial_config((std::istreambuf_iterator<char>(run_toml)), {});
    EXPECT_EQ(v["config_toml"].get<std::string>(), trial_config);
    EXPECT_NE(trial_config.find("threads = 1"), std::string::npos) << trial_config;
    EXPECT_EQ(v["configuration"], v["trial"]);
  }
  EXPECT_EQ(trials, (std::set<int64_t>{1, 2, 3}));
  // The base model is measured by the first trials only; trial 3 reads their scores.
  const fs::path sweep_dir = dir_.path() / ".tune/sweeps/s-1";
  EXPECT_EQ(
      std::distance(fs::directory_iterator(sweep_dir / "base-scores"), fs::directory_iterator()),
      1);
  std::ifstream log(sweep_dir / "trial-003.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("base model scores from .tune/sweeps/s-1/base-scores/"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("evaluating the base model"), std::string::npos) << text;

  // Again without --resume: a new sweep, and it says so.
  SweepFile("[2]", 10);
  const auto again = Sweep({});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("starting a new sweep s-2 (the earlier s-1 continues with --resume)"),
            std::string::npos)
      << again.out;
}

TEST_F(SweepCommand, AFailingTrialFailsAloneAndIsReported) {
  // seq_len 4 leaves no example short enough: that trial stops with a bad-row error.
  SweepFile("[2]", 5, 1, "\"train.seq_len\" = [32, 4]\n");
  const auto result = Sweep({});
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  const auto state = State("s-1");
  EXPECT_EQ(state["trials"][0]["status"], "finished");
  EXPECT_EQ(state["trials"][1]["status"], "failed");
  EXPECT_NE(state["trials"][1]["error"].get<std::string>().find("more than train.seq_len = 4"),
            std::string::npos)
      << state["trials"][1]["error"];
  EXPECT_NE(result.out.find("trial 2 failed: "), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("best: s:v1"), std::string::npos) << result.out;
}

TEST_F(SweepCommand, KilledSweepResumesAndRunsOnlyWhatIsMissing) {
  // Long enough that trial 1 would still be training a second after the kill.
  SweepFile("[2, 4]", 1000, 1, "\"train.checkpoint_every\" = [100]\n");
  // SIGKILL the sweep process alone once trial 1 has a checkpoint: its trials (the running one
  // and the readied one) must not outlive it, or they would train on with nobody to register
  // them and race the resumed sweep for their directories.
  const std::string script =
      "cd \"$0\" || exit 4\n"
      "setsid \"$1\" sweep sweep.toml >/dev/null 2>&1 & pid=$!\n"
      "until [ -d \"$0/.tune/sweeps/s-1/trial-001/checkpoints/step-000000100\" ]; do\n"
      "  kill -0 $pid 2>/dev/null || exit 3; sleep 0.01; done\n"
      "kill -9 $pid; wait $pid\n"
      "alive() { ps -o stat= -g $pid | grep -qv '^Z'; }  # zombies wait for init to reap them\n"
      "for i in $(seq 3000); do alive || exit 0; sleep 0.01; done; exit 5\n";
  const auto kill = RunCommand({"/bin/bash", "-c", script, dir_.path().string(), TUNE_BINARY});
  ASSERT_NE(kill.exit_code, 3) << "the sweep ended before it could be killed";
  // Dying can take a busy machine a while, so the wait is long; a trial that outlived its sweep
  // is still alive after it, or has trained to its end meanwhile and left its adapter.
  ASSERT_EQ(kill.exit_code, 0) << "a trial outlived its sweep by more than 30 s";
  ASSERT_FALSE(fs::exists(dir_.path() / ".tune/sweeps/s-1/trial-001/adapter"))
      << "trial 1 trained on after its sweep was killed";
  EXPECT_EQ(State("s-1")["trials"][0]["status"], "running");

  const auto resumed = Sweep({"--resume"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  EXPECT_NE(resumed.out.find("resuming sweep s-1"), std::string::npos);
  const auto state = State("s-1");
  ASSERT_EQ(state["trials"].size(), 2u);
  for (const auto& trial : state["trials"]) EXPECT_EQ(trial["status"], "finished");
  // Trial 1 continued from its checkpoint rather than starting over.
  std::ifstream log(dir_.path() / ".tune/sweeps/s-1/trial-001.log");
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("resuming"), std::string::npos) << text;

  // Nothing is missing now: resuming again runs no trial.
  const auto idle = Sweep({"--resume"});
  ASSERT_EQ(idle.exit_code, 0);
  EXPECT_EQ(idle.out.find("started"), std::string::npos) << idle.out;
}

TEST_F(SweepCommand, AshaPrunesATrialWhoseEvalLossTrailsAtARung) {
  // Trial 1 learns (lr 5e-3); trial 2 barely moves (lr 1e-7), so at the first rung (step 5) its
  // eval loss is not among the best half of the trials that reached it. A trial waits for the
  // verdict at each rung, so it stops at exactly that step however fast it trains.
  SweepFile("[4]", 20, 1,
            "\"optimizer.lr\" = [5e-3, 1e-7]\n[sweep.early_stop]\ntype = \"asha\"\nmin_steps = "
            "5\neta = 2\n");
  const auto result = Sweep({});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const auto state = State("s-1");
  EXPECT_EQ(state["trials"][0]["status"], "finished");
  EXPECT_EQ(state["trials"][1]["status"], "pruned");
  EXPECT_EQ(state["trials"][1]["pruned_at"].get<int64_t>(), 5);
  EXPECT_NE(result.out.find("trial 2 pruned at step 5"), std::string::npos) << result.out;
  std::ifstream metrics(dir_.path() / ".tune/sweeps/s-1/trial-002/metrics.jsonl");
  int64_t last_step = 0;
  for (std::string line; std::getline(metrics, line);) {
    last_step = nlohmann::json::parse(line)["step"].get<int64_t>();
  }
  EXPECT_EQ(last_step, 5);
  const auto listed =
      RunTune({"adapters", "ls", "s", "--json", "--registry", (dir_.path() / "registry").string()});
  EXPECT_EQ(nlohmann::json::parse(listed.out).size(), 1u);
}

TEST_F(SweepCommand, ResumeAfterTheSweepFileChangedIsRefused) {
  SweepFile("[2]", 5);
  ASSERT_EQ(Sweep({}).exit_code, 0);
  SweepFile("[2]", 6);
  const auto refused = Sweep({"--resume"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("changed since this sweep started"), std::string::npos) << refused.err;
}

// A sweep that fails before its first trial leaves no folder that --resume would then trip on:
// neither when the file is refused (a tie that refers to itself) nor when the registry is.
TEST_F(SweepCommand, ASweepThatFailsBeforeItsFirstTrialLeavesNothingBehind) {
  SweepFile("[2]", 5, 1, "\"train.steps\" = \"train.steps\"\n");
  auto result = Sweep({});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("refers to 'train.steps', the key it sets"), std::string::npos)
      << result.err;
  EXPECT_FALSE(fs::exists(dir_.path() / ".tune/sweeps"));

  SweepFile("[2]", 5);
  dir_.Write("registry", "a file where the registry folder should be");
  result = Sweep({});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("registry"), std::string::npos) << result.err;
  EXPECT_TRUE(fs::is_empty(dir_.path() / ".tune/sweeps")) << "the sweep folder was left behind";
  EXPECT_EQ(Sweep({"--resume"}).err,
            "error: no sweep named s under .tune/sweeps to resume; run without --resume to start "
            "one\n");
}

// A long adapter name widens the version column: the header's columns end where the row's do.
TEST_F(SweepCommand, TheRankingStaysAlignedWithALongName) {
  SweepFile("[2]", 2);
  const auto result = Sweep({"name=a-rather-long-adapter-name"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const size_t header = result.out.find("\ntrial  status");
  ASSERT_NE(header, std::string::npos) << result.out;
  const std::string header_line =
      result.out.substr(header + 1, result.out.find('\n', header + 1) - header - 1);
  const size_t row = result.out.find('\n', header + 1) + 1;
  const std::string row_line = result.out.substr(row, result.out.find('\n', row) - row);
  EXPECT_EQ(row_line.find("a-rather-long-adapter-name:v1 "), header_line.find("version"))
      << header_line << "\n"
      << row_line;
  // The objective's value is right-aligned under its name.
  const size_t objective_end = header_line.find("eval_loss") + std::string("eval_loss").size();
  ASSERT_LT(objective_end, row_line.size()) << row_line;
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(row_line[objective_end - 1])))
      << header_line << "\n"
      << row_line;
  EXPECT_EQ(row_line[objective_end], ' ') << header_line << "\n" << row_line;
}

// Each configuration runs `repeats` times with its own seed; every repeat is a version tagged with
// its configuration, and the table ranks configurations by their mean with its spread.
TEST_F(SweepCommand, RepeatsRunEachConfigurationWithItsOwnSeedsAndRankTheMeans) {
  SweepFile("[2, 4]", 4, 2);
  const auto result = Sweep({"sweep.repeats=2"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const auto listed =
      RunTune({"adapters", "ls", "s", "--json", "--registry", (dir_.path() / "registry").string()});
  const auto versions = nlohmann::json::parse(listed.out);
  ASSERT_EQ(versions.size(), 4u);
  std::set<std::pair<int64_t, int64_t>> seeds;  // (configuration, seed)
  for (const auto& v : versions) {
    seeds.insert({v["configuration"].get<int64_t>(), v["seed"].get<int64_t>()});
    EXPECT_EQ(v["params"]["adapter.rank"].get<int64_t>(),
              v["configuration"].get<int64_t>() == 1 ? 2 : 4);
  }
  EXPECT_EQ(seeds, (std::set<std::pair<int64_t, int64_t>>{{1, 0}, {1, 1}, {2, 0}, {2, 1}}));
  const auto& last = versions.back();
  const auto shown =
      RunTune({"adapters", "show", "s:" + std::to_string(last["version"].get<int64_t>()),
               "--registry", (dir_.path() / "registry").string()});
  EXPECT_NE(shown.out.find("s-1 trial " + std::to_string(last["trial"].get<int64_t>()) +
                           " (configuration " +
                           std::to_string(last["configuration"].get<int64_t>()) + ")"),
            std::string::npos)
      << shown.out;
  // Two seeds of one configuration train differently.
  std::map<int64_t, std::set<double>> losses;
  for (const auto& v : versions) {
    losses[v["configuration"].get<int64_t>()].insert(v["scores"]["eval_loss"].get<double>());
  }
  EXPECT_EQ(losses[1].size(), 2u);
  EXPECT_NE(result.out.find("trial 2 started (configuration 1, repeat 2 of 2)"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("\nconfig trials  versions"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("over 2 repeats (95% CI "), std::string::npos) << result.out;
  const auto state = State("s-1");
  EXPECT_EQ(state["repeats"], 2);
  EXPECT_EQ(state["trials"][3]["configuration"], 2);
  EXPECT_EQ(state["trials"][3]["repeat"], 1);

  // A seed swept as well as repeated is refused before anything runs.
  SweepFile("[2]", 4, 1, "\"train.seed\" = [1, 2]\n");
  const auto refused = Sweep({"sweep.repeats=2"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("'train.seed' is swept and sweep.repeats = 2"), std::string::npos)
      << refused.err;
}

// Without [registry] in the file, trials register where TUNE_REGISTRY says, as tune adapters lists.
TEST_F(SweepCommand, TuneRegistryIsWhereTrialsRegisterUnlessTheFileSaysOtherwise) {
  SweepFile("[2]", 2);
  std::string text = testing::ReadText(dir_.path() / "sweep.toml");
  text.erase(text.find("[registry]"), text.find("[sweep]") - text.find("[registry]"));
  dir_.Write("sweep.toml", text);
  const fs::path elsewhere = dir_.path() / "elsewhere";
  const auto result = Sweep({}, {{"TUNE_REGISTRY", elsewhere.string()}});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_FALSE(fs::exists(dir_.path() / ".tune/registry"));
  const auto listed = RunTuneIn(dir_.path(), {"adapters", "ls", "s", "--json"},
                                {{"TUNE_REGISTRY", elsewhere.string()}});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(nlohmann::json::parse(listed.out).size(), 1u);
}

TEST(SweepGpus, EachTrialGetsOneOfTheVisibleGpusByTheNameTheSweepSees) {
  EXPECT_EQ(TrialGpus(2, nullptr), (std::vector<std::string>{"0", "1"}));
  // Under CUDA_VISIBLE_DEVICES=3,5 device 0 is physical GPU 3: a trial must be told "3".
  EXPECT_EQ(TrialGpus(2, "3,5"), (std::vector<std::string>{"3", "5"}));
  EXPECT_EQ(TrialGpus(1, "GPU-8f2c,7"), (std::vector<std::string>{"GPU-8f2c"}));
  EXPECT_TRUE(TrialGpus(0, "0,1").empty());  // libtorch sees no GPU: the trials run on the CPU
}

}  // namespace
}  // namespace tune

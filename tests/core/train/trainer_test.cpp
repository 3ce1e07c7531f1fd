// The trainer through `tune train` on a tiny random model: determinism, resume after SIGKILL,
// refusals, masking and batching.
#include "train/trainer.h"

#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "orchestrate/lineage.h"
#include "registry/registry.h"
#include "support/test_support.h"
#include "train/examples.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::kPython;
using testing::RunCommand;
using testing::RunTune;
using testing::TempDir;

// A run directory with a tiny model, 120 addition examples and a run file.
class TrainCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared_ = new TempDir();
    testing::MakeTinyLlama(shared_->path() / "model", {"--seed", "5"});
    std::string rows;
    for (int i = 0; i < 120; ++i) {
      const int a = (i * 37) % 50, b = (i * 11) % 50;
      rows += "{\"prompt\": \"add " + std::to_string(a) + " " + std::to_string(b) +
              " =\", \"completion\": \"" + std::to_string(a + b) + "\"}\n";
    }
    shared_->Write("data.jsonl", rows);
  }
  static void TearDownTestSuite() { delete shared_; }

  fs::path RunFile(const std::string& extra = "") {
    return dir_.Write("run.toml",
                      "name = \"t\"\n"
                      "[model]\npath = \"" +
                          (shared_->path() / "model").string() +
                          "\"\n"
                          "[dataset]\npath = \"" +
                          (shared_->path() / "data.jsonl").string() +
                          "\"\neval_fraction = 0.1\n"
                          "[adapter]\nmethod = \"lora\"\nrank = 4\ndropout = 0.1\n"
                          "[optimizer]\nlr = 5e-3\nwarmup_steps = 3\n"
                          "[train]\nsteps = 30\nbatch_size = 4\nseq_len = 32\n"
                          "checkpoint_every = 5\neval_max_examples = 4\n"
                          "eval_max_new_tokens = 4\n"
                          "[[metrics]]\nplugin = \"exact_match\"\n"
                          "[registry]\npath = \"" +
                          (dir_.path() / "registry").string() + "\"\n" + extra);
  }

  static TempDir* shared_;
  TempDir dir_;
};
TempDir* TrainCommand::shared_ = nullptr;

TEST_F(TrainCommand, TrainsEvaluatesAndWritesTheRunDirectory) {
  const auto result = RunTune({"train", RunFile().string(), "-o", (dir_.path() / "run").string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const fs::path run = dir_.path() / "run";
  EXPECT_TRUE(fs::exists(run / "adapter" / "adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(run / "adapter" / "adapter_config.json"));
  const auto summary = nlohmann::json::parse(std::ifstream(run / "summary.json"));
  EXPECT_LT(summary["scores"]["eval_loss"].get<double>(),
            summary["base_scores"]["eval_loss"].get<double>());
  EXPECT_TRUE(summary["scores"].contains("exact_match"));
  EXPECT_TRUE(summary["base_scores"].contains("exact_match"));
  EXPECT_EQ(summary["curve"].size(), 30u);
  EXPECT_EQ(summary["eval_examples"].get<int>(), 4);  // train.eval_max_examples
  EXPECT_GT(summary["train_examples"].get<int>(), 90);
  std::ifstream metrics(run / "metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line);) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["step"].get<int>(), ++lines);
  }
  EXPECT_EQ(lines, 30);
  EXPECT_EQ(testing::CountLinesStartingWith(testing::ReadText(run / "eval_samples.jsonl"), "{"), 4);
  EXPECT_NE(result.out.find("eval_loss"), std::string::npos);
  EXPECT_NE(result.err.find("step 30/30"), std::string::npos);
}

// [eval] few_shot: the base model is also asked with training examples in its prompt, and
// every place the scores go carries that baseline too.
TEST_F(TrainCommand, APromptedBaselineIsMeasuredKeptAndShown) {
  const fs::path file = RunFile("[eval]\nfew_shot = 2\n");
  const auto result = RunTune({"train", file.string(), "-o", (dir_.path() / "run").string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("prompted with 2 training examples"), std::string::npos) << result.err;
  EXPECT_NE(result.out.find("vs 2-shot"), std::string::npos) << result.out;
  const auto summary = nlohmann::json::parse(std::ifstream(dir_.path() / "run/summary.json"));
  EXPECT_EQ(summary["few_shot"], 2);
  ASSERT_TRUE(summary["few_shot_scores"].contains("exact_match")) << summary.dump();
  EXPECT_FALSE(summary["few_shot_scores"].contains("eval_loss"));  // generation metrics only
  std::ifstream samples(dir_.path() / "run/eval_samples.jsonl");
  double sum = 0;
  int count = 0;
  for (std::string line; std::getline(samples, line); ++count) {
    const auto sample = nlohmann::json::parse(line);
    ASSERT_TRUE(sample.contains("few_shot_prediction")) << line;
    EXPECT_EQ(sample["few_shot_prediction"].get<std::string>().find("\n\n"), std::string::npos);
    sum += sample["few_shot_scores"]["exact_match"].get<double>();
  }
  ASSERT_EQ(count, 4);
  EXPECT_DOUBLE_EQ(sum / count, summary["few_shot_scores"]["exact_match"].get<double>());

  const std::string registry = (dir_.path() / "registry").string();
  const auto show = RunTune({"adapters", "show", "t:1", "--json", "--registry", registry});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  const auto record = nlohmann::json::parse(show.out);
  EXPECT_EQ(record["few_shot"], 2);
  EXPECT_EQ(record["few_shot_scores"], summary["few_shot_scores"]);
  const auto text = RunTune({"adapters", "show", "t:1", "--registry", registry});
  EXPECT_NE(text.out.find("base model with 2 shots"), std::string::npos) << text.out;
  const auto listed = RunTune(
      {"adapters", "ls", "--filter", "few_shot_scores.exact_match >= 0", "--registry", registry});
  EXPECT_NE(listed.out.find("t:1"), std::string::npos) << listed.out << listed.err;

  // Without metrics there is nothing to score the prompted outputs with.
  std::string text_without_metrics = testing::ReadText(RunFile());
  const std::string metrics = "[[metrics]]\nplugin = \"exact_match\"\n";
  text_without_metrics.erase(text_without_metrics.find(metrics), metrics.size());
  const fs::path bare = dir_.Write("bare.toml", text_without_metrics + "[eval]\nfew_shot = 3\n");
  const auto refused = RunTune({"train", bare.string()});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("bare.toml:"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find(": eval.few_shot = 3 scores the prompted base model"),
            std::string::npos)
      << refused.err;
}

TEST_F(TrainCommand, RegistersTheAdapterWithItsLineage) {
  const fs::path file = RunFile();
  const auto result = RunTune({"train", file.string(), "-o", (dir_.path() / "run").string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string registry = (dir_.path() / "registry").string();
  EXPECT_NE(result.out.find("registered: t:v1 in " + registry), std::string::npos) << result.out;
  const auto show = RunTune({"adapters", "show", "t:1", "--json", "--registry", registry});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  const auto record = nlohmann::json::parse(show.out);
  const auto summary = nlohmann::json::parse(std::ifstream(dir_.path() / "run/summary.json"));
  EXPECT_EQ(record["method"], "lora");
  EXPECT_EQ(record["params"]["adapter.rank"], 4);
  EXPECT_EQ(record["params"]["optimizer.lr"], 5e-3);
  EXPECT_EQ(record["dataset"]["hash"], summary["dataset_sha256"]);
  EXPECT_EQ(record["scores"], summary["scores"]);
  EXPECT_EQ(record["base_scores"], summary["base_scores"]);
  EXPECT_GT(summary["trainable_parameters"].get<int64_t>(), 0);
  EXPECT_EQ(record["trainable_parameters"], summary["trainable_parameters"]);
  EXPECT_NE(
      result.out.find("30 steps of " + summary["trainable_parameters"].dump() + " parameters"),
      std::string::npos)
      << result.out;
  EXPECT_EQ(record["curve"].size(), 30u);
  EXPECT_EQ(record["base_model"]["hash"].get<std::string>().size(), 64u);
  EXPECT_EQ(record["tokenizer_hash"].get<std::string>().size(), 64u);

  const fs::path fetched = dir_.path() / "fetched";
  const auto fetch = RunTune({"fetch", "t", "-o", fetched.string(), "--registry", registry});
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err;
  EXPECT_EQ(testing::ReadText(fetched / "adapter_model.safetensors"),
            testing::ReadText(dir_.path() / "run/adapter/adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(fetched / "tune.json"));

  // A second run of the same file is the next version.
  ASSERT_EQ(RunTune({"train", file.string(), "-o", (dir_.path() / "run2").string()}).exit_code, 0);
  EXPECT_EQ(RunTune({"adapters", "show", "t:2", "--registry", registry}).exit_code, 0);
}

TEST_F(TrainCommand, GenerateWithTheAdapterReproducesTheEvalOutputs) {
  ASSERT_EQ(RunTune({"train", RunFile().string(), "-o", (dir_.path() / "run").string()}).exit_code,
            0);
  std::ifstream samples(dir_.path() / "run/eval_samples.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(samples, line));
  const auto sample = nlohmann::json::parse(line);
  const auto generated = RunTune({"-q", "generate", "--model", (shared_->path() / "model").string(),
                                  "--adapter", (dir_.path() / "run/adapter").string(),
                                  "--max-tokens", "4", sample["prompt"].get<std::string>()});
  ASSERT_EQ(generated.exit_code, 0) << generated.err;
  EXPECT_EQ(generated.out, sample["prediction"].get<std::string>() + "\n");

  const auto full_dir = RunTune({"generate", "--model", (shared_->path() / "model").string(),
                                 "--adapter", (shared_->path() / "model").string(), "x"});
  EXPECT_EQ(full_dir.exit_code, 1);
  EXPECT_EQ(full_dir.err, "error: " + (shared_->path() / "model").string() +
                              " is a whole model (full fine-tuning); pass it as --model instead "
                              "of --adapter\n");
}

TEST_F(TrainCommand, EvalSamplesKeepPerExampleScoresAndTheBaseModelsOutputs) {
  ASSERT_EQ(RunTune({"train", RunFile().string(), "-o", (dir_.path() / "run").string()}).exit_code,
            0);
  const auto summary = nlohmann::json::parse(std::ifstream(dir_.path() / "run/summary.json"));
  std::ifstream samples(dir_.path() / "run/eval_samples.jsonl");
  double tuned = 0, base = 0;
  int count = 0;
  for (std::string line; std::getline(samples, line); ++count) {
    const auto sample = nlohmann::json::parse(line);
    tuned += sample["scores"]["exact_match"].get<double>();
    base += sample["base_scores"]["exact_match"].get<double>();
    if (count > 0) continue;
    const auto generated =
        RunTune({"-q", "generate", "--model", (shared_->path() / "model").string(), "--max-tokens",
                 "4", sample["prompt"].get<std::string>()});
    ASSERT_EQ(generated.exit_code, 0) << generated.err;
    EXPECT_EQ(generated.out, sample["base_prediction"].get<std::string>() + "\n");
  }
  ASSERT_EQ(count, 4);
  EXPECT_DOUBLE_EQ(tuned / count, summary["scores"]["exact_match"].get<double>());
  EXPECT_DOUBLE_EQ(base / count, summary["base_scores"]["exact_match"].get<double>());
}

// The fixture's 120 rows repeat every 50 (a and b are the same for i and i + 50): 70 of them
// are exact duplicates of an earlier row.
TEST_F(TrainCommand, QualityFiltersDropRowsAndTheVersionRecordsWhy) {
  const fs::path run = dir_.path() / "run";
  const auto result = RunTune(
      {"train", RunFile("[dataset.quality]\ndedup = \"exact\"\n").string(), "-o", run.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("data: 120 rows; 70 exact duplicates; 0 near-duplicate clusters; 0 "
                            "conflicts"),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("dataset.quality dropped 70 exact_duplicate"), std::string::npos);
  const auto summary = nlohmann::json::parse(std::ifstream(run / "summary.json"));
  EXPECT_EQ(summary["dropped_rows"], nlohmann::json::parse(R"({"exact_duplicate": 70})"));
  EXPECT_EQ(summary["train_examples"].get<int>() + summary["eval_examples"].get<int>(), 50);
  const auto show = RunTune(
      {"adapters", "show", "t", "--json", "--registry", (dir_.path() / "registry").string()});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  const auto record = nlohmann::json::parse(show.out);
  EXPECT_EQ(record["dataset"]["dropped"]["exact_duplicate"], 70);
  EXPECT_EQ(record["dataset"]["quality"], summary["data_quality"]);
  EXPECT_EQ(record["params"].count("dataset.quality.dedup"), 0u);  // in config_toml, not a param
  EXPECT_NE(record["config_toml"].get<std::string>().find("dedup = 'exact'"), std::string::npos)
      << record["config_toml"];
  // The training file, as read, is a registered dataset version the adapter version links to.
  const std::string dataset = record["dataset"]["name"].get<std::string>();
  EXPECT_EQ(record["dataset"]["version"], 1);
  const auto shown = RunTune(
      {"data", "show", dataset, "--json", "--registry", (dir_.path() / "registry").string()});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const auto registered = nlohmann::json::parse(shown.out);
  EXPECT_EQ(registered["rows"], 120);
  EXPECT_EQ(registered["summary"], summary["data_quality"]);
}

TEST_F(TrainCommand, AQualityGateStopsTheRunBeforeTrainingUnlessForced) {
  const fs::path file = RunFile("[dataset.quality]\nmax_duplicate_fraction = 0.1\n");
  const fs::path run = dir_.path() / "run";
  const auto refused = RunTune({"train", file.string(), "-o", run.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("58.3% of the rows kept are duplicates, over "
                             "dataset.quality.max_duplicate_fraction = 0.1 (set "
                             "dataset.quality.dedup = \"exact\" or \"near\" to drop them)"),
            std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("--force trains on it anyway"), std::string::npos);
  EXPECT_FALSE(fs::exists(run / "adapter"));
  const auto forced = RunTune({"train", file.string(), "-o", run.string(), "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(forced.err.find("training anyway (--force)"), std::string::npos) << forced.err;
  const auto deduplicated = RunTune(
      {"train", file.string(), "dataset.quality.dedup=exact", "-o", (dir_.path() / "r2").string()});
  EXPECT_EQ(deduplicated.exit_code, 0) << deduplicated.err;  // no duplicate is left to gate
}

TEST_F(TrainCommand, BaseScoresAreMeasuredOnceAndSharedByMatchingRuns) {
  const fs::path file = RunFile();
  const std::string shared = (dir_.path() / "base-scores").string();
  auto train = [&](const std::string& run, std::vector<std::string> overrides) {
    std::vector<std::string> args = {"train", file.string()};
    args.insert(args.end(), overrides.begin(), overrides.end());
    args.insert(args.end(), {"-o", (dir_.path() / run).string(), "--base-scores", shared});
    const auto result = RunTune(args);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result;
  };
  auto base_scores = [&](const std::string& run) {
    return nlohmann::json::parse(std::ifstream(dir_.path() / run / "summary.json"))["base_scores"];
  };
  const auto first = train("a", {});
  EXPECT_NE(first.err.find("evaluating the base model"), std::string::npos) << first.err;
  ASSERT_EQ(std::distance(fs::directory_iterator(shared), fs::directory_iterator()), 1);
  const fs::path stored = fs::directory_iterator(shared)->path();

  // A run that differs only in what it trains reads the stored scores: mark them to be sure.
  auto marked = nlohmann::json::parse(std::ifstream(stored));
  marked["scores"]["exact_match"] = 0.125;
  std::ofstream(stored) << marked.dump();
  const auto second = train("b", {"adapter.rank=2", "optimizer.lr=1e-3"});
  EXPECT_NE(second.err.find("base model scores from " + stored.string()), std::string::npos)
      << second.err;
  EXPECT_EQ(base_scores("b")["exact_match"], 0.125);
  EXPECT_EQ(base_scores("b")["eval_loss"], base_scores("a")["eval_loss"]);

  // Another generation budget or eval set is another measurement.
  train("c", {"train.eval_max_new_tokens=2"});
  train("d", {"train.eval_max_examples=3"});
  EXPECT_NE(base_scores("d")["eval_loss"], base_scores("a")["eval_loss"]);
  EXPECT_EQ(std::distance(fs::directory_iterator(shared), fs::directory_iterator()), 3);
}

// The driver's side of the trial channel (orchestrate/trial_channel.h), written again in Python
// from the protocol as that header states it: wait for prepared, check nothing trained yet, send
// go, answer each evaluated with a verdict (stop at `stop_at`, 0: never) and each tracker call as
// a driver's tracker would (run 00000000000000aa, version 41), and collect the rest. Prints the
// exit code, the steps evaluated, the first and last step reported, whether the step reports kept
// their pace, the version done reported, what was registered, and how the run was finished.
constexpr const char* kChannelDriver = R"(
import json, os, socket, subprocess, sys, time
tune, run_file, run_dir, stop_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ours, theirs = socket.socketpair()
log = open(run_dir + ".log", "w")
trial = subprocess.Popen([tune, "train", run_file, "train.eval_every=10", "-o", run_dir,
                          "--channel-fd", str(theirs.fileno())],
                         pass_fds=[theirs.fileno()], stdout=log, stderr=log)
theirs.close()
lines = ours.makefile("r")
def send(message): ours.sendall((json.dumps(message) + "\n").encode())
def reply(run_id="", version=0): send({"type": "reply", "run_id": run_id, "version": version, "error": ""})
first = json.loads(lines.readline() or "null")
if first != {"type": "prepared"}: sys.exit("first message: " + repr(first))
time.sleep(0.3)
if os.path.exists(os.path.join(run_dir, "metrics.jsonl")): sys.exit("it trained before its go")
send({"type": "go", "sweep": "py-1", "trial": 7, "configuration": 3,
      "parameters": {"adapter.rank": 4}, "base_model_sha256": "", "registry": "py-registry"})
went = time.monotonic()
evaluated, steps, version, registered, finished, logged = [], [], None, None, None, set()
while True:
    line = lines.readline()
    if not line: break
    message = json.loads(line)
    kind = message["type"]
    if kind == "step": steps.append(message["step"])
    elif kind == "evaluated":
        evaluated.append(message["step"])
        stop = message["step"] == stop_at
        send({"type": "verdict", "go_on": not stop, "reason": "stopped by the test" if stop else ""})
    elif kind == "create_run":
        if message["sweep"] != "py-1" or message["trial"] != 7: sys.exit(line)
        if message["params"] != {"adapter.rank": 4}: sys.exit(line)
        reply(run_id="00000000000000aa")
    elif kind == "log_metrics":
        logged.update(step for step, values in message["steps"])
    elif kind == "register":
        record = message["record"]
        registered = [record["sweep"], record["trial"], record["configuration"], record["run_id"],
                      "eval_every = 10" in record["config_toml"],
                      os.path.isdir(message["artifact_dir"]), message["dataset"]["name"]]
        reply(version=41)
    elif kind == "finish_run":
        finished = [message["status"], message["error"]]
        reply()
    elif kind == "done": version = message["version"]
    else: sys.exit("unexpected: " + line)
paced = len(steps) <= 3 + 2 * (time.monotonic() - went)
every_step_logged = logged == set(range(1, max(evaluated + steps) + 1))
# How many steps a report covers depends on the machine's speed: a stopped run says only that no
# report came after the step it stopped at, and a finished one that its last report is its last step.
last = steps[-1] if stop_at == 0 else steps[-1] <= stop_at
print(trial.wait(), evaluated, steps[0], last, paced, every_step_logged, version, registered,
      finished)
)";

TEST_F(TrainCommand, ChannelHoldsTheRunUntilItsGoAndRecordsThroughTheDriver) {
  const auto result = RunCommand({kPython, "-c", kChannelDriver, TUNE_BINARY, RunFile().string(),
                                  (dir_.path() / "run").string(), "0"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  // Evals at 10 and 20 of 30 steps (the end is not one); steps 1 to 30, each logged; the version
  // the driver gave, registered with the go's lineage and the trial's own config (eval_every from
  // its command line), its adapter folder and its dataset; the run finished.
  EXPECT_EQ(result.out,
            "0 [10, 20] 1 30 True True 41 ['py-1', 7, 3, '00000000000000aa', True, True, "
            "'" +
                DatasetName(shared_->path() / "data.jsonl") + "'] ['finished', '']\n");
  EXPECT_FALSE(fs::exists(dir_.path() / "registry")) << "a driven trial opened a registry";
}

TEST_F(TrainCommand, AStopVerdictEndsTheRunAtThatStepAndRegistersNothing) {
  const fs::path run_dir = dir_.path() / "run";
  const auto result = RunCommand(
      {kPython, "-c", kChannelDriver, TUNE_BINARY, RunFile().string(), run_dir.string(), "10"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  // Stopped at its first eval: its progress reports began at step 1 and none came after step 10
  // (whether steps 2 to 10 got one depends on the machine's speed, at most one per 500 ms), no
  // version, and its run finished as killed with the verdict's reason.
  EXPECT_EQ(result.out, "0 [10] 1 True True True None None ['killed', 'stopped by the test']\n");
  std::ifstream metrics(run_dir / "metrics.jsonl");
  int64_t last_step = 0;
  for (std::string line; std::getline(metrics, line);) {
    last_step = nlohmann::json::parse(line)["step"].get<int64_t>();
  }
  EXPECT_EQ(last_step, 10);
  EXPECT_FALSE(fs::exists(run_dir / "adapter"));
}

TEST_F(TrainCommand, ChannelEndsTheRunIfTheDriverIsGone) {
  int sockets[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sockets), 0);
  close(sockets[0]);  // the sweep is gone before the trial's turn
  const auto result = RunTune({"train", RunFile().string(), "-o", (dir_.path() / "run").string(),
                               "--channel-fd", std::to_string(sockets[1])});
  close(sockets[1]);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err,
            "prepared; waiting for the sweep to start this trial\n"
            "error: the sweep that started this trial has ended; resume the sweep with --resume\n");
  EXPECT_FALSE(fs::exists(dir_.path() / "run" / "metrics.jsonl"));

  const auto closed = RunTune({"train", RunFile().string(), "--channel-fd", "987"});
  EXPECT_EQ(closed.exit_code, 1);
  EXPECT_EQ(closed.err,
            "error: --channel-fd 987 is not an open file descriptor; the option is for the "
            "trials tune sweep starts, leave it out\n");
}

TEST_F(TrainCommand, SameRunFileGivesBitIdenticalAdapters) {
  const fs::path file = RunFile();
  ASSERT_EQ(RunTune({"train", file.string(), "-o", (dir_.path() / "a").string()}).exit_code, 0);
  ASSERT_EQ(RunTune({"train", file.string(), "-o", (dir_.path() / "b").string()}).exit_code, 0);
  EXPECT_EQ(testing::ReadText(dir_.path() / "a/adapter/adapter_model.safetensors"),
            testing::ReadText(dir_.path() / "b/adapter/adapter_model.safetensors"));
  const auto c =
      RunTune({"train", file.string(), "-o", (dir_.path() / "c").string(), "train.seed=1"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(testing::ReadText(dir_.path() / "a/adapter/adapter_model.safetensors"),
            testing::ReadText(dir_.path() / "c/adapter/adapter_model.safetensors"));
}

TEST_F(TrainCommand, ResumeAfterSigkillGivesTheUninterruptedAdapterBitForBit) {
  const fs::path file = RunFile();
  const std::string straight = (dir_.path() / "straight").string();
  ASSERT_EQ(RunTune({"train", file.string(), "-o", straight, "train.steps=200"}).exit_code, 0);

  // Kill the second run with SIGKILL as soon as it has written its second checkpoint.
  const fs::path killed = dir_.path() / "killed";
  const auto kill = testing::SignalTuneWhen(
      {"train", file.string(), "-o", killed.string(), "train.steps=200"},
      "[ -d '" + (killed / "checkpoints/step-000000010").string() + "' ]", "KILL");
  ASSERT_EQ(kill.exit_code, 128 + 9) << "the run ended before it could be killed: " << kill.err;
  ASSERT_FALSE(fs::exists(killed / "adapter"));

  const auto resumed =
      RunTune({"train", file.string(), "-o", killed.string(), "train.steps=200", "--resume"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resuming"), std::string::npos);
  EXPECT_EQ(testing::ReadText(fs::path(straight) / "adapter/adapter_model.safetensors"),
            testing::ReadText(killed / "adapter/adapter_model.safetensors"));
  std::ifstream metrics(killed / "metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line);) {
    EXPECT_EQ(nlohmann::json::parse(line)["step"].get<int>(), ++lines);
  }
  EXPECT_EQ(lines, 200);
}

// SIGTERM is how clusters preempt jobs: the run checkpoints the step it is at, says where it
// stopped, exits with 128 + 15, and --resume finishes it with the uninterrupted run's bytes.
TEST_F(TrainCommand, SigtermCheckpointsTheCurrentStepAndResumesToTheSameAdapter) {
  const fs::path file = RunFile();
  const std::string straight = (dir_.path() / "straight").string();
  ASSERT_EQ(RunTune({"train", file.string(), "-o", straight, "train.steps=200"}).exit_code, 0);

  const fs::path stopped = dir_.path() / "stopped";
  const std::string metrics = (stopped / "metrics.jsonl").string();
  const auto run = testing::SignalTuneWhen(
      {"train", file.string(), "-o", stopped.string(), "train.steps=200",
       "train.checkpoint_every=1000"},
      "[ -f '" + metrics + "' ] && [ $(wc -l < '" + metrics + "') -ge 20 ]", "TERM");
  ASSERT_NE(run.exit_code, -1) << "the run ended before it could be stopped";
  EXPECT_EQ(run.exit_code, 128 + 15);
  const std::string& stderr_text = run.err;
  const size_t at = stderr_text.find("tune: interrupted at step ");
  ASSERT_NE(at, std::string::npos) << stderr_text;
  const int step =
      std::stoi(stderr_text.substr(at + std::string("tune: interrupted at step ").size()));
  EXPECT_NE(stderr_text.find("continue with the same tune train command and --resume"),
            std::string::npos);
  char checkpoint[32];
  std::snprintf(checkpoint, sizeof(checkpoint), "step-%09d", step);
  EXPECT_TRUE(fs::exists(stopped / "checkpoints" / checkpoint)) << checkpoint;
  ASSERT_FALSE(fs::exists(stopped / "adapter"));

  const auto resumed = RunTune({"train", file.string(), "-o", stopped.string(), "train.steps=200",
                                "train.checkpoint_every=1000", "--resume"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(testing::ReadText(fs::path(straight) / "adapter/adapter_model.safetensors"),
            testing::ReadText(stopped / "adapter/adapter_model.safetensors"));
}

// A run holds the registry only for its own writes: while it trains (days, on a real model),
// a promotion, a gc, a backup and a second run's registration all go through.
TEST_F(TrainCommand, OtherCommandsUseTheRegistryWhileARunTrains) {
  const fs::path file = RunFile();
  const std::string registry = (dir_.path() / "registry").string();
  ASSERT_EQ(
      RunTune({"train", file.string(), "-o", (dir_.path() / "first").string(), "train.steps=5"})
          .exit_code,
      0);
  const fs::path long_run = dir_.path() / "long";
  const std::string metrics = (long_run / "metrics.jsonl").string();
  const std::string tune = std::string("\"") + TUNE_BINARY + "\" ";
  const std::string script =
      tune + "train '" + file.string() + "' -o '" + long_run.string() +
      "' train.steps=1000000 train.checkpoint_every=0 >/dev/null 2>&1 & pid=$!\n" + "until [ -f '" +
      metrics + "' ] && [ $(wc -l < '" + metrics + "') -ge 3 ]; do\n" +
      "  kill -0 $pid 2>/dev/null || exit 3; sleep 0.01; done\n" + tune +
      "adapters promote t:1 production --registry '" + registry + "' || exit 10\n" + tune +
      "registry gc --registry '" + registry + "' || exit 11\n" + tune + "registry backup '" +
      (dir_.path() / "backup").string() + "' --registry '" + registry + "' || exit 12\n" + tune +
      "train '" + file.string() + "' -o '" + (dir_.path() / "second").string() +
      "' train.steps=5 || exit 13\n" + "kill -0 $pid || exit 4\n" +
      "kill -TERM $pid; wait $pid; echo $?\n";
  const auto result = RunCommand({"/bin/bash", "-c", script});
  ASSERT_EQ(result.exit_code, 0) << "step " << result.exit_code << " failed:\n" << result.err;
  EXPECT_EQ(result.out.substr(result.out.rfind('\n', result.out.size() - 2) + 1), "143\n");

  const auto reader = Registry::Open(registry, Registry::OpenMode::kReadOnly);
  EXPECT_EQ(reader->Resolve("t@production").version, 1);
  EXPECT_EQ(reader->Resolve("t").version, 2);  // the second run, registered beside the first
  EXPECT_EQ(Registry::Open(dir_.path() / "backup", Registry::OpenMode::kReadOnly)
                ->Resolve("t@production")
                .version,
            1);
  // The interrupted run's metrics reached the registry as it trained, and its end was recorded.
  const std::vector<RunRecord> runs = reader->ListRuns();
  ASSERT_EQ(runs.size(), 3u);
  const RunRecord& interrupted = runs[1];
  EXPECT_EQ(interrupted.status, RunStatus::kKilled);
  EXPECT_NE(interrupted.error.find("interrupted"), std::string::npos) << interrupted.error;
  EXPECT_GE(reader->GetRunMetrics(interrupted.id).size(), 3u);
}

TEST_F(TrainCommand, ARowThatIsNotUtf8IsABadRowWithFileAndLine) {
  std::string rows = testing::ReadText(shared_->path() / "data.jsonl");
  rows.insert(rows.find('\n', rows.find('\n', rows.find('\n') + 1) + 1) + 1,
              "{\"prompt\": \"caf\xe9\", \"completion\": \"1\"}\n");
  const fs::path data = dir_.Write("latin1.jsonl", rows);
  const auto result = RunTune({"train", RunFile().string(), "-o", (dir_.path() / "run").string(),
                               "dataset.path=" + data.string()});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_EQ(result.err.rfind("error: " + data.string() + ":4: not JSON: ", 0), 0u) << result.err;
  EXPECT_NE(result.err.find("ill-formed UTF-8"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("caf\\xe9"), std::string::npos) << result.err;
  EXPECT_EQ(testing::CountLinesStartingWith(result.err, ""), 1) << result.err;
}

// A huge row is refused by its size before it is tokenized: the reason counts bytes, not tokens.
TEST_F(TrainCommand, ARowTooLongForSeqLenIsRefusedByItsSizeBeforeTokenizing) {
  std::string rows = testing::ReadText(shared_->path() / "data.jsonl");
  rows.insert(rows.find('\n') + 1,
              "{\"prompt\": \"add\", \"completion\": \"" + std::string(4 << 20, '7') + "\"}\n");
  const fs::path data = dir_.Write("huge.jsonl", rows);
  const auto result = RunTune({"train", RunFile().string(), "-o", (dir_.path() / "run").string(),
                               "dataset.path=" + data.string()});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_EQ(result.err.rfind("error: " + data.string() +
                                 ":2: 4194307 bytes of text, more than 32 "
                                 "tokens (train.seq_len) can hold; fix the data",
                             0),
            0u)
      << result.err;
}

TEST_F(TrainCommand, QuietAfterTheRunFileLeavesOnlyTheResults) {
  const auto result = RunTune(
      {"train", RunFile().string(), "-o", (dir_.path() / "run").string(), "train.steps=5", "-q"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_NE(result.out.find("registered: t:v1"), std::string::npos) << result.out;
}

TEST_F(TrainCommand, ResumingAFinishedRunSaysWhichVersionItBecameAndRegistersNothing) {
  const fs::path file = RunFile();
  const std::string run = (dir_.path() / "run").string();
  ASSERT_EQ(RunTune({"train", file.string(), "-o", run}).exit_code, 0);
  for (int again = 0; again < 2; ++again) {
    const auto resumed = RunTune({"train", file.string(), "-o", run, "--resume"});
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_NE(resumed.out.find(run + " finished already and was registered as t:v1 in "),
              std::string::npos)
        << resumed.out;
  }
  const auto versions =
      RunTune({"adapters", "ls", "t", "--json", "--registry", (dir_.path() / "registry").string()});
  ASSERT_EQ(versions.exit_code, 0) << versions.err;
  EXPECT_EQ(nlohmann::json::parse(versions.out).size(), 1u) << versions.out;
}

TEST_F(TrainCommand, ResumeWithAChangedConfigIsRefusedUnlessForced) {
  const fs::path file = RunFile();
  const std::string run = (dir_.path() / "run").string();
  ASSERT_EQ(RunTune({"train", file.string(), "-o", run}).exit_code, 0);
  const auto changed =
      RunTune({"train", file.string(), "-o", run, "--resume", "optimizer.lr=1e-3"});
  EXPECT_EQ(changed.exit_code, 1);
  EXPECT_EQ(changed.err, "error: " + run +
                             ": the run config changed since this run started; resuming would "
                             "mix two configurations (use --force to resume anyway, or "
                             "--restart)\n");
  EXPECT_EQ(RunTune({"train", file.string(), "-o", run, "--resume", "optimizer.lr=1e-3", "--force"})
                .exit_code,
            0);
}

TEST_F(TrainCommand, ExistingRunDirectoryIsNeverOverwrittenSilently) {
  const fs::path file = RunFile();
  const std::string run = (dir_.path() / "run").string();
  ASSERT_EQ(RunTune({"train", file.string(), "-o", run}).exit_code, 0);
  const auto again = RunTune({"train", file.string(), "-o", run});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.err, "error: " + run +
                           " holds a previous run; continue it with --resume, start over with "
                           "--restart, or choose another --output\n");
  EXPECT_EQ(RunTune({"train", file.string(), "-o", run, "--restart"}).exit_code, 0);
}

// Running the same file again (another seed, say) is a new run in a new folder, said so, and a
// second version; --resume takes the newest run.
TEST_F(TrainCommand, TheSameRunFileTwiceGivesTwoRunsAndTwoVersions) {
  const std::string file = RunFile().string();
  const auto first = testing::RunTuneIn(dir_.path(), {"train", file});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("registered: t:v1"), std::string::npos) << first.out;
  const auto second = testing::RunTuneIn(dir_.path(), {"train", file, "train.seed=1"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("starting a new run t-2 in .tune/runs/t-2 (the earlier t continues "
                            "with --resume)"),
            std::string::npos)
      << second.err;
  EXPECT_NE(second.out.find("registered: t:v2"), std::string::npos) << second.out;
  EXPECT_TRUE(fs::exists(dir_.path() / ".tune/runs/t/adapter"));
  EXPECT_TRUE(fs::exists(dir_.path() / ".tune/runs/t-2/adapter"));
  const auto resumed = testing::RunTuneIn(dir_.path(), {"train", file, "train.seed=1", "--resume"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find(".tune/runs/t-2 finished already and was registered as t:v2"),
            std::string::npos)
      << resumed.out;
}

// Without [registry] in the file, a run registers where TUNE_REGISTRY says, as tune adapters lists.
TEST_F(TrainCommand, TuneRegistryIsWhereARunRegistersUnlessTheFileSaysOtherwise) {
  std::string text = testing::ReadText(RunFile());
  text.erase(text.find("[registry]"));
  const fs::path file = dir_.Write("run.toml", text);
  const fs::path elsewhere = dir_.path() / "elsewhere";
  const auto result =
      testing::RunTuneIn(dir_.path(), {"train", file.string()}, {{"TUNE_REGISTRY", elsewhere}});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("registered: t:v1 in " + elsewhere.string()), std::string::npos)
      << result.out;
  EXPECT_FALSE(fs::exists(dir_.path() / ".tune/registry"));
  const auto listed =
      testing::RunTuneIn(dir_.path(), {"adapters", "ls", "t"}, {{"TUNE_REGISTRY", elsewhere}});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("\nt:1 "), std::string::npos) << listed.out;
}

TEST_F(TrainCommand, BadRowsStopTheRunByLineUnlessSkipped) {
  const fs::path data = dir_.Write("bad.jsonl",
                                   "{\"prompt\": \"a\", \"completion\": \"b\"}\n"
                                   "not json\n"
                                   "{\"prompt\": \"" +
                                       std::string(200, 'x') +
                                       "\", \"completion\": \"b\"}\n"
                                       "{\"prompt\": \"c\", \"completion\": \"d\"}\n");
  const fs::path file = RunFile();
  const std::string run = (dir_.path() / "run").string();
  const auto stopped = RunTune({"train", file.string(), "-o", run, "dataset.path=" + data.string(),
                                "dataset.eval_fraction=0"});
  EXPECT_EQ(stopped.exit_code, 1);
  EXPECT_EQ(
      testing::CountLinesStartingWith(stopped.err, "error: " + data.string() + ":2: not JSON"), 1)
      << stopped.err;
  EXPECT_NE(stopped.err.find("(and 1 more bad rows); fix the data, or set dataset.on_bad_row = "
                             "\"skip\" to skip bad rows"),
            std::string::npos)
      << stopped.err;
  const auto skipped =
      RunTune({"train", file.string(), "-o", run, "--restart", "dataset.path=" + data.string(),
               "dataset.eval_fraction=0", "dataset.on_bad_row=skip"});
  EXPECT_EQ(skipped.exit_code, 0) << skipped.err;
  EXPECT_NE(skipped.err.find("skipped 2 bad rows"), std::string::npos) << skipped.err;
  EXPECT_NE(skipped.err.find("first: " + data.string() + ":2: not JSON"), std::string::npos);
}

// A [2, 5] int64 tensor from its values in row-major order.
at::Tensor TwoRows(std::vector<int64_t> values) {
  return at::tensor(values, at::kLong).view({2, 5});
}

// Makes allocations past ~2 GB fail in the command that follows. AddressSanitizer reserves
// terabytes of address space, so a sanitized build caps single allocations through ASan instead
// of limiting the address space.
#if defined(__SANITIZE_ADDRESS__)
constexpr char kLimitMemory[] =
    "export "
    "ASAN_OPTIONS=\"$ASAN_OPTIONS:max_allocation_size_mb=2000:allocator_may_return_null=1\"; ";
#else
constexpr char kLimitMemory[] = "ulimit -v 2500000; ";
#endif

TEST_F(TrainCommand, RunningOutOfMemoryIsOneLineNamingTheFix) {
  // 2.5 GB of address space: libtorch loads, a batch of 100,000 x ~200 tokens does not fit.
  const fs::path data = dir_.Write(
      "long.jsonl", "{\"prompt\": \"" + std::string(150, 'a') + "\", \"completion\": \"b\"}\n");
  const std::string run = (dir_.path() / "run").string();
  const auto result = RunCommand(
      {"/bin/bash", "-c", std::string(kLimitMemory) + "exec \"$0\" \"$@\"", TUNE_BINARY, "train",
       RunFile().string(), "-o", run, "dataset.path=" + data.string(), "dataset.eval_fraction=0",
       "train.seq_len=256", "train.batch_size=100000", "train.steps=1"});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_EQ(testing::CountLinesStartingWith(result.err, "error: out of memory while training"), 1)
      << result.err;
  EXPECT_NE(result.err.find("lower train.batch_size or train.seq_len; " + run +
                            " keeps what the run wrote\n"),
            std::string::npos)
      << result.err;
  EXPECT_EQ(result.err.find("frame #"), std::string::npos) << "no backtrace";
}

TEST_F(TrainCommand, SeqLenBeyondTheModelsPositionsIsRefused) {
  const auto result = RunTune(
      {"train", RunFile().string(), "-o", (dir_.path() / "run").string(), "train.seq_len=1000"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err,
            "error: train.seq_len = 1000 is longer than the model's max_position_embeddings (256); "
            "lower train.seq_len\n");
}

TEST(TrainExamples, PromptTokensAreMaskedUnlessTrainOnPrompt) {
  const TokenizedExample a{{1, 10, 11, 20, 21, 2}, {{3, 6}}, 1};
  const TokenizedExample b{{1, 12, 30, 2}, {{2, 4}}, 2};
  const Batch masked = MakeBatch({&a, &b}, false);
  EXPECT_TRUE(masked.inputs.equal(TwoRows({1, 10, 11, 20, 21, 1, 12, 30, 0, 0})));
  EXPECT_TRUE(masked.targets.equal(TwoRows({-100, -100, 20, 21, 2, -100, 30, 2, -100, -100})));
  EXPECT_EQ(masked.tokens, 8);
  EXPECT_EQ(masked.target_tokens, 5);
  const Batch all = MakeBatch({&a, &b}, true);
  EXPECT_TRUE(all.targets.equal(TwoRows({10, 11, 20, 21, 2, 12, 30, 2, -100, -100})));
  EXPECT_EQ(all.target_tokens, 8);
}

TEST(TrainExamples, EachEpochIsAPermutationFixedBySeedAndEpoch) {
  ExampleStream stream(7, 42), again(7, 42), other(7, 43);
  std::vector<int64_t> first, second;
  for (int64_t k = 0; k < 7; ++k) first.push_back(stream.At(k));
  for (int64_t k = 7; k < 14; ++k) second.push_back(stream.At(k));
  std::vector<int64_t> sorted = first;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_NE(first, second);
  EXPECT_EQ(again.At(9), second[2]);  // random access gives what sequential access gave
  bool differs = false;
  for (int64_t k = 0; k < 7; ++k) differs |= other.At(k) != first[k];
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace tune

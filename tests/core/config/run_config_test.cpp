#include "config/run_config.h"

#include <gtest/gtest.h>

#include "plugin_host/plugin_host.h"
#include "support/test_support.h"
#include "sweep/search.h"
#include "util/error.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// The DESIGN section 4 example, pointed at the config fixture plugins.
constexpr const char* kRunFile = R"(name = "rank"

[model]
plugin = "test_model"
path = "models/tiny"

[dataset]
plugin = "test_dataset"
path = "data/task.jsonl"
eval_fraction = 0.1

[adapter]
method = "test_lora"
rank = 8
alpha = 16
dropout = 0.05
targets = ["q_proj", "v_proj"]

[optimizer]
plugin = "test_optimizer"
lr = 2e-4
weight_decay = 0.0
schedule = "cosine"
warmup_steps = 10

[train]
steps = 200
batch_size = 8
seq_len = 128
seed = 0
device = "auto"

[[metrics]]
plugin = "exact_match"

[[metrics]]
plugin = "token_f1"
strip_articles = false

[sweep]
method = "random"
objective = { metric = "exact_match", goal = "maximize" }
max_trials = 8
parallel = 1

[sweep.parameters]
"adapter.rank" = [2, 4, 8, 16]
"adapter.alpha" = "2 * adapter.rank"
"optimizer.lr" = { distribution = "log_uniform", min = 1e-4, max = 1e-2 }

[sweep.early_stop]
type = "asha"
min_steps = 20
eta = 3
)";

class RunConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.Load({TUNE_BUILTIN_PLUGIN_DIR, fs::path(TUNE_FIXTURE_DIR) / "config_kinds.so"});
    ASSERT_TRUE(host_.failures().empty()) << host_.failures()[0].message;
    fs::create_directories(dir_.path() / "models/tiny");
    dir_.Write("data/task.jsonl", "{}\n");
  }

  // Writes `text` as run.toml and resolves it with `overrides`.
  RunConfig Resolve(const std::string& text, std::vector<std::string> overrides = {}) {
    const fs::path file = dir_.Write("rank.toml", text);
    const RunFile run_file = RunFile::Read(file, overrides);
    return run_file.Resolve(host_);
  }

  // The error message resolving `text` gives, with the file's path replaced by "FILE".
  std::string ErrorOf(const std::string& text, std::vector<std::string> overrides = {}) {
    try {
      Resolve(text, std::move(overrides));
    } catch (const UserError& e) {
      std::string message = e.what();
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      const std::string path = (dir_.path() / "rank.toml").string();
      for (size_t at; (at = message.find(path)) != std::string::npos;) {
        message.replace(at, path.size(), "FILE");
      }
      return message;
    }
    ADD_FAILURE() << "expected an error";
    return "";
  }

  // kRunFile with the first occurrence of `from` replaced by `to`.
  static std::string Edit(const std::string& from, const std::string& to) {
    std::string text = kRunFile;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.replace(at, from.size(), to);
  }

  TempDir dir_;
  PluginHost host_;
};

TEST_F(RunConfigTest, OverrideTextReadsBackAsTheSameValue) {
  EXPECT_EQ(OverrideText("adapter.rank", int64_t{16}), "adapter.rank=16");
  EXPECT_EQ(OverrideText("optimizer.lr", 0.0003), "optimizer.lr=0.0003");
  EXPECT_EQ(OverrideText("optimizer.lr", 2.0), "optimizer.lr=2.0");
  EXPECT_EQ(OverrideText("optimizer.schedule", std::string("cosine")),
            "optimizer.schedule=\"cosine\"");
  EXPECT_EQ(OverrideText("adapter.targets", std::vector<std::string>{"q_proj", "v_proj"}),
            "adapter.targets=[\"q_proj\",\"v_proj\"]");
  const RunConfig config = Resolve(
      kRunFile, {OverrideText("adapter.rank", int64_t{16}), OverrideText("adapter.alpha", 2.0),
                 OverrideText("optimizer.lr", 0.1 + 0.2),
                 OverrideText("adapter.targets", std::vector<std::string>{"o_proj"}),
                 OverrideText("optimizer.schedule", std::string("linear"))});
  EXPECT_EQ(config.adapter.options.Int("rank"), 16);
  EXPECT_EQ(config.adapter.options.Float("alpha"), 2.0);
  EXPECT_EQ(config.optimizer.lr, 0.1 + 0.2);  // bit for bit
  EXPECT_EQ(config.adapter.options.StringList("targets"), std::vector<std::string>{"o_proj"});
  EXPECT_EQ(config.optimizer.schedule, "linear");
}

TEST_F(RunConfigTest, ResolvesTheDesignExampleIntoTypedSections) {
  const RunConfig config = Resolve(kRunFile);
  EXPECT_EQ(config.name, "rank");
  EXPECT_EQ(config.model.plugin, "test_model");
  EXPECT_EQ(config.model.path, dir_.path() / "models/tiny");
  EXPECT_EQ(config.model.options.String("dtype"), "float32");
  EXPECT_EQ(config.dataset.path, dir_.path() / "data/task.jsonl");
  EXPECT_DOUBLE_EQ(config.dataset.eval_fraction, 0.1);
  EXPECT_FALSE(config.dataset.eval_path.has_value());
  EXPECT_EQ(config.adapter.method, "test_lora");
  EXPECT_EQ(config.adapter.options.Int("rank"), 8);
  EXPECT_DOUBLE_EQ(config.adapter.options.Float("alpha"), 16.0);
  EXPECT_EQ(config.adapter.options.StringList("targets"),
            (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_DOUBLE_EQ(config.optimizer.lr, 2e-4);
  EXPECT_EQ(config.optimizer.warmup_steps, 10);
  EXPECT_DOUBLE_EQ(config.optimizer.options.Float("beta1"), 0.9);
  EXPECT_EQ(config.train.steps, 200);
  EXPECT_EQ(config.train.device, "auto");
  ASSERT_EQ(config.metrics.size(), 2u);
  EXPECT_TRUE(config.metrics[0].options.Bool("strip_articles"));
  EXPECT_FALSE(config.metrics[1].options.Bool("strip_articles"));
  ASSERT_TRUE(config.sweep.has_value());
  EXPECT_EQ(config.sweep->objective_metric, "exact_match");
  EXPECT_EQ(config.sweep->objective_goal, MetricGoal::kMaximize);
  ASSERT_EQ(config.sweep->parameters.size(), 3u);
  EXPECT_EQ(config.sweep->early_stop, "asha");
  EXPECT_EQ(config.registry.location, ".tune/registry");
}

TEST_F(RunConfigTest, SweepParametersKeepTheirKinds) {
  const RunConfig config = Resolve(kRunFile);
  std::map<std::string, const SweepParameter*> by_path;
  for (const SweepParameter& p : config.sweep->parameters) by_path[p.path] = &p;
  EXPECT_EQ(by_path.at("adapter.rank")->kind, SweepParameter::Kind::kValues);
  EXPECT_EQ(by_path.at("adapter.rank")->values,
            (std::vector<OptionValue>{int64_t{2}, int64_t{4}, int64_t{8}, int64_t{16}}));
  EXPECT_EQ(by_path.at("adapter.alpha")->kind, SweepParameter::Kind::kExpression);
  EXPECT_EQ(by_path.at("adapter.alpha")->expression, "2 * adapter.rank");
  EXPECT_EQ(by_path.at("optimizer.lr")->distribution, "log_uniform");
  EXPECT_DOUBLE_EQ(by_path.at("optimizer.lr")->min, 1e-4);
  EXPECT_DOUBLE_EQ(by_path.at("optimizer.lr")->max, 1e-2);
}

TEST_F(RunConfigTest, FillsDefaultsForEverythingLeftOut) {
  const RunConfig config = Resolve(R"(
[model]
plugin = "test_model"
path = "models/tiny"
[dataset]
plugin = "test_dataset"
path = "data/task.jsonl"
[adapter]
method = "test_lora"
[optimizer]
plugin = "test_optimizer"
)");
  EXPECT_EQ(config.name, "rank");  // the file's stem
  EXPECT_EQ(config.train.steps, 200);
  EXPECT_EQ(config.train.batch_size, 8);
  EXPECT_EQ(config.optimizer.schedule, "cosine");
  EXPECT_EQ(config.adapter.options.Int("rank"), 8);
  EXPECT_FALSE(config.sweep.has_value());
  EXPECT_TRUE(config.metrics.empty());
  EXPECT_NE(config.resolved_toml.find("batch_size = 8"), std::string::npos) << config.resolved_toml;
  EXPECT_NE(config.resolved_toml.find("rank = 8"), std::string::npos) << config.resolved_toml;
}

TEST_F(RunConfigTest, UnknownKeyNamesFileLineColumnAndSuggestsTheClosestKey) {
  EXPECT_EQ(ErrorOf(Edit("rank = 8", "rnak = 8")),
            "FILE:14:1: unknown key 'adapter.rnak' (did you mean 'adapter.rank'?)");
}

TEST_F(RunConfigTest, UnknownSectionSuggestsTheClosestSection) {
  EXPECT_EQ(ErrorOf(Edit("[adapter]", "[adaptor]")),
            "FILE:12:2: unknown key 'adaptor' (did you mean 'adapter'?)");
}

TEST_F(RunConfigTest, UnknownPluginOptionSuggestsTheDeclaredOne) {
  EXPECT_EQ(ErrorOf(Edit("strip_articles = false", "strip_article = false")),
            "FILE:38:1: unknown key 'metrics[1].strip_article' (did you mean "
            "'metrics[1].strip_articles'?)");
}

TEST_F(RunConfigTest, WrongTypeSaysWhatWasExpectedAndWhatWasGiven) {
  EXPECT_EQ(ErrorOf(Edit("steps = 200", "steps = \"200\"")),
            "FILE:27:9: 'train.steps' must be an integer, got string \"200\"");
  EXPECT_EQ(ErrorOf(Edit("targets = [\"q_proj\", \"v_proj\"]", "targets = [\"q_proj\", 3]")),
            "FILE:17:22: every item of 'adapter.targets' must be a string, got integer 3");
}

TEST_F(RunConfigTest, OutOfRangeValueStatesTheRange) {
  EXPECT_EQ(ErrorOf(Edit("dropout = 0.05", "dropout = 1.5")),
            "FILE:16:11: 'adapter.dropout' = 1.5 is out of range: expected a float in [0, 1)");
  EXPECT_EQ(ErrorOf(Edit("rank = 8", "rank = 0")),
            "FILE:14:8: 'adapter.rank' = 0 is out of range: expected an integer in [1, 4096]");
}

TEST_F(RunConfigTest, ValueOutsideTheChoicesListsThemAndSuggests) {
  EXPECT_EQ(ErrorOf(Edit("device = \"auto\"", "device = \"cdua\"")),
            "FILE:31:10: 'train.device' = \"cdua\" is not one of auto, cpu, cuda (did you mean "
            "'cuda'?)");
}

TEST_F(RunConfigTest, DuplicateKeyIsMalformedTomlWithItsPosition) {
  const std::string message = ErrorOf(Edit("rank = 8", "rank = 8\nrank = 16"));
  EXPECT_EQ(message.rfind("FILE:15:8: invalid TOML: ", 0), 0u) << message;
  EXPECT_NE(message.find("rank"), std::string::npos) << message;
}

TEST_F(RunConfigTest, MalformedTomlGivesLineAndColumn) {
  const std::string message = ErrorOf(Edit("rank = 8", "rank = "));
  EXPECT_EQ(message.rfind("FILE:14:8: invalid TOML: ", 0), 0u) << message;
  EXPECT_NE(message.find("invalid TOML"), std::string::npos) << message;
}

TEST_F(RunConfigTest, MissingRequiredKeySaysWhereToAddIt) {
  EXPECT_EQ(ErrorOf(Edit("path = \"models/tiny\"\n", "")),
            "FILE:3:1: missing required key 'model.path'; add path = ... to [model] (Model "
            "directory in Hugging Face layout)");
}

TEST_F(RunConfigTest, UnknownPluginSuggestsAnInstalledOne) {
  EXPECT_EQ(ErrorOf(Edit("plugin = \"exact_match\"", "plugin = \"exact_mach\"")),
            "FILE:34:10: unknown metric plugin 'exact_mach' for 'metrics[0].plugin' (did you "
            "mean 'exact_match'?); installed: bleu, exact_match, rouge_l, token_f1");
}

TEST_F(RunConfigTest, PathThatDoesNotExistIsRefusedWhereItIsWritten) {
  const std::string message = ErrorOf(Edit("models/tiny", "models/huge"));
  EXPECT_EQ(message.rfind("FILE:5:8: 'model.path' names ", 0), 0u) << message;
  EXPECT_NE(message.find("models/huge, which does not exist"), std::string::npos) << message;
}

TEST_F(RunConfigTest, APathOfTheWrongKindSaysWhatToGiveInstead) {
  std::string message = ErrorOf(Edit("models/tiny", "data/task.jsonl"));
  EXPECT_EQ(message, "FILE:5:8: 'model.path' names " + (dir_.path() / "data/task.jsonl").string() +
                         ", which is a file; give the folder that holds it (" +
                         (dir_.path() / "data").string() + ")");
  message = ErrorOf(Edit("data/task.jsonl", "models"));
  EXPECT_NE(message.find("'dataset.path' names " + (dir_.path() / "models").string() +
                         ", which is a folder; give the data file itself"),
            std::string::npos)
      << message;
}

// People type key=value paths relative to where they are, not to where the run file is.
TEST_F(RunConfigTest, PathsGivenAsKeyValueAreRelativeToTheCurrentFolder) {
  const TempDir elsewhere;
  elsewhere.Write("other.jsonl", "{}\n");
  const fs::path before = fs::current_path();
  fs::current_path(elsewhere.path());
  RunConfig config;
  try {
    config = Resolve(kRunFile, {"dataset.path=other.jsonl", "registry.path=reg"});
  } catch (...) {
    fs::current_path(before);
    throw;
  }
  fs::current_path(before);
  EXPECT_EQ(config.dataset.path, elsewhere.path() / "other.jsonl");
  EXPECT_EQ(config.registry.location, (elsewhere.path() / "reg").string());
  EXPECT_EQ(config.model.path, dir_.path() / "models/tiny");  // written in the file
}

// What `tune sweep` would stop on is refused by `tune validate`, where the file sets it.
TEST_F(RunConfigTest, TiedParametersAreCheckedBeforeAnythingRuns) {
  const std::string tied = "\"adapter.alpha\" = \"2 * adapter.rank\"";
  EXPECT_EQ(
      ErrorOf(Edit("\"adapter.rank\" = [2, 4, 8, 16]", "\"adapter.rank\" = \"adapter.alpha\"")),
      "FILE:48:1: sweep expression \"2 * adapter.rank\" refers to 'adapter.rank', which is tied "
      "itself; tied parameters refer to listed or sampled parameters only");
  EXPECT_EQ(ErrorOf(Edit(tied, "\"adapter.alpha\" = \"2 * * adapter.rank\"")),
            "FILE:48:1: sweep expression \"2 * * adapter.rank\", column 5: expected a number or a "
            "key");
  EXPECT_EQ(ErrorOf(Edit(tied, "\"adapter.alpha\" = \"adapter.rank / (adapter.rank - 4) + 2\"")),
            "FILE:48:1: sweep expression \"adapter.rank / (adapter.rank - 4) + 2\" gives inf at "
            "adapter.rank = 4; it must give a finite number");
  EXPECT_EQ(ErrorOf(Edit(tied, "\"adapter.alpha\" = \"adapter.rank - 10\"")),
            "FILE:48:1: sweep expression \"adapter.rank - 10\" gives -8 at adapter.rank = 2, "
            "outside the range of 'adapter.alpha', (0, 1000000]");
  EXPECT_EQ(ErrorOf(Edit(tied, tied + "\n\"train.steps\" = \"adapter.rank / 3 + 10\"")),
            "FILE:49:1: sweep expression \"adapter.rank / 3 + 10\" gives 10.666666666666666 at "
            "adapter.rank = 2, but 'train.steps' takes integers");
  EXPECT_EQ(ErrorOf(Edit("method = \"random\"", "method = \"grid\"")),
            "FILE:40:1: sweep parameter 'optimizer.lr' is a log_uniform distribution, which a grid "
            "cannot enumerate; give a list of values, or use sweep.method = \"random\" or "
            "\"tpe\"");
}

// A grid runs every point unless max_trials says otherwise, and the resolved config says how many;
// one too large to run is refused where its parameters are, with its size, before anything is
// enumerated (10^12 points once ran out of memory, 10^7 took gigabytes to validate).
TEST_F(RunConfigTest, AGridRunsEveryPointAndOneTooLargeIsRefusedWithItsSize) {
  std::string grid = Edit("method = \"random\"", "method = \"grid\"");
  grid.replace(grid.find("max_trials = 8\n"), 15, "");
  const std::string lr =
      "\"optimizer.lr\" = { distribution = \"log_uniform\", min = 1e-4, max = 1e-2 }";
  std::string ten = "[";
  for (int i = 1; i <= 10; ++i) ten += std::to_string(i) + (i < 10 ? ", " : "]");
  std::string keys;
  for (const char* key : {"train.steps", "train.batch_size", "train.seq_len", "train.seed",
                          "optimizer.warmup_steps"}) {
    // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on the chain of + here.
    keys.append("\"").append(key).append("\" = ").append(ten).append("\n");
  }
  std::string million = grid;
  million.replace(million.find(lr), lr.size(), keys);
  const RunConfig config = Resolve(million);
  EXPECT_EQ(config.sweep->max_trials, 0);
  EXPECT_EQ(SweepConfigurations(*config.sweep), 400'000);  // 4 ranks x 10^5
  EXPECT_NE(config.resolved_toml.find("max_trials = 400000"), std::string::npos)
      << config.resolved_toml;

  std::string too_large = grid;
  too_large.replace(too_large.find(lr), lr.size(),
                    keys +
                        "\"adapter.dropout\" = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, "
                        "0.7, 0.8, 0.9]\n\"optimizer.weight_decay\" = [0.0, 0.1, "
                        "0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]\n");
  EXPECT_EQ(ErrorOf(too_large),
            "FILE:45:1: the grid of sweep.parameters has 40,000,000 points (10 x 4 x 10 x 10 x 10 "
            "x 10 x 10 x 10), more than the 1,000,000 configurations a sweep runs; list fewer "
            "values, use sweep.method = \"random\" or \"tpe\", or set sweep.max_trials to run "
            "the first ones");
  // With max_trials it runs the first ones, however large the grid.
  EXPECT_EQ(SweepConfigurations(*Resolve(too_large, {"sweep.max_trials=8"}).sweep), 8);
}

// A run folder's run.toml from an older tune (17-digit floats, other layout) is the same config.
TEST(SameResolvedConfig, ComparesValuesNotText) {
  EXPECT_TRUE(SameResolvedConfig("[optimizer]\nlr = 0.0030000000000000001\nbeta1 = 0.9\n",
                                 "[optimizer]\nbeta1 = 0.9\nlr = 0.003\n"));
  EXPECT_FALSE(SameResolvedConfig("[optimizer]\nlr = 0.003\n", "[optimizer]\nlr = 0.004\n"));
  EXPECT_FALSE(SameResolvedConfig("not toml [", "[optimizer]\nlr = 0.003\n"));
}

TEST_F(RunConfigTest, InvalidNameIsRefused) {
  EXPECT_EQ(ErrorOf(Edit("name = \"rank\"", "name = \"Rank Sweep\"")),
            "FILE:1:8: 'name' = \"Rank Sweep\" is not a valid adapter name; use lower-case "
            "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 "
            "characters");
}

TEST_F(RunConfigTest, OverridesAreTypedByTheKeyTheyTarget) {
  const RunConfig config =
      Resolve(kRunFile, {"adapter.rank=32", "train.device=cpu", "optimizer.lr=1e-3",
                         "adapter.alpha=8", "adapter.targets=[\"o_proj\"]", "train.seed=7"});
  EXPECT_EQ(config.adapter.options.Int("rank"), 32);
  EXPECT_EQ(config.train.device, "cpu");
  EXPECT_DOUBLE_EQ(config.optimizer.lr, 1e-3);
  EXPECT_DOUBLE_EQ(config.adapter.options.Float("alpha"), 8.0);  // an integer where a float goes
  EXPECT_EQ(config.adapter.options.StringList("targets"), (std::vector<std::string>{"o_proj"}));
  EXPECT_EQ(config.train.seed, 7);
  EXPECT_NE(config.resolved_toml.find("rank = 32"), std::string::npos);
}

TEST_F(RunConfigTest, OverrideErrorsNameTheArgument) {
  EXPECT_EQ(ErrorOf(kRunFile, {"adapter.rank=abc"}),
            "argument 'adapter.rank=abc': 'adapter.rank' must be an integer, got string \"abc\"");
  EXPECT_EQ(ErrorOf(kRunFile, {"adapter.rnak=4"}),
            "argument 'adapter.rnak=4': unknown key 'adapter.rnak' (did you mean "
            "'adapter.rank'?)");
  EXPECT_EQ(ErrorOf(kRunFile, {"adapter.rank"}),
            "argument 'adapter.rank': expected key=value, for example adapter.rank=16");
  EXPECT_EQ(ErrorOf(kRunFile, {"train.steps.x=1"}),
            "argument 'train.steps.x=1': 'train.steps' is integer, not a table; this key cannot "
            "be overridden from the command line");
}

TEST_F(RunConfigTest, SweepParameterMustNameAKeyOfTheRun) {
  EXPECT_EQ(ErrorOf(Edit("\"adapter.rank\" = [2", "\"adapter.rnak\" = [2")),
            "FILE:47:1: sweep parameter 'adapter.rnak' is not a key of this run (did you mean "
            "'adapter.rank'?); parameters name keys such as adapter.rank or optimizer.lr");
}

TEST_F(RunConfigTest, SweepValuesAreCheckedAgainstTheTargetKey) {
  EXPECT_EQ(ErrorOf(Edit("[2, 4, 8, 16]", "[0, 4, 8, 16]")),
            "FILE:47:19: 'adapter.rank' = 0 is out of range: expected an integer in [1, 4096]");
}

TEST_F(RunConfigTest, TiedParameterMustReferToKeysOfTheRun) {
  EXPECT_EQ(ErrorOf(Edit("2 * adapter.rank", "2 * adapter.rnk")),
            "FILE:48:1: 'sweep.parameters.\"adapter.alpha\"' refers to 'adapter.rnk', which is "
            "not a key of this run (did you mean 'adapter.rank'?)");
}

TEST_F(RunConfigTest, DistributionsAreChecked) {
  EXPECT_EQ(ErrorOf(Edit("min = 1e-4", "min = 0.0")),
            "FILE:49:1: 'sweep.parameters.\"optimizer.lr\"' is log_uniform, so min must be > 0");
  EXPECT_EQ(ErrorOf(Edit("log_uniform", "int_uniform")),
            "FILE:49:1: 'sweep.parameters.\"optimizer.lr\"' is int_uniform, but 'optimizer.lr' "
            "is a float; use uniform or log_uniform");
  EXPECT_EQ(ErrorOf(Edit("log_uniform", "log_unifrom")),
            "FILE:49:35: 'sweep.parameters.\"optimizer.lr\".distribution' = \"log_unifrom\" is "
            "not one of uniform, log_uniform, int_uniform, categorical (did you mean "
            "'log_uniform'?)");
}

TEST_F(RunConfigTest, SweepObjectiveMustBeAMeasuredMetric) {
  EXPECT_EQ(ErrorOf(Edit("metric = \"exact_match\", goal", "metric = \"bleu\", goal")),
            "FILE:42:24: 'sweep.objective.metric' = \"bleu\" is not measured by this run; "
            "available: eval_loss, exact_match, perplexity, token_f1 (add it under [[metrics]])");
}

TEST_F(RunConfigTest, ObjectiveGoalDefaultsToTheMetricsOwn) {
  const RunConfig config = Resolve(
      Edit("{ metric = \"exact_match\", goal = \"maximize\" }", "{ metric = \"eval_loss\" }"));
  EXPECT_EQ(config.sweep->objective_goal, MetricGoal::kMinimize);
}

TEST_F(RunConfigTest, PluginPathsResolveAgainstTheFilesFolder) {
  const fs::path file = dir_.Write("sub/run.toml", "[plugins]\npaths = [\"my-plugins\"]\n");
  EXPECT_EQ(RunFile::Read(file, {}).PluginPaths(),
            (std::vector<fs::path>{dir_.path() / "sub/my-plugins"}));
}

TEST_F(RunConfigTest, MissingFileIsAUserError) {
  EXPECT_THROW(RunFile::Read(dir_.path() / "absent.toml", {}), UserError);
}

// The issue's example reads as written: every key typed, the rest Slurm's defaults.
TEST_F(RunConfigTest, ASlurmExecutorReadsAsWritten) {
  std::string text = kRunFile;
  text += R"(
[sweep.executor]
kind = "slurm"
partition = "gpu"
gres = "gpu:1"
time = "02:00:00"
cpus_per_task = 8
mem = "64G"
array_parallelism = 16
max_retries = 2
sbatch_args = ["--account=ml", "--qos=normal"]
)";
  const RunConfig config = Resolve(text);
  const ExecutorConfig& executor = config.sweep->executor;
  EXPECT_EQ(executor.kind, "slurm");
  EXPECT_EQ(executor.partition, "gpu");
  EXPECT_EQ(executor.gres, "gpu:1");
  EXPECT_EQ(executor.time, "02:00:00");
  EXPECT_EQ(executor.cpus_per_task, 8);
  EXPECT_EQ(executor.mem, "64G");
  EXPECT_EQ(executor.array_parallelism, 16);
  EXPECT_EQ(executor.max_retries, 2);
  EXPECT_EQ(executor.sbatch_args, (std::vector<std::string>{"--account=ml", "--qos=normal"}));
  EXPECT_EQ(executor.heartbeat_timeout_seconds, 120);
  EXPECT_NE(executor.wheres.at("partition").find("rank.toml:58:"), std::string::npos)
      << executor.wheres.at("partition");
  // Without the table: local, and array_parallelism follows sweep.parallel.
  const RunConfig local = Resolve(kRunFile, {"sweep.parallel=3"});
  EXPECT_EQ(local.sweep->executor.kind, "local");
  EXPECT_EQ(local.sweep->executor.array_parallelism, 3);
}

TEST_F(RunConfigTest, ExecutorValuesSlurmWouldRefuseAreRefusedWhereTheyAreWritten) {
  const auto slurm = [](const char* keys) {
    std::string text = kRunFile;
    text += "\n[sweep.executor]\nkind = \"slurm\"\n";
    text += keys;
    return text;
  };
  EXPECT_EQ(ErrorOf(slurm("time = \"2 hours\"\n")),
            "FILE:58:8: 'sweep.executor.time' = \"2 hours\" is not a Slurm time limit; write "
            "minutes (\"90\"), \"HH:MM:SS\" or \"D-HH:MM:SS\"");
  EXPECT_EQ(ErrorOf(slurm("mem = \"64 GB\"\n")),
            "FILE:58:7: 'sweep.executor.mem' = \"64 GB\" is not a Slurm memory size; write "
            "megabytes (\"4000\") or a number with K, M, G or T (\"64G\")");
  // Every form sbatch --time and --mem take, and near misses.
  for (const char* time : {"90", "10:30", "2:00:00", "1-12", "1-12:30", "1-12:30:15"}) {
    EXPECT_NO_THROW(Resolve(slurm(("time = \"" + std::string(time) + "\"\n").c_str()))) << time;
  }
  for (const char* time : {"1-", "-5", "1:2:3:4", "1-2-3", "1-2:3:4:5", "1:", "a:10"}) {
    EXPECT_NE(ErrorOf(slurm(("time = \"" + std::string(time) + "\"\n").c_str())).find("time limit"),
              std::string::npos)
        << time;
  }
  for (const char* mem : {"4000", "64G", "512M", "1T", "100K"}) {
    EXPECT_NO_THROW(Resolve(slurm(("mem = \"" + std::string(mem) + "\"\n").c_str()))) << mem;
  }
  for (const char* mem : {"G", "64GB", "6.4G", "-1", "64g"}) {
    EXPECT_NE(ErrorOf(slurm(("mem = \"" + std::string(mem) + "\"\n").c_str())).find("memory size"),
              std::string::npos)
        << mem;
  }
  EXPECT_EQ(ErrorOf(slurm("sbatch_args = [\"--array=1-4\"]\n")),
            "FILE:58:15: 'sweep.executor.sbatch_args' sets --array, which tune sets for its "
            "trials; remove it (the keys of [sweep.executor] set the rest)");
  EXPECT_EQ(ErrorOf(slurm("kindd = \"x\"\n")),
            "FILE:58:1: unknown key 'sweep.executor.kindd' (did you mean 'sweep.executor.kind'?)");
  std::string local = kRunFile;
  local += "\n[sweep.executor]\npartition = \"gpu\"\n";
  EXPECT_EQ(ErrorOf(local),
            "FILE:57:13: 'sweep.executor.partition' is a Slurm setting and this sweep runs "
            "locally; set kind = \"slurm\" or remove it");
  EXPECT_EQ(ErrorOf(kRunFile, {"sweep.executor.kind=slurn"}),
            "argument 'sweep.executor.kind=slurn': 'sweep.executor.kind' = \"slurn\" is not one "
            "of local, slurm (did you mean 'slurm'?)");
}

}  // namespace
}  // namespace tune

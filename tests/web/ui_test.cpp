// What a person sees in the web view: gains coloured by each metric's direction, a sweep's
// objective, configurations (mean, deviation and an interval within the score's bounds), seeds and
// killed trials, pages of versions, and numbers as people read them. The API is called in-process
// (web/api.h); the pages in Debian's chromium through tests/tools/js/view.mjs.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "registry/local_registry.h"
#include "registry/registry_test_util.h"
#include "support/test_support.h"
#include "web/api.h"
#include "web/server.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::TempDir;

// 55 versions of "other" (more than a page), one "tuned" version whose eval loss fell from 7.53 to
// 0.24, and sweep rank-1: ranks 2 and 16, three seeds each, exact match near 100% for rank 16,
// with trial 7 left running by a process that has ended.
class WebView : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = LocalRegistry::Open(RegistryDir(), Registry::OpenMode::kCreate);
    for (int i = 1; i <= 55; ++i) Add("other", testing::SampleRecord(8, 0.01 * i));

    VersionRecord tuned = testing::SampleRecord(8, 0.9);
    tuned.scores["eval_loss"] = 0.24;
    tuned.base_scores["eval_loss"] = 7.53;
    tuned.score_scales["eval_loss"] = {"minimize", 0.0, std::nullopt};
    tuned.tokens_per_second = 1234.5678;
    tuned.few_shot = 3;
    tuned.few_shot_scores["exact_match"] = 0.95;  // prompting did better than tuning here
    Add("tuned", tuned);

    const double scores[2][3] = {{0.40, 0.50, 0.45}, {0.95, 0.99, 1.0}};
    for (int configuration = 1; configuration <= 2; ++configuration) {
      const int64_t rank = configuration == 1 ? 2 : 16;
      for (int seed = 0; seed < 3; ++seed) {
        const int64_t trial = 3 * (configuration - 1) + seed + 1;
        RunInfo info{"rank", "rank-1", trial, "[adapter]\nrank = " + std::to_string(rank) + "\n"};
        info.params = {{"adapter.rank", rank}};
        info.configuration = configuration;
        info.seed = seed;
        info.objective = "exact_match";
        info.objective_goal = "maximize";
        const std::string run = registry_->CreateRun(info);
        registry_->FinishRun(run, RunStatus::kFinished);
        VersionRecord record = testing::SampleRecord(rank, scores[configuration - 1][seed]);
        record.sweep = "rank-1";
        record.trial = trial;
        record.configuration = configuration;
        record.seed = seed;
        record.run_id = run;
        record.few_shot = 4;
        record.few_shot_scores["exact_match"] = 0.2;
        Add("rank", record);
      }
    }
    // Sweep slurm-1's trial 1 under Slurm: preempted on node7, finished on node8, one task.
    for (const int64_t attempt : {1, 2}) {
      RunInfo info{"slurm", "slurm-1", 1, "[adapter]\nrank = 4\n"};
      info.params = {{"adapter.rank", int64_t{4}}};
      info.node = attempt == 1 ? "node7" : "node8";
      info.job = "12_1";
      info.attempt = attempt;
      const std::string run = registry_->CreateRun(info);
      if (attempt == 1) {
        registry_->FinishRun(run, RunStatus::kKilled, "Slurm: PREEMPTED, task 12_1 on node7",
                             "preempted");
      } else {
        registry_->FinishRun(run, RunStatus::kFinished);
      }
    }
    // Trial 7's sweep was killed: its run says running, and its process is gone.
    const auto abandoned = testing::RunCommand(
        {TUNE_REGISTRY_TEST_WRITER, "run", RegistryDir().string(), "rank-1", "7"});
    ASSERT_EQ(abandoned.exit_code, 0) << abandoned.err;
  }

  void Add(const std::string& name, const VersionRecord& record) {
    const std::string folder = "a" + std::to_string(++artifacts_);
    registry_->Register(name, record, testing::MakeArtifact(dir_.path() / folder, folder));
  }

  json Get(const std::string& path, const std::map<std::string, std::string>& query = {}) {
    const Api api(*registry_, ServerAccess{"token"}, ServerNames{"http", 1, {"127.0.0.1"}});
    HttpRequest request;
    request.method = "GET";
    request.path = path;
    request.query = query;
    request.headers = {{"host", "127.0.0.1:1"}, {"authorization", "Bearer token"}};
    const HttpResponse response = api.Handle(request);
    EXPECT_EQ(response.status, 200) << response.body;
    return json::parse(response.body);
  }

  fs::path RegistryDir() const { return dir_.path() / "registry"; }

  TempDir dir_;
  std::unique_ptr<LocalRegistry> registry_;
  int artifacts_ = 0;
};

TEST_F(WebView, EveryScoreCarriesItsDirectionSoAGainIsReadByIt) {
  const json page = Get("/api/versions", {{"name", "tuned"}});
  bool seen = false;
  for (const json& version : page["versions"]) {
    if (version["name"] != "tuned") continue;
    seen = true;
    EXPECT_EQ(version["score_scales"]["eval_loss"]["goal"], "minimize") << version.dump(2);
    EXPECT_EQ(version["score_scales"]["exact_match"]["goal"], "maximize") << version.dump(2);
    EXPECT_EQ(version["score_scales"]["exact_match"]["max"], 1.0) << version.dump(2);
  }
  EXPECT_TRUE(seen) << page.dump(2);
}

// A sweep says what it optimises, each trial its configuration and seed (typed, for running trials
// too), and each configuration its mean, deviation and interval over the seeds, as `tune sweep`
// ranks them; exact match's interval stays within [0, 1] where Student's t alone passes 100%.
TEST_F(WebView, ASweepGivesItsObjectiveSeedsAndEachConfigurationsBoundedInterval) {
  const json sweep = Get("/api/sweeps/rank-1");
  EXPECT_EQ(sweep["objective"], json({{"metric", "exact_match"}, {"goal", "maximize"}}));
  EXPECT_EQ(sweep["intervals"]["exact_match"], "95% CI (t, in [0, 1])");
  ASSERT_EQ(sweep["trials"].size(), 7u) << sweep.dump(2);
  EXPECT_EQ(sweep["trials"][1]["seed"], 1);
  EXPECT_EQ(sweep["trials"][4]["configuration"], 2);
  ASSERT_EQ(sweep["configurations"].size(), 3u) << sweep["configurations"].dump(2);
  const json& rank16 = sweep["configurations"][1];
  EXPECT_EQ(rank16["params"]["adapter.rank"], 16);
  EXPECT_EQ(rank16["finished"], 3);
  const json& exact = rank16["scores"]["exact_match"];
  EXPECT_NEAR(exact["mean"].get<double>(), (0.95 + 0.99 + 1.0) / 3, 1e-12);
  EXPECT_GT(exact["stddev"].get<double>(), 0.0);
  EXPECT_EQ(exact["ci95_high"].get<double>(), 1.0);  // t alone: 1.06
  EXPECT_LT(exact["ci95_low"].get<double>(), 0.95);
}

// A trial that ran under Slurm says where, and every attempt why it ended; a local sweep's trials
// have no job.
TEST_F(WebView, ASlurmTrialSaysWhereItRanAndWhyEachAttemptEnded) {
  const json trial = Get("/api/sweeps/slurm-1")["trials"][0];
  EXPECT_EQ(trial["node"], "node8");
  EXPECT_EQ(trial["job"], "12_1");
  EXPECT_EQ(trial["attempt"], 2);
  ASSERT_EQ(trial["attempts"].size(), 2u) << trial.dump(2);
  EXPECT_EQ(trial["attempts"][0]["end_reason"], "preempted");
  EXPECT_EQ(trial["attempts"][0]["node"], "node7");
  EXPECT_EQ(trial["attempts"][0]["error"], "Slurm: PREEMPTED, task 12_1 on node7");
  EXPECT_EQ(trial["attempts"][1]["end_reason"], "finished");
  EXPECT_EQ(Get("/api/sweeps/rank-1")["trials"][0]["job"], "");
}

// A version registered without its run (by an older tune) is a finished trial of its
// configuration.
TEST_F(WebView, AVersionWithoutItsRunIsAFinishedTrialOfItsConfiguration) {
  VersionRecord record = testing::SampleRecord(2, 0.55);
  record.sweep = "rank-1";
  record.trial = 8;
  record.configuration = 1;
  record.seed = 3;
  Add("rank", record);
  const json sweep = Get("/api/sweeps/rank-1");
  ASSERT_EQ(sweep["trials"].size(), 8u) << sweep.dump(2);
  EXPECT_EQ(sweep["trials"][7]["trial"], 8);
  EXPECT_EQ(sweep["trials"][7]["status"], "finished");
  EXPECT_EQ(sweep["trials"][7]["seed"], 3);
  EXPECT_EQ(sweep["configurations"][0]["trials"], json({1, 2, 3, 8}));
  EXPECT_EQ(sweep["configurations"][0]["finished"], 4);
}

// A trial whose sweep was killed (and not resumed) is killed, not running forever; nothing about it
// depends on how long ago it last logged.
TEST_F(WebView, ATrialWhoseProcessIsGoneIsKilledNotRunning) {
  const json sweep = Get("/api/sweeps/rank-1");
  ASSERT_EQ(sweep["trials"].size(), 7u) << sweep.dump(2);
  const json& abandoned = sweep["trials"][6];
  EXPECT_EQ(abandoned["trial"], 7);
  EXPECT_EQ(abandoned["status"], "killed");
  EXPECT_NE(abandoned["error"].get<std::string>().find("its process ended"), std::string::npos);
  const json run = Get("/api/runs/" + abandoned["run_id"].get<std::string>());
  EXPECT_EQ(run["shown_status"], "killed");
  EXPECT_EQ(run["status"], "running");  // as recorded: what a registry's client reads
  EXPECT_EQ(sweep["trials"][0]["status"], "finished");
}

// The pages in a real browser: the adapters page colours a fall in eval loss green and pages
// through 62 versions; a version's tokens/s reads 1,235; the sweep page charts the objective on a
// log axis over ranks 2 to 16, lists each configuration with its interval named, each trial's seed,
// and the killed trial as killed.
TEST_F(WebView, ThePagesReadGainsPagesSweepsAndNumbersAsAPersonWouldInARealBrowser) {
  ServeOptions options;
  options.registry = RegistryDir();
  options.port = 0;
  options.token = "token";
  const std::unique_ptr<WebServer> server = WebServer::Start(options);
  const auto run = testing::RunCommand(
      {TUNE_NODE, TUNE_SOURCE_DIR "/tests/tools/js/view.mjs", server->url(), "token"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json seen = json::parse(run.out);
  ASSERT_FALSE(seen.contains("error")) << seen.dump(2);
  EXPECT_EQ(seen["page_errors"].size(), 0u) << seen.dump(2);

  EXPECT_EQ(seen["eval_loss_gain"], json({{"text", "-7.29"}, {"class", "num gain gain-up"}}))
      << seen.dump(2);
  EXPECT_EQ(seen["first_page"], "versions 1–50 of 62");
  EXPECT_EQ(seen["first_page_rows"], 50);
  EXPECT_EQ(seen["second_page"], "versions 51–62 of 62");
  EXPECT_EQ(seen["second_page_rows"], 12);
  EXPECT_EQ(seen["tokens_per_second"], "1,235");
  EXPECT_EQ(seen["version_gain_class"], "num gain gain-up");
  EXPECT_EQ(seen["score_headers"],
            json({"metric", "base", "tuned", "gain", "base, 3-shot", "vs 3-shot"}));
  EXPECT_EQ(seen["few_shot_gain"], json({{"text", "-0.05"}, {"class", "num gain gain-down"}}))
      << seen.dump(2);
  EXPECT_EQ(seen["list_few_shot_gain"], json({{"text", "-0.05"}, {"class", "num gain gain-down"}}))
      << seen.dump(2);

  EXPECT_NE(seen["objective"].get<std::string>().find("objective: exact_match (higher is better)"),
            std::string::npos)
      << seen["objective"];
  EXPECT_EQ(seen["chart_titles"], json({"exact_match against adapter.rank"}));
  EXPECT_EQ(seen["chart_log_x"], json({"true"}));
  // The baselines every trial is measured against, as level lines.
  EXPECT_EQ(seen["chart_legend"],
            json({"exact_match, mean", "each trial", "base model", "base model, few-shot"}))
      << seen.dump(2);
  EXPECT_EQ(seen["interval_header"], "95% CI (t, in [0, 1])");
  // Best first: rank 16, then rank 2; the killed trial's configuration has no finished seed.
  EXPECT_EQ(seen["configurations"], json({"2", "1", "7"})) << seen.dump(2);
  EXPECT_EQ(seen["rank16_interval"], "0.9143 to 1") << seen.dump(2);
  EXPECT_EQ(seen["seeds"], json({"0", "1", "2", "0", "1", "2", "0"}));
  EXPECT_EQ(seen["statuses"], json({"finished", "finished", "finished", "finished", "finished",
                                    "finished", "killed"}));
  EXPECT_EQ(seen["rank_where"], json::array()) << "a local sweep's page shows no Slurm columns";
  // A Slurm sweep's trial: where it ran, its attempts' ends, and each attempt on hovering.
  EXPECT_EQ(seen["slurm_where"], json({"node8 (job 12_1)"}));
  EXPECT_EQ(seen["slurm_attempts"], json({"preempted, finished"}));
  EXPECT_EQ(seen["slurm_attempts_title"],
            "1. node7 (job 12_1): preempted (Slurm: PREEMPTED, task 12_1 on node7)\n"
            "2. node8 (job 12_1): finished");
}

}  // namespace
}  // namespace tune

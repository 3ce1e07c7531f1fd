// `tune adapters ...`, `tune fetch`, `tune registry ...` run as a user runs them. There is no
// trainer yet, so the versions are registered through the library.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "registry/local_registry.h"
#include "registry/registry.h"
#include "registry/registry_test_util.h"
#include "support/test_support.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::CountLinesStartingWith;
using testing::MakeArtifact;
using testing::RunTune;
using testing::SampleRecord;
using testing::TempDir;

class RegistryCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto registry = Registry::Open(registry_, Registry::OpenMode::kCreate);
    registry->Register("rank", SampleRecord(4, 0.5), MakeArtifact(dir_.path() / "a1", "rank 4"));
    registry->Register("rank", SampleRecord(16, 0.875),
                       MakeArtifact(dir_.path() / "a2", "rank 16"));
    registry->Register("lr", SampleRecord(8, 0.25), MakeArtifact(dir_.path() / "a3", "lr"));
    registry->MoveAlias("rank", "production", 1);
  }
  testing::CommandResult Tune(std::vector<std::string> args) {
    return RunTune(args, {{"TUNE_REGISTRY", registry_.string()}, {"TUNE_PLUGIN_PATH", ""}});
  }
  // Exit code 1 and exactly one line, the error.
  static void ExpectOneErrorLine(const testing::CommandResult& result, const std::string& error) {
    EXPECT_EQ(result.exit_code, 1) << result.out;
    EXPECT_EQ(result.err, "error: " + error + "\n");
  }

  TempDir dir_;
  fs::path registry_ = dir_.path() / "registry";
};

TEST_F(RegistryCommandsTest, AdaptersLsListsEveryVersionWithAliasesAndScores) {
  const auto result = Tune({"adapters", "ls"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(CountLinesStartingWith(result.out, "VERSION  ALIASES     CREATED (UTC)"), 1)
      << result.out;
  EXPECT_EQ(CountLinesStartingWith(result.out, "lr:1     -           "), 1) << result.out;
  EXPECT_EQ(CountLinesStartingWith(result.out, "rank:1   production  "), 1) << result.out;
  EXPECT_EQ(CountLinesStartingWith(result.out, "rank:2   -           "), 1) << result.out;
  EXPECT_NE(result.out.find("exact_match=0.875 token_f1=0.975"), std::string::npos) << result.out;
}

TEST_F(RegistryCommandsTest, AdaptersLsFiltersSortsAndPrintsJson) {
  auto result =
      Tune({"adapters", "ls", "--filter", "scores.exact_match > 0.3 and adapter.rank >= 4",
            "--sort", "-scores.exact_match", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json json = nlohmann::json::parse(result.out);
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[0]["name"], "rank");
  EXPECT_EQ(json[0]["version"], 2);
  EXPECT_EQ(json[0]["params"]["adapter.rank"], 16);
  EXPECT_EQ(json[1]["version"], 1);
  result = Tune({"adapters", "ls", "lr", "--json"});
  EXPECT_EQ(nlohmann::json::parse(result.out).size(), 1u);
}

TEST_F(RegistryCommandsTest, AdaptersLsFilterErrorIsOneLineNamingTheColumn) {
  ExpectOneErrorLine(
      Tune({"adapters", "ls", "--filter", "adapter.rank >"}),
      "filter `adapter.rank >`, column 15: expected a value after '>', found the "
      "end; write comparisons like `scores.exact_match > 0.8 and adapter.rank = 16`");
}

TEST_F(RegistryCommandsTest, AdaptersShowPrintsTheLineageAndJsonIsTheRecord) {
  auto result = Tune({"adapters", "show", "rank@production"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(CountLinesStartingWith(result.out, "version  "), 1) << result.out;
  EXPECT_NE(result.out.find("rank:1"), std::string::npos);
  EXPECT_NE(result.out.find("score exact_match"), std::string::npos);
  EXPECT_NE(result.out.find("0.5 (base model 0.1, gain +0.4)"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("adapter_model.safetensors"), std::string::npos);

  result = Tune({"adapters", "show", "rank:2", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  auto registry = Registry::Open(registry_, Registry::OpenMode::kReadOnly);
  EXPECT_EQ(VersionRecordFromJson(result.out), registry->Resolve("rank:2"));
}

TEST_F(RegistryCommandsTest, UnknownNamesVersionsAndBadReferencesAreOneLine) {
  ExpectOneErrorLine(Tune({"adapters", "show", "rnak"}),
                     "no adapter named 'rnak' in registry " + registry_.string() +
                         " (did you mean 'rank'?); `tune adapters ls` lists them");
  ExpectOneErrorLine(Tune({"adapters", "show", "rank:9"}),
                     "adapter 'rank' has no version 9 in registry " + registry_.string() +
                         "; its versions are 1 to 2");
  const auto result = Tune({"fetch", "rank:x", "-o", (dir_.path() / "out").string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(CountLinesStartingWith(result.err, "error: invalid adapter reference 'rank:x'"), 1);
  EXPECT_FALSE(fs::exists(dir_.path() / "out"));
}

TEST_F(RegistryCommandsTest, AdaptersDiffShowsParamAndScoreChanges) {
  auto result = Tune({"adapters", "diff", "rank:1", "rank:2"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(CountLinesStartingWith(result.out, "adapter.rank "), 1) << result.out;
  EXPECT_EQ(CountLinesStartingWith(result.out, "config.adapter.rank "), 1) << result.out;
  std::istringstream lines(result.out);
  std::vector<std::string> fields;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("scores.exact_match ", 0) != 0) continue;
    std::istringstream words(line);
    for (std::string word; words >> word;) fields.push_back(word);
  }
  EXPECT_EQ(fields, (std::vector<std::string>{"scores.exact_match", "0.5", "0.875", "+0.375"}))
      << result.out;
  result = Tune({"adapters", "diff", "rank:1", "rank:2", "--json"});
  const nlohmann::json json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["from"], "rank:1");
  EXPECT_EQ(json["params"][1]["key"], "adapter.rank");
  EXPECT_EQ(json["params"][1]["to"], "16");
  EXPECT_EQ(json["files_changed"], nlohmann::json::array({"adapter_model.safetensors"}));
}

TEST_F(RegistryCommandsTest, PromoteMovesTheAliasAndHistoryShowsIt) {
  auto result = Tune({"adapters", "promote", "rank:2", "production", "--expect-version", "1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "rank@production: version 1 -> version 2\n");
  result = Tune({"adapters", "promote", "rank:1", "staging"});
  EXPECT_EQ(result.out, "rank@staging: unset -> version 1\n");
  result = Tune({"adapters", "history", "rank", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json moves = nlohmann::json::parse(result.out);
  ASSERT_EQ(moves.size(), 3u);
  EXPECT_EQ(moves[1]["alias"], "production");
  EXPECT_EQ(moves[1]["old_version"], 1);
  EXPECT_EQ(moves[1]["new_version"], 2);
  EXPECT_TRUE(moves[2]["old_version"].is_null());
  result = Tune({"adapters", "history", "rank"});
  EXPECT_EQ(CountLinesStartingWith(result.out, "TIME (UTC)"), 1);
  EXPECT_NE(result.out.find("production  1     2"), std::string::npos) << result.out;
}

TEST_F(RegistryCommandsTest, PromoteWithAStaleExpectedVersionIsRefused) {
  ExpectOneErrorLine(
      Tune({"adapters", "promote", "rank:2", "production", "--expect-version", "2"}),
      "alias 'production' of adapter 'rank' is version 1, not version 2 as expected: it was "
      "moved meanwhile; check `tune adapters history rank` and retry");
  EXPECT_EQ(
      Registry::Open(registry_, Registry::OpenMode::kReadOnly)->Resolve("rank@production").version,
      1);
}

TEST_F(RegistryCommandsTest, PromoteSucceedsWhileAnotherProcessHasTheRegistryOpenForWriting) {
  auto writer = Registry::Open(registry_, Registry::OpenMode::kReadWrite);
  const auto result = Tune({"adapters", "promote", "rank:2", "production"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(writer->Resolve("rank@production").version, 2);
  writer->MoveAlias("rank", "production", 1, 2);
  EXPECT_EQ(Tune({"adapters", "ls"}).exit_code, 0);
}

TEST_F(RegistryCommandsTest, FetchWritesAPeftFolderWithLineage) {
  const fs::path out = dir_.path() / "deploy";
  const auto result = Tune({"fetch", "rank@production", "-o", out.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "fetched rank:1 to " + out.string() +
                            ": 2 files, 14 B, every byte matches its SHA-256\n");
  std::ifstream weights(out / "adapter_model.safetensors");
  std::string text((std::istreambuf_iterator<char>(weights)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "rank 4");
  std::ifstream lineage(out / "tune.json");
  const nlohmann::json json = nlohmann::json::parse(lineage);
  EXPECT_EQ(json["name"], "rank");
  EXPECT_EQ(json["version"], 1);
  EXPECT_EQ(json["params"]["adapter.rank"], 4);
}

TEST_F(RegistryCommandsTest, FetchOfACorruptedObjectFailsAndWritesNothing) {
  std::string digest;
  {
    auto registry = Registry::Open(registry_, Registry::OpenMode::kReadOnly);
    digest = registry->Resolve("rank:2").files[1].digest;
  }
  const fs::path object = registry_ / "objects" / "sha256" / digest.substr(0, 2) / digest;
  fs::permissions(object, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(object, std::ios::trunc) << "rank 17";
  const fs::path out = dir_.path() / "deploy";
  const auto result = Tune({"fetch", "rank:2", "-o", out.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(CountLinesStartingWith(result.err, "error: object sha256:" + digest +
                                                   " (rank:2 adapter_model.safetensors) in "
                                                   "registry " +
                                                   registry_.string() + " is corrupted"),
            1)
      << result.err;
  EXPECT_FALSE(fs::exists(out));

  const auto verify = Tune({"registry", "verify"});
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_EQ(CountLinesStartingWith(verify.err, "error: "), 2) << verify.err;
  EXPECT_NE(verify.out.find("2 problems"), std::string::npos) << verify.out;
}

TEST_F(RegistryCommandsTest, RegistryVerifyGcAndBackup) {
  auto result = Tune({"registry", "verify"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "checked 3 versions and 4 files (23 B): sound\n");

  const fs::path orphan = registry_ / "objects" / "tmp" / "object-interrupted";
  std::ofstream(orphan) << "partial";
  fs::last_write_time(orphan, fs::file_time_type::clock::now() - std::chrono::hours(48));
  result = Tune({"registry", "gc", "--grace-hours", "24"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "removed 0 unreferenced files (0 B) and 1 interrupted write; kept 4 files\n");
  EXPECT_FALSE(fs::exists(orphan));

  const fs::path backup = dir_.path() / "backup";
  result = Tune({"registry", "backup", backup.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  result = Tune({"adapters", "ls", "--registry", backup.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(nlohmann::json::parse(result.out).size(), 3u);
  EXPECT_EQ(Tune({"registry", "verify", "--registry", backup.string()}).exit_code, 0);
}

TEST_F(RegistryCommandsTest, RegistryOptionOverridesTheEnvironmentAndAMissingOneIsNamed) {
  const fs::path missing = dir_.path() / "nowhere";
  ExpectOneErrorLine(Tune({"adapters", "ls", "--registry", missing.string()}),
                     "no registry at " + missing.string() +
                         "; pass --registry PATH or set TUNE_REGISTRY to where adapters were "
                         "registered");
  const auto result = RunTune({"adapters", "ls"}, {{"TUNE_REGISTRY", missing.string()}});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("no registry at " + missing.string()), std::string::npos);
  EXPECT_FALSE(fs::exists(missing));
}

TEST(RegistryCommands, EveryRegistryCommandHasHelp) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"adapters", "--help"},
                                               {"adapters", "ls", "--help"},
                                               {"adapters", "show", "--help"},
                                               {"adapters", "diff", "--help"},
                                               {"adapters", "promote", "--help"},
                                               {"adapters", "history", "--help"},
                                               {"adapters", "approve", "--help"},
                                               {"adapters", "requests", "--help"},
                                               {"adapters", "policy", "set", "--help"},
                                               {"adapters", "policy", "show", "--help"},
                                               {"adapters", "policy", "remove", "--help"},
                                               {"review", "--help"},
                                               {"review", "create", "--help"},
                                               {"review", "generate", "--help"},
                                               {"review", "ls", "--help"},
                                               {"review", "results", "--help"},
                                               {"review", "close", "--help"},
                                               {"fetch", "--help"},
                                               {"registry", "--help"},
                                               {"registry", "verify", "--help"},
                                               {"registry", "gc", "--help"},
                                               {"registry", "backup", "--help"}}) {
    const auto result = RunTune(args);
    EXPECT_EQ(result.exit_code, 0) << args[0] << " " << args[1];
    EXPECT_NE(result.out.find("Usage:"), std::string::npos) << result.out;
  }
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"adapters"}, {"review"}, {"adapters", "policy"}}) {
    const auto result = RunTune(args);
    EXPECT_EQ(result.exit_code, 1) << args[0];
    EXPECT_EQ(CountLinesStartingWith(result.err, "error: "), 1) << result.err;
  }
  // Without its prompts, review create says how to give them.
  const auto result = RunTune({"review", "create", "qa"});
  EXPECT_EQ(result.err,
            "error: tune review create qa needs its prompts: --prompts FILE, or --from-eval NAME:N "
            "for a version's evaluation split\n");
}

// Outputs of `contestant` on every prompt of review `review`: "CONTESTANT on I".
void AddOutputs(Registry& registry, const fs::path& dir, const std::string& review,
                const std::string& contestant) {
  std::string lines;
  for (int64_t i = 0; i < registry.GetReview(review).prompts; ++i) {
    lines += "{\"prompt\": " + std::to_string(i) + ", \"output\": \"" + contestant + " on " +
             std::to_string(i) + "\"}\n";
  }
  const fs::path file = dir / ("outputs-" + contestant.substr(contestant.find(':') + 1));
  std::ofstream(file) << lines;
  registry.AddReviewOutputs(review, contestant, file, "greedy, seed 0");
}

TEST_F(RegistryCommandsTest, ReviewCreateStoresTheSetAndResultsRankTheContestants) {
  const fs::path prompts = dir_.path() / "prompts.jsonl";
  std::ofstream(prompts) << "{\"prompt\": \"2+2?\", \"reference\": \"4\"}\n"
                            "{\"prompt\": \"3+3?\"}\n{\"prompt\": \"capital of France?\"}\n";
  auto result = Tune({"review", "create", "qa", "--prompts", prompts.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "review qa of 3 prompts (review set qa:1); record outputs with `tune review generate "
            "qa VERSION...`\n");
  {
    const auto registry = LocalRegistry::Open(registry_, Registry::OpenMode::kReadWrite);
    AddOutputs(*registry, dir_.path(), "qa", "rank:1");
    AddOutputs(*registry, dir_.path(), "qa", "rank:2");
    const auto alice = registry->Acting("alice");
    while (const std::optional<BlindPair> pair = alice->NextPair("qa")) {
      alice->Judge("qa", pair->id,
                   pair->left.starts_with("rank:2") ? Verdict::kLeft : Verdict::kRight);
    }
  }
  result = Tune({"review", "results", "qa"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("review qa (open): 3 judgements by 1 rater"), std::string::npos)
      << result.out;
  EXPECT_EQ(CountLinesStartingWith(result.out, "rank:2  "), 1) << result.out;
  EXPECT_LT(result.out.find("\nrank:2"), result.out.find("\nrank:1")) << result.out;
  EXPECT_NE(result.out.find("100% of 3"), std::string::npos) << result.out;
  result = Tune({"review", "results", "qa", "--json"});
  EXPECT_EQ(nlohmann::json::parse(result.out)["contestants"][0]["contestant"], "rank:2");
  result = Tune({"adapters", "show", "rank:2"});
  EXPECT_NE(result.out.find("review qa "), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(", 3 judgements"), std::string::npos) << result.out;
  result = Tune({"review", "close", "qa"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  result = Tune({"review", "ls"});
  EXPECT_NE(result.out.find("qa  qa:1  3 prompts  rank:1, rank:2  closed  3 judgements"),
            std::string::npos)
      << result.out;
}

TEST_F(RegistryCommandsTest, ReviewCreateTakesTheEvalSplitOfAVersion) {
  const fs::path samples = dir_.path() / "samples.jsonl";
  std::ofstream(samples) << R"({"prompt": "2+2?", "reference": "4", "prediction": "5"})"
                         << "\n"
                         << R"({"prompt": "3+3?", "reference": "6", "prediction": "6"})"
                         << "\n";
  Registry::Open(registry_, Registry::OpenMode::kReadWrite)
      ->Register("evald", SampleRecord(), MakeArtifact(dir_.path() / "a4", "evald"), samples);
  auto result = Tune({"review", "create", "ev", "--from-eval", "evald:1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("review ev of 2 prompts (review set ev:1)"), std::string::npos);
  EXPECT_EQ(Registry::Open(registry_, Registry::OpenMode::kReadOnly)->GetDataset("ev").source,
            "evald:1 eval split");
  ExpectOneErrorLine(Tune({"review", "create", "ev2", "--from-eval", "rank:1"}),
                     "rank:1 has no stored evaluation outputs to take prompts from; give the "
                     "prompts with --prompts FILE");
}

TEST_F(RegistryCommandsTest, ReviewCreateRefusesAMalformedSetNamingTheLine) {
  const fs::path prompts = dir_.path() / "prompts.jsonl";
  std::ofstream(prompts) << "{\"prompt\": \"fine\"}\nnot json\n";
  ExpectOneErrorLine(Tune({"review", "create", "qa", "--prompts", prompts.string()}),
                     prompts.string() +
                         ":2: 'not json' is not {\"prompt\": TEXT} (with an optional "
                         "\"reference\": TEXT); write one such object per line");
}

TEST_F(RegistryCommandsTest, PromoteChecksThePolicyAndWaitsForAnApprover) {
  const fs::path policy = dir_.path() / "policy.toml";
  std::ofstream(policy) << "[policy.production]\nrequire = [\"exact_match >= 0.9\"]\n";
  auto result = Tune({"adapters", "policy", "set", "rank", policy.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "rank@production requires exact_match >= 0.9 and 0 approvers\n");
  ExpectOneErrorLine(Tune({"adapters", "promote", "rank:2", "production"}),
                     "cannot promote rank:2 to production: its policy (" + policy.string() +
                         ") is not met: exact_match >= 0.9: 0.875, 0.025 short (needs >= 0.9)");
  result = Tune({"adapters", "policy", "show", "rank"});
  EXPECT_NE(result.out.find("exact_match >= 0.9  rank:2: not met, 0.875, 0.025 short"),
            std::string::npos)
      << result.out;

  std::ofstream(policy) << "[policy.production]\nrequire = [\"exact_match >= 0.8\"]\n"
                           "approvers = 1\n";
  ASSERT_EQ(Tune({"adapters", "policy", "set", "rank", policy.string()}).exit_code, 0);
  result = Tune({"adapters", "promote", "rank:2", "production"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("request 1: rank:2 to production"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("is waiting for 1 approver with the promote role: `tune adapters "
                            "approve rank 1`"),
            std::string::npos)
      << result.out;
  EXPECT_NE(Tune({"adapters", "approve", "rank", "1"})
                .err.find("another person with the promote "
                          "role must approve it"),
            std::string::npos);
  LocalRegistry::Open(registry_, Registry::OpenMode::kReadWrite)->Acting("bob")->Approve("rank", 1);
  EXPECT_EQ(
      Registry::Open(registry_, Registry::OpenMode::kReadOnly)->Resolve("rank@production").version,
      2);
  result = Tune({"adapters", "history", "rank"});
  EXPECT_NE(result.out.find("request 1 by "), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(", approved by bob\n"), std::string::npos) << result.out;
  // The alias does not move by a path that skips the policy, unless overridden with a reason.
  EXPECT_NE(Tune({"adapters", "promote", "rank:1", "production"})
                .err.find("cannot promote rank:1 to production"),
            std::string::npos);
  result = Tune({"adapters", "promote", "rank:1", "production", "--override", "rollback"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "rank@production: version 2 -> version 1 (policy overridden: rollback)\n");
  EXPECT_NE(Tune({"adapters", "history", "rank"}).out.find("policy overridden: rollback"),
            std::string::npos);
}

TEST_F(RegistryCommandsTest, PolicyWithAnUnknownMetricIsRefusedNamingFileAndKey) {
  const fs::path policy = dir_.path() / "policy.toml";
  std::ofstream(policy) << "[policy.production]\nrequire = [\"exact_mach >= 0.9\"]\n";
  const auto result = Tune({"adapters", "policy", "set", "rank", policy.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find(policy.string() +
                            ":2: policy.production.require[0]: unknown metric 'exact_mach' (did "
                            "you mean 'exact_match'?)"),
            std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace tune

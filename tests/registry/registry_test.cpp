// Registry: registering, resolving, aliases, fetch, verify, gc, backup, runs.
#include "registry/common.h"
#include "registry/local_registry.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "registry/object_store.h"
#include "registry/registry_test_util.h"
#include "support/test_support.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::MakeArtifact;
using testing::SampleRecord;
using testing::TempDir;
using Mode = Registry::OpenMode;

std::string ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Overwrites a stored object (they are read-only files) with other bytes.
void Corrupt(const fs::path& object, const std::string& bytes) {
  fs::permissions(object, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(object, std::ios::binary | std::ios::trunc) << bytes;
}

using testing::ErrorOf;

int CountObjects(const fs::path& registry) {
  int count = 0;
  for (const auto& entry : fs::recursive_directory_iterator(registry / "objects" / "sha256")) {
    count += entry.is_regular_file() ? 1 : 0;
  }
  return count;
}

class RegistryTest : public ::testing::Test {
 protected:
  fs::path Artifact(const std::string& weights, const std::string& config = R"({"r": 8})") {
    return MakeArtifact(dir_.path() / ("artifact-" + std::to_string(artifacts_++)), weights,
                        config);
  }
  std::unique_ptr<LocalRegistry> Open(Mode mode = Mode::kCreate) {
    return LocalRegistry::Open(dir_.path() / "registry", mode);
  }
  fs::path RegistryDir() const { return dir_.path() / "registry"; }

  TempDir dir_;
  int artifacts_ = 0;
};

TEST_F(RegistryTest, RegisterThenResolveRoundTripsTheRecord) {
  auto registry = Open();
  const VersionRecord lineage = SampleRecord(16, 0.75);
  EXPECT_EQ(registry->Register("rank", lineage, Artifact("weights")), 1);
  const VersionRecord stored = registry->Resolve("rank:1");
  EXPECT_EQ(stored.name, "rank");
  EXPECT_EQ(stored.version, 1);
  EXPECT_GT(stored.created_ms, 1600000000000);
  ASSERT_EQ(stored.files.size(), 2u);
  EXPECT_EQ(stored.files[0].path, "adapter_config.json");
  EXPECT_EQ(stored.files[1].path, "adapter_model.safetensors");
  EXPECT_EQ(stored.files[1].size_bytes, 7);
  EXPECT_EQ(stored.artifact_size_bytes, 7 + 8);
  EXPECT_EQ(stored.artifact_digest.size(), 64u);
  // Everything the caller gave comes back as it was.
  VersionRecord expected = lineage;
  expected.name = stored.name;
  expected.version = stored.version;
  expected.created_ms = stored.created_ms;
  expected.files = stored.files;
  expected.artifact_digest = stored.artifact_digest;
  expected.artifact_size_bytes = stored.artifact_size_bytes;
  EXPECT_EQ(stored.registered_by, registry_internal::LocalUser());
  expected.registered_by = stored.registered_by;
  EXPECT_EQ(stored, expected);
}

TEST_F(RegistryTest, RecordsSurviveReopening) {
  {
    auto registry = Open();
    registry->Register("rank", SampleRecord(), Artifact("a"));
    registry->Register("rank", SampleRecord(), Artifact("b"));
  }
  auto registry = Open(Mode::kReadOnly);
  EXPECT_EQ(registry->Resolve("rank").version, 2);
  EXPECT_EQ(registry->Names(), std::vector<std::string>{"rank"});
}

TEST_F(RegistryTest, VersionsStartAtOneAndAreNeverReused) {
  auto registry = Open();
  EXPECT_EQ(registry->Register("a", SampleRecord(), Artifact("1")), 1);
  EXPECT_EQ(registry->Register("a", SampleRecord(), Artifact("2")), 2);
  EXPECT_EQ(registry->Register("b", SampleRecord(), Artifact("3")), 1);
  EXPECT_EQ(registry->Register("a", SampleRecord(), Artifact("4")), 3);
}

TEST_F(RegistryTest, ObjectsAreNamedBySha256OfTheirBytes) {
  auto registry = Open();
  registry->Register("a", SampleRecord(), Artifact("abc"));
  // SHA-256("abc"), FIPS 180-2 appendix B.1.
  const std::string digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  const fs::path object = RegistryDir() / "objects" / "sha256" / "ba" / digest;
  ASSERT_TRUE(fs::exists(object));
  EXPECT_EQ(ReadFile(object), "abc");
  EXPECT_EQ(registry->Resolve("a").files[1].digest, digest);
  EXPECT_TRUE(fs::is_empty(RegistryDir() / "objects" / "tmp"));
}

TEST_F(RegistryTest, IdenticalBytesAreStoredOnce) {
  auto registry = Open();
  registry->Register("a", SampleRecord(), Artifact("same weights"));
  registry->Register("b", SampleRecord(), Artifact("same weights"));
  EXPECT_EQ(CountObjects(RegistryDir()), 2);  // one config, one weights file
  EXPECT_EQ(registry->Resolve("a").artifact_digest, registry->Resolve("b").artifact_digest);
  registry->Register("a", SampleRecord(), Artifact("other weights"));
  EXPECT_EQ(CountObjects(RegistryDir()), 3);
}

TEST_F(RegistryTest, StoresEveryFileOfAFullModelFolderWithSubfolders) {
  auto registry = Open();
  const fs::path model = dir_.path() / "model";
  fs::create_directories(model / "tokenizer");
  std::ofstream(model / "config.json") << "{}";
  std::ofstream(model / "model.safetensors") << "weights";
  std::ofstream(model / "tokenizer" / "tokenizer.model") << "pieces";
  registry->Register("full", SampleRecord(), model);
  std::vector<std::string> paths;
  for (const ManifestEntry& file : registry->Resolve("full").files) paths.push_back(file.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"config.json", "model.safetensors",
                                             "tokenizer/tokenizer.model"}));
  registry->Fetch("full", dir_.path() / "out");
  EXPECT_EQ(ReadFile(dir_.path() / "out" / "tokenizer" / "tokenizer.model"), "pieces");
}

TEST_F(RegistryTest, RegisterRefusesBadNamesEmptyFoldersAndTuneJson) {
  auto registry = Open();
  EXPECT_NE(ErrorOf([&] {
              registry->Register("Bad Name", SampleRecord(), Artifact("x"));
            }).find("invalid adapter name 'Bad Name'"),
            std::string::npos);
  fs::create_directories(dir_.path() / "empty");
  EXPECT_NE(ErrorOf([&] {
              registry->Register("a", SampleRecord(), dir_.path() / "empty");
            }).find("is empty"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] {
              registry->Register("a", SampleRecord(), dir_.path() / "missing");
            }).find("does not exist"),
            std::string::npos);
  const fs::path with_lineage = Artifact("x");
  std::ofstream(with_lineage / "tune.json") << "{}";
  EXPECT_NE(ErrorOf([&] {
              registry->Register("a", SampleRecord(), with_lineage);
            }).find("holds tune.json"),
            std::string::npos);
  EXPECT_TRUE(registry->Names().empty());
}

TEST_F(RegistryTest, ResolveUnderstandsEveryReferenceForm) {
  auto registry = Open();
  for (int i = 0; i < 3; ++i)
    registry->Register("rank", SampleRecord(), Artifact(std::to_string(i)));
  registry->MoveAlias("rank", "production", 2);
  EXPECT_EQ(registry->Resolve("rank").version, 3);
  EXPECT_EQ(registry->Resolve("rank:1").version, 1);
  EXPECT_EQ(registry->Resolve("rank:v1").version, 1);
  EXPECT_EQ(registry->Resolve("rank@production").version, 2);
}

TEST(AdapterRef, RefusesMalformedReferences) {
  for (const char* bad : {"", "Rank", "rank:", "rank:0", "rank:-1", "rank:x", "rank:v", "rank@",
                          "rank@Prod", "rank:1@prod", "@prod", "rank:1.5"}) {
    const std::string error = ErrorOf([&] { ParseAdapterRef(bad); });
    EXPECT_EQ(error.rfind("invalid adapter reference '" + std::string(bad) + "'", 0), 0u) << error;
    EXPECT_NE(error.find("NAME@ALIAS"), std::string::npos) << error;
  }
  const AdapterRef ref = ParseAdapterRef("my-adapter.v2:v12");
  EXPECT_EQ(ref.name, "my-adapter.v2");
  EXPECT_EQ(ref.version, 12);
}

TEST_F(RegistryTest, UnknownNameSuggestsTheClosestName) {
  auto registry = Open();
  registry->Register("rank-sweep", SampleRecord(), Artifact("1"));
  registry->Register("lr-sweep", SampleRecord(), Artifact("2"));
  EXPECT_EQ(ErrorOf([&] { registry->Resolve("rank-swep:1"); }),
            "no adapter named 'rank-swep' in registry " + RegistryDir().string() +
                " (did you mean 'rank-sweep'?); `tune adapters ls` lists them");
  const std::string far = ErrorOf([&] { registry->Resolve("zzzzzzzz"); });
  EXPECT_NE(far.find("closest names: "), std::string::npos) << far;
}

TEST_F(RegistryTest, UnknownVersionOrAliasListsWhatExists) {
  auto registry = Open();
  registry->Register("rank", SampleRecord(), Artifact("1"));
  registry->Register("rank", SampleRecord(), Artifact("2"));
  EXPECT_EQ(ErrorOf([&] { registry->Resolve("rank:7"); }),
            "adapter 'rank' has no version 7 in registry " + RegistryDir().string() +
                "; its versions are 1 to 2");
  EXPECT_NE(ErrorOf([&] { registry->Resolve("rank@production"); })
                .find("it has no aliases yet: set one with `tune adapters promote rank:N "
                      "production`"),
            std::string::npos);
  registry->MoveAlias("rank", "production", 1);
  registry->MoveAlias("rank", "staging", 2);
  EXPECT_EQ(ErrorOf([&] { registry->Resolve("rank@prodution"); }),
            "adapter 'rank' has no alias 'prodution' (did you mean 'production'?) in registry " +
                RegistryDir().string() + "; its aliases: production -> 1, staging -> 2");
}

TEST_F(RegistryTest, PromoteMovesAliasAtomically) {
  auto registry = Open();
  registry->Register("rank", SampleRecord(), Artifact("1"));
  registry->Register("rank", SampleRecord(), Artifact("2"));
  EXPECT_EQ(registry->MoveAlias("rank", "production", 1, 0), 0);
  EXPECT_EQ(registry->MoveAlias("rank", "production", 2, 1), 1);
  EXPECT_EQ(registry->Resolve("rank@production").version, 2);
  EXPECT_EQ(registry->Aliases("rank"), (std::map<std::string, int64_t>{{"production", 2}}));
  // The alias and its history entry are one batch: both are there after reopening.
  registry.reset();
  registry = Open(Mode::kReadOnly);
  EXPECT_EQ(registry->Resolve("rank@production").version, 2);
  EXPECT_EQ(registry->History("rank").size(), 2u);
}

TEST_F(RegistryTest, AliasesThatReadAsVersionsAreRefused) {
  auto registry = Open();
  registry->Register("rank", SampleRecord(), Artifact("1"));
  for (const char* alias : {"3", "v3", "v12", "007"}) {
    try {
      registry->MoveAlias("rank", alias, 1);
      ADD_FAILURE() << alias << " was accepted";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("it reads as a version"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(registry->MoveAlias("rank", "v3-candidate", 1), 0);  // words with digits are fine
  EXPECT_EQ(registry->MoveAlias("rank", "v", 1), 0);
  EXPECT_TRUE(registry->History("rank").size() == 2u);
}

// NAME@latest always names the latest version: an alias called latest could be left on an old one.
TEST_F(RegistryTest, LatestIsReservedAndAlwaysNamesTheLatestVersion) {
  auto registry = Open();
  registry->Register("rank", SampleRecord(), Artifact("1"));
  EXPECT_EQ(ErrorOf([&] { registry->MoveAlias("rank", "latest", 1); }),
            "alias 'latest' is reserved: rank@latest always names the latest version; choose "
            "another word such as production or staging");
  EXPECT_TRUE(registry->History("rank").empty());
  EXPECT_EQ(registry->Resolve("rank@latest").version, 1);
  registry->Register("rank", SampleRecord(), Artifact("2"));
  EXPECT_EQ(registry->Resolve("rank@latest").version, 2);
}

TEST_F(RegistryTest, MoveAliasRefusesStaleExpectedVersion) {
  auto registry = Open();
  for (int i = 0; i < 3; ++i)
    registry->Register("rank", SampleRecord(), Artifact(std::to_string(i)));
  registry->MoveAlias("rank", "production", 2);
  try {
    registry->MoveAlias("rank", "production", 3, 1);
    FAIL() << "a stale expectation moved the alias";
  } catch (const AliasConflict& e) {
    EXPECT_EQ(std::string(e.what()),
              "alias 'production' of adapter 'rank' is version 2, not version 1 as expected: it "
              "was moved meanwhile; check `tune adapters history rank` and retry");
  }
  EXPECT_THROW(registry->MoveAlias("rank", "production", 3, 0), AliasConflict);
  EXPECT_EQ(registry->Resolve("rank@production").version, 2);
  EXPECT_EQ(registry->History("rank").size(), 1u);
}

TEST_F(RegistryTest, MoveAliasRefusesMissingVersionsAndBadAliasNames) {
  auto registry = Open();
  registry->Register("rank", SampleRecord(), Artifact("1"));
  EXPECT_NE(ErrorOf([&] { registry->MoveAlias("rank", "production", 5); }).find("has no version 5"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { registry->MoveAlias("rank", "Prod!", 1); }).find("invalid alias 'Prod!'"),
            std::string::npos);
  EXPECT_TRUE(registry->History("rank").empty());
}

TEST_F(RegistryTest, ConcurrentCompareAndSetMovesLetExactlyOneWin) {
  auto registry = Open();
  for (int i = 0; i < 4; ++i)
    registry->Register("rank", SampleRecord(), Artifact(std::to_string(i)));
  registry->MoveAlias("rank", "production", 1);
  for (int round = 0; round < 20; ++round) {
    const int64_t current = registry->Resolve("rank@production").version;
    std::atomic<int> wins = 0, conflicts = 0;
    std::vector<std::thread> threads;
    for (int64_t target = 1; target <= 4; ++target) {
      if (target == current) continue;
      threads.emplace_back([&, target] {
        try {
          registry->MoveAlias("rank", "production", target, current);
          ++wins;
        } catch (const AliasConflict&) {
          ++conflicts;
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    EXPECT_EQ(wins, 1);
    EXPECT_EQ(conflicts, 2);
  }
  EXPECT_EQ(registry->History("rank").size(), 21u);
}

TEST_F(RegistryTest, HistoryKeepsEveryMoveWithOldAndNewVersion) {
  auto registry = Open();
  for (int i = 0; i < 3; ++i)
    registry->Register("rank", SampleRecord(), Artifact(std::to_string(i)));
  registry->MoveAlias("rank", "production", 1);
  registry->MoveAlias("rank", "staging", 3);
  registry->MoveAlias("rank", "production", 2);
  const std::vector<AliasMove> history = registry->History("rank");
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].alias, "production");
  EXPECT_EQ(history[0].old_version, 0);
  EXPECT_EQ(history[0].new_version, 1);
  EXPECT_EQ(history[1].alias, "staging");
  EXPECT_EQ(history[2].old_version, 1);
  EXPECT_EQ(history[2].new_version, 2);
  EXPECT_LE(history[0].time_ms, history[2].time_ms);
}

TEST_F(RegistryTest, FetchWritesTheFilesAndTheLineage) {
  auto registry = Open();
  registry->Register("rank", SampleRecord(), Artifact("weights", R"({"r": 16})"));
  registry->MoveAlias("rank", "production", 1);
  const fs::path out = dir_.path() / "deploy" / "rank";
  const VersionRecord fetched = registry->Fetch("rank@production", out);
  EXPECT_EQ(ReadFile(out / "adapter_model.safetensors"), "weights");
  EXPECT_EQ(ReadFile(out / "adapter_config.json"), R"({"r": 16})");
  EXPECT_EQ(VersionRecordFromJson(ReadFile(out / "tune.json")), fetched);
  EXPECT_EQ(fetched, registry->Resolve("rank:1"));
  // No temporary folder is left beside it.
  EXPECT_EQ(std::distance(fs::directory_iterator(out.parent_path()), fs::directory_iterator()), 1);
  // An existing empty folder is fine; a non-empty one is refused.
  fs::create_directories(dir_.path() / "empty");
  registry->Fetch("rank", dir_.path() / "empty");
  EXPECT_TRUE(fs::exists(dir_.path() / "empty" / "tune.json"));
  EXPECT_NE(ErrorOf([&] { registry->Fetch("rank", out); }).find("exists and is not empty"),
            std::string::npos);
}

TEST_F(RegistryTest, FetchRefusesCorruptedObjectAndWritesNothing) {
  auto registry = Open();
  registry->Register("rank", SampleRecord(), Artifact(std::string(100000, 'w')));
  const ManifestEntry weights = registry->Resolve("rank").files[1];
  Corrupt(RegistryDir() / "objects" / "sha256" / weights.digest.substr(0, 2) / weights.digest,
          std::string(99999, 'w') + "x");  // one bit-rotted byte, same size
  const fs::path out = dir_.path() / "out";
  const std::string error = ErrorOf([&] { registry->Fetch("rank", out); });
  EXPECT_EQ(error.rfind("object sha256:" + weights.digest +
                            " (rank:1 adapter_model.safetensors) in registry " +
                            RegistryDir().string() + " is corrupted: its bytes hash to sha256:",
                        0),
            0u)
      << error;
  EXPECT_NE(error.find("run `tune registry verify`"), std::string::npos);
  EXPECT_FALSE(fs::exists(out));
  // Only the registry and the artifact folder: no temporary folder is left behind either.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_.path()), fs::directory_iterator()), 2);
}

TEST_F(RegistryTest, FetchRefusesTruncatedOrMissingObjects) {
  auto registry = Open();
  registry->Register("rank", SampleRecord(), Artifact("weights"));
  const ManifestEntry weights = registry->Resolve("rank").files[1];
  const fs::path object =
      RegistryDir() / "objects" / "sha256" / weights.digest.substr(0, 2) / weights.digest;
  Corrupt(object, "weigh");
  EXPECT_NE(ErrorOf([&] {
              registry->Fetch("rank", dir_.path() / "out");
            }).find("is corrupted: it has 5 bytes, the record says 7"),
            std::string::npos);
  fs::remove(object);
  EXPECT_NE(ErrorOf([&] {
              registry->Fetch("rank", dir_.path() / "out");
            }).find("cannot be read: No such file or directory"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir_.path() / "out"));
}

TEST_F(RegistryTest, VerifyPassesASoundRegistryAndNamesEachProblem) {
  auto registry = Open();
  registry->Register("rank", SampleRecord(), Artifact("first"));
  registry->Register("rank", SampleRecord(), Artifact("second"));
  VerifyReport report = registry->Verify();
  EXPECT_TRUE(report.problems.empty()) << report.problems[0];
  EXPECT_EQ(report.objects_checked, 3);  // the config is shared
  EXPECT_EQ(report.versions_checked, 2);
  EXPECT_EQ(report.bytes_checked, 8 + 5 + 6);

  const std::string first = registry->Resolve("rank:1").files[1].digest;
  const std::string second = registry->Resolve("rank:2").files[1].digest;
  Corrupt(RegistryDir() / "objects" / "sha256" / first.substr(0, 2) / first, "fIrst");
  fs::remove(RegistryDir() / "objects" / "sha256" / second.substr(0, 2) / second);
  report = registry->Verify();
  ASSERT_EQ(report.problems.size(), 3u);
  EXPECT_EQ(report.problems[0].rfind("object sha256:" + first + " is corrupted", 0), 0u)
      << report.problems[0];
  EXPECT_EQ(report.problems[1],
            "rank:1 adapter_model.safetensors: object sha256:" + first + " is corrupted");
  EXPECT_EQ(report.problems[2],
            "rank:2 adapter_model.safetensors: object sha256:" + second + " is missing");
}

TEST_F(RegistryTest, BackupOfADamagedRegistrySaysWhatItCouldNotCopy) {
  auto registry = Open();
  registry->Register("rank", SampleRecord(), Artifact("first"));
  registry->Register("rank", SampleRecord(), Artifact("second"));
  const std::string first = registry->Resolve("rank:1").files[1].digest;
  const std::string second = registry->Resolve("rank:2").files[1].digest;
  Corrupt(RegistryDir() / "objects" / "sha256" / first.substr(0, 2) / first, "fIrst");
  fs::remove(RegistryDir() / "objects" / "sha256" / second.substr(0, 2) / second);
  const fs::path backup = dir_.path() / "backup";
  const std::string message = ErrorOf([&] { registry->Backup(backup); });
  EXPECT_NE(message.find("was backed up to " + backup.string() + " with 3 problems, first: "),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("is corrupted"), std::string::npos) << message;
  EXPECT_TRUE(fs::exists(backup / "db"));  // what was whole is kept
}

TEST_F(RegistryTest, GcRemovesOnlyUnreferencedObjectsOlderThanTheGracePeriod) {
  auto registry = Open();
  registry->Register("rank", SampleRecord(), Artifact("kept"));
  // Orphans as a crash between object write and commit leaves them: one old, one fresh, and an
  // interrupted temp file.
  const auto orphan = [&](const std::string& bytes) {
    const std::string digest = registry_internal::Sha256Hex(bytes);
    const fs::path path = RegistryDir() / "objects" / "sha256" / digest.substr(0, 2) / digest;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << bytes;
    return path;
  };
  const fs::path old_orphan = orphan("orphan");
  const fs::path new_orphan = orphan("fresh orphan");
  const fs::path temp = RegistryDir() / "objects" / "tmp" / "object-0123456789abcdef";
  std::ofstream(temp) << "partial";
  const auto two_hours_ago = fs::file_time_type::clock::now() - std::chrono::hours(2);
  fs::last_write_time(old_orphan, two_hours_ago);
  fs::last_write_time(temp, two_hours_ago);
  for (const ManifestEntry& file : registry->Resolve("rank").files) {
    fs::last_write_time(
        RegistryDir() / "objects" / "sha256" / file.digest.substr(0, 2) / file.digest,
        two_hours_ago);
  }

  const GcReport report = registry->Gc(std::chrono::hours(1));
  EXPECT_EQ(report.objects_removed, 1);
  EXPECT_EQ(report.bytes_removed, 6);
  EXPECT_EQ(report.temp_files_removed, 1);
  EXPECT_EQ(report.objects_kept, 3);
  EXPECT_FALSE(fs::exists(old_orphan));
  EXPECT_TRUE(fs::exists(new_orphan));
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_TRUE(registry->Verify().problems.empty());
  registry->Fetch("rank", dir_.path() / "out");
}

TEST_F(RegistryTest, BackupOpensAsARegistryWithTheSameVersionsAndAliases) {
  auto registry = Open();
  registry->Register("rank", SampleRecord(), Artifact("one"));
  registry->Register("rank", SampleRecord(), Artifact("two"));
  registry->MoveAlias("rank", "production", 2);
  const fs::path backup = dir_.path() / "backup";
  registry->Backup(backup);
  registry->Register("rank", SampleRecord(), Artifact("after the backup"));
  EXPECT_NE(ErrorOf([&] { registry->Backup(backup); }).find("already exists"), std::string::npos);
  registry.reset();

  auto copy = LocalRegistry::Open(backup, Mode::kReadWrite);
  EXPECT_EQ(copy->Resolve("rank").version, 2);
  EXPECT_EQ(copy->Resolve("rank@production").version, 2);
  EXPECT_TRUE(copy->Verify().problems.empty());
  copy->Fetch("rank:1", dir_.path() / "out");
  EXPECT_EQ(ReadFile(dir_.path() / "out" / "adapter_model.safetensors"), "one");
  // The copy is independent: writing to it leaves the original alone.
  EXPECT_EQ(copy->Register("rank", SampleRecord(), Artifact("three")), 3);
  copy.reset();
  EXPECT_EQ(Open(Mode::kReadOnly)->Resolve("rank").files[1].size_bytes, 16);
}

DatasetRecord SampleDataset(const std::string& sha256) {
  DatasetRecord record;
  record.sha256 = sha256;
  record.source = "/data/task.jsonl";
  record.rows = 2;
  record.summary = "2 rows; 0 exact duplicates; 0 near-duplicate clusters; 0 conflicts";
  record.report_json = R"({"rows":2})";
  return record;
}

TEST_F(RegistryTest, ADatasetGetsANewVersionOnlyWhenItsRowsChange) {
  auto registry = Open();
  const fs::path rows = dir_.Write("rows.txt", "aaaa bbbb 1\ncccc dddd 2\n");
  EXPECT_EQ(registry->RegisterDataset("task", SampleDataset(std::string(64, 'a')), rows), 1);
  EXPECT_EQ(registry->RegisterDataset("task", SampleDataset(std::string(64, 'a')), rows), 1);
  EXPECT_EQ(registry->RegisterDataset("task", SampleDataset(std::string(64, 'b')), rows), 2);
  EXPECT_EQ(registry->RegisterDataset("task-2", SampleDataset(std::string(64, 'a')), rows), 1);
  EXPECT_EQ(registry->GetDataset("task").version, 2);
  const DatasetRecord first = registry->GetDataset("task:1");
  EXPECT_EQ(first.sha256, std::string(64, 'a'));
  EXPECT_EQ(first.report_json, R"({"rows":2})");
  EXPECT_EQ(ReadFile(registry->ObjectPath(first.rows_object.digest)), "aaaa bbbb 1\ncccc dddd 2\n");
  EXPECT_EQ(registry->ListDatasets().size(), 3u);
  EXPECT_EQ(ErrorOf([&] { registry->GetDataset("tsak"); }),
            "no dataset 'tsak' in registry " + RegistryDir().string() + " (did you mean 'task'?)");
  EXPECT_EQ(ErrorOf([&] { registry->GetDataset("task:3"); }),
            "dataset 'task' has no version 3; its versions are 1 to 2");
  EXPECT_NE(ErrorOf([&] { registry->GetDataset("task@production"); }).find("not aliases"),
            std::string::npos);
  // A dataset reference is called one, and version 0 is not a version.
  EXPECT_EQ(ErrorOf([&] { registry->GetDataset("task:0"); }),
            "invalid dataset reference 'task:0': the version '0' is not a whole number from 1 "
            "(versions start at 1); write NAME (the latest version) or NAME:VERSION (NAME:3)");
  DatasetRecord empty = SampleDataset(std::string(64, 'e'));
  empty.rows = 0;
  EXPECT_EQ(ErrorOf([&] { registry->RegisterDataset("empty", empty, rows); }),
            "dataset 'empty': /data/task.jsonl has no rows; a dataset version holds at least one "
            "(check the file and its format)");
  EXPECT_NE(ErrorOf([&] {
              registry->RegisterDataset("Bad Name", SampleDataset("c"), rows);
            }).find("invalid dataset name"),
            std::string::npos);
}

TEST_F(RegistryTest, GcKeepsADatasetsRowsAndBackupCopiesThem) {
  auto registry = Open();
  const fs::path rows = dir_.Write("rows.txt", "row hashes\n");
  registry->RegisterDataset("task", SampleDataset(std::string(64, 'a')), rows);
  const std::string digest = registry->GetDataset("task").rows_object.digest;
  registry->Gc(std::chrono::seconds(0));
  EXPECT_TRUE(fs::exists(registry->ObjectPath(digest)));
  EXPECT_TRUE(registry->Verify().problems.empty());
  registry->Backup(dir_.path() / "backup");
  auto copy = LocalRegistry::Open(dir_.path() / "backup", Mode::kReadOnly);
  EXPECT_EQ(ReadFile(copy->ObjectPath(digest)), "row hashes\n");
  fs::remove(registry->ObjectPath(digest));
  const std::vector<std::string> problems = registry->Verify().problems;
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], "dataset task:1 rows: object sha256:" + digest + " is missing");
}

TEST_F(RegistryTest, ReadOnlyRegistryRefusesWrites) {
  Open()->Register("rank", SampleRecord(), Artifact("1"));
  auto registry = Open(Mode::kReadOnly);
  EXPECT_TRUE(registry->read_only());
  const std::string error =
      ErrorOf([&] { registry->Register("rank", SampleRecord(), Artifact("2")); });
  EXPECT_EQ(error,
            "registry " + RegistryDir().string() +
                " was opened read-only, so it cannot register adapters; open it for writing");
  EXPECT_THROW(registry->MoveAlias("rank", "production", 1), UserError);
  EXPECT_THROW(registry->Gc(std::chrono::hours(1)), UserError);
  EXPECT_THROW(registry->CreateRun({}), UserError);
}

TEST_F(RegistryTest, OpeningAMissingRegistryNamesThePath) {
  const std::string error = ErrorOf([&] { Open(Mode::kReadOnly); });
  EXPECT_EQ(error, "no registry at " + RegistryDir().string() +
                       "; pass --registry PATH or set TUNE_REGISTRY to where adapters were "
                       "registered");
  EXPECT_THROW(Open(Mode::kReadWrite), UserError);
  EXPECT_FALSE(fs::exists(RegistryDir()));
}

// Evaluation outputs are kept with the version, counted by gc, verify and backup, but are not
// part of the artifact a deployment fetches.
TEST_F(RegistryTest, EvalSamplesAreStoredBesideTheArtifactNotInIt) {
  auto registry = Open();
  const std::string text = "{\"prompt\": \"p\"}\n";
  const fs::path samples = dir_.Write("eval_samples.jsonl", text);
  registry->Register("rank", SampleRecord(), Artifact("1"), samples);
  const VersionRecord record = registry->Resolve("rank");
  ASSERT_TRUE(record.eval_samples.has_value());
  EXPECT_EQ(record.eval_samples->digest, registry_internal::Sha256Hex(text));
  EXPECT_EQ(record.artifact_digest, registry_internal::Sha256Hex(ManifestText(record.files)));
  registry->Gc(std::chrono::seconds(0));
  EXPECT_TRUE(fs::exists(registry->ObjectPath(record.eval_samples->digest)));
  EXPECT_TRUE(registry->Verify().problems.empty());
  registry->Fetch("rank", dir_.path() / "out");
  EXPECT_FALSE(fs::exists(dir_.path() / "out" / "eval_samples.jsonl"));
  registry->Backup(dir_.path() / "backup");  // verifies the copy, eval samples included
  fs::remove(registry->ObjectPath(record.eval_samples->digest));
  EXPECT_EQ(registry->Verify().problems.size(), 1u);
}

TEST_F(RegistryTest, TwoWritersInOneProcessTakeTurnsAndSeeEachOther) {
  auto first = Open();
  auto second = Open(Mode::kReadWrite);
  auto reader = Open(Mode::kReadOnly);
  EXPECT_EQ(first->Register("rank", SampleRecord(), Artifact("1")), 1);
  EXPECT_EQ(second->Register("rank", SampleRecord(), Artifact("2")), 2);
  EXPECT_EQ(first->MoveAlias("rank", "production", 2, 0), 0);
  EXPECT_EQ(second->Resolve("rank@production").version, 2);
  EXPECT_EQ(reader->Resolve("rank").version, 2);  // opened before either wrote
  EXPECT_THROW(second->MoveAlias("rank", "production", 1, 0), AliasConflict);
}

TEST_F(RegistryTest, LoggedMetricsAreBatchedAndMergedAcrossWrites) {
  auto writer = Open();
  auto reader = Open(Mode::kReadOnly);
  const std::string id = writer->CreateRun({"rank", std::nullopt, std::nullopt, ""});
  writer->LogMetrics(id, 10, {{"loss", 1.5}});
  EXPECT_EQ(writer->GetRunMetrics(id).size(), 1u);  // its own logging, at once
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  writer->LogMetrics(id, 11, {{"loss", 1.25}});  // over 2 s since the last write: both go now
  EXPECT_EQ(reader->GetRunMetrics(id).size(), 2u);
  writer->LogMetrics(id, 10, {{"eval_loss", 2.0}});
  writer.reset();  // what is still buffered is written when the Registry goes
  const std::vector<MetricsAtStep> metrics = reader->GetRunMetrics(id);
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_EQ(metrics[0].values, (std::map<std::string, double>{{"eval_loss", 2.0}, {"loss", 1.5}}));
}

// A process that wrote only metrics since it last read may keep its view for other reads, but
// never past a write of another process.
TEST_F(RegistryTest, AWriterOfMetricsStillSeesVersionsOthersRegistered) {
  auto logger = Open();
  auto other = Open(Mode::kReadWrite);
  const std::string id = logger->CreateRun({"rank", std::nullopt, std::nullopt, ""});
  EXPECT_EQ(logger->Names().size(), 0u);  // a view opened before the other registers
  other->Register("rank", SampleRecord(), Artifact("1"));
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  logger->LogMetrics(id, 1, {{"loss", 1.5}});  // over 2 s since the last write: written now
  EXPECT_EQ(logger->Resolve("rank").version, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  logger->LogMetrics(id, 2, {{"loss", 1.25}});  // metrics only since the last view
  EXPECT_EQ(logger->Resolve("rank").version, 1);
  EXPECT_EQ(Open(Mode::kReadOnly)->GetRunMetrics(id).size(), 2u);
  other->Register("rank", SampleRecord(), Artifact("2"));
  EXPECT_EQ(logger->Resolve("rank").version, 2);
  EXPECT_EQ(logger->GetRunMetrics(id).size(), 2u);
}

// A run keeps why it ended in one word: the status's own unless given; anything else is refused
// and the run stays as it was.
TEST_F(RegistryTest, ARunEndsWithOneWordSayingWhy) {
  auto registry = Open();
  const std::string finished = registry->CreateRun({"rank", std::nullopt, std::nullopt, ""});
  registry->FinishRun(finished, RunStatus::kFinished);
  EXPECT_EQ(registry->GetRun(finished).end_reason, "finished");
  const std::string preempted = registry->CreateRun({"rank", std::nullopt, std::nullopt, ""});
  EXPECT_NE(ErrorOf([&] {
              registry->FinishRun(preempted, RunStatus::kKilled, "", "Preempted; rm -rf");
            }).find("one word of at most 32 letters"),
            std::string::npos);
  EXPECT_EQ(registry->GetRun(preempted).status, RunStatus::kRunning);
  registry->FinishRun(preempted, RunStatus::kKilled, "Slurm: PREEMPTED", "preempted");
  EXPECT_EQ(registry->GetRun(preempted).end_reason, "preempted");
}

TEST_F(RegistryTest, RunsLogMetricsByStepAndFinish) {
  auto registry = Open();
  const std::string id = registry->CreateRun({"rank", "rank-sweep", 2, "[train]\nsteps = 3\n"});
  EXPECT_EQ(id.size(), 16u);
  registry->LogMetrics(id, 0, {{"loss", 2.5}, {"lr", 0.0}});
  registry->LogMetrics(id, 10, {{"loss", 1.5}});
  registry->LogMetrics(id, 10, {{"eval.exact_match", 0.25}});  // merged into step 10
  registry->LogMetrics(id, 5, {{"loss", 2.0}});
  RunRecord run = registry->GetRun(id);
  EXPECT_EQ(run.status, RunStatus::kRunning);
  EXPECT_EQ(run.info.sweep, "rank-sweep");
  EXPECT_EQ(run.info.trial, 2);
  registry->FinishRun(id, RunStatus::kFailed, "out of memory at step 11");
  registry.reset();

  registry = Open(Mode::kReadOnly);
  run = registry->GetRun(id);
  EXPECT_EQ(run.status, RunStatus::kFailed);
  EXPECT_EQ(run.error, "out of memory at step 11");
  EXPECT_GE(run.finished_ms, run.started_ms);
  const std::vector<MetricsAtStep> metrics = registry->GetRunMetrics(id);
  ASSERT_EQ(metrics.size(), 3u);
  EXPECT_EQ(metrics[0].step, 0);
  EXPECT_EQ(metrics[1].step, 5);
  EXPECT_EQ(metrics[2].step, 10);
  EXPECT_EQ(metrics[2].values,
            (std::map<std::string, double>{{"eval.exact_match", 0.25}, {"loss", 1.5}}));
  EXPECT_EQ(registry->ListRuns().size(), 1u);
  EXPECT_FALSE(RunProcessEnded(run));  // finished: nothing to tell
  EXPECT_NE(ErrorOf([&] {
              registry->GetRunMetrics("feedfeedfeedfeed");
            }).find("no run 'feedfeedfeedfeed'"),
            std::string::npos);
}

// A sweep's trial records its configuration, seed and objective as fields, and every run the
// process that will finish it: a run whose process has ended is told apart from one that trains,
// without any clock.
TEST_F(RegistryTest, ARunKnowsItsTrialAndWhetherItsProcessHasEnded) {
  auto registry = Open();
  RunInfo info{"rank", "rank-1", 4, "[train]\n"};
  info.configuration = 2;
  info.seed = 1;
  info.objective = "exact_match";
  info.objective_goal = "maximize";
  const std::string id = registry->CreateRun(info);
  RunRecord run = registry->GetRun(id);
  EXPECT_EQ(run.info, info);
  EXPECT_EQ(run.process.pid, getpid());
  EXPECT_FALSE(RunProcessEnded(run));  // this process is alive

  const pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  waitpid(child, nullptr, 0);
  RunRecord orphan = run;
  orphan.process.pid = child;  // a process that has ended
  EXPECT_TRUE(RunProcessEnded(orphan));
  orphan.process = run.process;
  orphan.process.start_ticks += 1;  // this PID, but another process than the one recorded
  EXPECT_TRUE(RunProcessEnded(orphan));
  orphan.process = run.process;
  orphan.process.boot_id = "another boot";
  EXPECT_TRUE(RunProcessEnded(orphan));
  orphan.process = {};  // a run from before processes were recorded: cannot tell
  EXPECT_FALSE(RunProcessEnded(orphan));
}

TEST(VersionRecordJson, RoundTripsEveryField) {
  VersionRecord record = SampleRecord(4, 0.125);
  record.name = "rank";
  record.version = 3;
  record.created_ms = 1700000000123;
  record.files = {{"adapter_config.json", std::string(64, '1'), 10},
                  {"adapter_model.safetensors", std::string(64, '2'), 20}};
  record.artifact_digest = std::string(64, '3');
  record.artifact_size_bytes = 30;
  EXPECT_EQ(VersionRecordFromJson(VersionRecordToJson(record)), record);
  EXPECT_EQ(VersionRecordFromJson(VersionRecordToJson(record, 2)), record);
  record.sweep.reset();
  record.trial.reset();
  EXPECT_EQ(VersionRecordFromJson(VersionRecordToJson(record)), record);
  EXPECT_NE(ErrorOf([] {
              VersionRecordFromJson(R"({"version": "three"})");
            }).find("version record field 'version' has the wrong type"),
            std::string::npos);
}

TEST(VersionDiff, ListsAttributeParamConfigScoreAndFileChanges) {
  VersionRecord a = SampleRecord(8, 0.5), b = SampleRecord(16, 0.75);
  a.name = b.name = "rank";
  a.version = 1;
  b.version = 2;
  b.seed = 8;
  b.scores.erase("token_f1");
  b.scores["rouge_l"] = 0.3;
  a.files = {{"adapter_config.json", std::string(64, '1'), 1}, {"w", std::string(64, '2'), 1}};
  b.files = {{"adapter_config.json", std::string(64, '1'), 1}, {"w", std::string(64, '3'), 1}};
  const VersionDiff diff = DiffVersions(a, b);
  EXPECT_EQ(diff.from_ref, "rank:1");
  EXPECT_EQ(diff.to_ref, "rank:2");
  ASSERT_EQ(diff.attributes.size(), 1u);
  EXPECT_EQ(diff.attributes[0].key, "seed");
  EXPECT_EQ(diff.attributes[0].from, "7");
  EXPECT_EQ(diff.attributes[0].to, "8");
  ASSERT_EQ(diff.params.size(), 2u);
  EXPECT_EQ(diff.params[0].key, "adapter.alpha");
  EXPECT_EQ(diff.params[1].key, "adapter.rank");
  EXPECT_EQ(diff.params[1].from, "8");
  EXPECT_EQ(diff.params[1].to, "16");
  ASSERT_EQ(diff.config.size(), 1u);
  EXPECT_EQ(diff.config[0].key, "adapter.rank");
  ASSERT_EQ(diff.scores.size(), 3u);  // exact_match, rouge_l, token_f1
  EXPECT_EQ(diff.scores[0].metric, "exact_match");
  EXPECT_EQ(diff.scores[0].to, 0.75);
  EXPECT_EQ(diff.scores[1].metric, "rouge_l");
  EXPECT_FALSE(diff.scores[1].from.has_value());
  EXPECT_FALSE(diff.scores[2].to.has_value());
  EXPECT_EQ(diff.files_changed, std::vector<std::string>{"w"});
}

TEST_F(RegistryTest, ManyThreadsRegisterWithoutLosingVersions) {
  auto registry = Open();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        const fs::path artifact =
            MakeArtifact(dir_.path() / std::to_string(t * 100 + i), std::to_string(t * 100 + i));
        registry->Register("rank", SampleRecord(), artifact);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(registry->Resolve("rank").version, 20);
  EXPECT_EQ(registry->List().size(), 20u);
  EXPECT_TRUE(registry->Verify().problems.empty());
}

}  // namespace
}  // namespace tune

// The registry across processes: a second writer, readers beside a writer, a writer killed at
// random moments, a writer that runs out of disk. The other process is registry_test_writer.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "registry/local_registry.h"
#include "registry/registry_test_util.h"
#include "support/test_support.h"

extern char** environ;

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using Mode = Registry::OpenMode;

// registry_test_writer with `args`, its stdout on a pipe.
class Writer : public testing::ChildProcess {
 public:
  explicit Writer(std::vector<std::string> args) : ChildProcess(WithWriter(std::move(args))) {}

 private:
  static std::vector<std::string> WithWriter(std::vector<std::string> args) {
    args.insert(args.begin(), TUNE_REGISTRY_TEST_WRITER);
    return args;
  }
};

TEST(RegistryProcesses, AWriteWaitsForAStuckWriterThenNamesItsPid) {
  TempDir dir;
  const fs::path registry = dir.path() / "registry";
  Writer holder({"hold", registry.string()});
  ASSERT_EQ(holder.ReadLines(20000, 1), std::vector<std::string>{"ready"});
  // Opening writes nothing, so it does not wait; the first write does.
  auto writer = LocalRegistry::Open(registry, Mode::kReadWrite, std::chrono::milliseconds(300));
  EXPECT_EQ(writer->Resolve("held").version, 1);
  const auto start = std::chrono::steady_clock::now();
  try {
    writer->MoveAlias("held", "production", 1);
    FAIL() << "a second writer wrote to the registry";
  } catch (const RegistryBusy& e) {
    EXPECT_EQ(e.pid(), holder.pid());
    const std::string expected = "registry at " + registry.string() + " is in use by PID " +
                                 std::to_string(holder.pid()) + " (" + TUNE_REGISTRY_TEST_WRITER +
                                 " hold " + registry.string() +
                                 "), which has held it for a write for more than 300 ms; if it "
                                 "is stuck, stop it (read-only commands such as `tune adapters "
                                 "ls` still work)";
    EXPECT_EQ(std::string(e.what()), expected);
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  EXPECT_THROW(LocalRegistry::Open(registry, Mode::kCreate, std::chrono::milliseconds(10))
                   ->Register("other", testing::SampleRecord(),
                              testing::MakeArtifact(dir.path() / "other", "other")),
               RegistryBusy);
  // Gc holds the registry without opening it for writing, against the same lock.
  EXPECT_THROW(writer->Gc(std::chrono::seconds(0)), RegistryBusy);
}

// Two processes write to one registry at once: each write takes the registry for its own
// transaction, so neither is refused, and a reader opened before either sees both.
TEST(RegistryProcesses, WritersInTwoProcessesTakeTurns) {
  TempDir dir;
  const fs::path registry = dir.path() / "registry";
  const fs::path scratch = dir.path() / "scratch";
  fs::create_directories(scratch);
  auto mine = LocalRegistry::Open(registry, Mode::kCreate);
  auto reader = LocalRegistry::Open(registry, Mode::kReadOnly);
  Writer other({"loop", registry.string(), scratch.string()});
  ASSERT_FALSE(other.ReadLines(20000, 1).empty()) << "the other writer registered nothing";
  const std::string run = mine->CreateRun({"mine", std::nullopt, std::nullopt, ""});
  for (int64_t i = 1; i <= 12; ++i) {
    const int64_t version =
        mine->Register("mine", testing::SampleRecord(i),
                       testing::MakeArtifact(dir.path() / ("mine-" + std::to_string(i)),
                                             "mine " + std::to_string(i)));
    EXPECT_EQ(version, i);
    EXPECT_EQ(mine->MoveAlias("mine", "production", version), i - 1);
    mine->LogMetrics(run, i, {{"loss", 1.0 / static_cast<double>(i)}});
    EXPECT_EQ(reader->Resolve("mine@production").version, i);
  }
  mine->Gc(std::chrono::seconds(0));
  mine->Backup(dir.path() / "backup");
  mine->FinishRun(run, RunStatus::kFinished);
  EXPECT_EQ(reader->GetRunMetrics(run).size(), 12u);
  EXPECT_EQ(reader->GetRun(run).status, RunStatus::kFinished);

  // What it reported meanwhile, or (a machine so busy it registered nothing yet) its next line.
  std::vector<std::string> reported = other.ReadLines(60000, 1);
  other.Kill();
  ASSERT_FALSE(reported.empty()) << "the other writer stopped registering meanwhile";
  std::istringstream last(reported.back());
  std::string name, digest;
  int64_t version = 0;
  last >> name >> version >> digest;
  EXPECT_EQ(reader->Resolve(name + ":" + std::to_string(version)).artifact_digest, digest);
  EXPECT_TRUE(reader->Verify().problems.empty());
  EXPECT_EQ(LocalRegistry::Open(dir.path() / "backup", Mode::kReadOnly)->Resolve("mine").version,
            12);
}

TEST(RegistryProcesses, ReadOnlyOpenWorksWhileAWriterHoldsTheRegistry) {
  TempDir dir;
  const fs::path registry = dir.path() / "registry";
  Writer holder({"hold", registry.string()});
  ASSERT_EQ(holder.ReadLines(20000, 1), std::vector<std::string>{"ready"});
  auto reader = LocalRegistry::Open(registry, Mode::kReadOnly);
  EXPECT_EQ(reader->Resolve("held").version, 1);
  reader->Fetch("held:1", dir.path() / "out");
  EXPECT_TRUE(fs::exists(dir.path() / "out" / "adapter_model.safetensors"));
  EXPECT_TRUE(reader->Verify().problems.empty());
}

TEST(RegistryProcesses, AWriterThatDiedLeavesTheRegistryOpenable) {
  TempDir dir;
  const fs::path registry = dir.path() / "registry";
  {
    Writer holder({"hold", registry.string()});
    ASSERT_EQ(holder.ReadLines(20000, 1), std::vector<std::string>{"ready"});
    holder.Kill();
  }
  auto writer = LocalRegistry::Open(registry, Mode::kReadWrite);
  EXPECT_EQ(writer->Resolve("held").version, 1);
}

// The writer is SIGKILLed at random moments; every version it reported as registered must be
// there, with all its bytes, and no record may point at a missing object.
TEST(RegistryProcesses, KilledWriterLosesNothingCommitted) {
  TempDir dir;
  const fs::path registry = dir.path() / "registry";
  const fs::path scratch = dir.path() / "scratch";
  fs::create_directories(scratch);
  std::mt19937 random(12345);
  std::map<std::string, std::string> reported;  // "name:version" -> artifact digest
  const auto start = std::chrono::steady_clock::now();
  int kills = 0;
  while (kills < 40 && std::chrono::steady_clock::now() - start < std::chrono::seconds(20)) {
    {
      Writer writer({"loop", registry.string(), scratch.string()});
      // The first run needs time to create the registry; later ones die anywhere. Each write
      // opens the database, so on a loaded machine a writer needs up to 400 ms to register.
      for (const std::string& line : writer.ReadLines(5 + static_cast<int>(random() % 400))) {
        std::istringstream fields(line);
        std::string name, digest;
        int64_t version = 0;
        fields >> name >> version >> digest;
        reported[name + ":" + std::to_string(version)] = digest;
      }
      writer.Kill();
      ++kills;
    }
    if (!fs::exists(registry / "db" / "CURRENT")) continue;
    auto opened = LocalRegistry::Open(registry, Mode::kReadWrite);
    for (const auto& [ref, digest] : reported) {
      const VersionRecord record = opened->Resolve(ref);
      ASSERT_EQ(record.artifact_digest, digest) << ref << " after " << kills << " kills";
    }
    const VerifyReport report = opened->Verify();
    ASSERT_TRUE(report.problems.empty()) << report.problems[0] << " after " << kills << " kills";
  }
  std::cout << kills << " kills, " << reported.size() << " versions reported\n";
  EXPECT_GE(kills, 10);
  EXPECT_GE(reported.size(), 10u) << "the writer registered too little to test anything";
  // Orphans a kill left behind are collected, and what is referenced stays.
  auto opened = LocalRegistry::Open(registry, Mode::kReadWrite);
  opened->Gc(std::chrono::seconds(0));
  EXPECT_TRUE(opened->Verify().problems.empty());
  for (const auto& [ref, digest] : reported) {
    opened->Fetch(ref, dir.path() / "fetched" / ref);
  }
}

TEST(RegistryProcesses, FullDiskFailsClearlyAndKeepsEverythingCommitted) {
  TempDir dir;
  const fs::path registry = dir.path() / "registry";
  {
    auto writer = LocalRegistry::Open(registry, Mode::kCreate);
    writer->Register("small", testing::SampleRecord(),
                     testing::MakeArtifact(dir.path() / "small", "small weights"));
    writer->MoveAlias("small", "production", 1);
  }
  const fs::path big = testing::MakeArtifact(dir.path() / "big", std::string(4 << 20, 'x'));
  Writer filler({"fill", registry.string(), big.string(), std::to_string(1 << 20)});
  const std::vector<std::string> lines = filler.ReadLines(20000);
  EXPECT_EQ(filler.Wait(), 0);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("cannot store " + (big / "adapter_model.safetensors").string() +
                               " in registry " + registry.string() + ": writing ",
                           0),
            0u)
      << lines[0];
  EXPECT_NE(lines[0].find("file size limit exceeded (EFBIG); free space on that disk and retry; "
                          "nothing already stored was changed"),
            std::string::npos)
      << lines[0];

  auto opened = LocalRegistry::Open(registry, Mode::kReadWrite);
  EXPECT_EQ(opened->Names(), std::vector<std::string>{"small"});
  EXPECT_EQ(opened->Resolve("small@production").version, 1);
  EXPECT_TRUE(opened->Verify().problems.empty());
  EXPECT_TRUE(fs::is_empty(registry / "objects" / "tmp"));
  // With the space back, the same registration works.
  EXPECT_EQ(opened->Register("big", testing::SampleRecord(), big), 1);
}

// registry.h promises that every call sees every write that returned before it, from any
// process. Three processes register at once, each reading every version back the moment its
// Register returns, while this process reads each reported version as the line arrives. One miss
// fails the test (before the fix, a read-only open racing a writer's open missed about one write
// in fifty).
TEST(RegistryProcesses, EveryWriteThatReturnedIsSeenByEveryProcess) {
  TempDir dir;
  const fs::path registry = dir.path() / "registry";
  const fs::path scratch = dir.path() / "scratch";
  fs::create_directories(scratch);
  LocalRegistry::Open(registry, Mode::kCreate);
  constexpr int kWriters = 3;
  constexpr int kEach = 60;
  std::vector<std::unique_ptr<Writer>> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.push_back(std::make_unique<Writer>(std::vector<std::string>{
        "loop", registry.string(), scratch.string(), std::to_string(kEach)}));
  }
  auto reader = LocalRegistry::Open(registry, Mode::kReadOnly);
  int seen = 0;
  for (bool running = true; running;) {
    running = false;
    for (auto& writer : writers) {
      // Whatever the writer printed before it exited is still read here.
      const bool exited = writer->Exited();
      for (const std::string& line : writer->ReadLines(100)) {
        std::istringstream fields(line);
        std::string name, digest;
        int64_t version = 0;
        fields >> name >> version >> digest;
        ASSERT_EQ(reader->Get(name, version).artifact_digest, digest) << line;
        ++seen;
      }
      running = running || !exited;
    }
  }
  for (auto& writer : writers) EXPECT_EQ(writer->Wait(), 0) << "a writer missed its own write";
  EXPECT_EQ(seen, kWriters * kEach);
  EXPECT_EQ(reader->List().size(), static_cast<size_t>(kWriters * kEach));
  EXPECT_TRUE(reader->Verify().problems.empty());
}

// With 16 KiB free, RocksDB aborted inside every write (an assertion after its failed write);
// gc, which can free space, refused to run. Each write now says the disk is full, and gc and
// verify work (registry_test_writer fullfs runs this in a tmpfs of its own).
TEST(RegistryProcesses, AFullDiskRefusesWritesClearlyWhileGcAndVerifyWork) {
  TempDir dir;
  Writer full({"fullfs", (dir.path() / "small-disk").string()});
  const std::vector<std::string> lines = full.ReadLines(120000);
  std::string all;
  for (const std::string& line : lines) all += line + "\n";
  EXPECT_EQ(full.Wait(), 0) << all;
  ASSERT_GE(lines.size(), 10u) << all;
  EXPECT_EQ(lines[0].rfind("registry " + (dir.path() / "small-disk" / "registry").string() +
                               ": the disk is full (",
                           0),
            0u)
      << lines[0];
  EXPECT_NE(lines[0].find("); free 4 MiB and retry; nothing already stored was changed (`tune "
                          "registry gc` works on a full disk)"),
            std::string::npos)
      << lines[0];
  EXPECT_EQ(lines[8], "gc kept 9; verify: 0 problems; versions 8");  // eight weights, one config
  EXPECT_EQ(lines[9], "after freeing: production -> 8");
}

// A backup is written under BACKUP.partial-XXXXXXXX and renamed when whole: killed at any moment,
// it leaves either nothing at BACKUP or a backup that verifies.
TEST(RegistryProcesses, AKilledBackupNeverLeavesAFolderThatLooksFinished) {
  TempDir dir;
  const fs::path registry = dir.path() / "registry";
  {
    auto writer = LocalRegistry::Open(registry, Mode::kCreate);
    for (int i = 0; i < 120; ++i) {
      writer->Register("many", testing::SampleRecord(),
                       testing::MakeArtifact(dir.path() / "a", std::string(48 << 10, char(i))));
    }
  }
  std::mt19937 random(7);
  int finished = 0;
  int interrupted = 0;
  for (int round = 0; round < 12; ++round) {
    const fs::path backup = dir.path() / ("backup-" + std::to_string(round));
    Writer backing({"backup", registry.string(), backup.string()});
    backing.ReadLines(static_cast<int>(random() % 400));
    backing.Kill();
    if (fs::exists(backup)) {
      ++finished;
      const VerifyReport report = LocalRegistry::Open(backup, Mode::kReadOnly)->Verify();
      ASSERT_TRUE(report.problems.empty()) << backup << ": " << report.problems[0];
      EXPECT_EQ(report.versions_checked, 120);
    } else {
      ++interrupted;
    }
  }
  std::cout << finished << " backups finished before the kill, " << interrupted
            << " were interrupted\n";
  // Whatever the machine's speed, each unfinished one left only a folder named as unfinished.
  for (const fs::directory_entry& entry : fs::directory_iterator(dir.path())) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("backup-")) {
      EXPECT_TRUE(name.find(".partial-") != std::string::npos ||
                  fs::exists(entry.path() / "db" / "CURRENT"))
          << name;
    }
  }
}

}  // namespace
}  // namespace tune

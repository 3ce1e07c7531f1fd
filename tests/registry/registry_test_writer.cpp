// A writer process for the registry tests that need a second process: one stuck in the middle
// of a write, one that registers versions until it is killed, one that runs out of disk.
//
//   registry_test_writer hold DIR
//       register one version, then hold db/LOCK as a writer stuck mid-write would (RocksDB opened
//       for writing, db/LOCK.pid naming this process); print "ready"; wait to be killed
//   registry_test_writer loop DIR SCRATCH
//       register versions forever; print "NAME VERSION DIGEST" after each Register returns
//   registry_test_writer fill DIR ARTIFACT LIMIT_BYTES
//       with files capped at LIMIT_BYTES (RLIMIT_FSIZE), register ARTIFACT; print the error;
//       exit 0 if refused
//   registry_test_writer run DIR SWEEP TRIAL
//       create the run of trial TRIAL of sweep SWEEP, print its id, and exit without finishing it,
//       as a sweep killed mid-trial leaves it
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <rocksdb/db.h>

#include "registry/registry.h"
#include "registry/registry_test_util.h"

namespace {

namespace fs = std::filesystem;
using tune::Registry;

int Hold(const fs::path& dir, const std::string& command_line) {
  Registry::Open(dir, Registry::OpenMode::kCreate)
      ->Register("held", tune::testing::SampleRecord(),
                 tune::testing::MakeArtifact(dir.parent_path() / "held-artifact", "held"));
  const std::string db_dir = (dir / "db").string();
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), db_dir, &names).ok()) return 2;
  std::vector<rocksdb::ColumnFamilyDescriptor> columns;
  for (const std::string& name : names) columns.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::Open(rocksdb::DBOptions(), db_dir, columns, &handles, &db).ok()) return 2;
  std::ofstream(dir / "db" / "LOCK.pid") << getpid() << "\n" << command_line << "\n";
  std::cout << "ready" << std::endl;
  for (;;) pause();
}

int Loop(const fs::path& dir, const fs::path& scratch) {
  auto registry = Registry::Open(dir, Registry::OpenMode::kCreate);
  std::mt19937_64 random{std::random_device{}()};
  const char* names[] = {"alpha", "beta"};
  for (int64_t i = 0;; ++i) {
    const std::string name = names[random() % 2];
    // Some bytes repeat (deduplicated objects), most are new; sizes up to 96 KiB.
    std::string weights(1 + random() % (96 << 10), '\0');
    const uint64_t pattern = random() % 4 == 0 ? 42 : random();
    std::mt19937_64 bytes(pattern);
    for (char& c : weights) c = static_cast<char>(bytes());
    // Appended, not "a" + std::to_string(..): GCC 12 reports a false -Wrestrict for that.
    std::string folder = "a";
    folder.append(std::to_string(getpid())).append("-").append(std::to_string(i));
    std::string config = "{\"r\": ";
    config.append(std::to_string(i % 16)).append("}");
    const fs::path artifact = scratch / folder;
    tune::testing::MakeArtifact(artifact, weights, config);
    const int64_t version =
        registry->Register(name, tune::testing::SampleRecord(i % 16, 0.01 * (i % 100)), artifact);
    if (version % 3 == 0) registry->MoveAlias(name, "production", version);
    const tune::VersionRecord record = registry->Get(name, version);
    std::cout << name << " " << version << " " << record.artifact_digest << std::endl;
    fs::remove_all(artifact);
  }
}

int Fill(const fs::path& dir, const fs::path& artifact, long limit_bytes) {
  // Writing past the limit raises SIGXFSZ, which kills by default; ignored, write fails with EFBIG.
  signal(SIGXFSZ, SIG_IGN);
  const rlimit limit{static_cast<rlim_t>(limit_bytes), static_cast<rlim_t>(limit_bytes)};
  setrlimit(RLIMIT_FSIZE, &limit);
  auto registry = Registry::Open(dir, Registry::OpenMode::kReadWrite);
  try {
    registry->Register("big", tune::testing::SampleRecord(), artifact);
  } catch (const tune::UserError& e) {
    std::cout << e.what() << std::endl;
    return 0;
  }
  std::cout << "registered despite the file size limit" << std::endl;
  return 3;
}

int AbandonedRun(const fs::path& dir, const std::string& sweep, int64_t trial) {
  tune::RunInfo info{"rank", sweep, trial, "[train]\n"};
  info.configuration = trial;
  info.seed = 0;
  std::cout << Registry::Open(dir, Registry::OpenMode::kCreate)->CreateRun(info) << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "hold" && argc == 3) {
      return Hold(argv[2], std::string(argv[0]) + " hold " + argv[2]);
    }
    if (mode == "loop" && argc == 4) return Loop(argv[2], argv[3]);
    if (mode == "fill" && argc == 5) return Fill(argv[2], argv[3], std::stol(argv[4]));
    if (mode == "run" && argc == 5) return AbandonedRun(argv[2], argv[3], std::stoll(argv[4]));
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  std::cerr
      << "usage: registry_test_writer hold DIR | loop DIR SCRATCH | fill DIR ARTIFACT LIMIT | "
         "run DIR SWEEP TRIAL\n";
  return 2;
}

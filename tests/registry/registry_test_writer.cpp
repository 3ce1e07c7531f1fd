// A writer process for the registry tests that need a second process: one stuck in the middle
// of a write, one that registers versions until it is killed, one that runs out of disk.
//
//   registry_test_writer hold DIR
//       register one version, then hold db/LOCK as a writer stuck mid-write would (RocksDB opened
//       for writing, db/LOCK.pid naming this process); print "ready"; wait to be killed
//   registry_test_writer loop DIR SCRATCH [COUNT]
//       register versions (COUNT of them, else forever), reading each back at once; print
//       "NAME VERSION DIGEST" after each Register returns; exit 2 naming the first read that fails
//   registry_test_writer fill DIR ARTIFACT LIMIT_BYTES
//       with files capped at LIMIT_BYTES (RLIMIT_FSIZE), register ARTIFACT; print the error;
//       exit 0 if refused
//   registry_test_writer fullfs MOUNT_POINT
//       in a mount namespace of its own, on a 16 MiB tmpfs at MOUNT_POINT: register versions,
//       fill the disk to within 16 KiB, then try eight writes (each must be refused as a full
//       disk, not abort), gc and verify; print what each did; exit 0 when all behaved
//   registry_test_writer backup DIR DEST
//       back the registry up to DEST
//   registry_test_writer remote-register URL ARTIFACT
//       register ARTIFACT as a version of "big" through the registry server at URL ($TUNE_TOKEN);
//       print "VERSION DIGEST"
//   registry_test_writer remote-runs URL
//       through the registry server at URL ($TUNE_TOKEN), record runs and their metrics until
//       killed, printing "RUN_ID" as each finishes; about ten runs a second, as a busy team's
//       trainers would (not as fast as it can: thousands of runs would slow every page on a
//       slow machine)
//   registry_test_writer run DIR SWEEP TRIAL
//       create the run of trial TRIAL of sweep SWEEP, print its id, and exit without finishing it,
//       as a sweep killed mid-trial leaves it
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <rocksdb/db.h>

#include "registry/local_registry.h"
#include "registry/registry_test_util.h"

namespace {

namespace fs = std::filesystem;
using tune::LocalRegistry;
using tune::Registry;

int Hold(const fs::path& dir, const std::string& command_line) {
  LocalRegistry::Open(dir, Registry::OpenMode::kCreate)
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

int Loop(const fs::path& dir, const fs::path& scratch, int64_t count) {
  auto registry = LocalRegistry::Open(dir, Registry::OpenMode::kCreate);
  std::mt19937_64 random{std::random_device{}()};
  const char* names[] = {"alpha", "beta"};
  for (int64_t i = 0; count < 0 || i < count; ++i) {
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
  return 0;
}

int Fill(const fs::path& dir, const fs::path& artifact, long limit_bytes) {
  // Writing past the limit raises SIGXFSZ, which kills by default; ignored, write fails with EFBIG.
  signal(SIGXFSZ, SIG_IGN);
  const rlimit limit{static_cast<rlim_t>(limit_bytes), static_cast<rlim_t>(limit_bytes)};
  setrlimit(RLIMIT_FSIZE, &limit);
  auto registry = LocalRegistry::Open(dir, Registry::OpenMode::kReadWrite);
  try {
    registry->Register("big", tune::testing::SampleRecord(), artifact);
  } catch (const tune::UserError& e) {
    std::cout << e.what() << std::endl;
    return 0;
  }
  std::cout << "registered despite the file size limit" << std::endl;
  return 3;
}

// Runs `work` in a mount namespace of this process's own with a tmpfs of `size_bytes` at
// `mount_point`, so a full disk can be made without touching the machine's. Needs root, or
// unprivileged user namespaces (then this process maps itself to root inside).
bool EnterSmallDisk(const fs::path& mount_point, long size_bytes) {
  const uid_t uid = getuid();
  const gid_t gid = getgid();
  if (unshare(CLONE_NEWNS) != 0) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
    std::ofstream("/proc/self/setgroups") << "deny";
    std::ofstream("/proc/self/uid_map") << "0 " << uid << " 1";
    std::ofstream("/proc/self/gid_map") << "0 " << gid << " 1";
  }
  if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  fs::create_directories(mount_point);
  const std::string options = "size=" + std::to_string(size_bytes);
  return mount("tmpfs", mount_point.c_str(), "tmpfs", 0, options.c_str()) == 0;
}

int FullDisk(const fs::path& mount_point) {
  if (!EnterSmallDisk(mount_point, 16L << 20)) {
    std::cout << "cannot mount a tmpfs in a mount namespace: " << std::strerror(errno)
              << " (run as root, or allow unprivileged user namespaces)" << std::endl;
    return 3;
  }
  const fs::path dir = mount_point / "registry";
  auto registry = LocalRegistry::Open(dir, Registry::OpenMode::kCreate);
  for (int i = 0; i < 8; ++i) {
    const fs::path artifact =
        tune::testing::MakeArtifact(mount_point / "artifact", std::string(64 << 10, char('a' + i)));
    registry->Register("full", tune::testing::SampleRecord(), artifact);
    fs::remove_all(artifact);
  }
  {
    // Leaves 16 KiB: what made RocksDB abort (an assertion after a failed write) before.
    struct statvfs space {};
    statvfs(mount_point.c_str(), &space);
    const uint64_t free_bytes = static_cast<uint64_t>(space.f_bavail) * space.f_frsize;
    std::ofstream filler(mount_point / "filler", std::ios::binary);
    const std::string block(4096, 'x');
    for (uint64_t written = 0; written + (16 << 10) + block.size() <= free_bytes;
         written += block.size()) {
      filler.write(block.data(), static_cast<std::streamsize>(block.size()));
    }
  }
  int refused = 0;
  for (int i = 0; i < 8; ++i) {
    try {
      registry->MoveAlias("full", "production", 1 + i % 8);
      std::cout << "write " << i << " succeeded on a full disk" << std::endl;
    } catch (const tune::UserError& e) {
      const std::string message = e.what();
      std::cout << message << std::endl;
      if (message.find("the disk is full") != std::string::npos) ++refused;
    }
  }
  // An interrupted open leaves OPTIONS-*.dbtmp; the next write that opens cleans them.
  std::ofstream(dir / "db" / "OPTIONS-999999.dbtmp") << "left by an interrupted open";
  const tune::GcReport gc = registry->Gc(std::chrono::seconds(0));
  const tune::VerifyReport verify = registry->Verify();
  std::cout << "gc kept " << gc.objects_kept << "; verify: " << verify.problems.size()
            << " problems; versions " << registry->List().size() << std::endl;
  fs::remove(mount_point / "filler");
  registry->MoveAlias("full", "production", 8);
  const bool cleaned = !fs::exists(dir / "db" / "OPTIONS-999999.dbtmp");
  std::cout << "after freeing: production -> " << registry->Resolve("full@production").version
            << (cleaned ? "" : "; the .dbtmp file was left") << std::endl;
  return refused == 8 && verify.problems.empty() && cleaned ? 0 : 1;
}

int AbandonedRun(const fs::path& dir, const std::string& sweep, int64_t trial) {
  tune::RunInfo info{"rank", sweep, trial, "[train]\n"};
  info.configuration = trial;
  info.seed = 0;
  std::cout << LocalRegistry::Open(dir, Registry::OpenMode::kCreate)->CreateRun(info) << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "hold" && argc == 3) {
      return Hold(argv[2], std::string(argv[0]) + " hold " + argv[2]);
    }
    if (mode == "loop" && (argc == 4 || argc == 5)) {
      return Loop(argv[2], argv[3], argc == 5 ? std::stol(argv[4]) : -1);
    }
    if (mode == "fullfs" && argc == 3) return FullDisk(argv[2]);
    if (mode == "remote-runs" && argc == 3) {
      const auto registry = Registry::Open(argv[2], Registry::OpenMode::kReadWrite);
      for (int64_t i = 0;; ++i) {
        const std::string run = registry->CreateRun({"busy", std::nullopt, std::nullopt, ""});
        for (int64_t step = 1; step <= 50; ++step) {
          registry->LogMetrics(run, step, {{"loss", 1.0 / static_cast<double>(step + i)}});
        }
        registry->FinishRun(run, tune::RunStatus::kFinished);
        std::cout << run << std::endl;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    if (mode == "remote-register" && argc == 4) {
      tune::VersionRecord record = tune::testing::SampleRecord();
      record.run_id = "00000000000000aa";  // one run: a retry must not make a second version
      const auto registry = Registry::Open(argv[2], Registry::OpenMode::kReadWrite);
      const int64_t version = registry->Register("big", record, argv[3]);
      std::cout << version << " " << registry->Get("big", version).artifact_digest << std::endl;
      return 0;
    }
    if (mode == "backup" && argc == 4) {
      LocalRegistry::Open(argv[2], Registry::OpenMode::kReadWrite)->Backup(argv[3]);
      return 0;
    }
    if (mode == "fill" && argc == 5) return Fill(argv[2], argv[3], std::stol(argv[4]));
    if (mode == "run" && argc == 5) return AbandonedRun(argv[2], argv[3], std::stoll(argv[4]));
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  std::cerr
      << "usage: registry_test_writer hold DIR | loop DIR SCRATCH [COUNT] | fill DIR ARTIFACT "
         "LIMIT | fullfs MOUNT_POINT | backup DIR DEST | remote-register URL ARTIFACT | "
         "remote-runs URL | run DIR SWEEP TRIAL\n";
  return 2;
}

// Tracker: where runs report as they train and where their adapters become versions. `tune train`
// and `tune sweep` both go through it: a registry folder or a registry server behind it
// (OpenRegistryTracker), and a sweep's trials use one that sends each call to the sweep
// (MakeDriverTracker, orchestrate/trial_channel.h), which carries it out in its own.
//
// Training never waits on the network: against a server, CreateRun and LogMetrics return at once
// (the calls go out from a thread of the tracker's, and wait there while the server cannot be
// reached), and only Register waits: for as long as the upload takes, and at most
// RegistryConfig::retry_seconds of the server being unreachable. A run whose registration could
// not be made keeps everything in its folder, for `tune registry push` (PushRunFolder).
//
// Threads: one thread at a time per Tracker, except that the trackers OpenRegistryTracker makes
// also take Register on other threads beside the calls of that one. Errors: UserError of one line
// (a registry in use longer than its wait, a full disk, a server unreachable for too long); what
// was recorded before stays recorded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "config/run_config.h"
#include "registry/registry.h"

namespace tune {

// The training file as a dataset version: Registry::RegisterDataset's arguments.
struct TrackedDataset {
  std::string name;
  DatasetRecord record;
  std::filesystem::path rows_file;
  bool operator==(const TrackedDataset&) const = default;
};

// An adapter to record as the next version of `name`, with the dataset version it was trained on.
struct TrackedVersion {
  std::string name;
  VersionRecord record;  // its dataset_name and dataset_version are set by Register
  std::filesystem::path artifact_dir;
  std::filesystem::path eval_samples;  // empty: none
  std::optional<TrackedDataset> dataset;
  bool operator==(const TrackedVersion&) const = default;
};
nlohmann::json TrackedVersionToJson(const TrackedVersion& version);
TrackedVersion TrackedVersionFromJson(const nlohmann::json& json);  // UserError when malformed

class Tracker {
 public:
  virtual ~Tracker() = default;

  // The run's id: the registry's choice (a folder), or the tracker's (a server, which may not be
  // reachable yet).
  virtual std::string CreateRun(const RunInfo& info) = 0;
  // May buffer (the registry writes metrics at most every 2 s); FinishRun writes what is held.
  virtual void LogMetrics(std::string_view run_id, int64_t step,
                          const std::map<std::string, double>& values) = 0;
  // Records the dataset version first (none is added when the rows are the latest version's),
  // links the adapter's record to it, then records the adapter. Returns the adapter's version.
  // A retry of the same run's registration returns the same version (Registry::Register).
  virtual int64_t Register(TrackedVersion version) = 0;
  // `end_reason`: RunRecord::end_reason's word; empty: the status's own.
  virtual void FinishRun(std::string_view run_id, RunStatus status, std::string_view error = "",
                         std::string_view end_reason = "") = 0;

  // Where it records, as messages name it: the registry's folder or URL.
  virtual std::string location() const = 0;
};

// The registry `config` names: a folder, created when there is none, or a server's URL (opened
// on the tracker's thread: a server that cannot be reached yet is not an error until Register
// has waited for it). Throws UserError when a folder cannot be opened or a token file read.
std::unique_ptr<Tracker> OpenRegistryTracker(const RegistryConfig& config);

// The token and CA `config` names (its token file read). UserError when the file cannot be read.
RemoteAccess AccessOf(const RegistryConfig& config);

// What a run folder needs for `tune registry push`: the run (run.json, written when the run is
// created) and its version to register (registration.json, written before it registers).
void WriteRunRecord(const std::filesystem::path& run_dir, const std::string& run_id,
                    const RunInfo& info);
void WriteRegistration(const std::filesystem::path& run_dir, const TrackedVersion& version);

// `tune registry push RUN_DIR`: records a finished run that could not reach its registry (its
// run, its metrics from metrics.jsonl, its dataset and version) in `registry`, and returns the
// version. A run registered before gets its version again, and nothing is added twice.
int64_t PushRunFolder(const std::filesystem::path& run_dir, Registry& registry);

}  // namespace tune

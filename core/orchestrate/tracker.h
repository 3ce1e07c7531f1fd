// Tracker: where runs report as they train and where their adapters become versions. `tune train`
// and `tune sweep` both go through it: the local registry is behind it today (a registry server's
// client is the next), and a sweep's trials use one that sends each call to the sweep
// (MakeDriverTracker, orchestrate/trial_channel.h), which carries it out in its own.
//
// Threads: one thread at a time per Tracker. Errors: UserError of one line (a registry in use
// longer than its wait, a full disk); what was recorded before stays recorded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

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

class Tracker {
 public:
  virtual ~Tracker() = default;

  virtual std::string CreateRun(const RunInfo& info) = 0;
  // May buffer (the registry writes metrics at most every 2 s); FinishRun writes what is held.
  virtual void LogMetrics(std::string_view run_id, int64_t step,
                          const std::map<std::string, double>& values) = 0;
  // Records the dataset version first (none is added when the rows are the latest version's),
  // links the adapter's record to it, then records the adapter. Returns the adapter's version;
  // asked again for a run that has one (its record's run_id), returns that one.
  virtual int64_t Register(TrackedVersion version) = 0;
  // `end_reason`: RunRecord::end_reason's word; empty: the status's own.
  virtual void FinishRun(std::string_view run_id, RunStatus status, std::string_view error = "",
                         std::string_view end_reason = "") = 0;

  // Where it records, as messages name it and OpenRegistryTracker opens it: the registry's folder.
  virtual std::string location() const = 0;
};

// The registry at `location` (a folder; created when there is none). A trial that lost its driver
// records through this with the driver's location (TrialGo::registry), so whatever this accepts
// the trials accept too. Throws UserError when it cannot be opened.
std::unique_ptr<Tracker> OpenRegistryTracker(const std::string& location);

}  // namespace tune

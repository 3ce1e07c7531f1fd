// One trial, tracked: `tune train` runs exactly this, alone or as one of a sweep's trials, so a
// trial records its run and registers its adapter the same way whoever started it. The version
// it registers holds the trial's own resolved config.
//
// Under a driver (a TrialChannel, trial_channel.h), the trial reports prepared and waits for go,
// creates its run then (through the driver), reports its progress and every intermediate eval and
// waits for each eval's verdict, and reports done with its version. Alone, it opens the registry
// and creates its run before it loads anything.
//
// A trial on another machine (a Slurm task, remote_channel.h) outlives its driver: when the
// driver goes away, or cannot be reached when the trial starts, the trial goes on alone with the
// go its driver wrote for it, trains to its end without verdicts, and records through the
// registry the go names (OpenRegistryTracker(TrialGo::registry)). The run it had created goes on.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/run_config.h"
#include "orchestrate/tracker.h"
#include "orchestrate/trial_channel.h"
#include "train/trainer.h"

namespace tune {

class PluginHost;

struct TrialResult {
  enum class Outcome {
    kRegistered,        // trained and registered now
    kRegisteredBefore,  // --resume of a run folder that had finished and registered
    kStopped,           // the driver's verdict stopped it (early stopping)
  };
  Outcome outcome = Outcome::kRegistered;
  int64_t version = 0;
  std::string registry;  // where the version is
  std::string stop_reason;
  TrainSummary summary;  // of a registered trial
};

// Opens the tracker a trial without a driver records in; called once, when it first needs it.
using OpenTracker = std::function<std::unique_ptr<Tracker>()>;

struct TrialDriver {
  TrialChannel* channel = nullptr;  // null: no driver (or none reachable)
  // Set for a trial that goes on alone without its driver: what the driver would say at go.
  // Unset, losing the driver ends the trial with an error (a local trial dies with it anyway).
  std::optional<TrialGo> go_alone;
};

// A driven trial records through its driver (MakeDriverTracker), so the driver's one process holds
// the registry for all its trials. Throws what Train throws (UserError, Interrupted) once the run
// is recorded as failed or killed, and UserError when the driver goes away and the trial may not
// go on alone.
TrialResult RunTrial(const RunConfig& config, const PluginHost& host, TrainOptions options,
                     const OpenTracker& open_tracker, const TrialDriver& driver);

// What a trial that registered reports as done, read back from its run folder (registered.json,
// summary.json): how a driver learns the result of a trial that finished alone. nullopt when the
// run did not register.
std::optional<TrialDone> RegisteredTrial(const std::filesystem::path& run_dir);

}  // namespace tune

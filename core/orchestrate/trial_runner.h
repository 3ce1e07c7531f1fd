// Trial runners: how a driver starts, watches, stops and reaps the trials it runs. Each trial is a
// `tune train` process that holds one end of a TrialChannel (--channel-fd). Local processes today;
// a cluster scheduler's runner comes next behind the same interface.
//
// Threads: one thread drives a runner and its trials.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "orchestrate/trial_channel.h"

namespace tune {

struct TrialLaunch {
  // The `tune train` arguments after the program: {"train", FILE, overrides..., "-o", DIR, ...}.
  // The runner adds --channel-fd.
  std::vector<std::string> train_args;
  std::filesystem::path log;  // the trial's stdout and stderr, appended
  // The devices the trial may see (CUDA_VISIBLE_DEVICES); empty leaves the variable as it is.
  std::string cuda_visible_devices;
};

// How a trial's process ended.
struct TrialExit {
  bool signaled = false;
  int code = 0;  // exit status, or the signal when signaled
  bool ok() const { return !signaled && code == 0; }
  // "killed by signal 9 (out of memory?)", "exited with status 1".
  std::string Describe() const;
};

class RunningTrial {
 public:
  virtual ~RunningTrial() = default;
  virtual TrialChannel& channel() = 0;
  // How the process ended, once it has (it is reaped then); nullopt while it runs.
  virtual std::optional<TrialExit> Exited() = 0;
  // Ends the process at once and reaps it.
  virtual TrialExit Kill() = 0;
};

class TrialRunner {
 public:
  virtual ~TrialRunner() = default;
  // Throws UserError when the trial cannot be started.
  virtual std::unique_ptr<RunningTrial> Start(const TrialLaunch& launch) = 0;
  // Returns once one of `trials` has sent something or ended, or `timeout` passed.
  virtual void WaitForAny(std::span<RunningTrial* const> trials,
                          std::chrono::milliseconds timeout) = 0;
};

// Each trial a child process of this one, running this process's own executable (/proc/self/exe).
// A trial dies with its driver (SIGKILL however the driver exits): without its driver nobody
// would read its channel, and a resumed sweep would race it for its folder.
std::unique_ptr<TrialRunner> MakeLocalProcessRunner();

}  // namespace tune

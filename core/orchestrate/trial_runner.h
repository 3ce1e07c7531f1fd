// Trial runners: how a driver starts, watches, stops and reaps the trials it runs. Each trial is a
// `tune train` process that holds one end of a TrialChannel: a local child process
// (--channel-fd), or a Slurm job array's task that connects back over TCP (slurm_runner.h).
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

#include "orchestrate/attempt.h"
#include "orchestrate/trial_channel.h"

namespace tune {

struct TrialLaunch {
  int64_t trial = 0;  // the sweep's number for it (a Slurm array's task index)
  // The `tune train` arguments after the program: {"train", FILE, overrides..., "-o", DIR}. The
  // runner adds how to continue the run folder (--resume when it holds a checkpoint, else
  // --restart) and how to reach the driver (--channel-fd, --driver).
  std::vector<std::string> train_args;
  std::filesystem::path log;  // the trial's stdout and stderr, appended
  // The devices the trial may see (CUDA_VISIBLE_DEVICES); empty leaves the variable as it is.
  std::string cuda_visible_devices;
  // What its driver will say at go: a trial on another machine that cannot reach its driver
  // trains alone with it (trial.h).
  TrialGo go;
  // The scheduler's job its previous attempt ran as ("1234_5"), if any: a cluster runner runs
  // that job again rather than a new one, or watches it if it still runs (Adopt).
  std::string job;
};

// How a trial's process ended.
struct TrialExit {
  bool signaled = false;
  int code = 0;                            // exit status, or the signal when signaled
  AttemptEnd end = AttemptEnd::kFinished;  // kFinished: it exited with status 0
  // The scheduler's account, when one ran it: "Slurm: CANCELLED on node7". Empty for a process.
  std::string detail;
  bool ok() const { return !signaled && code == 0 && end == AttemptEnd::kFinished; }
  // "killed by signal 9 (out of memory?)", "exited with status 1", or the scheduler's account.
  std::string Describe() const;
};

// How a local process's exit reads as an attempt's end: 130 and 143 are tune train's own exits
// after it checkpointed on SIGINT or SIGTERM.
AttemptEnd LocalAttemptEnd(bool signaled, int code);

// Where a trial runs, as far as its runner knows yet.
struct TrialPlace {
  std::string node;  // host name; empty until it runs
  std::string job;   // the scheduler's job ("1234_5"); empty for a local process
  bool operator==(const TrialPlace&) const = default;
};

class RunningTrial {
 public:
  virtual ~RunningTrial() = default;
  // The trial's end of the conversation; null until it is there (a cluster's trial connects once
  // it starts on its node). It may change: a trial the scheduler ran again connects anew.
  virtual TrialChannel* channel() = 0;
  virtual TrialPlace place() const = 0;
  // How the process ended, once it has (it is reaped then); nullopt while it runs or waits.
  virtual std::optional<TrialExit> Exited() = 0;
  // Ends the trial at once (a queued one never starts) and reaps it. Destroying a RunningTrial
  // that has not ended leaves a cluster's trial running, on its own (a local one is killed).
  virtual TrialExit Kill() = 0;
};

class TrialRunner {
 public:
  virtual ~TrialRunner() = default;
  // Starts `launches` together, in order: a cluster runner submits them as one job array. Throws
  // UserError when they cannot be started (the scheduler refused them).
  virtual std::vector<std::unique_ptr<RunningTrial>> Start(
      std::span<const TrialLaunch> launches) = 0;
  // For a resumed sweep: of the trials an earlier driver started (TrialLaunch::job), those the
  // scheduler still runs or queues, to watch rather than start again, in order; null for the
  // rest. A local process never outlives its driver: all null.
  virtual std::vector<std::unique_ptr<RunningTrial>> Adopt(
      std::span<const TrialLaunch> launches) = 0;
  // Returns once one of `trials` has sent something or ended, or `timeout` passed.
  virtual void WaitForAny(std::span<RunningTrial* const> trials,
                          std::chrono::milliseconds timeout) = 0;
};

// The run folder of a trial as `-o DIR` names it in `train_args`; empty when there is none.
std::filesystem::path TrialRunFolder(const TrialLaunch& launch);

// This machine's name (gethostname), as a trial's place names it; empty if it has none.
std::string HostName();

// Each trial a child process of this one, running this process's own executable (/proc/self/exe).
// A trial dies with its driver (SIGKILL however the driver exits): without its driver nobody
// would read its channel, and a resumed sweep would race it for its folder.
std::unique_ptr<TrialRunner> MakeLocalProcessRunner();

}  // namespace tune

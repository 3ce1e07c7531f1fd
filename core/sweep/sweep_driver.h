// SweepDriver: carries out the scheduler's decisions (scheduler.h) with a trial runner
// (orchestrate/trial_runner.h), feeds back what the trials say, carries out their tracker calls in
// the sweep's tracker, records every attempt (where it ran, why it ended) in sweep.json and in its
// run, and prints progress. The decisions themselves are the scheduler's.
//
// Threads: one, and a thread per registration in progress (an upload to a registry server may
// take minutes; the other trials' calls and verdicts do not wait for it). Errors: UserError when
// the runner cannot start trials (Slurm refused them); the state is saved, and trials already
// handed to a cluster go on alone.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/run_config.h"
#include "orchestrate/tracker.h"
#include "orchestrate/trial_runner.h"
#include "sweep/report.h"
#include "sweep/scheduler.h"
#include "sweep/sweep_state.h"

namespace tune {

// What the kernel can give without swapping (/proc/meminfo MemAvailable), in bytes; -1 if unknown.
int64_t AvailableMemoryBytes();

struct DriverSetup {
  std::filesystem::path file;          // the sweep file
  std::vector<std::string> overrides;  // applied to every trial
  const RunConfig* config = nullptr;
  std::filesystem::path dir;      // the sweep's folder
  std::vector<std::string> gpus;  // the device of each slot; empty on the CPU or a cluster
  int64_t threads = 0;            // train.threads for each trial; 0: the run file's
  int64_t eval_every = 0;         // train.eval_every for each trial; 0: the run file's
  std::string base_model_sha256;  // empty: each trial hashes its own
  int64_t model_weight_bytes = 0;
  // Called once, when the first trials have been handed to the runner: the sweep is real then.
  std::function<void()> started;
  // What the driver asks of the machine, replaced in tests: the memory the kernel can give, in
  // bytes (-1: unknown), and the time.
  std::function<int64_t()> available_memory = AvailableMemoryBytes;
  std::function<std::chrono::steady_clock::time_point()> now = std::chrono::steady_clock::now;
};

// What the tables say: the sweep's objective, and each score's range for its intervals.
ReportContext ReportFor(const RunConfig& config);

class SweepDriver {
 public:
  SweepDriver(DriverSetup setup, SweepScheduler& scheduler, SweepState& state, Tracker& tracker,
              TrialRunner& runner);
  ~SweepDriver();

  // Takes back what an earlier driver left running (TrialRunner::Adopt) and settles the rest of
  // its trials (finished alone, or ended with it), then runs until the scheduler is done.
  void Run();

 private:
  struct Process;

  void Save();
  double SecondsSince(std::chrono::steady_clock::time_point start) const;
  std::filesystem::path LogFile(int64_t number) const;
  std::filesystem::path RunFolder(int64_t number) const;
  TrialGo GoFor(int64_t number) const;
  TrialLaunch LaunchFor(int64_t number, int slot) const;
  void TakeOver();
  void Act(const SweepScheduler::Actions& actions);
  void GoDue(int64_t number);
  void SendGo(int64_t number);
  void Watch(int64_t number);
  void Handle(int64_t number, const TrialMessage& message);
  void AddTrialFields(int64_t number, RunInfo& info) const;
  bool Serve(int64_t number, const TrialMessage& message);
  void AnswerRegistrations();
  void Ended(int64_t number, const TrialExit& exit, std::string failure);
  void RecordEnd(int64_t number, AttemptEnd end, const std::string& failure);
  void PrintProgress(double elapsed_seconds);

  DriverSetup s_;
  SweepScheduler& scheduler_;
  SweepState& state_;
  Tracker& tracker_;
  TrialRunner& runner_;
  ReportContext report_;
  std::map<int64_t, std::unique_ptr<Process>> processes_;
  // Registrations in progress, each on a thread of its own, and the trial each answers.
  struct Registration {
    int64_t number;
    std::future<TrackerReply> reply;
  };
  std::vector<Registration> registrations_;
};

// trial-001: the name of a trial's run folder (and, with .log, of its log).
std::string TrialDirName(int64_t number);

}  // namespace tune

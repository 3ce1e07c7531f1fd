// tune sweep: runs a sweep file's trials, each a `tune train` process that registers its own
// adapter with its sweep, trial and configuration (through the sweep's tracker, which carries out
// its trials' tracker calls), and prints the ranking.
//
// A sweep lives in <root>/<name>-<N>/: sweep.json (sweep_state.h: the trials, their parameters,
// status and results) and trial-<k>/ (each trial's run directory) with trial-<k>.log. The pieces:
// the search proposes configurations (search.h), the scheduler decides which trial trains when
// and which stops early (scheduler.h), a trial runner starts and reaps the processes
// (orchestrate/trial_runner.h), each trial talks to the sweep over its channel
// (orchestrate/trial_channel.h), and the ranking and progress are report.h's. A trial that
// crashes, runs out of memory or is killed fails alone; the sweep goes on.
//
// With [sweep] repeats = N every configuration runs N times, with seeds train.seed + 0 .. N-1
// (data order and initialisation), and is ranked by its mean. On CPU the next trial loads while
// the current ones train. Trials that share a base model, eval set and metrics measure the base
// model once (<name>-<N>/base-scores/).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tune {

struct SweepOptions {
  std::filesystem::path file;
  std::vector<std::string> overrides;  // key=value, applied to every trial
  std::filesystem::path root = ".tune/sweeps";
  bool resume = false;  // continue the newest sweep of this name instead of starting one
  bool force = false;   // resume although the sweep file or the data changed
  bool detach = false;  // Slurm: submit the sweep's driver as a job of its own and return
  std::string attach;   // <name>-<N>: follow that sweep, or drive it if nothing does (file unused)
};

// The GPUs trials run on, one trial each, as the values a trial's CUDA_VISIBLE_DEVICES takes:
// the first `count` entries of the sweep's own `cuda_visible_devices` list (indices or UUIDs), or
// 0..count-1 when it is unset (nullptr).
std::vector<std::string> TrialGpus(int64_t count, const char* cuda_visible_devices);

// Returns the exit code: 0 when every trial finished (or, detached, when the driver job was
// submitted), 1 when some failed (they are listed). Throws UserError for a sweep that cannot start;
// a new sweep that cannot start leaves no folder behind.
int RunSweep(const SweepOptions& options);

}  // namespace tune

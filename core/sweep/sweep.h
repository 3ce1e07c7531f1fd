// tune sweep: runs a sweep file's trials, each in its own `tune train` process, and registers
// every finished trial's adapter with its sweep and trial number.
//
// A sweep lives in <root>/<name>-<N>/: sweep.json (the trials, their parameters, status and
// results, rewritten atomically after every change) and trial-<k>/ (each trial's run
// directory and log). The parent process is the registry's only writer: it forwards each
// trial's per-step metrics from the trial's metrics.jsonl while the trial runs. A trial that
// crashes, runs out of memory or is killed fails alone; the sweep goes on.
//
// Each trial holds a control socket to the sweep (tune train --start-fd). It loads plugins, model
// and data, then waits for the sweep's go, so on CPU the next trial is readied while the current
// ones train; after each intermediate eval it reports the step and waits again, so early stopping
// decides at exactly the rung, however fast the trial runs. Trials that share a base model, eval
// set and metrics measure the base model once (<name>-<N>/base-scores/).
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
};

// The GPUs trials run on, one trial each, as the values a trial's CUDA_VISIBLE_DEVICES takes:
// the first `count` entries of the sweep's own `cuda_visible_devices` list (indices or UUIDs), or
// 0..count-1 when it is unset (nullptr).
std::vector<std::string> TrialGpus(int64_t count, const char* cuda_visible_devices);

// Returns the exit code: 0 when every trial finished, 1 when some failed (they are listed).
// Throws UserError for a sweep that cannot start.
int RunSweep(const SweepOptions& options);

}  // namespace tune

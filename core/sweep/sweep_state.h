// A sweep's trials as <sweep dir>/sweep.json keeps them: what each ran with, how it ended and what
// it scored. Rewritten atomically (temporary file, rename) after every change, so a killed sweep
// resumes from what it had recorded. No libtorch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sweep/search.h"

namespace tune {

enum class TrialStatus { kPending, kRunning, kFinished, kFailed, kPruned };
const char* TrialStatusName(TrialStatus status);  // pending, running, finished, failed, pruned

// One attempt at a trial: where it ran and why it ended (a trial runs again after an attempt that
// ended without its fault, orchestrate/attempt.h).
struct Attempt {
  std::string job;     // the Slurm job that ran it ("1234_5": task 5 of array 1234); empty locally
  std::string node;    // the host it ran on; empty until known
  std::string end;     // AttemptEndName; empty while it runs
  std::string error;   // what ended it, when it ended without a result
  std::string run_id;  // its run in the tracker; empty until it made one
  bool operator==(const Attempt&) const = default;
};

struct Trial {
  int64_t number = 0;         // 1-based; its folder is trial-NNN
  int64_t configuration = 0;  // 1-based; its swept values
  int64_t repeat = 0;         // 0-based; it trains with train.seed + repeat
  Assignment assignment;      // the configuration's swept values
  TrialStatus status = TrialStatus::kPending;
  int64_t version = 0;                       // the version it registered, once finished
  std::map<std::string, double> scores;      // every score of a finished trial, the objective's too
  std::optional<double> base_objective;      // the base model's score on the objective
  std::optional<double> few_shot_objective;  // the prompted base model's ([eval] few_shot)
  double wall_seconds = 0.0;
  std::string error;                      // why it failed or was pruned
  int64_t pruned_at = 0;                  // the step at which early stopping ended it
  std::map<int64_t, double> rung_losses;  // eval loss at each early-stopping rung it reached
  std::string run_id;                     // its latest run in the tracker
  std::vector<Attempt> attempts;          // every attempt, the latest last
};

struct SweepState {
  std::string name;  // <sweep name>-<N>
  // What started it, for `tune sweep --attach NAME`: the sweep file (absolute) and its overrides.
  std::string file;
  std::vector<std::string> overrides;
  std::string sweep_sha256;
  std::string dataset_sha256;
  int64_t repeats = 1;
  bool finished = false;      // its driver ran it to the end: every trial settled
  std::vector<Trial> trials;  // by number
};

// Throws UserError when the folder cannot be written (disk full).
void SaveSweepState(const std::filesystem::path& dir, const SweepState& state);
// Reads what SaveSweepState wrote, or an older tune's sweep.json (one trial per configuration).
// Throws UserError naming the file when it is unreadable.
SweepState LoadSweepState(const std::filesystem::path& dir);

}  // namespace tune

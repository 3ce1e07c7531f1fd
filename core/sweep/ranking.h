// A sweep's results by configuration: the spread of each score over the configuration's repeats
// (the trials that differ only in seed), best configuration first. No libtorch.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sweep/sweep_state.h"
#include "util/spread.h"

namespace tune {

struct ConfigurationResult {
  int64_t configuration = 0;
  Assignment assignment;
  std::vector<const Trial*> trials;          // its repeats, by number
  int64_t finished = 0;                      // repeats that finished (the spreads are over these)
  std::map<std::string, Spread> scores;      // every score a finished repeat has
  std::optional<Spread> objective;           // none until a finished repeat measured it
  std::optional<double> base_objective;      // the base model's score on the objective
  std::optional<double> few_shot_objective;  // the prompted base model's ([eval] few_shot)
  double wall_seconds = 0.0;                 // mean over the finished repeats
  const Trial* best_trial = nullptr;         // its finished repeat with the best objective
};

// Every configuration in `state`, best mean objective first (larger when `maximize`); those with
// no finished repeat last, by number. Pointers are into `state`. Each score's interval stays within
// its `bounds` (its metric's range; unbounded when absent).
std::vector<ConfigurationResult> RankConfigurations(
    const SweepState& state, const std::string& objective, bool maximize,
    const std::map<std::string, Bounds>& bounds = {});

}  // namespace tune

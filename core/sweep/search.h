// Sweep search: which parameter values each trial runs with.
//
// A trial's assignment maps each swept key ("adapter.rank") to a value. grid enumerates the
// product of every value list in declaration order; random samples every parameter
// independently; tpe samples its first trials like random and then proposes the candidate
// that maximises l(x) / g(x) (Bergstra et al. 2011), where l and g are Parzen estimators
// fitted to the best quarter of the finished trials and to the rest. Tied parameters
// (expressions over other swept keys) are evaluated after the others. Every method is a pure
// function of the sweep config, the seed and the results it is given.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/run_config.h"
#include "config/sweep_space.h"

namespace tune {

// Point `index` (0-based, below GridSize) of the grid, in declaration order: the last parameter
// varies fastest. Tied parameters are evaluated.
Assignment GridTrial(const SweepConfig& sweep, int64_t index);

// The listed parameters whose value changes among the grid's first `count` points, in
// declaration order: what a max_trials smaller than the grid actually explores.
std::vector<std::string> GridKeysVaried(const SweepConfig& sweep, int64_t count);

// Trial `index` of a random search: the same (sweep, seed, index) always gives the same values.
Assignment RandomTrial(const SweepConfig& sweep, uint64_t seed, int64_t index);

struct FinishedTrial {
  Assignment assignment;
  double objective = 0.0;  // larger is better (the caller negates minimised metrics)
};

// The next trial of a TPE search after `finished` (trial `index`; random while fewer than
// `startup` trials have finished).
Assignment TpeTrial(const SweepConfig& sweep, uint64_t seed, int64_t index,
                    const std::vector<FinishedTrial>& finished, int64_t startup = 5);

}  // namespace tune

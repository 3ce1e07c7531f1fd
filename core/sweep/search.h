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

namespace tune {

using Assignment = std::map<std::string, OptionValue>;

// The configurations a sweep runs when nothing is pruned: a grid's every point unless
// `max_trials` is set and smaller; random and tpe run `max_trials`, kDefaultSearchTrials when the
// file does not set it (their search space need not be finite).
inline constexpr int64_t kDefaultSearchTrials = 8;
// The most configurations one sweep may run; larger grids are refused when the file is read.
inline constexpr int64_t kMaxSweepConfigurations = 1'000'000;
int64_t SweepConfigurations(const SweepConfig& sweep);

// How many points a grid has: the product of its parameters' list sizes, counted without
// enumerating them (a grid of 10^12 points costs nothing to count); INT64_MAX when the product
// overflows. Throws UserError if a parameter is a distribution other than categorical.
int64_t GridSize(const SweepConfig& sweep);

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

// Checks a tied parameter before anything runs: it refers only to listed or sampled parameters
// (not to itself or another tied one), parses, and gives a finite number that `target` (the spec
// of the key it sets) takes, at every combination of the listed values and range ends of what it
// refers to (the first 256). Throws UserError naming the expression and the values. What it
// cannot see: a value inside a sampled range that breaks the rule while both ends keep it.
void CheckTiedParameter(const SweepConfig& sweep, const SweepParameter& tied,
                        const OptionSpec& target);

// Evaluates `expression` (numbers, + - * /, parentheses, swept keys) with the values in
// `assignment`. Throws UserError naming the expression if it refers to a key that is not swept
// or is not a number, or does not parse.
double EvaluateExpression(const std::string& expression, const Assignment& assignment);

}  // namespace tune

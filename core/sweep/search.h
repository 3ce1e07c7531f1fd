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

// Every grid trial, at most max_trials. Throws UserError if a parameter is a distribution.
std::vector<Assignment> GridTrials(const SweepConfig& sweep);

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

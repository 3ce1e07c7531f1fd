// What a [sweep] section describes, before any search runs: how many configurations it holds,
// and whether its tied parameters (expressions over other swept keys) give values their keys
// take. The config reads it to refuse a sweep that cannot run (run_config.cpp); the search
// (sweep/search.h) enumerates and samples the space.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/run_config.h"

namespace tune {

// A trial's values: each swept key ("adapter.rank") and its value.
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

// The parameters a grid enumerates, in declaration order (tied ones are not axes). Throws
// UserError for a distribution other than categorical, which a grid cannot enumerate.
std::vector<const SweepParameter*> GridAxes(const SweepConfig& sweep);

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

// A number as `p` takes it: rounded to a multiple of q when set, within [min, max], an integer
// when `integer`.
OptionValue SampledValue(const SweepParameter& p, double x, bool integer);

// An integer or float value as a double; NaN for any other.
double AsNumber(const OptionValue& value);

}  // namespace tune

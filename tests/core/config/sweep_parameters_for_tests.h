// Sweep parameters as a [sweep.parameters] table would give them, for the tests of the sweep's
// space (config/sweep_space.h) and search (sweep/search.h).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/run_config.h"

namespace tune::testing {

inline SweepParameter Values(std::string path, std::vector<OptionValue> values) {
  SweepParameter p;
  p.path = std::move(path);
  p.kind = SweepParameter::Kind::kValues;
  p.values = std::move(values);
  return p;
}

inline SweepParameter Distribution(std::string path, std::string kind, double min, double max,
                                   std::optional<double> q = std::nullopt) {
  SweepParameter p;
  p.path = std::move(path);
  p.kind = SweepParameter::Kind::kDistribution;
  p.distribution = std::move(kind);
  p.min = min;
  p.max = max;
  p.q = q;
  return p;
}

inline SweepParameter Tied(std::string path, std::string expression) {
  SweepParameter p;
  p.path = std::move(path);
  p.kind = SweepParameter::Kind::kExpression;
  p.expression = std::move(expression);
  return p;
}

}  // namespace tune::testing

// Optimizer plugins: update rules for the trainable parameters.
//
// The host owns the schedule (it passes each step's learning rate), gradient accumulation and
// clipping; an optimizer only turns gradients into updates and keeps its own state.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "tune/plugin.h"

namespace tune {

// Named tensors an optimizer needs to continue exactly where it stopped (moments, step counts).
using OptimizerState = std::vector<std::pair<std::string, at::Tensor>>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Updates each parameter in place from its grad() with learning rate `lr`; a parameter without
  // a gradient is left alone. Called without autograd recording.
  virtual void Step(double lr) = 0;
  // A copy of the state, for checkpoints; LoadState restores one taken from an optimizer of the
  // same plugin over the same parameters, and throws if it does not fit.
  virtual OptimizerState State() const = 0;
  virtual void LoadState(const OptimizerState& state) = 0;
};

}  // namespace tune

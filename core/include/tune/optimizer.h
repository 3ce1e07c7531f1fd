// Optimizer plugins: update rules for the trainable parameters.
//
// The kind is registered and loaded like every other (see plugin.h); the methods the trainer
// calls arrive with the trainer, and adding them bumps TUNE_ABI_MAJOR.
#pragma once

#include "tune/plugin.h"

namespace tune {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
};

}  // namespace tune

// Adapter plugins: the trainable part added to a frozen base model (LoRA, QLoRA, full).
//
// The kind is registered and loaded like every other (see plugin.h); the methods the trainer
// calls arrive with the trainer, and adding them bumps TUNE_ABI_MAJOR.
#pragma once

#include "tune/plugin.h"

namespace tune {

class Adapter {
 public:
  virtual ~Adapter() = default;
};

}  // namespace tune

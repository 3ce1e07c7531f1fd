// One optimizer step: the unit the trainer repeats and the training benchmark times.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "train/examples.h"

namespace tune {

class Model;
class Optimizer;

struct StepStats {
  double loss = 0.0;       // mean cross-entropy over the step's target tokens
  double grad_norm = 0.0;  // L2 norm of all gradients before clipping
  int64_t tokens = 0;      // input tokens processed
};

// Sums the gradients of `batches` (the step's micro-batches), each normalised by the step's
// total target tokens, so accumulation equals one large batch; clips to `max_grad_norm` (0: no
// clipping); and applies `optimizer` with learning rate `lr`. `parameters` are the trainable
// tensors the optimizer was made for.
StepStats TrainStep(Model& model, const std::vector<at::Tensor>& parameters, Optimizer& optimizer,
                    const std::vector<Batch>& batches, double lr, double max_grad_norm,
                    c10::Device device);

}  // namespace tune

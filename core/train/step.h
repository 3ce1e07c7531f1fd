// One optimizer step: the unit the trainer repeats and the training benchmark times.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "train/examples.h"

namespace tune {

class Model;
class Optimizer;

// What a step queued: scalars on the training device, not yet read back.
struct StepStats {
  at::Tensor loss;       // float64: mean cross-entropy over the step's target tokens
  at::Tensor grad_norm;  // float64: L2 norm of all gradients before clipping
  int64_t tokens = 0;    // input tokens processed
};

// The step's loss and gradient norm on the host. Waits for the device to finish the step: the
// one synchronisation per step, after all of its work is queued.
struct StepNumbers {
  double loss = 0.0;
  double grad_norm = 0.0;
};
StepNumbers ReadStepNumbers(const StepStats& stats);

// Sums the gradients of `batches` (the step's micro-batches), each normalised by the step's
// total target tokens, so accumulation equals one large batch; clips to `max_grad_norm` (0: no
// clipping); and applies `optimizer` with learning rate `lr`. `parameters` are the trainable
// tensors the optimizer was made for. Nothing inside waits for the device: every tensor the step
// makes is on `device` (model, adapter and optimizer state must be there too).
StepStats TrainStep(Model& model, const std::vector<at::Tensor>& parameters, Optimizer& optimizer,
                    const std::vector<Batch>& batches, double lr, double max_grad_norm,
                    c10::Device device);

}  // namespace tune

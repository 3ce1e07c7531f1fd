#include "train/step.h"

#include <limits>

#include <torch/torch.h>

#include "tune/model.h"
#include "tune/optimizer.h"

namespace tune {

StepStats TrainStep(Model& model, const std::vector<at::Tensor>& parameters, Optimizer& optimizer,
                    const std::vector<Batch>& batches, double lr, double max_grad_norm,
                    c10::Device device) {
  int64_t step_targets = 0;
  for (const Batch& batch : batches) step_targets += batch.target_tokens;
  const double denominator = static_cast<double>(std::max<int64_t>(step_targets, 1));
  for (const at::Tensor& p : parameters) {
    at::Tensor parameter = p;  // a handle: clearing its grad clears the parameter's
    parameter.mutable_grad() = at::Tensor();
  }
  StepStats stats;
  double loss_sum = 0.0;
  for (const Batch& batch : batches) {
    stats.tokens += batch.tokens;
    if (batch.target_tokens == 0) continue;
    const at::Tensor logits = model.Forward(batch.inputs.to(device), nullptr);
    const at::Tensor loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}), batch.targets.reshape({-1}).to(device),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
    loss_sum += loss.item<double>();
    (loss / denominator).backward();
  }
  const double max_norm =
      max_grad_norm > 0 ? max_grad_norm : std::numeric_limits<double>::infinity();
  stats.grad_norm = torch::nn::utils::clip_grad_norm_(parameters, max_norm);
  {
    torch::NoGradGuard no_grad;
    optimizer.Step(lr);
  }
  stats.loss = loss_sum / denominator;
  return stats;
}

}  // namespace tune

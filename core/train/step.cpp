#include "train/step.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "tune/model.h"
#include "tune/optimizer.h"

namespace tune {
namespace {

// The L2 norm of every gradient together, scaling the gradients down to `max_norm` when it is
// larger: torch::nn::utils::clip_grad_norm_'s computation, without its read-back of the norm.
at::Tensor ClipGradNorm(const std::vector<at::Tensor>& parameters, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> grads, norms;
  for (const at::Tensor& p : parameters) {
    if (!p.grad().defined()) continue;
    grads.push_back(p.grad());
    norms.push_back(p.grad().norm(2));
  }
  if (grads.empty()) return torch::zeros({}, torch::kDouble);
  const at::Tensor total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
  if (std::isfinite(max_norm)) {
    const at::Tensor coefficient = torch::clamp(max_norm / (total + 1e-6), c10::nullopt, 1.0);
    for (at::Tensor& grad : grads) grad.mul_(coefficient);
  }
  return total;
}

}  // namespace

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
  at::Tensor loss_sum =
      torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(device));
  for (const Batch& batch : batches) {
    stats.tokens += batch.tokens;
    if (batch.target_tokens == 0) continue;
    const at::Tensor logits = model.Forward(batch.inputs.to(device), nullptr);
    const at::Tensor loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}), batch.targets.reshape({-1}).to(device),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
    loss_sum += loss.detach().to(torch::kDouble);
    (loss / denominator).backward();
  }
  const at::Tensor grad_norm = ClipGradNorm(
      parameters, max_grad_norm > 0 ? max_grad_norm : std::numeric_limits<double>::infinity());
  {
    torch::NoGradGuard no_grad;
    optimizer.Step(lr);
  }
  stats.loss = loss_sum / denominator;
  stats.grad_norm = grad_norm.to(loss_sum.options());
  return stats;
}

StepNumbers ReadStepNumbers(const StepStats& stats) {
  const at::Tensor both = torch::stack({stats.loss, stats.grad_norm}).cpu();
  return {both[0].item<double>(), both[1].item<double>()};
}

}  // namespace tune

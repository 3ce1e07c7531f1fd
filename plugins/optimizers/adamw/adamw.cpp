// adamw: Adam with decoupled weight decay (Loshchilov & Hutter, 2019), the update of
// torch.optim.AdamW: p -= lr * wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/version.h>

#include <cmath>
#include <stdexcept>

#include "tune/optimizer.h"

namespace {

class AdamW final : public tune::Optimizer {
 public:
  AdamW(const std::vector<at::Tensor>& parameters, double weight_decay,
        const tune::Options& options)
      : parameters_(parameters),
        weight_decay_(weight_decay),
        beta1_(options.Float("beta1")),
        beta2_(options.Float("beta2")),
        eps_(options.Float("eps")) {
    for (const at::Tensor& p : parameters_) {
      exp_avg_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
      exp_avg_sq_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
      steps_.push_back(0);
    }
  }

  void Step(double lr) override {
    c10::NoGradGuard no_grad;
#if TORCH_VERSION_MAJOR >= 2
    if (FusedStep(lr)) return;
#endif
    for (size_t i = 0; i < parameters_.size(); ++i) {
      at::Tensor& p = parameters_[i];
      const at::Tensor& grad = p.grad();
      if (!grad.defined()) continue;
      const int64_t step = ++steps_[i];
      p.mul_(1.0 - lr * weight_decay_);
      exp_avg_[i].mul_(beta1_).add_(grad, 1.0 - beta1_);
      exp_avg_sq_[i].mul_(beta2_).addcmul_(grad, grad, 1.0 - beta2_);
      const double bias1 = 1.0 - std::pow(beta1_, static_cast<double>(step));
      const double bias2 = 1.0 - std::pow(beta2_, static_cast<double>(step));
      const at::Tensor denom = (exp_avg_sq_[i].sqrt() / std::sqrt(bias2)).add_(eps_);
      p.addcdiv_(exp_avg_[i], denom, -lr / bias1);
    }
  }

#if TORCH_VERSION_MAJOR >= 2
  // libtorch 2.x's fused CUDA kernel (torch.optim.AdamW(fused=True)): one launch per group of
  // tensors instead of about ten per parameter. Used when every parameter is on a GPU and has a
  // gradient; the same update as the loop below up to float rounding (tests/gpu).
  bool FusedStep(double lr) {
    std::vector<at::Tensor> params, grads;
    for (const at::Tensor& p : parameters_) {
      if (!p.is_cuda() || !p.grad().defined()) return false;
      params.push_back(p);
      grads.push_back(p.grad());
    }
    if (params.empty()) return false;
    if (device_steps_.empty()) {
      for (const int64_t step : steps_) {
        device_steps_.push_back(
            at::full({}, static_cast<double>(step), params[0].options().dtype(at::kFloat)));
      }
    }
    at::_foreach_add_(device_steps_, 1);
    at::_fused_adamw_(params, grads, exp_avg_, exp_avg_sq_, /*max_exp_avg_sqs=*/{}, device_steps_,
                      lr, beta1_, beta2_, weight_decay_, eps_, /*amsgrad=*/false,
                      /*maximize=*/false);
    for (int64_t& step : steps_) ++step;
    return true;
  }
#endif

  tune::OptimizerState State() const override {
    tune::OptimizerState state;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      const std::string index = std::to_string(i);
      state.emplace_back(index + ".exp_avg", exp_avg_[i].clone());
      state.emplace_back(index + ".exp_avg_sq", exp_avg_sq_[i].clone());
      state.emplace_back(index + ".step", at::scalar_tensor(steps_[i], at::kLong));
    }
    return state;
  }

  void LoadState(const tune::OptimizerState& state) override {
    if (state.size() != 3 * parameters_.size()) {
      throw std::runtime_error("optimizer state has " + std::to_string(state.size()) +
                               " tensors; adamw over " + std::to_string(parameters_.size()) +
                               " parameters needs " + std::to_string(3 * parameters_.size()));
    }
    c10::NoGradGuard no_grad;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      const at::Tensor& avg = state[3 * i].second;
      const at::Tensor& avg_sq = state[3 * i + 1].second;
      if (!avg.sizes().equals(parameters_[i].sizes()) ||
          !avg_sq.sizes().equals(parameters_[i].sizes())) {
        throw std::runtime_error("optimizer state for parameter " + std::to_string(i) +
                                 " has another shape; it belongs to another model or adapter");
      }
      exp_avg_[i].copy_(avg);
      exp_avg_sq_[i].copy_(avg_sq);
      steps_[i] = state[3 * i + 2].second.item<int64_t>();
    }
    device_steps_.clear();  // made again from steps_ at the next fused step
  }

 private:
  std::vector<at::Tensor> parameters_;
  double weight_decay_, beta1_, beta2_, eps_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
  std::vector<int64_t> steps_;
  std::vector<at::Tensor> device_steps_;  // steps_ as float32 GPU scalars, for the fused kernel
};

void Register(tune::Registrar& registrar) {
  using tune::OptionSpec;
  registrar.Add(tune::OptimizerPlugin{
      .info = {.name = "adamw",
               .version = "1.0.0",
               .description = "Adam with decoupled weight decay, as torch.optim.AdamW.",
               .options = {OptionSpec::Float("beta1", 0.9, "Decay of the first moment")
                               .Range(0, 1, false, true),
                           OptionSpec::Float("beta2", 0.999, "Decay of the second moment")
                               .Range(0, 1, false, true),
                           OptionSpec::Float("eps", 1e-8, "Added to the denominator")
                               .Range(0, 1, true, false)}},
      .create = [](const std::vector<at::Tensor>& parameters, double weight_decay,
                   const tune::Options& options) -> std::unique_ptr<tune::Optimizer> {
        return std::make_unique<AdamW>(parameters, weight_decay, options);
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

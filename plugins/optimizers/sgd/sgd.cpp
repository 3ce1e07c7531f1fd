// sgd: stochastic gradient descent with optional momentum and Nesterov momentum, the update of
// torch.optim.SGD (dampening 0): g += wd * p (L2 weight decay, coupled to the gradient);
// b = g on the first step, then b = momentum * b + g; g = g + momentum * b (Nesterov) or b;
// p -= lr * g.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <stdexcept>

#include "tune/optimizer.h"

namespace {

class Sgd final : public tune::Optimizer {
 public:
  Sgd(const std::vector<at::Tensor>& parameters, double weight_decay, const tune::Options& options)
      : parameters_(parameters),
        weight_decay_(weight_decay),
        momentum_(options.Float("momentum")),
        nesterov_(options.Bool("nesterov")),
        buffers_(parameters.size()) {
    if (nesterov_ && momentum_ <= 0) {
      throw std::invalid_argument("sgd: nesterov = true needs momentum > 0");
    }
  }

  void Step(double lr) override {
    c10::NoGradGuard no_grad;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      at::Tensor& p = parameters_[i];
      if (!p.grad().defined()) continue;
      at::Tensor grad = weight_decay_ != 0 ? p.grad().add(p, weight_decay_) : p.grad();
      if (momentum_ != 0) {
        if (!buffers_[i].defined()) {
          buffers_[i] = grad.clone();
        } else {
          buffers_[i].mul_(momentum_).add_(grad);
        }
        grad = nesterov_ ? grad.add(buffers_[i], momentum_) : buffers_[i];
      }
      p.add_(grad, -lr);
    }
  }

  tune::OptimizerState State() const override {
    tune::OptimizerState state;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      // An undefined buffer (no step taken yet) is saved as an empty tensor.
      state.emplace_back(std::to_string(i) + ".momentum_buffer",
                         buffers_[i].defined() ? buffers_[i].clone() : at::empty({0}));
    }
    return state;
  }

  void LoadState(const tune::OptimizerState& state) override {
    if (state.size() != parameters_.size()) {
      throw std::runtime_error("optimizer state has " + std::to_string(state.size()) +
                               " tensors; sgd over " + std::to_string(parameters_.size()) +
                               " parameters needs as many");
    }
    for (size_t i = 0; i < parameters_.size(); ++i) {
      const at::Tensor& buffer = state[i].second;
      if (buffer.numel() == 0 && parameters_[i].numel() != 0) {
        buffers_[i] = at::Tensor();
      } else if (buffer.sizes().equals(parameters_[i].sizes())) {
        buffers_[i] = buffer.clone();
      } else {
        throw std::runtime_error("optimizer state for parameter " + std::to_string(i) +
                                 " has another shape; it belongs to another model or adapter");
      }
    }
  }

 private:
  std::vector<at::Tensor> parameters_;
  double weight_decay_, momentum_;
  bool nesterov_;
  std::vector<at::Tensor> buffers_;
};

void Register(tune::Registrar& registrar) {
  using tune::OptionSpec;
  registrar.Add(tune::OptimizerPlugin{
      .info = {.name = "sgd",
               .version = "1.0.0",
               .description = "SGD with optional (Nesterov) momentum and L2 weight decay, as "
                              "torch.optim.SGD.",
               .options = {OptionSpec::Float("momentum", 0.0, "Momentum factor; 0: none")
                               .Range(0, 1, false, true),
                           OptionSpec::Bool("nesterov", false, "Use Nesterov momentum")}},
      .create = [](const std::vector<at::Tensor>& parameters, double weight_decay,
                   const tune::Options& options) -> std::unique_ptr<tune::Optimizer> {
        return std::make_unique<Sgd>(parameters, weight_decay, options);
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

// The adamw and sgd plugins against libtorch's own torch::optim implementations (a separate
// implementation of the same published updates) on the same parameters and gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "plugin_host/plugin_host.h"
#include "tune/optimizer.h"

namespace tune {
namespace {

class OptimizerPlugins : public ::testing::Test {
 protected:
  void SetUp() override { host_.Load({TUNE_BUILTIN_PLUGIN_DIR}); }

  Options Defaults(const std::string& name, const std::map<std::string, OptionValue>& set = {}) {
    Options options = PluginHost::DefaultOptions(host_.Require(PluginKind::kOptimizer, name));
    for (const auto& [key, value] : set) options.Set(key, value);
    return options;
  }

  // Two parameters with fixed starting values and a gradient per step that depends on the step.
  static std::vector<torch::Tensor> MakeParameters() {
    torch::manual_seed(3);
    return {torch::randn({4, 3}).requires_grad_(), torch::randn({5}).requires_grad_()};
  }
  static void SetGradients(std::vector<torch::Tensor>& parameters, int step) {
    for (size_t i = 0; i < parameters.size(); ++i) {
      parameters[i].mutable_grad() =
          torch::sin(torch::arange(parameters[i].numel(), torch::kFloat) * (step + 1) +
                     static_cast<double>(i))
              .view(parameters[i].sizes());
    }
  }

  PluginHost host_;
};

TEST_F(OptimizerPlugins, AdamwMatchesTorchOptimAdamW) {
  std::vector<torch::Tensor> ours = MakeParameters(), theirs = MakeParameters();
  auto optimizer = host_.CreateOptimizer("adamw", ours, 0.01, Defaults("adamw", {{"beta1", 0.8}}));
  torch::optim::AdamW reference(
      theirs, torch::optim::AdamWOptions(0.05).betas({0.8, 0.999}).eps(1e-8).weight_decay(0.01));
  for (int step = 0; step < 6; ++step) {
    SetGradients(ours, step);
    SetGradients(theirs, step);
    optimizer->Step(0.05);
    reference.step();
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_TRUE(torch::allclose(ours[i], theirs[i], 1e-6, 1e-7)) << i;
  }
}

TEST_F(OptimizerPlugins, SgdWithNesterovMomentumMatchesTorchOptimSgd) {
  std::vector<torch::Tensor> ours = MakeParameters(), theirs = MakeParameters();
  auto optimizer = host_.CreateOptimizer("sgd", ours, 0.1,
                                         Defaults("sgd", {{"momentum", 0.9}, {"nesterov", true}}));
  torch::optim::SGD reference(
      theirs, torch::optim::SGDOptions(0.02).momentum(0.9).nesterov(true).weight_decay(0.1));
  for (int step = 0; step < 6; ++step) {
    SetGradients(ours, step);
    SetGradients(theirs, step);
    optimizer->Step(0.02);
    reference.step();
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_TRUE(torch::allclose(ours[i], theirs[i], 1e-6, 1e-7)) << i;
  }
}

TEST_F(OptimizerPlugins, SavedStateContinuesExactlyWhereItStopped) {
  for (const std::string name : {"adamw", "sgd"}) {
    const Options options = name == "sgd" ? Defaults(name, {{"momentum", 0.5}}) : Defaults(name);
    std::vector<torch::Tensor> straight = MakeParameters();
    auto a = host_.CreateOptimizer(name, straight, 0.01, options);
    for (int step = 0; step < 3; ++step) {
      SetGradients(straight, step);
      a->Step(0.1);
    }
    // A second optimizer over copies of the parameters, given the first one's state.
    std::vector<torch::Tensor> resumed;
    for (const torch::Tensor& p : straight) resumed.push_back(p.detach().clone().requires_grad_());
    auto b = host_.CreateOptimizer(name, resumed, 0.01, options);
    b->LoadState(a->State());
    for (int step = 3; step < 6; ++step) {
      SetGradients(straight, step);
      SetGradients(resumed, step);
      a->Step(0.1);
      b->Step(0.1);
    }
    for (size_t i = 0; i < straight.size(); ++i) {
      EXPECT_TRUE(torch::equal(straight[i], resumed[i])) << name << " parameter " << i;
    }
  }
}

TEST_F(OptimizerPlugins, LeavesParametersWithoutGradientsAlone) {
  std::vector<torch::Tensor> parameters = MakeParameters();
  const torch::Tensor before = parameters[1].detach().clone();
  auto optimizer = host_.CreateOptimizer("adamw", parameters, 0.1, Defaults("adamw"));
  parameters[0].mutable_grad() = torch::ones_like(parameters[0]);
  optimizer->Step(0.1);
  EXPECT_TRUE(torch::equal(parameters[1], before));
}

TEST_F(OptimizerPlugins, StateFromAnotherModelIsRefusedNamingThePlugin) {
  std::vector<torch::Tensor> parameters = MakeParameters();
  auto optimizer = host_.CreateOptimizer("adamw", parameters, 0.0, Defaults("adamw"));
  std::vector<torch::Tensor> other = {torch::zeros({2}, torch::requires_grad())};
  auto other_optimizer = host_.CreateOptimizer("adamw", other, 0.0, Defaults("adamw"));
  try {
    optimizer->LoadState(other_optimizer->State());
    FAIL() << "expected an error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer plugin 'adamw'"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("adamw over 2 parameters needs 6"), std::string::npos)
        << e.what();
  }
}

TEST_F(OptimizerPlugins, NesterovWithoutMomentumIsRefused) {
  std::vector<torch::Tensor> parameters = MakeParameters();
  EXPECT_THROW(host_.CreateOptimizer("sgd", parameters, 0.0, Defaults("sgd", {{"nesterov", true}})),
               UserError);
}

}  // namespace
}  // namespace tune

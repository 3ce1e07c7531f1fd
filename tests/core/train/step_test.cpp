// One training step (core/train/step.h) on a small random Llama: reading its numbers back, and
// gradient checkpointing giving the gradients of the plain backward pass.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "plugin_host/plugin_host.h"
#include "support/test_support.h"
#include "train/step.h"
#include "tune/adapter.h"
#include "tune/model.h"
#include "tune/optimizer.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

class TrainStepTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    host_ = new PluginHost();
    host_->Load({TUNE_BUILTIN_PLUGIN_DIR});
    dir_ = new TempDir();
    testing::MakeTinyLlama(dir_->path() / "model", {"--seed", "6", "--kv-heads", "2"});
  }
  static void TearDownTestSuite() {
    delete host_;
    delete dir_;
  }

  // Model, adapter of `method` (LoRA on every linear layer, dropout 0.1) and adamw, on `device`.
  struct Run {
    std::unique_ptr<Model> model;
    std::unique_ptr<Adapter> adapter;
    std::vector<at::Tensor> parameters;
    std::unique_ptr<Optimizer> optimizer;
  };
  static Run Make(const std::string& method, const c10::Device& device, bool checkpointing) {
    Run run;
    run.model = host_->LoadModel(
        "llama", dir_->path() / "model",
        PluginHost::DefaultOptions(host_->Require(PluginKind::kModel, "llama")), device);
    run.model->SetGradientCheckpointing(checkpointing);
    Options options = PluginHost::DefaultOptions(host_->Require(PluginKind::kAdapter, method));
    if (method == "lora") {
      options.Set("targets", std::vector<std::string>{"all-linear"});
      options.Set("dropout", 0.1);
    }
    torch::manual_seed(11);
    run.adapter = host_->CreateAdapter(method, options);
    run.adapter->Attach(*run.model, dir_->path() / "model");
    run.adapter->SetTraining(true);
    if (method == "lora") {  // B starts at zero: give it values so every gradient is non-zero
      torch::NoGradGuard no_grad;
      for (auto& [name, tensor] : run.adapter->TrainableParameters()) {
        if (name.find("lora_B") != std::string::npos) {
          tensor.copy_(torch::randn(tensor.sizes()).mul_(0.05));
        }
      }
    }
    for (const auto& [name, tensor] : run.adapter->TrainableParameters()) {
      run.parameters.push_back(tensor);
    }
    run.optimizer = host_->CreateOptimizer(
        "adamw", run.parameters, 0.01,
        PluginHost::DefaultOptions(host_->Require(PluginKind::kOptimizer, "adamw")));
    return run;
  }

  // Two rows of different lengths (padding and ignored targets included), on the CPU as the
  // trainer makes them.
  static std::vector<Batch> Batches() {
    const std::vector<TokenizedExample> examples = {{{1, 17, 42, 99, 3, 250, 8, 64}, {{3, 8}}, 1},
                                                    {{1, 128, 5, 77, 31, 9}, {{2, 6}}, 2}};
    return {MakeBatch({&examples[0], &examples[1]}, false)};
  }

  static PluginHost* host_;
  static TempDir* dir_;
};
PluginHost* TrainStepTest::host_ = nullptr;
TempDir* TrainStepTest::dir_ = nullptr;

// libtorch's C++ library has no Meta kernels for a few operators (index_select and
// embedding_dense_backward in 1.13, where in 2.6; Python adds them in
// torch/_meta_registrations.py). These shape-only kernels fill the gaps, each registered only where
// the linked libtorch has none, so the meta test below runs on every libtorch.
void EmbeddingDenseBackwardMeta(const c10::OperatorHandle&, torch::jit::Stack* stack) {
  const at::Tensor grad = (*stack)[0].toTensor();
  const c10::IValue& rows = (*stack)[2];
  const int64_t num_weights = rows.isInt() ? rows.toInt() : rows.toSymInt().expect_int();
  torch::jit::drop(*stack, 5);
  torch::jit::push(*stack, at::empty({num_weights, grad.size(-1)}, grad.options()));
}

void RegisterMissingMetaKernels() {
  static torch::Library* library = nullptr;
  if (library != nullptr) return;
  library =
      new torch::Library(torch::Library::IMPL, "aten", c10::DispatchKey::Meta, __FILE__, __LINE__);
  const auto missing = [](std::string_view full_name) {
    const size_t dot = full_name.find('.');
    const std::string name(full_name.substr(0, dot));
    const std::string overload(dot == std::string_view::npos ? "" : full_name.substr(dot + 1));
    const auto op = c10::Dispatcher::singleton().findOp({name, overload});
    return op.has_value() && !op->hasKernelForDispatchKey(c10::DispatchKey::Meta);
  };
  if (missing("aten::index_select")) {
    library->impl("index_select", [](const at::Tensor& self, int64_t dim, const at::Tensor& index) {
      std::vector<int64_t> sizes = self.sizes().vec();
      sizes[c10::maybe_wrap_dim(dim, self.dim())] = index.numel();
      return at::empty(sizes, self.options());
    });
  }
  if (missing("aten::where.self")) {  // libtorch 2.x
    library->impl("where.self",
                  [](const at::Tensor& condition, const at::Tensor& self, const at::Tensor& other) {
                    const std::vector<int64_t> sizes = at::infer_size(
                        at::infer_size(condition.sizes(), self.sizes()), other.sizes());
                    return at::empty(sizes, self.options().dtype(at::result_type(self, other)));
                  });
  }
  if (missing("aten::where.self_out")) {  // libtorch 2.x
    library->impl("where.self_out",
                  [](const at::Tensor& condition, const at::Tensor& self, const at::Tensor& other,
                     at::Tensor& out) -> at::Tensor& {
                    out.resize_(at::infer_size(at::infer_size(condition.sizes(), self.sizes()),
                                               other.sizes()));
                    return out;
                  });
  }
  if (missing("aten::embedding_dense_backward")) {  // boxed: num_weights' type varies by version
    library->impl("embedding_dense_backward",
                  torch::CppFunction::makeFromBoxedFunction<&EmbeddingDenseBackwardMeta>());
  }
}

// The meta device holds shapes and no data: a tensor made on the CPU by mistake anywhere in the
// forward pass, the loss, the backward pass, clipping or the optimizer meets the model's meta
// tensors and fails, or is left behind on the CPU and is caught below. What a GPU run needs,
// checked without a GPU.
TEST_F(TrainStepTest, EveryTensorOfAStepIsMadeOnTheModelsDevice) {
  RegisterMissingMetaKernels();
  const c10::Device meta(c10::kMeta);
  for (const std::string method : {"lora", "full"}) {
    for (const bool checkpointing : {false, true}) {
      SCOPED_TRACE(method + (checkpointing ? " with gradient checkpointing" : ""));
      Run run = Make(method, meta, checkpointing);
      for (const at::Tensor& p : run.model->module().parameters()) ASSERT_EQ(p.device(), meta);
      StepStats stats;
      ASSERT_NO_THROW(stats = TrainStep(*run.model, run.parameters, *run.optimizer, Batches(), 1e-3,
                                        1.0, meta));
      EXPECT_EQ(stats.loss.device(), meta);
      EXPECT_EQ(stats.grad_norm.device(), meta);
      for (const auto& [name, tensor] : run.adapter->TrainableParameters()) {
        EXPECT_EQ(tensor.device(), meta) << name;
        ASSERT_TRUE(tensor.grad().defined()) << name;
        EXPECT_EQ(tensor.grad().device(), meta) << name;
      }
      for (const auto& [name, tensor] : run.optimizer->State()) {
        if (tensor.dim() > 0) {
          EXPECT_EQ(tensor.device(), meta) << name;
        }
      }
    }
  }
}

TEST_F(TrainStepTest, ReadStepNumbersGivesTheLossAndNormOnTheHost) {
  Run run = Make("lora", c10::Device(c10::kCPU), false);
  const StepNumbers numbers = ReadStepNumbers(
      TrainStep(*run.model, run.parameters, *run.optimizer, Batches(), 1e-3, 1.0, c10::kCPU));
  EXPECT_GT(numbers.loss, 1.0);  // a random model over a 256-token vocabulary: about ln 256
  EXPECT_LT(numbers.loss, 20.0);
  EXPECT_GT(numbers.grad_norm, 0.0);
}

TEST_F(TrainStepTest, GradientCheckpointingGivesThePlainBackwardsGradients) {
  for (const std::string method : {"lora", "full"}) {
    SCOPED_TRACE(method);
    Run plain = Make(method, c10::Device(c10::kCPU), false);
    Run checkpointed = Make(method, c10::Device(c10::kCPU), true);
    // The same dropout draws in both: checkpointing must replay them when it recomputes.
    torch::manual_seed(5);
    const StepNumbers a = ReadStepNumbers(TrainStep(
        *plain.model, plain.parameters, *plain.optimizer, Batches(), 0.0, 0.0, c10::kCPU));
    torch::manual_seed(5);
    const StepNumbers b =
        ReadStepNumbers(TrainStep(*checkpointed.model, checkpointed.parameters,
                                  *checkpointed.optimizer, Batches(), 0.0, 0.0, c10::kCPU));
    EXPECT_DOUBLE_EQ(a.loss, b.loss);
    EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-6 * a.grad_norm);
    ASSERT_EQ(plain.parameters.size(), checkpointed.parameters.size());
    int64_t with_gradient = 0;
    for (size_t i = 0; i < plain.parameters.size(); ++i) {
      const at::Tensor& g = plain.parameters[i].grad();
      const at::Tensor& h = checkpointed.parameters[i].grad();
      ASSERT_EQ(g.defined(), h.defined()) << i;
      if (!g.defined()) continue;
      with_gradient += g.abs().max().item<double>() > 0;
      EXPECT_LT((g - h).abs().max().item<double>(), 1e-5 * (1 + g.abs().max().item<double>())) << i;
    }
    EXPECT_EQ(with_gradient, static_cast<int64_t>(plain.parameters.size()));
  }
}

}  // namespace
}  // namespace tune

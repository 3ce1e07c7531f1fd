// tune on a CUDA GPU against the same work on the CPU (ctest label `gpu`). Each test skips, and
// ctest counts it as skipped, when libtorch sees no CUDA device; on Debian's CPU-only libtorch
// they all skip. Run them on a GPU machine: `ctest -L gpu` (README, "On a GPU machine").
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "generate/generate.h"
#include "plugin_host/plugin_host.h"
#include "support/test_support.h"
#include "train/step.h"
#include "tune/adapter.h"
#include "tune/model.h"
#include "tune/optimizer.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;
using testing::RunTune;
using testing::TempDir;

#define SKIP_WITHOUT_CUDA()                                    \
  if (!torch::cuda::is_available()) {                          \
    GTEST_SKIP() << "no CUDA device visible to this libtorch"; \
  }

const c10::Device kCuda(c10::kCUDA, 0);
const c10::Device kCpu(c10::kCPU);

class Cuda : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    host_ = new PluginHost();
    host_->Load({TUNE_BUILTIN_PLUGIN_DIR});
    dir_ = new TempDir();
    testing::MakeTinyLlama(dir_->path() / "model", {"--seed", "7", "--kv-heads", "2"});
    std::string rows;
    for (int i = 0; i < 120; ++i) {
      const int a = (i * 37) % 50, b = (i * 11) % 50;
      rows += "{\"prompt\": \"add " + std::to_string(a) + " " + std::to_string(b) +
              " =\", \"completion\": \"" + std::to_string(a + b) + "\"}\n";
    }
    dir_->Write("data.jsonl", rows);
  }
  static void TearDownTestSuite() {
    delete host_;
    delete dir_;
  }
  static fs::path ModelDir() { return dir_->path() / "model"; }

  static std::unique_ptr<Model> Load(const c10::Device& device, const std::string& dtype) {
    Options options = PluginHost::DefaultOptions(host_->Require(PluginKind::kModel, "llama"));
    options.Set("dtype", dtype);
    return host_->LoadModel("llama", ModelDir(), options, device);
  }

  static at::Tensor Ids() {
    return torch::tensor(std::vector<int64_t>{1, 17, 42, 99, 3, 250, 8, 64, 128, 5, 77, 31})
        .reshape({2, 6});
  }

  // A run file for `tune train` on the tiny model and 120 additions, on the GPU.
  fs::path RunFile(const TempDir& dir, const std::string& extra = "") {
    return dir.Write("run.toml",
                     "name = \"g\"\n[model]\npath = \"" + ModelDir().string() +
                         "\"\n[dataset]\npath = \"" + (dir_->path() / "data.jsonl").string() +
                         "\"\neval_fraction = 0.1\n"
                         "[adapter]\nmethod = \"lora\"\nrank = 4\ndropout = 0.1\n"
                         "[optimizer]\nlr = 5e-3\nwarmup_steps = 3\n"
                         "[train]\nsteps = 60\nbatch_size = 4\nseq_len = 32\n"
                         "device = \"cuda\"\ncheckpoint_every = 5\n"
                         "eval_max_examples = 4\neval_max_new_tokens = 4\n"
                         "[[metrics]]\nplugin = \"exact_match\"\n[registry]\npath = \"" +
                         (dir.path() / "registry").string() + "\"\n" + extra);
  }

  static PluginHost* host_;
  static TempDir* dir_;
};
PluginHost* Cuda::host_ = nullptr;
TempDir* Cuda::dir_ = nullptr;

TEST_F(Cuda, LlamaLogitsMatchTheCpuInFloat32AndBfloat16) {
  SKIP_WITHOUT_CUDA();
  torch::NoGradGuard no_grad;
  const at::Tensor cpu = Load(kCpu, "float32")->Forward(Ids(), nullptr);
  const at::Tensor f32 = Load(kCuda, "float32")->Forward(Ids(), nullptr).cpu();
  EXPECT_LT((f32 - cpu).abs().max().item<double>(), 1e-4);
  // bfloat16 keeps 8 bits of mantissa: logits of this size move by a few hundredths.
  const at::Tensor bf16 = Load(kCuda, "bfloat16")->Forward(Ids(), nullptr).cpu();
  EXPECT_LT((bf16 - cpu).abs().max().item<double>(), 0.1);
  EXPECT_GT(cpu.abs().max().item<double>(), 0.1);  // the comparison could fail
}

// qlora in float32: the CUDA kernels dequantise (and, for these few rows, multiply) what the CPU
// reference does on the CPU.
TEST_F(Cuda, OneLoraAndOneQloraStepHaveTheCpusGradients) {
  SKIP_WITHOUT_CUDA();
  for (const std::string method : {"lora", "qlora"}) {
    std::vector<std::vector<at::Tensor>> grads;
    for (const c10::Device& device : {kCpu, kCuda}) {
      const auto model = Load(device, "float32");
      Options options = PluginHost::DefaultOptions(host_->Require(PluginKind::kAdapter, method));
      options.Set("targets", std::vector<std::string>{"all-linear"});
      options.Set("dropout", 0.0);
      if (method == "qlora") options.Set("compute_dtype", std::string("float32"));
      const auto adapter = host_->CreateAdapter(method, options);
      adapter->Attach(*model, ModelDir());
      std::vector<at::Tensor> parameters;
      {
        torch::NoGradGuard no_grad;
        torch::manual_seed(3);  // the same A and B on both devices, drawn on the CPU
        for (auto& [name, tensor] : adapter->TrainableParameters()) {
          tensor.copy_(torch::randn(tensor.sizes()).mul_(0.05));
          parameters.push_back(tensor);
        }
      }
      const auto optimizer = host_->CreateOptimizer(
          "adamw", parameters, 0.0,
          PluginHost::DefaultOptions(host_->Require(PluginKind::kOptimizer, "adamw")));
      const std::vector<TokenizedExample> examples = {{{1, 17, 42, 99, 3, 250, 8, 64}, {{3, 8}}, 1},
                                                      {{1, 128, 5, 77, 31, 9}, {{2, 6}}, 2}};
      ReadStepNumbers(TrainStep(*model, parameters, *optimizer,
                                {MakeBatch({&examples[0], &examples[1]}, false)}, 0.0, 0.0,
                                device));
      grads.emplace_back();
      for (const at::Tensor& p : parameters) grads.back().push_back(p.grad().cpu());
    }
    for (size_t i = 0; i < grads[0].size(); ++i) {
      const double scale = 1 + grads[0][i].abs().max().item<double>();
      EXPECT_LT((grads[0][i] - grads[1][i]).abs().max().item<double>(), 1e-4 * scale)
          << method << " " << i;
    }
  }
}

TEST_F(Cuda, FusedAdamwOnTheGpuUpdatesAsTheCpuLoopDoes) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(4);
  const at::Tensor start = torch::randn({64, 32}), grad = torch::randn({64, 32});
  std::vector<at::Tensor> results;
  for (const c10::Device& device : {kCpu, kCuda}) {
    at::Tensor p = start.to(device).clone();
    const auto optimizer = host_->CreateOptimizer(
        "adamw", {p}, 0.1,
        PluginHost::DefaultOptions(host_->Require(PluginKind::kOptimizer, "adamw")));
    for (int step = 0; step < 5; ++step) {
      p.mutable_grad() = grad.to(device) * (step + 1);
      torch::NoGradGuard no_grad;
      optimizer->Step(1e-2);
    }
    results.push_back(p.cpu());
  }
  EXPECT_LT((results[0] - results[1]).abs().max().item<double>(), 1e-5);
  EXPECT_GT((results[0] - start).abs().max().item<double>(), 1e-3);
}

TEST_F(Cuda, GreedyGenerationIsTheCpusInFloat32) {
  SKIP_WITHOUT_CUDA();
  const std::vector<std::vector<int32_t>> prompts = {{1, 17, 42}, {1, 99, 3}, {1, 250, 8, 64}};
  const auto cpu = GenerateGreedyBatched(*Load(kCpu, "float32"), prompts, 12, 2);
  const auto cuda = GenerateGreedyBatched(*Load(kCuda, "float32"), prompts, 12, 2);
  ASSERT_EQ(cpu.size(), cuda.size());
  for (size_t i = 0; i < cpu.size(); ++i) EXPECT_EQ(cpu[i].ids, cuda[i].ids) << "prompt " << i;
}

TEST_F(Cuda, TuneTrainRegistersAVersionWithPeakGpuMemory) {
  SKIP_WITHOUT_CUDA();
  TempDir dir;
  const auto result =
      RunTune({"train", RunFile(dir).string(), "-o", (dir.path() / "run").string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto summary = nlohmann::json::parse(std::ifstream(dir.path() / "run" / "summary.json"));
  EXPECT_GT(summary.at("peak_gpu_memory_bytes").get<int64_t>(), 0);
  const auto shown = RunTune(
      {"adapters", "show", "g:1", "--json", "--registry", (dir.path() / "registry").string()});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_GT(nlohmann::json::parse(shown.out).at("peak_gpu_memory_bytes").get<int64_t>(), 0);
}

TEST_F(Cuda, AKilledRunResumesToTheEnd) {
  SKIP_WITHOUT_CUDA();
  TempDir dir;
  const fs::path file = RunFile(dir, "");
  const fs::path killed = dir.path() / "killed";
  const auto kill = testing::SignalTuneWhen(
      {"train", file.string(), "-o", killed.string(), "train.steps=200"},
      "[ -d '" + (killed / "checkpoints/step-000000010").string() + "' ]", "KILL");
  ASSERT_EQ(kill.exit_code, 128 + 9) << "the run ended before it could be killed: " << kill.err;
  ASSERT_FALSE(fs::exists(killed / "adapter"));
  const auto resumed =
      RunTune({"train", file.string(), "-o", killed.string(), "train.steps=200", "--resume"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_TRUE(fs::exists(killed / "adapter" / "adapter_model.safetensors"));
  std::ifstream metrics(killed / "metrics.jsonl");
  std::set<int64_t> steps;
  for (std::string line; std::getline(metrics, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) {
      EXPECT_TRUE(steps.insert(j.at("step").get<int64_t>()).second);
    }
  }
  EXPECT_EQ(steps.size(), 200u);
}

TEST_F(Cuda, ASweepOfFourRanksRegistersFourVersions) {
  SKIP_WITHOUT_CUDA();
  TempDir dir;
  const fs::path file = RunFile(dir,
                                "[sweep]\nmethod = \"grid\"\n"
                                "objective = { metric = \"eval_loss\", goal = \"minimize\" }\n"
                                "[sweep.parameters]\n\"adapter.rank\" = [2, 4, 8, 16]\n");
  const auto result = RunCommand({"/bin/bash", "-c", "cd \"$0\" && exec \"$@\"",
                                  dir.path().string(), TUNE_BINARY, "sweep", file.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto listed =
      RunTune({"adapters", "ls", "g", "--json", "--registry", (dir.path() / "registry").string()});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(nlohmann::json::parse(listed.out).size(), 4u);
}

}  // namespace
}  // namespace tune

// The lora, qlora and full adapter plugins on small random Llama checkpoints: exactness at
// initialisation, what trains, merging, the PEFT export, and an independent Python reference
// (tests/tools/llama_reference.py --adapter) applying the exported adapter as W + scale * B @ A.
// qlora is held to lora on a model whose weights were rounded through NF4 by kernels/nf4's
// reference.
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "nf4/nf4.h"
#include "plugin_host/plugin_host.h"
#include "safetensors/torch_io.h"
#include "support/test_support.h"
#include "tune/adapter.h"
#include "tune/model.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const std::vector<int64_t> kIds = {1, 17, 42, 99, 3, 250, 8, 64, 128, 5, 77, 31};

class AdapterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    host_ = new PluginHost();
    host_->Load({TUNE_BUILTIN_PLUGIN_DIR});
    model_dir_ = new TempDir();
    testing::MakeTinyLlama(model_dir_->path() / "model", {"--seed", "4", "--kv-heads", "2"});
  }
  static void TearDownTestSuite() {
    delete host_;
    delete model_dir_;
  }
  static fs::path ModelDir() { return model_dir_->path() / "model"; }

  static std::unique_ptr<Model> LoadModel() {
    return host_->LoadModel(
        "llama", ModelDir(),
        PluginHost::DefaultOptions(host_->Require(PluginKind::kModel, "llama")));
  }

  // An adapter of `method` with its defaults, then `settings` applied.
  static std::unique_ptr<Adapter> MakeAdapter(const std::string& method,
                                              const std::map<std::string, OptionValue>& settings) {
    Options options = PluginHost::DefaultOptions(host_->Require(PluginKind::kAdapter, method));
    for (const auto& [key, value] : settings) options.Set(key, value);
    return host_->CreateAdapter(method, options);
  }

  static torch::Tensor Logits(Model& model) {
    torch::NoGradGuard no_grad;
    return model.Forward(torch::tensor(kIds).unsqueeze(0), nullptr).squeeze(0);
  }

  // Gives every B a random value so the adapter changes the output.
  static void Randomise(Adapter& adapter) {
    torch::NoGradGuard no_grad;
    for (auto& [name, tensor] : adapter.TrainableParameters()) {
      if (name.find("lora_B") != std::string::npos)
        tensor.copy_(torch::randn(tensor.sizes()) * 0.05);
    }
  }

  static PluginHost* host_;
  static TempDir* model_dir_;
};
PluginHost* AdapterTest::host_ = nullptr;
TempDir* AdapterTest::model_dir_ = nullptr;

TEST_F(AdapterTest, ZeroInitialisedLoraLeavesLogitsExactlyUnchanged) {
  auto model = LoadModel();
  const torch::Tensor base = Logits(*model);
  torch::manual_seed(0);
  auto adapter = MakeAdapter("lora", {{"targets", std::vector<std::string>{"all-linear"}}});
  adapter->Attach(*model, ModelDir());
  adapter->SetTraining(false);
  EXPECT_TRUE(torch::equal(Logits(*model), base));
}

TEST_F(AdapterTest, OnlyLoraParametersReceiveGradients) {
  auto model = LoadModel();
  torch::manual_seed(0);
  auto adapter = MakeAdapter("lora", {{"rank", int64_t{4}}, {"dropout", 0.1}});
  adapter->Attach(*model, ModelDir());
  Randomise(*adapter);
  const NamedTensors trainable = adapter->TrainableParameters();
  // q_proj and v_proj in each of 2 layers, A and B each.
  ASSERT_EQ(trainable.size(), 8u);
  model->Forward(torch::tensor(kIds).unsqueeze(0), nullptr).logsumexp(-1).sum().backward();
  for (const auto& [name, tensor] : trainable) {
    ASSERT_TRUE(tensor.grad().defined()) << name;
    EXPECT_GT(tensor.grad().abs().sum().item<double>(), 0.0) << name;
  }
  for (const auto& item : model->module().named_parameters()) {
    EXPECT_FALSE(item.value().requires_grad()) << item.key();
    EXPECT_FALSE(item.value().grad().defined()) << item.key();
  }
}

TEST_F(AdapterTest, MergedAndUnmergedLoraGiveTheSameLogits) {
  auto model = LoadModel();
  const torch::Tensor base = Logits(*model);
  torch::manual_seed(0);
  auto adapter = MakeAdapter("lora", {{"targets", std::vector<std::string>{"all-linear"}},
                                      {"rank", int64_t{8}},
                                      {"rslora", true}});
  adapter->Attach(*model, ModelDir());
  adapter->SetTraining(false);
  Randomise(*adapter);
  const torch::Tensor unmerged = Logits(*model);
  EXPECT_GT((unmerged - base).abs().max().item<double>(), 1e-3);  // the adapter does something
  adapter->Merge();
  EXPECT_LT((Logits(*model) - unmerged).abs().max().item<double>(), 1e-5);
  adapter->Unmerge();
  EXPECT_LT((Logits(*model) - unmerged).abs().max().item<double>(), 1e-5);
  EXPECT_LT((model->LinearLayers()[0].weight - LoadModel()->LinearLayers()[0].weight)
                .abs()
                .max()
                .item<double>(),
            1e-6);
}

TEST_F(AdapterTest, LoraExportsPeftNamesShapesAndConfig) {
  auto model = LoadModel();
  torch::manual_seed(0);
  auto adapter =
      MakeAdapter("lora", {{"rank", int64_t{4}},
                           {"alpha", 8.0},
                           {"targets", std::vector<std::string>{"q_proj", "down_proj"}}});
  adapter->Attach(*model, ModelDir());
  TempDir out;
  adapter->Save(out.path());
  const auto tensors = safetensors::LoadAll(out.path() / "adapter_model.safetensors");
  ASSERT_EQ(tensors.size(), 8u);
  // Tiny model: hidden 64, 4 heads of 16, intermediate 160.
  EXPECT_EQ(tensors.at("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").sizes(),
            (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(tensors.at("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").sizes(),
            (std::vector<int64_t>{64, 4}));
  EXPECT_EQ(tensors.at("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight").sizes(),
            (std::vector<int64_t>{4, 160}));
  EXPECT_EQ(tensors.at("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").sizes(),
            (std::vector<int64_t>{64, 4}));
  // A is Kaiming-uniform with a = sqrt(5): bound 1 / sqrt(fan_in); B is zero.
  const torch::Tensor a =
      tensors.at("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  EXPECT_LE(a.abs().max().item<double>(), 1.0 / std::sqrt(64.0));
  EXPECT_GT(a.abs().max().item<double>(), 0.5 / std::sqrt(64.0));

  const auto config = nlohmann::json::parse(std::ifstream(out.path() / "adapter_config.json"));
  EXPECT_EQ(config.at("peft_type"), "LORA");
  EXPECT_EQ(config.at("task_type"), "CAUSAL_LM");
  EXPECT_EQ(config.at("r"), 4);
  EXPECT_EQ(config.at("lora_alpha"), 8.0);
  EXPECT_EQ(config.at("lora_dropout"), 0.0);
  EXPECT_EQ(config.at("use_rslora"), false);
  EXPECT_EQ(config.at("target_modules"), (nlohmann::json{"down_proj", "q_proj"}));
  EXPECT_EQ(config.at("base_model_name_or_path").get<std::string>(),
            fs::absolute(ModelDir()).lexically_normal().string());
}

TEST_F(AdapterTest, ExportedLoraMatchesAnIndependentPythonReference) {
  for (const bool rslora : {false, true}) {
    auto model = LoadModel();
    torch::manual_seed(1);
    auto adapter = MakeAdapter("lora", {{"rank", int64_t{4}},
                                        {"alpha", 12.0},
                                        {"rslora", rslora},
                                        {"targets", std::vector<std::string>{"all-linear"}}});
    adapter->Attach(*model, ModelDir());
    adapter->SetTraining(false);
    Randomise(*adapter);
    TempDir out;
    adapter->Save(out.path());
    std::string ids;
    for (int64_t id : kIds) {
      if (!ids.empty()) ids += ',';
      ids += std::to_string(id);
    }
    const fs::path logits_file = out.path() / "logits.bin";
    const auto result = testing::RunCommand(
        {testing::kPython, (fs::path(TUNE_SOURCE_DIR) / "tests/tools/llama_reference.py").string(),
         ModelDir().string(), "--ids", ids, "--adapter", out.path().string(), "--logits-out",
         logits_file.string()});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const torch::Tensor ours = Logits(*model);
    std::vector<float> values(static_cast<size_t>(ours.numel()));
    std::ifstream(logits_file, std::ios::binary)
        .read(reinterpret_cast<char*>(values.data()),
              static_cast<std::streamsize>(values.size() * 4));
    const torch::Tensor reference = torch::from_blob(values.data(), ours.sizes(), torch::kFloat);
    EXPECT_LT((ours - reference).abs().max().item<double>(), 1e-4) << "rslora " << rslora;
  }
}

TEST_F(AdapterTest, SavedLoraLoadsBackIntoAFreshModel) {
  auto model = LoadModel();
  torch::manual_seed(0);
  auto adapter = MakeAdapter("lora", {});
  adapter->Attach(*model, ModelDir());
  adapter->SetTraining(false);
  Randomise(*adapter);
  TempDir out;
  adapter->Save(out.path());
  auto other_model = LoadModel();
  torch::manual_seed(9);
  auto other = MakeAdapter("lora", {});
  other->Attach(*other_model, ModelDir());
  other->SetTraining(false);
  other->Load(out.path());
  EXPECT_TRUE(torch::equal(Logits(*other_model), Logits(*model)));

  auto wrong_rank = MakeAdapter("lora", {{"rank", int64_t{2}}});
  auto third_model = LoadModel();
  wrong_rank->Attach(*third_model, ModelDir());
  try {
    wrong_rank->Load(out.path());
    FAIL() << "loading a rank-8 adapter into a rank-2 one must fail";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("has shape [8, 64] but this adapter needs [2, 64]"),
              std::string::npos)
        << e.what();
  }
}

// Rounds every linear layer's weight through NF4 (and the 8-bit scales with `double_quant`) with
// kernels/nf4's reference: the model qlora computes with.
void RoundThroughNf4(Model& model, bool double_quant) {
  torch::NoGradGuard no_grad;
  for (const LinearLayer& layer : model.LinearLayers()) {
    const torch::Tensor w = layer.weight.contiguous().to(torch::kFloat);
    const kernels::Nf4Sizes sizes(w.numel());
    std::vector<uint8_t> codes(static_cast<size_t>(sizes.code_bytes));
    std::vector<float> absmax(static_cast<size_t>(sizes.blocks));
    kernels::QuantizeNf4(w.data_ptr<float>(), sizes.values, codes.data(), absmax.data());
    if (double_quant) {
      std::vector<uint8_t> quantized(absmax.size());
      std::vector<float> absmax2(static_cast<size_t>(sizes.absmax_blocks));
      float offset = 0;
      kernels::QuantizeAbsmax(absmax.data(), sizes.blocks, quantized.data(), absmax2.data(),
                              &offset);
      kernels::DequantizeAbsmax(quantized.data(), absmax2.data(), offset, sizes.blocks,
                                absmax.data());
    }
    torch::Tensor rounded = torch::empty_like(w);
    kernels::DequantizeNf4(codes.data(), absmax.data(), sizes.values, rounded.data_ptr<float>());
    layer.weight.copy_(rounded);
  }
}

TEST_F(AdapterTest, QloraComputesWithTheNf4RoundedWeightsAndReleasesTheOriginals) {
  for (const bool double_quant : {false, true}) {
    auto model = LoadModel();
    const torch::Tensor original = Logits(*model);
    torch::manual_seed(0);
    auto adapter = MakeAdapter("qlora", {{"double_quant", double_quant}});
    adapter->Attach(*model, ModelDir());
    adapter->SetTraining(false);
    for (const LinearLayer& layer : model->LinearLayers()) {
      EXPECT_EQ(layer.weight.numel(), 0) << layer.name;  // all-linear by default
    }
    auto rounded = LoadModel();
    RoundThroughNf4(*rounded, double_quant);
    const torch::Tensor quantized = Logits(*model);
    EXPECT_LT((quantized - Logits(*rounded)).abs().max().item<double>(), 1e-5) << double_quant;
    EXPECT_GT((quantized - original).abs().max().item<double>(), 1e-4);  // NF4 is not lossless
    adapter->Merge();  // nothing to fold an update into
    EXPECT_TRUE(torch::equal(Logits(*model), quantized));
  }
}

TEST_F(AdapterTest, QloraGradientsEqualLorasOnTheRoundedModel) {
  const std::map<std::string, OptionValue> settings = {
      {"targets", std::vector<std::string>{"all-linear"}}, {"rank", int64_t{4}}};
  auto qlora_model = LoadModel();
  torch::manual_seed(3);
  auto qlora = MakeAdapter("qlora", settings);
  qlora->Attach(*qlora_model, ModelDir());
  Randomise(*qlora);
  auto lora_model = LoadModel();
  RoundThroughNf4(*lora_model, /*double_quant=*/true);
  auto lora = MakeAdapter("lora", settings);
  lora->Attach(*lora_model, ModelDir());
  {
    torch::NoGradGuard no_grad;
    const NamedTensors from = qlora->TrainableParameters();
    const NamedTensors to = lora->TrainableParameters();
    for (size_t i = 0; i < from.size(); ++i) to[i].second.copy_(from[i].second);
  }
  for (Model* model : {qlora_model.get(), lora_model.get()}) {
    model->Forward(torch::tensor(kIds).unsqueeze(0), nullptr).logsumexp(-1).sum().backward();
  }
  const NamedTensors q = qlora->TrainableParameters(), l = lora->TrainableParameters();
  ASSERT_EQ(q.size(), 28u);  // 7 projections x 2 layers, A and B
  for (size_t i = 0; i < q.size(); ++i) {
    ASSERT_TRUE(q[i].second.grad().defined()) << q[i].first;
    const double scale = l[i].second.grad().abs().max().item<double>();
    EXPECT_GT(scale, 0.0) << q[i].first;
    EXPECT_LT((q[i].second.grad() - l[i].second.grad()).abs().max().item<double>(), 1e-4 * scale)
        << q[i].first;
  }
}

TEST_F(AdapterTest, SavedQloraIsAPeftLoraAdapterThatLoraLoadsOntoTheFullBase) {
  auto model = LoadModel();
  torch::manual_seed(0);
  auto qlora = MakeAdapter("qlora", {});
  qlora->Attach(*model, ModelDir());
  qlora->SetTraining(false);
  Randomise(*qlora);
  TempDir out;
  qlora->Save(out.path());
  const auto config = nlohmann::json::parse(std::ifstream(out.path() / "adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "LORA");
  auto full = LoadModel();
  auto lora = MakeAdapter("lora", {{"targets", std::vector<std::string>{"all-linear"}}});
  lora->Attach(*full, ModelDir());
  lora->Load(out.path());
  const NamedTensors saved = qlora->TrainableParameters(), loaded = lora->TrainableParameters();
  ASSERT_EQ(saved.size(), loaded.size());
  for (size_t i = 0; i < saved.size(); ++i) {
    EXPECT_EQ(saved[i].first, loaded[i].first);
    EXPECT_TRUE(torch::equal(saved[i].second, loaded[i].second)) << saved[i].first;
  }
}

TEST_F(AdapterTest, TargetsSelectLayersByNameRegexOrAllLinear) {
  auto count = [&](const std::map<std::string, OptionValue>& settings) {
    auto model = LoadModel();
    auto adapter = MakeAdapter("lora", settings);
    adapter->Attach(*model, ModelDir());
    return adapter->TrainableParameters().size() / 2;
  };
  EXPECT_EQ(count({{"targets", std::vector<std::string>{"all-linear"}}}), 14u);  // 7 per layer
  EXPECT_EQ(count({{"targets", std::vector<std::string>{"o_proj", "up_proj"}}}), 4u);
  EXPECT_EQ(count({{"target_regex", std::string("model\\.layers\\.1\\..*(q|k)_proj")}}), 2u);
}

TEST_F(AdapterTest, UnknownTargetIsRefusedListingTheModelsLayers) {
  auto model = LoadModel();
  auto adapter = MakeAdapter("lora", {{"targets", std::vector<std::string>{"q_porj"}}});
  try {
    adapter->Attach(*model, ModelDir());
    FAIL() << "expected an error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "adapter plugin 'lora': adapter.targets: the model has no layer 'q_porj'; its "
              "linear layers are down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj "
              "(or use \"all-linear\")");
  }
  auto bad_regex = MakeAdapter("lora", {{"target_regex", std::string("(q_proj")}});
  EXPECT_THROW(bad_regex->Attach(*LoadModel(), ModelDir()), UserError);
}

TEST_F(AdapterTest, FullTrainsEveryParameterAndSavesAModelTheLlamaPluginLoads) {
  auto model = LoadModel();
  auto adapter = MakeAdapter("full", {});
  adapter->Attach(*model, ModelDir());
  const NamedTensors trainable = adapter->TrainableParameters();
  EXPECT_EQ(trainable.size(), model->module().parameters().size());
  for (const auto& [name, tensor] : trainable) EXPECT_TRUE(tensor.requires_grad()) << name;
  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, tensor] : trainable) tensor.add_(0.01);
  }
  TempDir out;
  adapter->Save(out.path());
  EXPECT_TRUE(fs::exists(out.path() / "config.json"));
  EXPECT_TRUE(fs::exists(out.path() / "tokenizer.model"));
  auto reloaded = host_->LoadModel(
      "llama", out.path(), PluginHost::DefaultOptions(host_->Require(PluginKind::kModel, "llama")));
  EXPECT_TRUE(torch::equal(Logits(*reloaded), Logits(*model)));
}

}  // namespace
}  // namespace tune

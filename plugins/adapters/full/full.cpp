// full: full fine-tuning. Every parameter of the base model trains; the result is a complete
// Hugging Face model directory (config.json, tokenizer files, model.safetensors).
#include <memory>

#include <torch/torch.h>

#include "safetensors/torch_io.h"
#include "tune/adapter.h"
#include "tune/error.h"
#include "tune/model.h"

namespace {

namespace fs = std::filesystem;

constexpr char kWeightsFile[] = "model.safetensors";

class Full final : public tune::Adapter {
 public:
  void Attach(tune::Model& model, const fs::path& model_dir) override {
    model_ = &model;
    model_dir_ = model_dir;
    for (at::Tensor& p : model.module().parameters()) p.set_requires_grad(true);
  }

  tune::NamedTensors TrainableParameters() override {
    tune::NamedTensors parameters;
    for (const auto& item : model_->module().named_parameters()) {
      parameters.emplace_back(item.key(), item.value());
    }
    return parameters;
  }

  void SetTraining(bool) override {}
  void Merge() override {}
  void Unmerge() override {}

  void Save(const fs::path& dir) const override {
    // Everything but the weights comes from the base directory: config, tokenizer, generation
    // settings. The weights are written as one file, so a sharded base's index is left out.
    for (const auto& entry : fs::directory_iterator(model_dir_)) {
      const std::string name = entry.path().filename().string();
      if (!entry.is_regular_file() || name.ends_with(".safetensors") ||
          name == "model.safetensors.index.json") {
        continue;
      }
      fs::copy_file(entry.path(), dir / name);
    }
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const auto& item : model_->module().named_parameters()) {
      tensors.emplace_back(item.key(), item.value().detach());
    }
    tune::safetensors::Save(dir / kWeightsFile, tensors, {{"format", "pt"}});
  }

  void Load(const fs::path& dir) override {
    const fs::path path = dir / kWeightsFile;
    if (!fs::exists(path)) throw tune::UserError(dir.string() + " has no " + kWeightsFile);
    std::map<std::string, at::Tensor> stored = tune::safetensors::LoadAll(path);
    torch::NoGradGuard no_grad;
    for (auto& [name, parameter] : TrainableParameters()) {
      auto it = stored.find(name);
      if (it == stored.end())
        throw tune::UserError(path.string() + " has no tensor '" + name + "'");
      if (!it->second.sizes().equals(parameter.sizes())) {
        throw tune::UserError(path.string() + ": tensor '" + name + "' has shape " +
                              c10::str(it->second.sizes()) + " but the model has " +
                              c10::str(parameter.sizes()));
      }
      parameter.copy_(it->second);
    }
  }

 private:
  tune::Model* model_ = nullptr;
  fs::path model_dir_;
};

void Register(tune::Registrar& registrar) {
  registrar.Add(tune::AdapterPlugin{
      .info = {.name = "full",
               .version = "1.0.0",
               .description = "Full fine-tuning: every parameter trains; writes an HF model "
                              "directory."},
      .create = [](const tune::Options&) -> std::unique_ptr<tune::Adapter> {
        return std::make_unique<Full>();
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

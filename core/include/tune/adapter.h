// Adapter plugins: the trainable part added to a frozen base model (LoRA, QLoRA, full).
//
// The trainer creates an adapter from the run's [adapter] options, seeds torch's default
// generator, and calls Attach once. From then on the model's forward pass includes the adapter,
// and TrainableParameters() are the only tensors the optimizer updates. Save writes the
// directory a deployment loads; Load reads one back into an attached adapter of the same
// configuration.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "tune/plugin.h"

namespace tune {

class Model;

// Trainable tensors under stable, unique names. The names identify the tensors in checkpoints,
// so one adapter configuration on one model always yields the same names in the same order.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

class Adapter {
 public:
  virtual ~Adapter() = default;

  // Makes the adapter part of `model` (loaded from `model_dir`): sets requires_grad on what it
  // trains and clears it on everything else, and installs its extensions (Model::
  // SetLinearExtension). Random initialisation draws from torch's default generator. The model
  // must outlive the adapter.
  virtual void Attach(Model& model, const std::filesystem::path& model_dir) = 0;

  virtual NamedTensors TrainableParameters() = 0;

  // Training mode enables dropout; evaluation and generation run with it off.
  virtual void SetTraining(bool training) = 0;

  // Folds the adapter into the base weights so Forward costs what the base model costs, and
  // takes it out again. Adapters that train the base weights themselves do nothing.
  virtual void Merge() = 0;
  virtual void Unmerge() = 0;

  // Writes the deployable directory: PEFT layout for LoRA, a Hugging Face model directory for
  // full fine-tuning. `dir` exists and is empty.
  virtual void Save(const std::filesystem::path& dir) const = 0;
  // Loads weights written by Save for the same configuration and model shape; throws UserError
  // naming the file and tensor that does not fit.
  virtual void Load(const std::filesystem::path& dir) = 0;
};

}  // namespace tune

// A PEFT LoRA folder applied to a loaded model, for generation (`tune generate --adapter`, `tune
// review generate`).
#pragma once

#include <filesystem>
#include <memory>

namespace tune {

class Adapter;
class Model;
class PluginHost;

// A LoRA adapter in PEFT's layout (adapter_config.json + adapter_model.safetensors), attached
// to `model` (loaded from `model_dir`) and merged into its weights. The adapter must stay alive
// while the model is used. UserError for a folder that is a whole model or not an adapter.
std::unique_ptr<Adapter> AttachPeftAdapter(const PluginHost& host, Model& model,
                                           const std::filesystem::path& model_dir,
                                           const std::filesystem::path& dir);

}  // namespace tune

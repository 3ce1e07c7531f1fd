#include "generate/peft_adapter.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "plugin_host/plugin_host.h"
#include "tune/adapter.h"
#include "tune/model.h"
#include "util/error.h"

namespace tune {

namespace fs = std::filesystem;

std::unique_ptr<Adapter> AttachPeftAdapter(const PluginHost& host, Model& model,
                                           const fs::path& model_dir, const fs::path& dir) {
  const fs::path config_file = dir / "adapter_config.json";
  if (!fs::exists(config_file)) {
    if (fs::exists(dir / "config.json")) {
      throw UserError(dir.string() +
                      " is a whole model (full fine-tuning); pass it as --model instead of "
                      "--adapter");
    }
    throw UserError(dir.string() +
                    " has no adapter_config.json; --adapter takes a PEFT LoRA "
                    "directory such as tune train's adapter/ or tune fetch's output");
  }
  nlohmann::json peft;
  try {
    peft = nlohmann::json::parse(std::ifstream(config_file));
    if (peft.value("peft_type", "") != "LORA") {
      throw UserError(config_file.string() + ": peft_type is " + peft.value("peft_type", "?") +
                      "; only LORA adapters can be applied");
    }
    Options options = PluginHost::DefaultOptions(host.Require(PluginKind::kAdapter, "lora"));
    options.Set("rank", peft.at("r").get<int64_t>());
    options.Set("alpha", peft.at("lora_alpha").get<double>());
    options.Set("rslora", peft.value("use_rslora", false));
    const nlohmann::json& targets = peft.at("target_modules");
    if (targets.is_string()) {
      options.Set("target_regex", targets.get<std::string>());
    } else {
      options.Set("targets", targets.get<std::vector<std::string>>());
    }
    std::unique_ptr<Adapter> adapter = host.CreateAdapter("lora", options);
    adapter->Attach(model, model_dir);
    adapter->Load(dir);
    adapter->SetTraining(false);
    adapter->Merge();
    return adapter;
  } catch (const nlohmann::json::exception& e) {
    throw UserError(config_file.string() + ": not a PEFT LoRA config (" + e.what() + ")");
  }
}

}  // namespace tune

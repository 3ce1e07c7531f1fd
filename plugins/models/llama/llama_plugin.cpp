// The `llama` model plugin: Llama, Mistral and Qwen2 checkpoints in Hugging Face layout.
#include "llama_model.h"

namespace {

void Register(tune::Registrar& registrar) {
  registrar.Add(tune::ModelPlugin{
      .info = {.name = "llama",
               .version = "1.0.0",
               .description = "Llama-family decoders (llama, mistral, qwen2) from config.json, "
                              "safetensors weights, with the folder's tokenizer.",
               .options = {tune::OptionSpec::String(
                               "dtype", "auto",
                               "Base weights' dtype in memory; bfloat16 halves it; auto: "
                               "bfloat16 on a GPU, float32 on the CPU")
                               .Choices({"auto", "float32", "bfloat16"})}},
      .create = &tune::llama::LoadLlamaModel});
}

}  // namespace

TUNE_PLUGIN(Register)

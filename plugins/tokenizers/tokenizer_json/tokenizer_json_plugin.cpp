// The `tokenizer-json` tokenizer plugin: a model folder's Hugging Face tokenizer.json.
#include "tokenizer_json.h"
#include "tune/plugin.h"

namespace {

void Register(tune::Registrar& registrar) {
  registrar.Add(tune::TokenizerPlugin{
      .info = {.name = "tokenizer-json",
               .version = "1.0.0",
               .description = "Hugging Face tokenizer.json with a BPE model: byte-level (GPT-2, "
                              "Llama 3, Qwen2) or sentencepiece-style (Llama 2, Mistral)"},
      .file = "tokenizer.json",
      .priority = 20,
      .create = [](const std::filesystem::path& dir) -> std::unique_ptr<tune::Tokenizer> {
        return tune::tokenizer_json::TokenizerJson::Load(dir);
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

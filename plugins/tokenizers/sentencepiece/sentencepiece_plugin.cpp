// The `sentencepiece` tokenizer plugin: a model folder's tokenizer.model.
#include "sentencepiece_tokenizer.h"
#include "tune/plugin.h"

namespace {

void Register(tune::Registrar& registrar) {
  registrar.Add(tune::TokenizerPlugin{
      .info = {.name = "sentencepiece",
               .version = "1.0.0",
               .description = "sentencepiece BPE models (tokenizer.model), as Llama 2 and "
                              "Mistral ship them"},
      .file = "tokenizer.model",
      .priority = 10,
      .create = [](const std::filesystem::path& dir) -> std::unique_ptr<tune::Tokenizer> {
        return tune::sentencepiece::SentencePieceTokenizer::Load(dir);
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

// The subset of a Hugging Face config.json that the llama plugin serves: Llama, Mistral and Qwen2
// decoder-only models with RMSNorm, rotary embeddings, grouped-query attention and SwiGLU.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace tune::llama {

struct LlamaConfig {
  std::string model_type;  // llama | mistral | qwen2
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // grouped-query attention: num_heads is a multiple of it
  int64_t head_dim = 0;
  int64_t max_positions = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q, k and v projections have biases (Qwen2)
};

// Reads dir/config.json. Throws UserError naming the file and key for anything the plugin would
// compute differently from the model's reference implementation (rope_scaling, sliding windows
// shorter than the context, other activations, unknown model types).
LlamaConfig ReadLlamaConfig(const std::filesystem::path& dir);

}  // namespace tune::llama

// The Llama-family decoder in libtorch, with Hugging Face parameter names.
//
//   h = embed(ids)
//   per layer:  h = h + o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))
//               with n = rms_norm(h); then h = h + down(silu(gate(m)) * up(m)), m = rms_norm(h)
//   logits = lm_head(rms_norm(h))   (lm_head is embed's weight when tied)
//
// Attention is causal, scaled by 1/sqrt(head_dim), grouped-query (each key/value head serves
// num_heads / num_kv_heads query heads), with rotary embeddings in the "rotate_half" layout.
#pragma once

#include <filesystem>
#include <memory>

#include "llama_config.h"
#include "tune/model.h"

namespace tune::llama {

// Loads config.json and the safetensors weights (single file or sharded index) in `dir` onto
// `device`, tensor by tensor from the memory-mapped files, with the folder's `tokenizer` (whose
// ids must fit the embeddings). Options: "dtype" (auto: bfloat16 on an accelerator, float32 on
// the CPU | float32 | bfloat16). Throws UserError naming the file and tensor or key it cannot
// serve.
std::unique_ptr<Model> LoadLlamaModel(const std::filesystem::path& dir,
                                      std::shared_ptr<const Tokenizer> tokenizer,
                                      const Options& options, const c10::Device& device);

}  // namespace tune::llama

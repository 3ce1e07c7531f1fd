// Model plugins: a base model and its tokenizer, loaded from a directory (Hugging Face layout).
//
// A model is a causal language model: token ids in, next-token logits out. Its parameters carry
// Hugging Face names ("model.layers.0.self_attn.q_proj.weight") so that adapters target modules
// by the names users know and export PEFT files other tools load.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "tune/plugin.h"
#include "tune/tokenizer.h"

namespace torch::nn {
class Module;
}

namespace tune {

struct ModelDescription {
  std::string architecture;  // config.json's model_type: "llama", "mistral", "qwen2"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t max_positions = 0;   // longest sequence the model was trained for
  int64_t num_parameters = 0;  // as loaded, before any adapter released or added any
};

// Keys and values of the positions a model has already seen, so generation feeds one new token
// at a time. Created by Model::NewCache; only the model that made it may use it.
class KvCache {
 public:
  virtual ~KvCache() = default;
  virtual int64_t length() const = 0;  // positions held
};

// A linear layer of the model, y = x W^T + b, that adapters may target.
struct LinearLayer {
  std::string name;   // module name: "model.layers.0.self_attn.q_proj"
  at::Tensor weight;  // [out, in]: the model's own parameter, not a copy
  at::Tensor bias;    // [out], undefined when the layer has none
};

// The layer's own product x W^T + b with the model's weight, for `x` of shape [..., in].
using BaseProduct = std::function<at::Tensor(const at::Tensor& x)>;

// Owns a linear layer's output. Installed by an adapter; the model and the adapter share it, so
// either may be destroyed first.
//
// The extension decides whether the layer's own product is computed at all: LoRA calls `base`
// and adds to it; QLoRA holds the weight in another form (NF4), computes the product itself and
// never calls `base`. An extension that never calls `base` may release the weight's storage
// (Tensor::set_ to an empty tensor): nothing else in the model reads an extended layer's weight.
class LinearExtension {
 public:
  virtual ~LinearExtension() = default;
  // The layer's output for input `x` ([..., in]).
  virtual at::Tensor Forward(const at::Tensor& x, const BaseProduct& base) = 0;
};

// Forward may not be called concurrently on one model.
//
// Device: every weight lives on the device the model was loaded onto (ModelFactory), and every
// tensor Forward makes (positions, masks, caches) is made there too. Inputs may be on the CPU or
// that device; Forward moves them. Forward does not synchronise with the device: it reads nothing
// back to the host, so token ids are checked by the caller (they come from the tokenizer).
class Model {
 public:
  virtual ~Model() = default;

  virtual const Tokenizer& tokenizer() const = 0;
  virtual ModelDescription Describe() const = 0;

  // Logits (float32, [batch, new, vocab]) for `input_ids` (int64, [batch, new], each in
  // [0, vocab_size)) on the model's device. With a cache the ids continue the sequence it holds
  // and are appended to it; without one they start at position 0. Refuses sequences longer than
  // max_positions.
  virtual at::Tensor Forward(const at::Tensor& input_ids, KvCache* cache) = 0;
  virtual std::unique_ptr<KvCache> NewCache() const = 0;

  // The module tree whose named_parameters() are the Hugging Face parameter names.
  virtual torch::nn::Module& module() = 0;

  // The projections inside the decoder layers (attention and MLP), in module order; not the
  // embeddings or the output head.
  virtual std::vector<LinearLayer> LinearLayers() = 0;
  // Routes layer `name`'s output through `extension`; nullptr restores the plain layer. Throws
  // UserError if no layer has that name.
  virtual void SetLinearExtension(const std::string& name,
                                  std::shared_ptr<LinearExtension> extension) = 0;

  // With `enabled`, Forward without a cache keeps only each decoder layer's input while grad
  // mode is on, and the backward pass recomputes the layer (with the same dropout draws) to get
  // its gradients: the same gradients for much less activation memory, at the cost of a second
  // forward pass through each layer. Throws UserError when the model cannot.
  virtual void SetGradientCheckpointing(bool enabled) = 0;
};

}  // namespace tune

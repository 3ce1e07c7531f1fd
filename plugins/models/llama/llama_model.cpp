#include "llama_model.h"

#include "causal_attention.h"

#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "safetensors/torch_io.h"
#include "sentencepiece_tokenizer.h"
#include "util/error.h"

namespace tune::llama {
namespace {

namespace fs = std::filesystem;
using torch::Tensor;
using torch::indexing::Slice;

struct RmsNormImpl : torch::nn::Module {
  RmsNormImpl(int64_t dim, double eps) : eps(eps) {
    weight = register_parameter("weight", torch::ones({dim}));
  }
  // Normalised in float32 whatever the weights' dtype, as the reference does.
  Tensor forward(const Tensor& x) {
    const Tensor x32 = x.to(torch::kFloat);
    const Tensor normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
    return weight * normed.to(x.scalar_type());
  }
  Tensor weight;
  double eps;
};
TORCH_MODULE(RmsNorm);

torch::nn::Linear MakeLinear(int64_t in, int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

// A projection an adapter may extend. Parameter names and initialisation are torch::nn::Linear's.
struct ProjectionImpl : torch::nn::Module {
  ProjectionImpl(int64_t in, int64_t out, bool has_bias) {
    torch::nn::Linear init = MakeLinear(in, out, has_bias);
    weight = register_parameter("weight", init->weight.detach().clone());
    if (has_bias) bias = register_parameter("bias", init->bias.detach().clone());
  }
  Tensor forward(const Tensor& x) {
    Tensor y = torch::nn::functional::linear(x, weight, bias);
    return extension != nullptr ? extension->Forward(x, y) : y;
  }
  Tensor weight, bias;
  std::shared_ptr<LinearExtension> extension;  // shared with the adapter that installed it
};
TORCH_MODULE(Projection);

// [x1, x2] -> [-x2, x1] over the last dimension's two halves.
Tensor RotateHalf(const Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat(
      {-x.index({"...", Slice(half, torch::indexing::None)}), x.index({"...", Slice(0, half)})},
      -1);
}

struct LayerCache {
  Tensor keys;  // [batch, kv_heads, positions, head_dim], before repetition for GQA
  Tensor values;
};

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const LlamaConfig& c)
      : num_heads(c.num_heads), num_kv_heads(c.num_kv_heads), head_dim(c.head_dim) {
    q_proj = register_module("q_proj",
                             Projection(c.hidden_size, c.num_heads * c.head_dim, c.attention_bias));
    k_proj = register_module(
        "k_proj", Projection(c.hidden_size, c.num_kv_heads * c.head_dim, c.attention_bias));
    v_proj = register_module(
        "v_proj", Projection(c.hidden_size, c.num_kv_heads * c.head_dim, c.attention_bias));
    o_proj = register_module("o_proj", Projection(c.num_heads * c.head_dim, c.hidden_size, false));
  }

  // `cos`/`sin`: [new, head_dim] for the new positions. `past`: positions already in `cache`.
  Tensor forward(const Tensor& x, const Tensor& cos, const Tensor& sin, LayerCache* cache) {
    const int64_t batch = x.size(0), length = x.size(1);
    Tensor q = q_proj(x).view({batch, length, num_heads, head_dim}).transpose(1, 2);
    Tensor k = k_proj(x).view({batch, length, num_kv_heads, head_dim}).transpose(1, 2);
    Tensor v = v_proj(x).view({batch, length, num_kv_heads, head_dim}).transpose(1, 2);
    if (cache == nullptr && q.is_cpu() && q.scalar_type() == torch::kFloat) {
      // Whole sequences (training, eval loss): the fused kernel rotates q and k itself.
      if (num_heads != num_kv_heads) {
        k = k.repeat_interleave(num_heads / num_kv_heads, 1);
        v = v.repeat_interleave(num_heads / num_kv_heads, 1);
      }
      const Tensor out =
          CausalAttention(q, k, v, cos, sin, 1.0 / std::sqrt(static_cast<double>(head_dim)));
      return o_proj(out.transpose(1, 2).reshape({batch, length, num_heads * head_dim}));
    }
    q = q * cos + RotateHalf(q) * sin;
    k = k * cos + RotateHalf(k) * sin;
    int64_t past = 0;
    if (cache != nullptr) {
      if (cache->keys.defined()) {
        past = cache->keys.size(2);
        k = torch::cat({cache->keys, k}, 2);
        v = torch::cat({cache->values, v}, 2);
      }
      cache->keys = k;
      cache->values = v;
    }
    if (num_heads != num_kv_heads) {
      k = k.repeat_interleave(num_heads / num_kv_heads, 1);
      v = v.repeat_interleave(num_heads / num_kv_heads, 1);
    }
    Tensor scores =
        torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim));
    if (length > 1) {
      // Query i (absolute position past + i) sees keys 0 .. past + i.
      const Tensor future =
          torch::ones({length, past + length}, scores.options().dtype(torch::kBool)).triu(past + 1);
      scores = scores.masked_fill(future, -std::numeric_limits<float>::infinity());
    }
    const Tensor probs = torch::softmax(scores.to(torch::kFloat), -1).to(q.scalar_type());
    const Tensor out =
        torch::matmul(probs, v).transpose(1, 2).reshape({batch, length, num_heads * head_dim});
    return o_proj(out);
  }

  int64_t num_heads, num_kv_heads, head_dim;
  Projection q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(const LlamaConfig& c) {
    gate_proj = register_module("gate_proj", Projection(c.hidden_size, c.intermediate_size, false));
    up_proj = register_module("up_proj", Projection(c.hidden_size, c.intermediate_size, false));
    down_proj = register_module("down_proj", Projection(c.intermediate_size, c.hidden_size, false));
  }
  Tensor forward(const Tensor& x) { return down_proj(torch::silu(gate_proj(x)) * up_proj(x)); }
  Projection gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

struct DecoderLayerImpl : torch::nn::Module {
  explicit DecoderLayerImpl(const LlamaConfig& c) {
    input_layernorm = register_module("input_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps));
    self_attn = register_module("self_attn", Attention(c));
    post_attention_layernorm =
        register_module("post_attention_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps));
    mlp = register_module("mlp", Mlp(c));
  }
  Tensor forward(const Tensor& x, const Tensor& cos, const Tensor& sin, LayerCache* cache) {
    const Tensor h = x + self_attn(input_layernorm(x), cos, sin, cache);
    return h + mlp(post_attention_layernorm(h));
  }
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

// The part HF calls "model": embeddings, layers, final norm.
struct BackboneImpl : torch::nn::Module {
  explicit BackboneImpl(const LlamaConfig& c) {
    embed_tokens =
        register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_layers; ++i) layers->push_back(DecoderLayer(c));
    norm = register_module("norm", RmsNorm(c.hidden_size, c.rms_norm_eps));
  }
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RmsNorm norm{nullptr};
};
TORCH_MODULE(Backbone);

struct CausalLmImpl : torch::nn::Module {
  explicit CausalLmImpl(const LlamaConfig& c) {
    model = register_module("model", Backbone(c));
    if (!c.tie_word_embeddings) {
      lm_head = register_module("lm_head", MakeLinear(c.hidden_size, c.vocab_size, false));
    }
  }
  Backbone model{nullptr};
  torch::nn::Linear lm_head{nullptr};
};
TORCH_MODULE(CausalLm);

class LlamaCache final : public KvCache {
 public:
  explicit LlamaCache(int64_t layers) : layers(layers) {}
  int64_t length() const override {
    return layers.empty() || !layers[0].keys.defined() ? 0 : layers[0].keys.size(2);
  }
  std::vector<LayerCache> layers;
};

class LlamaModel final : public Model {
 public:
  LlamaModel(LlamaConfig config, std::unique_ptr<SentencePieceTokenizer> tokenizer)
      : config_(std::move(config)), tokenizer_(std::move(tokenizer)), net_(config_) {
    const Tensor exponents = torch::arange(0, config_.head_dim, 2, torch::kDouble) /
                             static_cast<double>(config_.head_dim);
    inv_freq_ = torch::pow(config_.rope_theta, exponents).reciprocal();
  }

  const Tokenizer& tokenizer() const override { return *tokenizer_; }

  ModelDescription Describe() const override {
    int64_t parameters = 0;
    for (const Tensor& p : net_->parameters()) parameters += p.numel();
    return {config_.model_type, config_.vocab_size,    config_.hidden_size,
            config_.num_layers, config_.max_positions, parameters};
  }

  Tensor Forward(const Tensor& input_ids, KvCache* cache) override {
    if (input_ids.dim() != 2) {
      throw UserError("input_ids must be [batch, tokens], got " + std::to_string(input_ids.dim()) +
                      " dimensions");
    }
    auto* llama_cache = dynamic_cast<LlamaCache*>(cache);
    if (cache != nullptr && llama_cache == nullptr)
      throw UserError("the cache was made by another model");
    const int64_t past = llama_cache ? llama_cache->length() : 0;
    const int64_t length = input_ids.size(1);
    if (past + length > config_.max_positions) {
      throw UserError("sequence of " + std::to_string(past + length) +
                      " tokens is longer than max_position_embeddings (" +
                      std::to_string(config_.max_positions) + ")");
    }
    const Tensor ids = input_ids.to(net_->model->embed_tokens->weight.device(), torch::kLong);
    if (ids.numel() > 0 &&
        (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= config_.vocab_size)) {
      throw UserError("token ids must be in [0, " + std::to_string(config_.vocab_size) + ")");
    }
    const Tensor weight = net_->model->embed_tokens->weight;
    const Tensor positions = torch::arange(past, past + length, torch::kDouble);
    const Tensor angles = torch::outer(positions, inv_freq_);
    const Tensor both = torch::cat({angles, angles}, -1);
    // Angles in float64 on the CPU (exact for long contexts), then moved to the weights.
    const Tensor cos = both.cos().to(weight.device(), weight.scalar_type());
    const Tensor sin = both.sin().to(weight.device(), weight.scalar_type());

    Tensor h = net_->model->embed_tokens(ids);
    const auto& layers = *net_->model->layers;
    for (size_t i = 0; i < layers.size(); ++i) {
      LayerCache* layer_cache = llama_cache ? &llama_cache->layers[i] : nullptr;
      h = layers[i]->as<DecoderLayerImpl>()->forward(h, cos, sin, layer_cache);
    }
    h = net_->model->norm(h);
    const Tensor logits = net_->lm_head ? net_->lm_head(h) : torch::matmul(h, weight.t());
    return logits.to(torch::kFloat);
  }

  std::unique_ptr<KvCache> NewCache() const override {
    return std::make_unique<LlamaCache>(config_.num_layers);
  }

  torch::nn::Module& module() override { return *net_; }

  std::vector<LinearLayer> LinearLayers() override {
    std::vector<LinearLayer> layers;
    for (const auto& item : net_->named_modules()) {
      if (auto* projection = item.value()->as<ProjectionImpl>()) {
        layers.push_back({item.key(), projection->weight, projection->bias});
      }
    }
    return layers;
  }

  void SetLinearExtension(const std::string& name,
                          std::shared_ptr<LinearExtension> extension) override {
    for (const auto& item : net_->named_modules()) {
      if (item.key() != name) continue;
      if (auto* projection = item.value()->as<ProjectionImpl>()) {
        projection->extension = std::move(extension);
        return;
      }
    }
    throw UserError("the model has no linear layer named '" + name + "'");
  }

  CausalLm& net() { return net_; }
  const LlamaConfig& config() const { return config_; }

 private:
  LlamaConfig config_;
  std::unique_ptr<SentencePieceTokenizer> tokenizer_;
  CausalLm net_;
  Tensor inv_freq_;  // float64 [head_dim / 2]: 1 / rope_theta^(2i / head_dim)
};

// The safetensors files holding the weights: model.safetensors, or the shards an index names.
std::vector<fs::path> WeightFiles(const fs::path& dir) {
  if (fs::exists(dir / "model.safetensors")) return {dir / "model.safetensors"};
  const fs::path index = dir / "model.safetensors.index.json";
  if (!fs::exists(index)) {
    throw UserError(dir.string() +
                    ": no model.safetensors or model.safetensors.index.json (other weight "
                    "formats such as pytorch_model.bin are not read; convert them to safetensors)");
  }
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(std::ifstream(index));
  } catch (const nlohmann::json::exception& e) {
    throw UserError(index.string() + ": not valid JSON (" + e.what() + ")");
  }
  if (!root.contains("weight_map") || !root["weight_map"].is_object()) {
    throw UserError(index.string() + ": missing 'weight_map' object");
  }
  std::set<std::string> shards;
  for (const auto& [name, shard] : root["weight_map"].items()) {
    if (!shard.is_string() || shard.get<std::string>().find('/') != std::string::npos) {
      throw UserError(index.string() + ": 'weight_map' entry for '" + name +
                      "' must be a file name in the same folder");
    }
    shards.insert(shard.get<std::string>());
  }
  std::vector<fs::path> files;
  for (const std::string& shard : shards) files.push_back(dir / shard);
  return files;
}

}  // namespace

std::unique_ptr<Model> LoadLlamaModel(const fs::path& dir, const Options& options) {
  LlamaConfig config = ReadLlamaConfig(dir);
  auto tokenizer = SentencePieceTokenizer::Load(dir, config.bos_token_id, config.eos_token_id);
  if (tokenizer->vocab_size() > config.vocab_size) {
    throw UserError((dir / "tokenizer.model").string() + " has " +
                    std::to_string(tokenizer->vocab_size()) +
                    " tokens but config.json's vocab_size is " + std::to_string(config.vocab_size) +
                    "; they belong to different models");
  }
  auto model = std::make_unique<LlamaModel>(config, std::move(tokenizer));

  std::map<std::string, Tensor> parameters;
  for (const auto& item : model->module().named_parameters()) parameters[item.key()] = item.value();
  std::set<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const fs::path& file : WeightFiles(dir)) {
    const auto weights = safetensors::File::Open(file);
    for (const safetensors::TensorInfo& info : weights->header().tensors) {
      // Older checkpoints store the rotary frequencies; tied models may store lm_head anyway.
      if (info.name.ends_with("rotary_emb.inv_freq")) continue;
      if (info.name == "lm_head.weight" && config.tie_word_embeddings) continue;
      const auto parameter = parameters.find(info.name);
      if (parameter == parameters.end()) {
        throw UserError(file.string() + ": tensor '" + info.name + "' is not a parameter of a " +
                        config.model_type +
                        " model with this config.json; the checkpoint and "
                        "config.json disagree");
      }
      const Tensor value = safetensors::LoadTensor(weights, info);
      if (value.sizes() != parameter->second.sizes()) {
        throw UserError(file.string() + ": tensor '" + info.name + "' has shape " +
                        c10::str(value.sizes()) + " but config.json implies " +
                        c10::str(parameter->second.sizes()));
      }
      parameter->second.copy_(value);
      if (!loaded.insert(info.name).second) {
        throw UserError(file.string() + ": tensor '" + info.name + "' appears in two shards");
      }
    }
  }
  for (const auto& [name, tensor] : parameters) {
    if (!loaded.contains(name)) {
      throw UserError(dir.string() + ": the weights have no tensor '" + name +
                      "', which config.json implies");
    }
  }
  if (options.String("dtype") == "bfloat16") model->module().to(torch::kBFloat16);
  return model;
}

}  // namespace tune::llama

#include "llama_model.h"

#include "causal_attention.h"

#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include <ATen/Context.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <nlohmann/json.hpp>

#include "safetensors/torch_io.h"
#include "tune/error.h"

namespace tune::llama {
namespace {

namespace fs = std::filesystem;
using torch::Tensor;
using torch::indexing::Slice;

// Every parameter is made uninitialised, in its final dtype and on its final device
// (`options`), and filled from the checkpoint: loading never holds a second copy of the model.

struct RmsNormImpl : torch::nn::Module {
  RmsNormImpl(int64_t dim, double eps, const torch::TensorOptions& options) : eps(eps) {
    weight = register_parameter("weight", torch::empty({dim}, options));
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

// A projection an adapter may extend; parameter names are torch::nn::Linear's.
struct ProjectionImpl : torch::nn::Module {
  ProjectionImpl(int64_t in, int64_t out, bool has_bias, const torch::TensorOptions& options) {
    weight = register_parameter("weight", torch::empty({out, in}, options));
    if (has_bias) bias = register_parameter("bias", torch::empty({out}, options));
  }
  Tensor forward(const Tensor& x) {
    if (extension == nullptr) return torch::nn::functional::linear(x, weight, bias);
    return extension->Forward(x, [this](const Tensor& input) {
      return torch::nn::functional::linear(input, weight, bias);
    });
  }
  Tensor weight, bias;
  std::shared_ptr<LinearExtension> extension;  // shared with the adapter that installed it
};
TORCH_MODULE(Projection);

struct EmbeddingImpl : torch::nn::Module {
  EmbeddingImpl(int64_t vocab, int64_t dim, const torch::TensorOptions& options) {
    weight = register_parameter("weight", torch::empty({vocab, dim}, options));
  }
  Tensor forward(const Tensor& ids) { return torch::embedding(weight, ids); }
  Tensor weight;
};
TORCH_MODULE(Embedding);

// lm_head: a linear layer that is not a Projection, so adapters do not target it (PEFT's
// "all-linear" leaves the output layer out too).
struct OutputHeadImpl : torch::nn::Module {
  OutputHeadImpl(int64_t vocab, int64_t dim, const torch::TensorOptions& options) {
    weight = register_parameter("weight", torch::empty({vocab, dim}, options));
  }
  Tensor forward(const Tensor& x) { return torch::nn::functional::linear(x, weight); }
  Tensor weight;
};
TORCH_MODULE(OutputHead);

// Each key/value head `times` over, next to itself ([b, kv, t, d] -> [b, kv * times, t, d]):
// repeat_interleave over dimension 1, written as a broadcast, which every backend has.
Tensor RepeatKvHeads(const Tensor& x, int64_t times) {
  if (times == 1) return x;
  const int64_t b = x.size(0), heads = x.size(1), t = x.size(2), d = x.size(3);
  return x.unsqueeze(2).expand({b, heads, times, t, d}).reshape({b, heads * times, t, d});
}

// Softmax attention of q over k and v ([batch, heads, tokens, head_dim], k and v with as many
// heads as q), query i seeing keys 0 .. past + i.
Tensor Attend(const Tensor& q, const Tensor& k, const Tensor& v, int64_t past) {
  const int64_t length = q.size(2);
#if TORCH_VERSION_MAJOR >= 2
  // Flash or memory-efficient kernels where the device has them. is_causal aligns the mask to
  // the top left, which is right only without past positions; one new query needs no mask.
  if (past == 0 || length == 1) {
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                            /*is_causal=*/past == 0 && length > 1);
  }
  const Tensor visible = torch::ones({length, past + length}, q.options().dtype(torch::kBool))
                             .tril(past);  // true: may attend
  return at::scaled_dot_product_attention(q, k, v, visible);
#else
  Tensor scores =
      torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
  if (length > 1) {
    const Tensor future =
        torch::ones({length, past + length}, scores.options().dtype(torch::kBool)).triu(past + 1);
    scores = scores.masked_fill(future, -std::numeric_limits<float>::infinity());
  }
  const Tensor probs = torch::softmax(scores.to(torch::kFloat), -1).to(q.scalar_type());
  return torch::matmul(probs, v);
#endif
}

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
  AttentionImpl(const LlamaConfig& c, const torch::TensorOptions& o)
      : num_heads(c.num_heads), num_kv_heads(c.num_kv_heads), head_dim(c.head_dim) {
    q_proj = register_module(
        "q_proj", Projection(c.hidden_size, c.num_heads * c.head_dim, c.attention_bias, o));
    k_proj = register_module(
        "k_proj", Projection(c.hidden_size, c.num_kv_heads * c.head_dim, c.attention_bias, o));
    v_proj = register_module(
        "v_proj", Projection(c.hidden_size, c.num_kv_heads * c.head_dim, c.attention_bias, o));
    o_proj =
        register_module("o_proj", Projection(c.num_heads * c.head_dim, c.hidden_size, false, o));
  }

  // `cos`/`sin`: [new, head_dim] for the new positions. `past`: positions already in `cache`.
  Tensor forward(const Tensor& x, const Tensor& cos, const Tensor& sin, LayerCache* cache) {
    const int64_t batch = x.size(0), length = x.size(1);
    Tensor q = q_proj(x).view({batch, length, num_heads, head_dim}).transpose(1, 2);
    Tensor k = k_proj(x).view({batch, length, num_kv_heads, head_dim}).transpose(1, 2);
    Tensor v = v_proj(x).view({batch, length, num_kv_heads, head_dim}).transpose(1, 2);
    if (cache == nullptr && q.is_cpu() && q.scalar_type() == torch::kFloat) {
      // Whole sequences (training, eval loss): the fused kernel rotates q and k itself.
      k = RepeatKvHeads(k, num_heads / num_kv_heads);
      v = RepeatKvHeads(v, num_heads / num_kv_heads);
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
    k = RepeatKvHeads(k, num_heads / num_kv_heads);
    v = RepeatKvHeads(v, num_heads / num_kv_heads);
    const Tensor out =
        Attend(q, k, v, past).transpose(1, 2).reshape({batch, length, num_heads * head_dim});
    return o_proj(out);
  }

  int64_t num_heads, num_kv_heads, head_dim;
  Projection q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(const LlamaConfig& c, const torch::TensorOptions& o) {
    gate_proj =
        register_module("gate_proj", Projection(c.hidden_size, c.intermediate_size, false, o));
    up_proj = register_module("up_proj", Projection(c.hidden_size, c.intermediate_size, false, o));
    down_proj =
        register_module("down_proj", Projection(c.intermediate_size, c.hidden_size, false, o));
  }
  Tensor forward(const Tensor& x) { return down_proj(torch::silu(gate_proj(x)) * up_proj(x)); }
  Projection gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

struct DecoderLayerImpl : torch::nn::Module {
  DecoderLayerImpl(const LlamaConfig& c, const torch::TensorOptions& o) {
    input_layernorm = register_module("input_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, o));
    self_attn = register_module("self_attn", Attention(c, o));
    post_attention_layernorm =
        register_module("post_attention_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, o));
    mlp = register_module("mlp", Mlp(c, o));
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

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Activation checkpointing of one decoder layer, as torch.utils.checkpoint does it with
// use_reentrant=True: the forward keeps only the layer's input; the backward runs the layer again
// with grad on, from the random generators' states of the first run (so dropout draws the same
// masks), and back-propagates through it, which also accumulates its parameters' gradients.
class CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& cos, const Tensor& sin,
                        DecoderLayerImpl* layer) {
    ctx->saved_data["layer"] = reinterpret_cast<int64_t>(layer);
    ctx->saved_data["rng"] = GeneratorStates(x.device());
    ctx->save_for_backward({x, cos, sin});
    return layer->forward(x, cos, sin, nullptr);  // autograd runs this with grad mode off
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    const Tensor x = saved[0].detach().requires_grad_(true);
    const std::vector<Tensor> now = GeneratorStates(x.device()).vec();
    SetGeneratorStates(x.device(), ctx->saved_data["rng"].toTensorList().vec());
    Tensor out;
    {
      torch::AutoGradMode grad(true);
      out = layer->forward(x, saved[1], saved[2], nullptr);
    }
    SetGeneratorStates(x.device(), now);
    torch::autograd::backward({out}, {grad_outputs[0]});
    return {x.grad(), Tensor(), Tensor(), Tensor()};
  }

 private:
  // The CPU generator's state, and the GPU's when the layer runs on one. Other devices tune runs on
  // (meta, in tests) have no generator of their own.
  static c10::List<Tensor> GeneratorStates(const torch::Device& device) {
    c10::List<Tensor> states;
    states.push_back(at::globalContext().defaultGenerator(torch::kCPU).get_state());
    if (device.is_cuda())
      states.push_back(at::globalContext().defaultGenerator(device).get_state());
    return states;
  }
  static void SetGeneratorStates(const torch::Device& device, const std::vector<Tensor>& states) {
    at::Generator cpu = at::globalContext().defaultGenerator(torch::kCPU);  // a handle
    cpu.set_state(states[0]);
    if (!device.is_cuda()) return;
    at::Generator accelerator = at::globalContext().defaultGenerator(device);
    accelerator.set_state(states[1]);
  }
};

// The part HF calls "model": embeddings, layers, final norm.
struct BackboneImpl : torch::nn::Module {
  BackboneImpl(const LlamaConfig& c, const torch::TensorOptions& o) {
    embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size, o));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_layers; ++i) layers->push_back(DecoderLayer(c, o));
    norm = register_module("norm", RmsNorm(c.hidden_size, c.rms_norm_eps, o));
  }
  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RmsNorm norm{nullptr};
};
TORCH_MODULE(Backbone);

struct CausalLmImpl : torch::nn::Module {
  CausalLmImpl(const LlamaConfig& c, const torch::TensorOptions& o) {
    model = register_module("model", Backbone(c, o));
    if (!c.tie_word_embeddings) {
      lm_head = register_module("lm_head", OutputHead(c.vocab_size, c.hidden_size, o));
    }
  }
  Backbone model{nullptr};
  OutputHead lm_head{nullptr};
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
  LlamaModel(LlamaConfig config, std::shared_ptr<const Tokenizer> tokenizer,
             const torch::TensorOptions& options)
      : config_(std::move(config)), tokenizer_(std::move(tokenizer)), net_(config_, options) {
    const Tensor exponents = torch::arange(0, config_.head_dim, 2, torch::kDouble) /
                             static_cast<double>(config_.head_dim);
    inv_freq_ = torch::pow(config_.rope_theta, exponents).reciprocal();
    for (const Tensor& p : net_->parameters()) num_parameters_ += p.numel();
  }

  const Tokenizer& tokenizer() const override { return *tokenizer_; }

  // The parameters as built, whatever an adapter released since (qlora keeps them in NF4).
  ModelDescription Describe() const override {
    return {config_.model_type, config_.vocab_size,    config_.hidden_size,
            config_.num_layers, config_.max_positions, num_parameters_};
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
    const Tensor weight = net_->model->embed_tokens->weight;
    // Ids still on the host are checked here for free; ids already on the device are not, as
    // reading them back would wait for the device (the contract puts them in range).
    if (input_ids.is_cpu() && input_ids.numel() > 0) {
      const Tensor ids = input_ids.to(torch::kLong);
      if (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= config_.vocab_size) {
        throw UserError("token ids must be in [0, " + std::to_string(config_.vocab_size) + ")");
      }
    }
    const Tensor ids = input_ids.to(weight.device(), torch::kLong);
    const Tensor cos = RopeTable(cos_, past + length).narrow(0, past, length);
    const Tensor sin = RopeTable(sin_, past + length).narrow(0, past, length);

    Tensor h = net_->model->embed_tokens(ids);
    const bool checkpoint =
        gradient_checkpointing_ && llama_cache == nullptr && torch::GradMode::is_enabled();
    // The checkpointed layers pass gradients only to an input that wants them; with frozen
    // embeddings (LoRA) nothing would reach the adapters inside.
    if (checkpoint && !h.requires_grad()) h = h.detach().requires_grad_(true);
    const auto& layers = *net_->model->layers;
    for (size_t i = 0; i < layers.size(); ++i) {
      auto* layer = layers[i]->as<DecoderLayerImpl>();
      if (checkpoint) {
        h = CheckpointedLayer::apply(h, cos, sin, layer);
      } else {
        h = layer->forward(h, cos, sin, llama_cache ? &llama_cache->layers[i] : nullptr);
      }
    }
    h = net_->model->norm(h);
    const Tensor logits = net_->lm_head ? net_->lm_head(h) : torch::matmul(h, weight.t());
    return logits.to(torch::kFloat);
  }

  void SetGradientCheckpointing(bool enabled) override { gradient_checkpointing_ = enabled; }

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
  // `table` (cos_ or sin_) holding at least `positions` rows, on the weights' device and in their
  // dtype. Angles are computed in float64 on the host (exact for long contexts) and moved once:
  // the tables grow by doubling, so a forward pass copies nothing to the device but its ids.
  const Tensor& RopeTable(const Tensor& table, int64_t positions) {
    if (!cos_.defined() || cos_.size(0) < positions) {
      int64_t rows = 64;
      while (rows < positions) rows *= 2;
      rows = std::min(rows, std::max(positions, config_.max_positions));
      const Tensor angles = torch::outer(torch::arange(rows, torch::kDouble), inv_freq_);
      const Tensor both = torch::cat({angles, angles}, -1);
      const Tensor& weight = net_->model->embed_tokens->weight;
      cos_ = both.cos().to(weight.device(), weight.scalar_type());
      sin_ = both.sin().to(weight.device(), weight.scalar_type());
    }
    return &table == &cos_ ? cos_ : sin_;
  }

  LlamaConfig config_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  CausalLm net_;
  Tensor inv_freq_;             // float64 [head_dim / 2]: 1 / rope_theta^(2i / head_dim)
  int64_t num_parameters_ = 0;  // counted when built
  Tensor cos_, sin_;            // [positions, head_dim] rotary tables (RopeTable)
  bool gradient_checkpointing_ = false;
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

std::unique_ptr<Model> LoadLlamaModel(const fs::path& dir,
                                      std::shared_ptr<const Tokenizer> tokenizer,
                                      const Options& options, const torch::Device& device) {
  LlamaConfig config = ReadLlamaConfig(dir);
  if (tokenizer->vocab_size() > config.vocab_size) {
    throw UserError(dir.string() + ": the tokenizer has " +
                    std::to_string(tokenizer->vocab_size()) +
                    " tokens but config.json's vocab_size is " + std::to_string(config.vocab_size) +
                    "; they belong to different models");
  }
  const std::string dtype = options.String("dtype");
  const bool bf16 = dtype == "bfloat16" || (dtype == "auto" && !device.is_cpu());
  auto model = std::make_unique<LlamaModel>(
      config, std::move(tokenizer),
      torch::TensorOptions().dtype(bf16 ? torch::kBFloat16 : torch::kFloat).device(device));

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
      parameter->second.copy_(value);  // converts to the parameter's dtype on its device
      weights->Evict(info);
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
  return model;
}

}  // namespace tune::llama

// lora: low-rank adaptation (Hu et al. 2021). Each targeted linear layer W (out x in) gains
//   y = x W^T + b + scale * dropout(x) A^T B^T,   A: [rank, in], B: [out, rank]
// with scale = alpha / rank, or alpha / sqrt(rank) with rslora (Kalajdzievski 2023). A starts
// Kaiming-uniform (a = sqrt(5), PEFT's choice) and B at zero, so training starts from the base
// model exactly. The base weights stay frozen. Exported in Hugging Face PEFT's layout.
//
// qlora (Dettmers et al. 2023), from the same library: the same LoRA on top of base weights held
// in NF4 (kernels/nf4/nf4.h: blocks of 64, optionally double-quantised scales). The targeted
// layers' full-precision weights are quantised at Attach and released; every forward and backward
// dequantises them on the fly to the compute dtype (float32 on the CPU, bfloat16 on CUDA by
// default) and drops the result. The saved adapter is a plain PEFT LoRA folder, deployable onto
// the full-precision base like any other. Merge does nothing under qlora: an NF4 weight cannot
// take the update without rounding it away.
#include <regex.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <set>

#include <torch/torch.h>
#if TUNE_QLORA_CUDA
#include <c10/cuda/CUDAStream.h>

#include "nf4/nf4_cuda.h"
#endif
#include <nlohmann/json.hpp>

#include "nf4/nf4.h"
#include "safetensors/torch_io.h"
#include "tune/adapter.h"
#include "tune/error.h"
#include "tune/model.h"

namespace {

namespace fs = std::filesystem;
using torch::Tensor;

constexpr char kWeightsFile[] = "adapter_model.safetensors";
constexpr char kConfigFile[] = "adapter_config.json";
constexpr char kAllLinear[] = "all-linear";

// PEFT's tensor name for a layer's A or B: base_model.model.<module>.lora_A.weight.
std::string PeftName(const std::string& layer, char matrix) {
  std::string name = "base_model.model.";
  name += layer;
  name += ".lora_";
  name += matrix;
  name += ".weight";
  return name;
}

// The last component of a module name: "q_proj" for "model.layers.0.self_attn.q_proj".
std::string Suffix(const std::string& name) { return name.substr(name.rfind('.') + 1); }

// Runs `run(first, count)` over [0, n) in pieces that start on NF4 block boundaries, on
// libtorch's intra-op threads: blocks are independent, and a piece of whole blocks starts on a
// whole byte of codes.
template <typename F>
void ForBlocks(int64_t n, F&& run) {
  constexpr int64_t kBlock = tune::kernels::kNf4Block;
  at::parallel_for(0, (n + kBlock - 1) / kBlock, 1024, [&](int64_t begin, int64_t end) {
    run(begin * kBlock, std::min(n, end * kBlock) - begin * kBlock);
  });
}

// A frozen weight [out, in] held in NF4 on the device of the weight it replaced.
class Nf4Weight {
 public:
  // Quantises on the CPU (the reference implementation), then moves the arrays to the weight's
  // device.
  Nf4Weight(const Tensor& weight, bool double_quant)
      : rows_(weight.size(0)), cols_(weight.size(1)), double_quant_(double_quant) {
    const Tensor host = weight.detach().to(torch::kCPU, torch::kFloat).contiguous();
    const tune::kernels::Nf4Sizes sizes(host.numel());
    const auto bytes = torch::TensorOptions().dtype(torch::kUInt8);
    const auto floats = torch::TensorOptions().dtype(torch::kFloat);
    Tensor codes = torch::empty({sizes.code_bytes}, bytes);
    Tensor absmax = torch::empty({sizes.blocks}, floats);
    ForBlocks(sizes.values, [&](int64_t first, int64_t count) {
      tune::kernels::QuantizeNf4(host.data_ptr<float>() + first, count,
                                 codes.data_ptr<uint8_t>() + first / 2,
                                 absmax.data_ptr<float>() + first / tune::kernels::kNf4Block);
    });
    const torch::Device device = weight.device();
    codes_ = codes.to(device);
    if (double_quant) {
      Tensor quantized = torch::empty({sizes.blocks}, bytes);
      Tensor absmax2 = torch::empty({sizes.absmax_blocks}, floats);
      tune::kernels::QuantizeAbsmax(absmax.data_ptr<float>(), sizes.blocks,
                                    quantized.data_ptr<uint8_t>(), absmax2.data_ptr<float>(),
                                    &offset_);
      absmax_quantized_ = quantized.to(device);
      absmax2_ = absmax2.to(device);
    } else {
      absmax_ = absmax.to(device);
    }
    storage_bytes_ = sizes.StorageBytes(double_quant);
  }

  // The weight [out, in] in `dtype` on its device: a new tensor each call.
  Tensor Dequantize(torch::ScalarType dtype) const {
    const int64_t n = rows_ * cols_;
    const Tensor absmax = Absmax();
#if TUNE_QLORA_CUDA
    if (codes_.is_cuda()) {
      void* stream = c10::cuda::getCurrentCUDAStream().stream();
      const bool bf16 = dtype == torch::kBFloat16;
      Tensor out =
          torch::empty({rows_, cols_}, codes_.options().dtype(bf16 ? dtype : torch::kFloat));
      if (bf16) {
        tune::kernels::cuda::DequantizeNf4Bf16(codes_.data_ptr<uint8_t>(), absmax.data_ptr<float>(),
                                               n, reinterpret_cast<uint16_t*>(out.data_ptr()),
                                               stream);
      } else {
        tune::kernels::cuda::DequantizeNf4(codes_.data_ptr<uint8_t>(), absmax.data_ptr<float>(), n,
                                           out.data_ptr<float>(), stream);
      }
      return out.scalar_type() == dtype ? out : out.to(dtype);
    }
#endif
    Tensor out = torch::empty({rows_, cols_}, torch::TensorOptions().dtype(torch::kFloat));
    ForBlocks(n, [&](int64_t first, int64_t count) {
      tune::kernels::DequantizeNf4(codes_.data_ptr<uint8_t>() + first / 2,
                                   absmax.data_ptr<float>() + first / tune::kernels::kNf4Block,
                                   count, out.data_ptr<float>() + first);
    });
    return dtype == torch::kFloat ? out : out.to(dtype);
  }

  // x W^T for x [..., in] (the forward) and g W for g [..., out] (the backward's input gradient),
  // in x's or g's dtype. On CUDA a few rows (generation) go through the fused NF4 kernels, which
  // read the weight once without writing it out; more rows dequantise and use the BLAS.
  Tensor Product(const Tensor& x) const { return Multiply(x, /*transposed=*/false); }
  Tensor TransposedProduct(const Tensor& g) const { return Multiply(g, /*transposed=*/true); }

  int64_t storage_bytes() const { return storage_bytes_; }

 private:
  // Unmeasured guess until a GPU run decides it: below this many rows, the fused kernel's single
  // read of the weight beats writing the dequantised weight and reading it back.
  static constexpr int64_t kFusedRows = 16;

  Tensor Multiply(const Tensor& x, bool transposed) const {
#if TUNE_QLORA_CUDA
    const int64_t width = transposed ? rows_ : cols_;
    const int64_t m = x.numel() / width;
    const bool bf16 = x.scalar_type() == torch::kBFloat16;
    if (codes_.is_cuda() && m <= kFusedRows && (bf16 || x.scalar_type() == torch::kFloat)) {
      const Tensor input = x.contiguous();
      std::vector<int64_t> sizes = x.sizes().vec();
      sizes.back() = transposed ? cols_ : rows_;
      Tensor y = torch::empty(sizes, x.options());
      const Tensor absmax = Absmax();
      void* stream = c10::cuda::getCurrentCUDAStream().stream();
      const uint8_t* codes = codes_.data_ptr<uint8_t>();
      if (bf16) {
        const auto* in = reinterpret_cast<const uint16_t*>(input.data_ptr());
        auto* out = reinterpret_cast<uint16_t*>(y.data_ptr());
        if (transposed) {
          tune::kernels::cuda::Nf4MatmulTransposedBf16(in, m, codes, absmax.data_ptr<float>(),
                                                       rows_, cols_, out, stream);
        } else {
          tune::kernels::cuda::Nf4MatmulBf16(in, m, codes, absmax.data_ptr<float>(), rows_, cols_,
                                             out, stream);
        }
      } else if (transposed) {
        tune::kernels::cuda::Nf4MatmulTransposed(input.data_ptr<float>(), m, codes,
                                                 absmax.data_ptr<float>(), rows_, cols_,
                                                 y.data_ptr<float>(), stream);
      } else {
        tune::kernels::cuda::Nf4Matmul(input.data_ptr<float>(), m, codes, absmax.data_ptr<float>(),
                                       rows_, cols_, y.data_ptr<float>(), stream);
      }
      return y;
    }
#endif
    const Tensor w = Dequantize(x.scalar_type());
    return transposed ? torch::matmul(x, w) : torch::linear(x, w);
  }

  // The float32 block scales, recovered from their 8-bit form under double quantisation.
  Tensor Absmax() const {
    if (!double_quant_) return absmax_;
    Tensor absmax = torch::empty({absmax_quantized_.numel()}, absmax2_.options());
#if TUNE_QLORA_CUDA
    if (absmax.is_cuda()) {
      tune::kernels::cuda::DequantizeAbsmax(
          absmax_quantized_.data_ptr<uint8_t>(), absmax2_.data_ptr<float>(), offset_,
          absmax.numel(), absmax.data_ptr<float>(), c10::cuda::getCurrentCUDAStream().stream());
      return absmax;
    }
#endif
    tune::kernels::DequantizeAbsmax(absmax_quantized_.data_ptr<uint8_t>(),
                                    absmax2_.data_ptr<float>(), offset_, absmax.numel(),
                                    absmax.data_ptr<float>());
    return absmax;
  }

  int64_t rows_, cols_;
  bool double_quant_;
  Tensor codes_;             // uint8 [ceil(out * in / 2)]
  Tensor absmax_;            // float32 [blocks], without double quantisation
  Tensor absmax_quantized_;  // uint8 [blocks], with it
  Tensor absmax2_;           // float32 [ceil(blocks / 256)], with it
  float offset_ = 0.0f;
  int64_t storage_bytes_ = 0;
};

// y = x W^T with W dequantised in the forward and again in the backward, so no full-precision
// copy of W outlives either pass. W is frozen: only x gets a gradient.
struct Nf4Product : torch::autograd::Function<Nf4Product> {
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x,
                        const Nf4Weight* weight) {
    ctx->saved_data["weight"] = reinterpret_cast<int64_t>(weight);
    return weight->Product(x);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto* weight = reinterpret_cast<const Nf4Weight*>(ctx->saved_data["weight"].toInt());
    return {weight->TransposedProduct(grad_outputs[0]), Tensor()};
  }
};

// How a QLoRA layer computes its base product.
struct Quantization {
  bool enabled = false;
  bool double_quant = true;
  std::string compute_dtype = "auto";  // "auto", "float32" or "bfloat16"
};

class LoraLayer final : public tune::LinearExtension {
 public:
  LoraLayer(const tune::LinearLayer& base, int64_t rank, double scale, double dropout,
            const Quantization& quantization)
      : weight_(base.weight), bias_(base.bias), scale_(scale), dropout_(dropout) {
    // Adapter weights are float32 whatever the base's dtype, so small updates are not rounded
    // away in bfloat16, and live on the base weight's device.
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(base.weight.device());
    a_ = torch::empty({rank, base.weight.size(1)}, f32);
    torch::nn::init::kaiming_uniform_(a_, std::sqrt(5.0));
    a_.set_requires_grad(true);
    b_ = torch::zeros({base.weight.size(0), rank}, f32).set_requires_grad(true);
    if (quantization.enabled) {
      torch::NoGradGuard no_grad;
      quantized_ = std::make_unique<Nf4Weight>(base.weight, quantization.double_quant);
      compute_dtype_ = quantization.compute_dtype == "bfloat16" ? torch::kBFloat16
                       : quantization.compute_dtype == "float32"
                           ? torch::kFloat
                           : (base.weight.is_cuda() ? torch::kBFloat16 : torch::kFloat);
      // The model's full-precision weight goes; the layer's product comes from the NF4 copy.
      weight_.set_(torch::empty({0}, base.weight.options()));
      weight_ = Tensor();
    }
  }

  Tensor Forward(const Tensor& x, const tune::BaseProduct& base) override {
    const Tensor y = quantized_ != nullptr ? QuantizedProduct(x) : base(x);
    if (merged_) return y;
    Tensor h = x.scalar_type() == a_.scalar_type() ? x : x.to(a_.scalar_type());
    if (training_ && dropout_ > 0) h = torch::dropout(h, dropout_, /*train=*/true);
    const Tensor down = torch::linear(h, a_);  // [..., rank]
    if (y.scalar_type() != b_.scalar_type()) {
      return y + (torch::linear(down, b_) * scale_).to(y.scalar_type());
    }
    // y + scale * down B^T as one GEMM accumulating into a copy of y: no separate passes for
    // the scaling and the sum, forward or backward.
    const int64_t out = y.size(-1);
    return torch::addmm(y.reshape({-1, out}), down.reshape({-1, down.size(-1)}), b_.t(), 1.0,
                        scale_)
        .view(y.sizes());
  }

  // x W^T + b from the NF4 weight, in the compute dtype, returned in x's dtype.
  Tensor QuantizedProduct(const Tensor& x) const {
    const Tensor input = x.scalar_type() == compute_dtype_ ? x : x.to(compute_dtype_);
    Tensor y = Nf4Product::apply(input, quantized_.get());
    if (bias_.defined()) y = y + bias_.to(compute_dtype_);
    return y.scalar_type() == x.scalar_type() ? y : y.to(x.scalar_type());
  }

  bool quantized() const { return quantized_ != nullptr; }
  int64_t quantized_bytes() const { return quantized_ ? quantized_->storage_bytes() : 0; }

  // W += scale * B A (sign +1) or W -= scale * B A (sign -1), in W's dtype. Not for qlora.
  void Fold(double sign) {
    torch::NoGradGuard no_grad;
    weight_.add_(torch::matmul(b_, a_).mul_(sign * scale_).to(weight_.scalar_type()));
  }

  Tensor& a() { return a_; }
  Tensor& b() { return b_; }
  bool merged_ = false;
  bool training_ = true;

 private:
  Tensor weight_;  // the base layer's weight (shared storage), changed only by Fold; none in qlora
  Tensor bias_;
  Tensor a_, b_;
  double scale_, dropout_;
  std::unique_ptr<Nf4Weight> quantized_;  // qlora's base weight
  torch::ScalarType compute_dtype_ = torch::kFloat;
};

class Lora final : public tune::Adapter {
 public:
  Lora(const tune::Options& options, const Quantization& quantization)
      : quantization_(quantization),
        rank_(options.Int("rank")),
        alpha_(options.Float("alpha")),
        dropout_(options.Float("dropout")),
        rslora_(options.Bool("rslora")),
        targets_(options.StringList("targets")),
        target_regex_(options.String("target_regex")) {
    if (targets_.empty() && target_regex_.empty()) {
      throw tune::UserError(
          "adapter.targets is empty; name the layers to adapt, for example "
          "[\"q_proj\", \"v_proj\"] or [\"all-linear\"]");
    }
  }

  void Attach(tune::Model& model, const fs::path& model_dir) override {
    if (model_ != nullptr) throw tune::UserError("the LoRA adapter is already attached");
    const std::vector<tune::LinearLayer> candidates = model.LinearLayers();
    const std::vector<tune::LinearLayer> chosen = Select(candidates);
    for (Tensor& p : model.module().parameters()) p.set_requires_grad(false);
    const double scale = rslora_ ? alpha_ / std::sqrt(static_cast<double>(rank_))
                                 : alpha_ / static_cast<double>(rank_);
    for (const tune::LinearLayer& layer : chosen) {
      layers_.emplace_back(
          layer.name, std::make_shared<LoraLayer>(layer, rank_, scale, dropout_, quantization_));
      model.SetLinearExtension(layer.name, layers_.back().second);
      suffixes_.insert(Suffix(layer.name));
    }
    model_ = &model;
    base_model_ = fs::absolute(model_dir).lexically_normal().string();
  }

  tune::NamedTensors TrainableParameters() override {
    tune::NamedTensors parameters;
    for (auto& [name, layer] : layers_) {
      parameters.emplace_back(PeftName(name, 'A'), layer->a());
      parameters.emplace_back(PeftName(name, 'B'), layer->b());
    }
    return parameters;
  }

  void SetTraining(bool training) override {
    for (auto& [name, layer] : layers_) layer->training_ = training;
  }

  void Merge() override {
    for (auto& [name, layer] : layers_) {
      if (layer->merged_ || layer->quantized()) continue;
      layer->Fold(+1.0);
      layer->merged_ = true;
    }
  }
  void Unmerge() override {
    for (auto& [name, layer] : layers_) {
      if (!layer->merged_) continue;
      layer->Fold(-1.0);
      layer->merged_ = false;
    }
  }

  void Save(const fs::path& dir) const override {
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& [name, layer] : layers_) {
      tensors.emplace_back(PeftName(name, 'A'), layer->a().detach());
      tensors.emplace_back(PeftName(name, 'B'), layer->b().detach());
    }
    tune::safetensors::Save(dir / kWeightsFile, tensors, {{"format", "pt"}});

    // PEFT's LoraConfig keys; target_modules as PEFT matches them (suffixes, or one regex).
    nlohmann::json config = {
        {"peft_type", "LORA"},
        {"task_type", "CAUSAL_LM"},
        {"base_model_name_or_path", base_model_},
        {"r", rank_},
        {"lora_alpha", alpha_},
        {"lora_dropout", dropout_},
        {"use_rslora", rslora_},
        {"bias", "none"},
        {"fan_in_fan_out", false},
        {"inference_mode", true},
        {"init_lora_weights", true},
        {"modules_to_save", nullptr},
        {"layers_to_transform", nullptr},
        {"layers_pattern", nullptr},
        {"rank_pattern", nlohmann::json::object()},
        {"alpha_pattern", nlohmann::json::object()},
        {"use_dora", false},
        {"revision", nullptr},
    };
    if (!target_regex_.empty()) {
      config["target_modules"] = target_regex_;
    } else {
      config["target_modules"] = std::vector<std::string>(suffixes_.begin(), suffixes_.end());
    }
    const fs::path path = dir / kConfigFile;
    std::ofstream out(path);
    out << config.dump(2) << '\n';
    if (!out.flush()) throw tune::UserError("cannot write " + path.string());
  }

  void Load(const fs::path& dir) override {
    const fs::path path = dir / kWeightsFile;
    if (!fs::exists(path)) {
      throw tune::UserError(dir.string() + " has no " + kWeightsFile + "; is it a LoRA adapter?");
    }
    std::map<std::string, Tensor> stored = tune::safetensors::LoadAll(path);
    torch::NoGradGuard no_grad;
    for (auto& [name, parameter] : TrainableParameters()) {
      auto it = stored.find(name);
      if (it == stored.end()) {
        throw tune::UserError(path.string() + " has no tensor '" + name +
                              "'; it was trained with other targets or on another model");
      }
      if (!it->second.sizes().equals(parameter.sizes())) {
        throw tune::UserError(path.string() + ": tensor '" + name + "' has shape " +
                              c10::str(it->second.sizes()) + " but this adapter needs " +
                              c10::str(parameter.sizes()) + " (rank or model differ)");
      }
      parameter.copy_(it->second);
      stored.erase(it);
    }
    if (!stored.empty()) {
      throw tune::UserError(path.string() + ": tensor '" + stored.begin()->first +
                            "' targets a layer this adapter configuration does not adapt");
    }
  }

 private:
  std::vector<tune::LinearLayer> Select(const std::vector<tune::LinearLayer>& candidates) const {
    std::vector<tune::LinearLayer> chosen;
    if (!target_regex_.empty()) {
      // PEFT full-matches a string target_modules against module names; POSIX extended syntax
      // covers the patterns people write there ("model.layers.[0-3].*(q|v)_proj").
      regex_t regex;
      const std::string anchored = "^(" + target_regex_ + ")$";
      if (const int code = regcomp(&regex, anchored.c_str(), REG_EXTENDED | REG_NOSUB); code != 0) {
        char reason[256];
        regerror(code, &regex, reason, sizeof(reason));
        throw tune::UserError("adapter.target_regex '" + target_regex_ +
                              "' is not a POSIX extended regular expression: " + reason);
      }
      for (const tune::LinearLayer& layer : candidates) {
        if (regexec(&regex, layer.name.c_str(), 0, nullptr, 0) == 0) chosen.push_back(layer);
      }
      regfree(&regex);
      if (chosen.empty()) {
        throw tune::UserError("adapter.target_regex '" + target_regex_ +
                              "' matches no linear layer; layer names look like '" +
                              candidates.front().name + "'");
      }
      return chosen;
    }
    std::set<std::string> available;
    for (const tune::LinearLayer& layer : candidates) available.insert(Suffix(layer.name));
    for (const std::string& target : targets_) {
      if (target == kAllLinear || available.contains(target)) continue;
      std::string names;
      for (const std::string& name : available) {
        if (!names.empty()) names += ", ";
        names += name;
      }
      throw tune::UserError("adapter.targets: the model has no layer '" + target +
                            "'; its linear layers are " + names + " (or use \"all-linear\")");
    }
    const bool all = std::find(targets_.begin(), targets_.end(), kAllLinear) != targets_.end();
    for (const tune::LinearLayer& layer : candidates) {
      const std::string suffix = Suffix(layer.name);
      if (all || std::find(targets_.begin(), targets_.end(), suffix) != targets_.end()) {
        chosen.push_back(layer);
      }
    }
    return chosen;
  }

  Quantization quantization_;
  int64_t rank_;
  double alpha_, dropout_;
  bool rslora_;
  std::vector<std::string> targets_;
  std::string target_regex_;
  tune::Model* model_ = nullptr;
  std::string base_model_;
  std::set<std::string> suffixes_;  // of the adapted layers, PEFT's target_modules
  std::vector<std::pair<std::string, std::shared_ptr<LoraLayer>>> layers_;  // in module order
};

std::vector<tune::OptionSpec> LoraOptions() {
  using tune::OptionSpec;
  return {
      OptionSpec::Int("rank", 8, "LoRA rank r").Range(1, 4096),
      OptionSpec::Float("alpha", 16.0, "Scale numerator: scale = alpha / rank")
          .Range(0, 1e6, true, false),
      OptionSpec::Float("dropout", 0.0, "Dropout on the adapter's input").Range(0, 1, false, true),
      OptionSpec::StringList("targets", {"q_proj", "v_proj"},
                             "Layer names (last component) to adapt, or \"all-linear\""),
      OptionSpec::String("target_regex", "",
                         "POSIX regular expression over full layer names; replaces targets "
                         "when set"),
      OptionSpec::Bool("rslora", false, "Rank-stabilised scale alpha / sqrt(rank)")};
}

void Register(tune::Registrar& registrar) {
  using tune::OptionSpec;
  registrar.Add(tune::AdapterPlugin{
      .info = {.name = "lora",
               .version = "1.0.0",
               .description =
                   "Low-rank adapters on chosen linear layers; base frozen; PEFT export.",
               .options = LoraOptions()},
      .create = [](const tune::Options& options) -> std::unique_ptr<tune::Adapter> {
        return std::make_unique<Lora>(options, Quantization{});
      }});

  // QLoRA targets every linear layer by default: the quantised base is the point.
  std::vector<OptionSpec> qlora_options = LoraOptions();
  for (OptionSpec& spec : qlora_options) {
    if (spec.name != "targets") continue;
    spec = OptionSpec::StringList("targets", {"all-linear"},
                                  "Layer names (last component) to quantise and adapt, or "
                                  "\"all-linear\"");
  }
  qlora_options.push_back(OptionSpec::Bool(
      "double_quant", true,
      "Store the NF4 block scales in 8 bits (blocks of 256): about 4.13 bits per weight, not 4.5"));
  qlora_options.push_back(
      OptionSpec::String("compute_dtype", "auto",
                         "Dtype the NF4 weights are dequantised to for each product: auto is "
                         "float32 on the CPU and bfloat16 on CUDA")
          .Choices({"auto", "float32", "bfloat16"}));
  registrar.Add(tune::AdapterPlugin{
      .info = {.name = "qlora",
               .version = "1.0.0",
               .description = "LoRA on a base held in 4-bit NormalFloat (NF4), dequantised on "
                              "the fly; PEFT LoRA export.",
               .options = std::move(qlora_options)},
      .create = [](const tune::Options& options) -> std::unique_ptr<tune::Adapter> {
        return std::make_unique<Lora>(options, Quantization{true, options.Bool("double_quant"),
                                                            options.String("compute_dtype")});
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

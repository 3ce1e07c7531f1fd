// The plugin contract: how a shared library tells tune what it provides.
//
// A plugin library contains exactly one TUNE_PLUGIN(RegisterFn) line. When tune loads the
// library it reads the descriptor that line exports, refuses the library if the descriptor's ABI
// version or build fingerprint differs from tune's own (naming both values), and only then calls
// RegisterFn once, on the loading thread, with a Registrar. RegisterFn hands each plugin it
// provides to the Registrar; nothing is registered from static initialisers.
//
// Libraries are never unloaded, so objects and threads a plugin creates may live until exit.
// Plugin code may throw: the host catches at every call into a plugin and reports the plugin's
// name and file. If RegisterFn throws, nothing from that library is kept.
//
// Everything in the SDK is C++ with standard-library types in its signatures, which is why the
// fingerprint pins the compiler and libstdc++'s string ABI. Any change to a class in this SDK
// that a plugin and the host both see bumps TUNE_ABI_MAJOR.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <torch/version.h>
#include <boost/dll/alias.hpp>

#include "tune/build_info.h"
#include "tune/options.h"

namespace at {
class Tensor;  // libtorch's; only optimizer.h and model.h need it complete
}

namespace tune {

enum class PluginKind { kDataset, kModel, kAdapter, kOptimizer, kMetric, kTokenizer };

// What a user sees in `tune plugins` and writes in a run file (`plugin = "exact_match"`).
struct PluginInfo {
  std::string name;     // [a-z0-9][a-z0-9._-]{0,63}, unique within its kind
  std::string version;  // the plugin's own version, recorded with every result it produced
  std::string description = {};
  std::vector<OptionSpec> options = {};  // keys a user may set in the plugin's config section
};

class Dataset;
class Model;
class Adapter;
class Optimizer;
class Metric;
class Tokenizer;
enum class MetricGoal;

// Factories receive the resolved options (every declared option present, typed) and return a
// new object owned by the caller. They may throw; the host reports the plugin by name.
template <typename T>
using Factory = std::function<std::unique_ptr<T>(const Options& options)>;

struct DatasetPlugin {
  PluginInfo info;
  Factory<Dataset> create;
};
// A model is loaded from a directory (Hugging Face layout) and its plugin options straight onto
// `device`: every weight is created there in its final dtype and filled from the file, with no
// whole-model copy on the host in between. `tokenizer` is the folder's tokenizer, read by a
// tokenizer plugin; the model keeps it, returns it from tokenizer(), and refuses it if it does not
// fit (ids beyond the embeddings). The factory throws with a message naming the file and key it
// cannot serve.
using ModelFactory = std::function<std::unique_ptr<Model>(
    const std::filesystem::path& dir, std::shared_ptr<const Tokenizer> tokenizer,
    const Options& options, const c10::Device& device)>;
struct ModelPlugin {
  PluginInfo info;
  ModelFactory create;
};
struct AdapterPlugin {
  PluginInfo info;
  Factory<Adapter> create;
};
// An optimizer is made for the parameters it will update (in the order given) and the run's
// weight decay (how it applies it, decoupled or as L2, is the plugin's to document).
using OptimizerFactory = std::function<std::unique_ptr<Optimizer>(
    const std::vector<at::Tensor>& parameters, double weight_decay, const Options& options)>;
struct OptimizerPlugin {
  PluginInfo info;
  OptimizerFactory create;
};
// The values a metric's score can take: [0, 1] for a fraction of examples, [0, 100] for BLEU,
// unbounded when left out. Intervals of a sweep's mean score over its repeats stay inside it.
struct MetricRange {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
};
struct MetricPlugin {
  PluginInfo info;
  MetricGoal goal;  // whether a larger score is better: every "gain" is read by it
  MetricRange range = {};
  Factory<Metric> create;
};

// A tokenizer is read from a model folder `dir` (Hugging Face layout). The host chooses the plugin
// by the folder's files: of the tokenizer plugins whose `file` is in the folder, the one with the
// highest `priority` (the built-in ones: tokenizer.json 20, what transformers reads first, then
// sentencepiece's tokenizer.model 10). The factory throws naming the file and key it cannot read.
using TokenizerFactory =
    std::function<std::unique_ptr<Tokenizer>(const std::filesystem::path& dir)>;
struct TokenizerPlugin {
  PluginInfo info;
  std::string file;  // the file in the model folder it reads: "tokenizer.json"
  int priority = 0;
  TokenizerFactory create;
};

// Implemented by the host and valid only during the registration call.
class Registrar {
 public:
  virtual void Add(DatasetPlugin plugin) = 0;
  virtual void Add(ModelPlugin plugin) = 0;
  virtual void Add(AdapterPlugin plugin) = 0;
  virtual void Add(OptimizerPlugin plugin) = 0;
  virtual void Add(MetricPlugin plugin) = 0;
  virtual void Add(TokenizerPlugin plugin) = 0;

 protected:
  ~Registrar() = default;
};

using RegisterFn = void (*)(Registrar& registrar);

// The exported descriptor. Its first two fields never move, so any tune can read them from any
// plugin; the rest is read only once abi_major matches.
struct PluginDescriptor {
  uint32_t abi_major;
  uint32_t size_bytes;        // sizeof(PluginDescriptor) in the plugin's build
  const char* torch_version;  // TORCH_VERSION the plugin compiled against
  const char* compiler;       // "gcc 12", "clang 14": family and major version
  int32_t cxx11_abi;          // _GLIBCXX_USE_CXX11_ABI
  RegisterFn register_plugins;
};

#define TUNE_DETAIL_STR2(x) #x
#define TUNE_DETAIL_STR(x) TUNE_DETAIL_STR2(x)
#if defined(__clang__)
#define TUNE_COMPILER_ID "clang " TUNE_DETAIL_STR(__clang_major__)
#elif defined(__GNUC__)
#define TUNE_COMPILER_ID "gcc " TUNE_DETAIL_STR(__GNUC__)
#else
#define TUNE_COMPILER_ID "unknown"
#endif

// The descriptor of the translation unit that evaluates it: the plugin's own build when expanded
// by TUNE_PLUGIN, the host's build when the host calls it.
inline constexpr PluginDescriptor DescribeThisBuild(RegisterFn register_plugins) {
  return PluginDescriptor{TUNE_ABI_MAJOR,   sizeof(PluginDescriptor), TORCH_VERSION,
                          TUNE_COMPILER_ID, _GLIBCXX_USE_CXX11_ABI,   register_plugins};
}

// The symbol the host looks up in every plugin library.
inline constexpr const char kPluginEntrySymbol[] = "tune_plugin";

}  // namespace tune

// Declares this library's one entry. Use it once, at namespace scope, in one source file.
#define TUNE_PLUGIN(register_fn)                            \
  namespace tune_plugin_entry {                             \
  const ::tune::PluginDescriptor* Describe() {              \
    static constexpr ::tune::PluginDescriptor kDescriptor = \
        ::tune::DescribeThisBuild(&register_fn);            \
    return &kDescriptor;                                    \
  }                                                         \
  }                                                         \
  BOOST_DLL_ALIAS(tune_plugin_entry::Describe, tune_plugin)

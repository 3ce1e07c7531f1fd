// PluginHost: finds plugin libraries, checks them, and creates plugin objects.
//
// Load() before sharing a host between threads; after that every method is const and safe to call
// concurrently. Libraries are never unloaded, even when the host is destroyed.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tune/plugin.h"
#include "util/error.h"

namespace tune {

std::string_view PluginKindName(PluginKind kind);  // "dataset", "model", ...

// One plugin a library registered, with the file it came from.
struct LoadedPlugin {
  PluginKind kind;
  std::filesystem::path file;
  std::variant<DatasetPlugin, ModelPlugin, AdapterPlugin, OptimizerPlugin, MetricPlugin,
               TokenizerPlugin>
      plugin;

  const PluginInfo& info() const;
};

// A library that was refused. `message` is one line naming the file, the reason and the fix.
struct PluginLoadFailure {
  std::filesystem::path file;
  std::string message;
};

// The search path in the order plugins are found: the build's plugin folder (next to the tune
// executable), then each entry of `env_plugin_path` (TUNE_PLUGIN_PATH, ':'-separated), then the
// run file's [plugins] paths.
std::vector<std::filesystem::path> PluginSearchPath(
    const std::filesystem::path& builtin_dir, std::string_view env_plugin_path,
    const std::vector<std::filesystem::path>& config_paths);

// PluginSearchPath for the running tune: its built-in folder, $TUNE_PLUGIN_PATH, `config_paths`.
std::vector<std::filesystem::path> PluginSearchPathOfThisProcess(
    const std::vector<std::filesystem::path>& config_paths);

// The built-in plugin folder of the running tune: <prefix>/lib/tune/plugins, where the
// executable is <prefix>/bin/tune (the build tree has the same layout).
std::filesystem::path BuiltinPluginDir();

class Adapter;
class Dataset;
class Metric;
class Model;
class Optimizer;
class Tokenizer;

class PluginHost {
 public:
  PluginHost() = default;
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // Loads every library on `search_path`, in order. A directory contributes each regular file in
  // it whose name ends in ".so", by name; a file is loaded as given; a path seen before (after
  // resolving links) is skipped. Never throws: a bad file or missing entry becomes a failure and
  // the rest still load. The first library to register a kind and name keeps it.
  void Load(const std::vector<std::filesystem::path>& search_path);

  const std::vector<PluginLoadFailure>& failures() const { return failures_; }

  // Every loaded plugin, sorted by kind, then name.
  std::vector<const LoadedPlugin*> plugins() const;
  const LoadedPlugin* Find(PluginKind kind, std::string_view name) const;
  // Like Find, but throws UserError listing the loaded plugins of `kind` if `name` is not one.
  const LoadedPlugin& Require(PluginKind kind, std::string_view name) const;
  std::vector<std::string> Names(PluginKind kind) const;

  // Creates a configured dataset reader. The returned object reports any exception from the
  // plugin as a UserError naming the plugin and its file. Throws UserError if `name` is not loaded.
  std::unique_ptr<Dataset> CreateDataset(std::string_view name, const Options& options) const;

  // Creates a configured metric. The returned object reports any exception from the plugin as a
  // UserError naming the plugin and its file. Throws UserError if `name` is not loaded.
  std::unique_ptr<Metric> CreateMetric(std::string_view name, const Options& options) const;

  // Reads the tokenizer of model folder `dir` with the tokenizer plugin its files choose
  // (TokenizerPlugin). The tokenizer reports exceptions from the plugin as UserErrors naming the
  // plugin and its file. Throws UserError listing the files tune reads when `dir` has none.
  std::shared_ptr<const Tokenizer> LoadTokenizer(const std::filesystem::path& dir) const;

  // Loads the model in `dir` with the model plugin `name` onto `device` (ModelFactory), with the
  // folder's tokenizer (LoadTokenizer). The returned model and its tokenizer report exceptions
  // from their plugins as UserErrors naming the plugin and its file.
  std::unique_ptr<Model> LoadModel(std::string_view name, const std::filesystem::path& dir,
                                   const Options& options,
                                   const c10::Device& device = c10::Device(c10::kCPU)) const;

  // Creates an optimizer over `parameters`. The returned object reports exceptions from the
  // plugin as UserErrors naming the plugin.
  std::unique_ptr<Optimizer> CreateOptimizer(std::string_view name,
                                             const std::vector<at::Tensor>& parameters,
                                             double weight_decay, const Options& options) const;

  // Creates a configured adapter, not yet attached. The returned object reports exceptions from
  // the plugin as UserErrors naming the plugin.
  std::unique_ptr<Adapter> CreateAdapter(std::string_view name, const Options& options) const;

  // Every option `plugin` declares at its default. Throws UserError if one is required.
  static Options DefaultOptions(const LoadedPlugin& plugin);

 private:
  void LoadLibrary(const std::filesystem::path& file);
  const LoadedPlugin& ChooseTokenizer(const std::filesystem::path& dir) const;

  std::vector<std::filesystem::path> seen_;
  std::vector<LoadedPlugin> plugins_;
  std::vector<PluginLoadFailure> failures_;
};

std::string DescribePluginFailure(const LoadedPlugin& plugin, std::string_view action,
                                  std::string_view what);

// Runs `call` and turns any exception into a UserError that names the plugin and, unless the
// plugin threw a UserError of its own, its file and what it was doing, so that no exception from
// plugin code reaches the user unexplained.
template <typename Call>
decltype(auto) CallPlugin(const LoadedPlugin& plugin, std::string_view action, Call&& call) {
  try {
    return call();
  } catch (const OutOfMemory&) {
    throw;
  } catch (const UserError& e) {
    // Built-in plugins phrase refusals of the user's input themselves (file, key, fix); the
    // plugin's file adds nothing there.
    throw UserError(std::string(PluginKindName(plugin.kind)) + " plugin '" + plugin.info().name +
                    "': " + e.what());
  } catch (const std::bad_alloc&) {
    throw OutOfMemory(DescribePluginFailure(plugin, action, "out of memory"));
  } catch (const std::exception& e) {
    // libtorch reports a failed allocation as c10::Error with this text (CPU) or as
    // c10::OutOfMemoryError "CUDA out of memory".
    const std::string_view what = e.what();
    if (what.find("can't allocate memory") != std::string_view::npos ||
        what.find("out of memory") != std::string_view::npos) {
      throw OutOfMemory(DescribePluginFailure(plugin, action, what));
    }
    throw UserError(DescribePluginFailure(plugin, action, e.what()));
  } catch (...) {
    throw UserError(DescribePluginFailure(plugin, action, "a non-standard exception"));
  }
}

}  // namespace tune

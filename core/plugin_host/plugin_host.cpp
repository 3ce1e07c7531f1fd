#include "plugin_host/plugin_host.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <system_error>

#include <boost/dll/shared_library.hpp>

#include "tune/adapter.h"
#include "tune/dataset.h"
#include "tune/metric.h"
#include "tune/model.h"
#include "tune/optimizer.h"
#include "util/names.h"
#include "util/suggest.h"

namespace tune {
namespace fs = std::filesystem;

namespace {

using AnyPlugin = decltype(LoadedPlugin::plugin);

// Every library ever opened. Deliberately never destroyed: objects, threads and function
// pointers from a plugin may outlive any owner we could give the library.
std::vector<boost::dll::shared_library>& OpenedLibraries() {
  static auto* libraries = new std::vector<boost::dll::shared_library>();
  return *libraries;
}

PluginKind KindOf(const AnyPlugin& plugin) {
  return std::visit(
      [](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, DatasetPlugin>) return PluginKind::kDataset;
        if constexpr (std::is_same_v<T, ModelPlugin>) return PluginKind::kModel;
        if constexpr (std::is_same_v<T, AdapterPlugin>) return PluginKind::kAdapter;
        if constexpr (std::is_same_v<T, OptimizerPlugin>) return PluginKind::kOptimizer;
        if constexpr (std::is_same_v<T, MetricPlugin>) return PluginKind::kMetric;
        if constexpr (std::is_same_v<T, TokenizerPlugin>) return PluginKind::kTokenizer;
      },
      plugin);
}

const PluginInfo& InfoOf(const AnyPlugin& plugin) {
  return std::visit([](const auto& p) -> const PluginInfo& { return p.info; }, plugin);
}

bool HasFactory(const AnyPlugin& plugin) {
  return std::visit([](const auto& p) { return static_cast<bool>(p.create); }, plugin);
}

// Collects what one library registers; nothing is kept unless registration returns normally.
class StagingRegistrar final : public Registrar {
 public:
  void Add(DatasetPlugin plugin) override { staged.emplace_back(std::move(plugin)); }
  void Add(ModelPlugin plugin) override { staged.emplace_back(std::move(plugin)); }
  void Add(AdapterPlugin plugin) override { staged.emplace_back(std::move(plugin)); }
  void Add(OptimizerPlugin plugin) override { staged.emplace_back(std::move(plugin)); }
  void Add(MetricPlugin plugin) override { staged.emplace_back(std::move(plugin)); }
  void Add(TokenizerPlugin plugin) override { staged.emplace_back(std::move(plugin)); }

  std::vector<AnyPlugin> staged;
};

bool DefaultMatchesType(const OptionSpec& spec) {
  switch (spec.type) {
    case OptionType::kBool:
      return std::holds_alternative<bool>(spec.default_value);
    case OptionType::kInt:
      return std::holds_alternative<int64_t>(spec.default_value);
    case OptionType::kFloat:
      return std::holds_alternative<double>(spec.default_value);
    case OptionType::kString:
      return std::holds_alternative<std::string>(spec.default_value);
    case OptionType::kStringList:
      return std::holds_alternative<std::vector<std::string>>(spec.default_value);
  }
  return false;
}

// Why `plugin` cannot be accepted as registered, or "" if it can.
std::string CheckRegistration(const AnyPlugin& plugin) {
  const PluginInfo& info = InfoOf(plugin);
  const std::string kind(PluginKindName(KindOf(plugin)));
  if (!IsValidName(info.name)) {
    return "registers a " + kind + " named '" + info.name +
           "', which is not a valid name ([a-z0-9][a-z0-9._-]{0,63}); rename it in the plugin";
  }
  const std::string who = kind + " '" + info.name + "'";
  if (info.version.empty())
    return "registers " + who + " without a version; set PluginInfo.version";
  if (!HasFactory(plugin)) return "registers " + who + " without a create function";
  if (const auto* tokenizer = std::get_if<TokenizerPlugin>(&plugin);
      tokenizer != nullptr &&
      (tokenizer->file.empty() || tokenizer->file.find('/') != std::string::npos)) {
    return "registers " + who + " whose file '" + tokenizer->file +
           "' is not a file name; set TokenizerPlugin.file to the name it reads "
           "(\"tokenizer.json\")";
  }
  std::vector<std::string> option_names;
  for (const OptionSpec& spec : info.options) {
    const std::string where = who + " option '" + spec.name + "'";
    if (!IsValidOptionName(spec.name)) {
      return "registers " + where + ", which is not a valid option name; use lower_snake_case";
    }
    if (std::find(option_names.begin(), option_names.end(), spec.name) != option_names.end()) {
      return "registers " + where + " twice";
    }
    option_names.push_back(spec.name);
    if (!spec.required() && !DefaultMatchesType(spec)) {
      return "registers " + where + " whose default is not a " +
             std::string(OptionTypeName(spec.type));
    }
  }
  return "";
}

std::string DlopenReason() {
  const char* reason = dlerror();
  if (reason == nullptr) return "unknown reason";
  std::string text(reason);
  // dlerror() starts with the path, which the message already names.
  if (size_t colon = text.find(": "); colon != std::string::npos && text[0] == '/') {
    text = text.substr(colon + 2);
  }
  return text;
}

}  // namespace

std::string_view PluginKindName(PluginKind kind) {
  switch (kind) {
    case PluginKind::kDataset:
      return "dataset";
    case PluginKind::kModel:
      return "model";
    case PluginKind::kAdapter:
      return "adapter";
    case PluginKind::kOptimizer:
      return "optimizer";
    case PluginKind::kMetric:
      return "metric";
    case PluginKind::kTokenizer:
      return "tokenizer";
  }
  return "?";
}

const PluginInfo& LoadedPlugin::info() const { return InfoOf(plugin); }

std::string DescribePluginFailure(const LoadedPlugin& plugin, std::string_view action,
                                  std::string_view what) {
  // One line: libtorch's messages continue with a C++ backtrace after the first newline.
  return std::string(PluginKindName(plugin.kind)) + " plugin '" + plugin.info().name + "' (" +
         plugin.file.string() + ") failed " + std::string(action) + ": " +
         std::string(what.substr(0, what.find('\n')));
}

std::vector<fs::path> PluginSearchPathOfThisProcess(const std::vector<fs::path>& config_paths) {
  const char* env = std::getenv("TUNE_PLUGIN_PATH");
  return PluginSearchPath(BuiltinPluginDir(), env ? env : "", config_paths);
}

std::vector<fs::path> PluginSearchPath(const fs::path& builtin_dir,
                                       std::string_view env_plugin_path,
                                       const std::vector<fs::path>& config_paths) {
  std::vector<fs::path> path{builtin_dir};
  while (!env_plugin_path.empty()) {
    const size_t colon = env_plugin_path.find(':');
    const std::string_view entry = env_plugin_path.substr(0, colon);
    if (!entry.empty()) path.emplace_back(entry);
    if (colon == std::string_view::npos) break;
    env_plugin_path.remove_prefix(colon + 1);
  }
  path.insert(path.end(), config_paths.begin(), config_paths.end());
  return path;
}

fs::path BuiltinPluginDir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return exe.parent_path().parent_path() / "lib" / "tune" / "plugins";
}

void PluginHost::Load(const std::vector<fs::path>& search_path) {
  for (const fs::path& entry : search_path) {
    std::error_code ec;
    const fs::file_status status = fs::status(entry, ec);
    if (!fs::exists(status)) {
      failures_.push_back({entry, "plugin path entry " + entry.string() +
                                      " does not exist; fix TUNE_PLUGIN_PATH or [plugins] paths"});
      continue;
    }
    if (!fs::is_directory(status)) {
      LoadLibrary(entry);
      continue;
    }
    std::vector<fs::path> files;
    for (const fs::directory_entry& item : fs::directory_iterator(entry, ec)) {
      if (item.path().extension() == ".so" && item.is_regular_file(ec))
        files.push_back(item.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) LoadLibrary(file);
  }
}

void PluginHost::LoadLibrary(const fs::path& file) {
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(file, ec);
  if (std::find(seen_.begin(), seen_.end(), canonical) != seen_.end()) return;
  seen_.push_back(canonical);

  auto refuse = [&](const std::string& reason) {
    failures_.push_back({file, "plugin " + file.string() + " " + reason});
  };

  boost::dll::shared_library library;
  dlerror();
  library.load(file, ec, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  if (ec) {
    refuse("is not a loadable shared library (" + DlopenReason() +
           "); remove it from the plugin path");
    return;
  }
  OpenedLibraries().push_back(library);
  if (!library.has(kPluginEntrySymbol)) {
    refuse(std::string("has no '") + kPluginEntrySymbol +
           "' entry; add TUNE_PLUGIN(YourRegisterFunction) from <tune/plugin.h> to one source "
           "file, or remove the library from the plugin path");
    return;
  }

  const PluginDescriptor* descriptor = nullptr;
  try {
    descriptor = library.get_alias<const PluginDescriptor*()>(kPluginEntrySymbol)();
  } catch (const std::exception& e) {
    refuse(std::string("failed while describing itself: ") + e.what());
    return;
  }
  if (descriptor == nullptr) {
    refuse("returned no descriptor from its entry; declare the entry with TUNE_PLUGIN(...)");
    return;
  }
  constexpr PluginDescriptor host = DescribeThisBuild(nullptr);
  if (descriptor->abi_major != host.abi_major || descriptor->size_bytes != host.size_bytes) {
    refuse("was built for tune plugin ABI " + std::to_string(descriptor->abi_major) +
           "; this tune uses ABI " + std::to_string(host.abi_major) +
           ": rebuild it against this tune's SDK");
    return;
  }
  const std::string plugin_torch = descriptor->torch_version ? descriptor->torch_version : "?";
  if (plugin_torch != host.torch_version) {
    refuse("was built for libtorch " + plugin_torch + "; this tune uses libtorch " +
           host.torch_version + ": rebuild it against this tune's SDK");
    return;
  }
  const std::string plugin_compiler = descriptor->compiler ? descriptor->compiler : "?";
  if (plugin_compiler != host.compiler) {
    refuse("was built with " + plugin_compiler + "; this tune was built with " + host.compiler +
           ": rebuild it with " + host.compiler);
    return;
  }
  if (descriptor->cxx11_abi != host.cxx11_abi) {
    refuse("was built with _GLIBCXX_USE_CXX11_ABI=" + std::to_string(descriptor->cxx11_abi) +
           "; this tune uses _GLIBCXX_USE_CXX11_ABI=" + std::to_string(host.cxx11_abi) +
           ": rebuild it with the same setting");
    return;
  }
  if (descriptor->register_plugins == nullptr) {
    refuse("has no register function; pass one to TUNE_PLUGIN(...)");
    return;
  }

  StagingRegistrar registrar;
  try {
    descriptor->register_plugins(registrar);
  } catch (const std::exception& e) {
    refuse(std::string("failed while registering: ") + e.what() +
           "; fix the plugin or remove it from the plugin path");
    return;
  } catch (...) {
    refuse("failed while registering (non-standard exception); fix the plugin or remove it");
    return;
  }
  if (registrar.staged.empty()) {
    refuse("registered nothing; its register function must call registrar.Add(...)");
    return;
  }
  for (size_t i = 0; i < registrar.staged.size(); ++i) {
    const AnyPlugin& plugin = registrar.staged[i];
    if (std::string problem = CheckRegistration(plugin); !problem.empty()) {
      refuse(problem);
      return;
    }
    const PluginKind kind = KindOf(plugin);
    const std::string& name = InfoOf(plugin).name;
    const std::string what = std::string(PluginKindName(kind)) + " '" + name + "'";
    if (const LoadedPlugin* existing = Find(kind, name)) {
      refuse("registers " + what + ", which " + existing->file.string() +
             " already provides; remove one of the two from the plugin path");
      return;
    }
    for (size_t j = 0; j < i; ++j) {
      if (KindOf(registrar.staged[j]) == kind && InfoOf(registrar.staged[j]).name == name) {
        refuse("registers " + what + " twice");
        return;
      }
    }
  }
  for (AnyPlugin& plugin : registrar.staged) {
    const PluginKind kind = KindOf(plugin);
    plugins_.push_back({kind, file, std::move(plugin)});
  }
}

std::vector<const LoadedPlugin*> PluginHost::plugins() const {
  std::vector<const LoadedPlugin*> sorted;
  for (const LoadedPlugin& plugin : plugins_) sorted.push_back(&plugin);
  std::sort(sorted.begin(), sorted.end(), [](const LoadedPlugin* a, const LoadedPlugin* b) {
    return std::tie(a->kind, a->info().name) < std::tie(b->kind, b->info().name);
  });
  return sorted;
}

const LoadedPlugin* PluginHost::Find(PluginKind kind, std::string_view name) const {
  for (const LoadedPlugin& plugin : plugins_) {
    if (plugin.kind == kind && plugin.info().name == name) return &plugin;
  }
  return nullptr;
}

std::vector<std::string> PluginHost::Names(PluginKind kind) const {
  std::vector<std::string> names;
  for (const LoadedPlugin* plugin : plugins()) {
    if (plugin->kind == kind) names.push_back(plugin->info().name);
  }
  return names;
}

const LoadedPlugin& PluginHost::Require(PluginKind kind, std::string_view name) const {
  if (const LoadedPlugin* plugin = Find(kind, name)) return *plugin;
  std::string message = std::string(PluginKindName(kind)) + " plugin '" + std::string(name) +
                        "' is not loaded (loaded: ";
  const std::vector<std::string> names = Names(kind);
  message += names.empty() ? "none" : JoinNames(names);
  message += ")";
  if (!failures_.empty()) {
    message += "; " + std::to_string(failures_.size()) +
               " plugin file(s) failed to load, run `tune plugins` to see why";
  }
  throw UserError(message);
}

namespace {

// Forwards to the plugin's dataset, reporting its exceptions with the plugin's name.
class GuardedDataset final : public Dataset {
 public:
  GuardedDataset(const LoadedPlugin& plugin, std::unique_ptr<Dataset> dataset)
      : plugin_(plugin), dataset_(std::move(dataset)) {}

  DatasetRows Read(const fs::path& path) const override {
    std::string action = "while reading ";
    action += path.string();
    return CallPlugin(plugin_, action, [&] { return dataset_->Read(path); });
  }

 private:
  const LoadedPlugin& plugin_;
  std::unique_ptr<Dataset> dataset_;
};

}  // namespace

std::unique_ptr<Dataset> PluginHost::CreateDataset(std::string_view name,
                                                   const Options& options) const {
  const LoadedPlugin& plugin = Require(PluginKind::kDataset, name);
  const auto& dataset_plugin = std::get<DatasetPlugin>(plugin.plugin);
  std::unique_ptr<Dataset> dataset =
      CallPlugin(plugin, "while being created", [&] { return dataset_plugin.create(options); });
  if (dataset == nullptr) {
    throw UserError(DescribePluginFailure(plugin, "while being created", "it returned no object"));
  }
  return std::make_unique<GuardedDataset>(plugin, std::move(dataset));
}

namespace {

// Forwards to the plugin's metric, reporting its exceptions with the plugin's name.
class GuardedMetric final : public Metric {
 public:
  GuardedMetric(const LoadedPlugin& plugin, std::unique_ptr<Metric> metric)
      : plugin_(plugin), metric_(std::move(metric)) {}

  MetricScore Score(std::span<const MetricExample> examples) const override {
    return CallPlugin(plugin_, "while scoring", [&] { return metric_->Score(examples); });
  }

 private:
  const LoadedPlugin& plugin_;
  std::unique_ptr<Metric> metric_;
};

}  // namespace

std::unique_ptr<Metric> PluginHost::CreateMetric(std::string_view name,
                                                 const Options& options) const {
  const LoadedPlugin& plugin = Require(PluginKind::kMetric, name);
  const auto& metric_plugin = std::get<MetricPlugin>(plugin.plugin);
  std::unique_ptr<Metric> metric =
      CallPlugin(plugin, "while being created", [&] { return metric_plugin.create(options); });
  if (metric == nullptr) {
    throw UserError(DescribePluginFailure(plugin, "while being created", "it returned no object"));
  }
  return std::make_unique<GuardedMetric>(plugin, std::move(metric));
}

namespace {

class GuardedTokenizer final : public Tokenizer {
 public:
  GuardedTokenizer(const LoadedPlugin& plugin, std::unique_ptr<Tokenizer> tokenizer)
      : plugin_(plugin), tokenizer_(std::move(tokenizer)) {}

  std::vector<int32_t> Encode(std::string_view text) const override {
    return CallPlugin(plugin_, "while encoding text", [&] { return tokenizer_->Encode(text); });
  }
  std::string Decode(std::span<const int32_t> ids) const override {
    return CallPlugin(plugin_, "while decoding tokens", [&] { return tokenizer_->Decode(ids); });
  }
  std::string TokenText(int32_t id) const override {
    return CallPlugin(plugin_, "while naming a token", [&] { return tokenizer_->TokenText(id); });
  }
  int32_t vocab_size() const override { return tokenizer_->vocab_size(); }
  int32_t bos_id() const override { return tokenizer_->bos_id(); }
  int32_t eos_id() const override { return tokenizer_->eos_id(); }

 private:
  const LoadedPlugin& plugin_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

// Forwards to the plugin's model, reporting its exceptions with the plugin's name.
class GuardedModel final : public Model {
 public:
  GuardedModel(const LoadedPlugin& plugin, std::unique_ptr<Model> model)
      : plugin_(plugin), model_(std::move(model)) {}

  const Tokenizer& tokenizer() const override { return model_->tokenizer(); }
  ModelDescription Describe() const override {
    return CallPlugin(plugin_, "while describing the model", [&] { return model_->Describe(); });
  }
  at::Tensor Forward(const at::Tensor& input_ids, KvCache* cache) override {
    return CallPlugin(plugin_, "in the forward pass",
                      [&] { return model_->Forward(input_ids, cache); });
  }
  std::unique_ptr<KvCache> NewCache() const override {
    return CallPlugin(plugin_, "while making a KV cache", [&] { return model_->NewCache(); });
  }
  torch::nn::Module& module() override { return model_->module(); }
  std::vector<LinearLayer> LinearLayers() override {
    return CallPlugin(plugin_, "while listing its linear layers",
                      [&] { return model_->LinearLayers(); });
  }
  void SetLinearExtension(const std::string& name,
                          std::shared_ptr<LinearExtension> extension) override {
    CallPlugin(plugin_, "while installing an adapter",
               [&] { model_->SetLinearExtension(name, std::move(extension)); });
  }
  void SetGradientCheckpointing(bool enabled) override {
    CallPlugin(plugin_, "while setting gradient checkpointing",
               [&] { model_->SetGradientCheckpointing(enabled); });
  }

 private:
  const LoadedPlugin& plugin_;
  std::unique_ptr<Model> model_;
};

}  // namespace

const LoadedPlugin& PluginHost::ChooseTokenizer(const fs::path& dir) const {
  const LoadedPlugin* chosen = nullptr;
  std::string readable;
  for (const LoadedPlugin& plugin : plugins_) {
    const auto* tokenizer = std::get_if<TokenizerPlugin>(&plugin.plugin);
    if (tokenizer == nullptr) continue;
    readable += std::string(readable.empty() ? "" : ", ") + tokenizer->file +
                " (tokenizer plugin '" + plugin.info().name + "')";
    std::error_code error;
    if (!fs::is_regular_file(dir / tokenizer->file, error)) continue;
    if (chosen == nullptr ||
        tokenizer->priority > std::get<TokenizerPlugin>(chosen->plugin).priority) {
      chosen = &plugin;
    }
  }
  if (chosen == nullptr) {
    throw UserError(
        dir.string() + " has no tokenizer file tune can read; it reads " +
        (readable.empty() ? std::string("none: no tokenizer plugin is loaded") : readable) +
        "; copy the tokenizer files from the model's original download");
  }
  return *chosen;
}

std::shared_ptr<const Tokenizer> PluginHost::LoadTokenizer(const fs::path& dir) const {
  const LoadedPlugin& plugin = ChooseTokenizer(dir);
  const auto& tokenizer_plugin = std::get<TokenizerPlugin>(plugin.plugin);
  std::unique_ptr<Tokenizer> tokenizer =
      CallPlugin(plugin, "while reading " + (dir / tokenizer_plugin.file).string(),
                 [&] { return tokenizer_plugin.create(dir); });
  if (tokenizer == nullptr) {
    throw UserError(DescribePluginFailure(plugin, "while reading", "it returned no tokenizer"));
  }
  return std::make_shared<GuardedTokenizer>(plugin, std::move(tokenizer));
}

std::unique_ptr<Model> PluginHost::LoadModel(std::string_view name, const fs::path& dir,
                                             const Options& options,
                                             const c10::Device& device) const {
  const LoadedPlugin& plugin = Require(PluginKind::kModel, name);
  const auto& model_plugin = std::get<ModelPlugin>(plugin.plugin);
  std::shared_ptr<const Tokenizer> tokenizer = LoadTokenizer(dir);
  std::unique_ptr<Model> model = CallPlugin(plugin, "while loading " + dir.string(), [&] {
    return model_plugin.create(dir, tokenizer, options, device);
  });
  if (model == nullptr) {
    throw UserError(DescribePluginFailure(plugin, "while loading", "it returned no model"));
  }
  return std::make_unique<GuardedModel>(plugin, std::move(model));
}

Options PluginHost::DefaultOptions(const LoadedPlugin& plugin) {
  Options options;
  for (const OptionSpec& spec : plugin.info().options) {
    if (spec.required()) {
      throw UserError(std::string(PluginKindName(plugin.kind)) + " plugin '" + plugin.info().name +
                      "' needs option '" + spec.name + "' (" + spec.help + ")");
    }
    options.Set(spec.name, spec.default_value);
  }
  return options;
}

namespace {

// Forwards to the plugin's optimizer, reporting its exceptions with the plugin's name.
class GuardedOptimizer final : public Optimizer {
 public:
  GuardedOptimizer(const LoadedPlugin& plugin, std::unique_ptr<Optimizer> optimizer)
      : plugin_(plugin), optimizer_(std::move(optimizer)) {}

  void Step(double lr) override {
    CallPlugin(plugin_, "in an optimizer step", [&] { optimizer_->Step(lr); });
  }
  OptimizerState State() const override {
    return CallPlugin(plugin_, "while saving its state", [&] { return optimizer_->State(); });
  }
  void LoadState(const OptimizerState& state) override {
    CallPlugin(plugin_, "while loading its state", [&] { optimizer_->LoadState(state); });
  }

 private:
  const LoadedPlugin& plugin_;
  std::unique_ptr<Optimizer> optimizer_;
};

class GuardedAdapter final : public Adapter {
 public:
  GuardedAdapter(const LoadedPlugin& plugin, std::unique_ptr<Adapter> adapter)
      : plugin_(plugin), adapter_(std::move(adapter)) {}

  void Attach(Model& model, const std::filesystem::path& model_dir) override {
    CallPlugin(plugin_, "while attaching to the model",
               [&] { adapter_->Attach(model, model_dir); });
  }
  NamedTensors TrainableParameters() override {
    return CallPlugin(plugin_, "while listing its parameters",
                      [&] { return adapter_->TrainableParameters(); });
  }
  void SetTraining(bool training) override {
    CallPlugin(plugin_, "while switching mode", [&] { adapter_->SetTraining(training); });
  }
  void Merge() override {
    CallPlugin(plugin_, "while merging", [&] { adapter_->Merge(); });
  }
  void Unmerge() override {
    CallPlugin(plugin_, "while unmerging", [&] { adapter_->Unmerge(); });
  }
  void Save(const std::filesystem::path& dir) const override {
    CallPlugin(plugin_, "while saving", [&] { adapter_->Save(dir); });
  }
  void Load(const std::filesystem::path& dir) override {
    CallPlugin(plugin_, "while loading", [&] { adapter_->Load(dir); });
  }

 private:
  const LoadedPlugin& plugin_;
  std::unique_ptr<Adapter> adapter_;
};

}  // namespace

std::unique_ptr<Adapter> PluginHost::CreateAdapter(std::string_view name,
                                                   const Options& options) const {
  const LoadedPlugin& plugin = Require(PluginKind::kAdapter, name);
  const auto& adapter_plugin = std::get<AdapterPlugin>(plugin.plugin);
  std::unique_ptr<Adapter> adapter =
      CallPlugin(plugin, "while being created", [&] { return adapter_plugin.create(options); });
  if (adapter == nullptr) {
    throw UserError(DescribePluginFailure(plugin, "while being created", "it returned no object"));
  }
  return std::make_unique<GuardedAdapter>(plugin, std::move(adapter));
}

std::unique_ptr<Optimizer> PluginHost::CreateOptimizer(std::string_view name,
                                                       const std::vector<at::Tensor>& parameters,
                                                       double weight_decay,
                                                       const Options& options) const {
  const LoadedPlugin& plugin = Require(PluginKind::kOptimizer, name);
  const auto& optimizer_plugin = std::get<OptimizerPlugin>(plugin.plugin);
  std::unique_ptr<Optimizer> optimizer = CallPlugin(plugin, "while being created", [&] {
    return optimizer_plugin.create(parameters, weight_decay, options);
  });
  if (optimizer == nullptr) {
    throw UserError(DescribePluginFailure(plugin, "while being created", "it returned no object"));
  }
  return std::make_unique<GuardedOptimizer>(plugin, std::move(optimizer));
}

}  // namespace tune

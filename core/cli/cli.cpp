#include "cli/cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/data_commands.h"
#include "cli/option_checks.h"
#include "cli/registry_commands.h"
#include "cli/review_commands.h"
#include "config/run_config.h"
#include "generate/generate.h"
#include "generate/generation_config.h"
#include "generate/peft_adapter.h"
#include "orchestrate/remote_channel.h"
#include "orchestrate/run_folders.h"
#include "orchestrate/tracker.h"
#include "orchestrate/trial.h"
#include "orchestrate/trial_channel.h"
#include "plugin_host/plugin_host.h"
#include "runtime/interrupt.h"
#include "runtime/runtime_info.h"
#include "sweep/sweep.h"
#include "train/trainer.h"
#include "tune/adapter.h"
#include "tune/model.h"
#include "util/counted.h"
#include "util/echo.h"
#include "util/error.h"
#include "util/log.h"
#include "util/suggest.h"

namespace tune {
namespace {

namespace fs = std::filesystem;

// Loads the built-in plugins, TUNE_PLUGIN_PATH, and `config_paths`; reports refusals.
void LoadPlugins(PluginHost& host, const std::vector<fs::path>& config_paths) {
  host.Load(PluginSearchPathOfThisProcess(config_paths));
}

std::string OptionValueText(const OptionValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return "(required)";
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return "\"" + v + "\"";
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return nlohmann::json(v).dump();
        } else {
          return nlohmann::json(v).dump();
        }
      },
      value);
}

nlohmann::json OptionValueJson(const OptionValue& value) {
  return std::visit(
      [](const auto& v) -> nlohmann::json {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::monostate>) {
          return nullptr;
        } else {
          return v;
        }
      },
      value);
}

nlohmann::json PluginJson(const LoadedPlugin& plugin) {
  nlohmann::json options = nlohmann::json::array();
  for (const OptionSpec& spec : plugin.info().options) {
    nlohmann::json option = {{"name", spec.name},
                             {"type", OptionTypeName(spec.type)},
                             {"default", OptionValueJson(spec.default_value)},
                             {"required", spec.required()},
                             {"help", spec.help}};
    if (spec.type == OptionType::kInt || spec.type == OptionType::kFloat) {
      if (std::isfinite(spec.min)) option["min"] = spec.min;
      if (std::isfinite(spec.max)) option["max"] = spec.max;
    }
    if (!spec.choices.empty()) option["choices"] = spec.choices;
    options.push_back(std::move(option));
  }
  nlohmann::json json = {
      {"kind", PluginKindName(plugin.kind)}, {"name", plugin.info().name},
      {"version", plugin.info().version},    {"description", plugin.info().description},
      {"file", plugin.file.string()},        {"options", std::move(options)}};
  if (const auto* metric = std::get_if<MetricPlugin>(&plugin.plugin)) {
    json["goal"] = metric->goal == MetricGoal::kMaximize ? "maximize" : "minimize";
  }
  if (const auto* tokenizer = std::get_if<TokenizerPlugin>(&plugin.plugin)) {
    json["reads"] = tokenizer->file;  // the model folder's file it reads
    json["priority"] = tokenizer->priority;
  }
  return json;
}

int ListPlugins(bool as_json) {
  PluginHost host;
  LoadPlugins(host, {});
  if (as_json) {
    nlohmann::json plugins = nlohmann::json::array();
    for (const LoadedPlugin* plugin : host.plugins()) plugins.push_back(PluginJson(*plugin));
    nlohmann::json failures = nlohmann::json::array();
    for (const PluginLoadFailure& failure : host.failures()) {
      failures.push_back({{"file", failure.file.string()}, {"error", failure.message}});
    }
    std::cout << nlohmann::json{{"plugins", plugins}, {"failures", failures}}.dump(2) << "\n";
  } else {
    size_t name_width = 4, version_width = 7;
    for (const LoadedPlugin* plugin : host.plugins()) {
      name_width = std::max(name_width, plugin->info().name.size());
      version_width = std::max(version_width, plugin->info().version.size());
    }
    auto row = [&](std::string_view kind, std::string_view name, std::string_view version,
                   std::string_view file) {
      std::cout << kind << std::string(11 - kind.size(), ' ') << name
                << std::string(name_width + 2 - name.size(), ' ') << version
                << std::string(version_width + 2 - version.size(), ' ') << file << "\n";
    };
    row("KIND", "NAME", "VERSION", "FILE");
    for (const LoadedPlugin* plugin : host.plugins()) {
      row(PluginKindName(plugin->kind), plugin->info().name, plugin->info().version,
          plugin->file.string());
    }
    for (const LoadedPlugin* plugin : host.plugins()) {
      LogDebug(std::string(PluginKindName(plugin->kind)) + " " + plugin->info().name + ": " +
               plugin->info().description);
      for (const OptionSpec& spec : plugin->info().options) {
        LogDebug("  " + spec.name + " (" + std::string(OptionTypeName(spec.type)) + ", default " +
                 OptionValueText(spec.default_value) + "): " + spec.help);
      }
    }
  }
  for (const PluginLoadFailure& failure : host.failures()) {
    std::cerr << "error: " << failure.message << "\n";
  }
  return host.failures().empty() ? 0 : 1;
}

int Validate(const fs::path& file, const std::vector<std::string>& overrides) {
  const RunFile run_file = RunFile::Read(file, overrides);
  PluginHost host;
  LoadPlugins(host, run_file.PluginPaths());
  for (const PluginLoadFailure& failure : host.failures()) {
    LogWarning(failure.message);
  }
  const RunConfig config = run_file.Resolve(host);
  std::cout << config.resolved_toml;
  return 0;
}

// `sampling` holds the flags' values; the model's generation_config.json gives the defaults of
// those not on the command line (`given`), and the ids that end generation.
struct GivenSamplingFlags {
  bool max_new_tokens = false;
  bool temperature = false;
  bool top_p = false;
};

int Generate(const fs::path& model_dir, const std::string& model_plugin,
             const fs::path& adapter_dir, const std::string& prompt, const SamplingOptions& flags,
             const GivenSamplingFlags& given) {
  const GenerationConfig generation_config = ReadGenerationConfig(model_dir);
  SamplingOptions sampling;
  ApplyGenerationConfig(generation_config, sampling);
  if (given.max_new_tokens) sampling.max_new_tokens = flags.max_new_tokens;
  if (given.temperature) sampling.temperature = flags.temperature;
  if (given.top_p) sampling.top_p = flags.top_p;
  sampling.seed = flags.seed;
  PluginHost host;
  LoadPlugins(host, {});
  for (const PluginLoadFailure& failure : host.failures()) LogWarning(failure.message);
  const LoadedPlugin& plugin = host.Require(PluginKind::kModel, model_plugin);
  const auto load_start = std::chrono::steady_clock::now();
  const std::unique_ptr<Model> model =
      host.LoadModel(model_plugin, model_dir, PluginHost::DefaultOptions(plugin));
  std::unique_ptr<Adapter> adapter;
  if (!adapter_dir.empty()) adapter = AttachPeftAdapter(host, *model, model_dir, adapter_dir);
  const ModelDescription description = model->Describe();
  const auto start = std::chrono::steady_clock::now();
  LogInfo(Format("loaded %s model %s (%.1fM parameters) in %.1f s",
                 description.architecture.c_str(), model_dir.c_str(),
                 static_cast<double>(description.num_parameters) / 1e6,
                 std::chrono::duration<double>(start - load_start).count()));
  sampling.end_ids = EndIds(generation_config, model->tokenizer());
  int64_t tokens = 0;
  const TextGeneration generation =
      GenerateText(*model, prompt, sampling, [&](std::string_view piece) {
        ++tokens;
        std::cout << piece << std::flush;
      });
  std::cout << "\n";
  if (generation.reached_context) {
    LogInfo("generation stopped where the model's context ends (" +
            std::to_string(description.max_positions) +
            " tokens, the prompt's and the new ones); a shorter prompt leaves room for more");
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  LogInfo(Format("%lld tokens in %.2f s (%.1f tokens/s)", static_cast<long long>(tokens), seconds,
                 seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0));
  return 0;
}

// Prints the ids and vocabulary strings of `text` under the tokenizer of `model_dir`: one
// "id<TAB>token" line each and a count, or with `json` one object {"ids": [...], "pieces": [...]}.
int Tokenize(const fs::path& model_dir, const std::string& text, bool json) {
  PluginHost host;
  LoadPlugins(host, {});
  for (const PluginLoadFailure& failure : host.failures()) LogWarning(failure.message);
  const std::shared_ptr<const Tokenizer> tokenizer = host.LoadTokenizer(model_dir);
  const std::vector<int32_t> ids = tokenizer->Encode(text);
  std::vector<std::string> pieces;
  for (const int32_t id : ids) pieces.push_back(tokenizer->TokenText(id));
  if (json) {
    std::cout << nlohmann::json{{"ids", ids}, {"pieces", pieces}}.dump(
                     -1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
    return 0;
  }
  for (size_t i = 0; i < ids.size(); ++i) std::cout << ids[i] << "\t" << pieces[i] << "\n";
  std::cout << Counted(static_cast<int64_t>(ids.size()), "token");
  if (tokenizer->bos_id() >= 0) {
    std::cout << "; the model's sequences start with " << tokenizer->TokenText(tokenizer->bos_id())
              << " (" << tokenizer->bos_id() << ")";
  }
  if (tokenizer->eos_id() >= 0) {
    std::cout << "; they end with " << tokenizer->TokenText(tokenizer->eos_id()) << " ("
              << tokenizer->eos_id() << ")";
  }
  std::cout << "\n";
  return 0;
}

// The run folder of a `tune train` without -o: .tune/runs/NAME for the first run of a name, and
// a new numbered one (NAME-2, ...) for every later run, said so; --resume and --restart take the
// newest.
fs::path DefaultRunFolder(const std::string& name, const TrainOptions& options) {
  const fs::path root = ".tune/runs";
  const std::map<int64_t, fs::path> existing = NumberedFolders(root, name);
  if (existing.empty()) return root / name;
  const auto& [newest_number, newest] = *existing.rbegin();
  if (options.resume || options.restart || fs::is_empty(newest)) return newest;
  const fs::path next = root / (name + "-" + std::to_string(newest_number + 1));
  LogInfo("starting a new run " + next.filename().string() + " in " + next.string() +
          " (the earlier " + newest.filename().string() + " continues with --resume)");
  return next;
}

void PrintTrialResult(const RunConfig& config, const TrialResult& result, const fs::path& run_dir) {
  if (result.outcome == TrialResult::Outcome::kStopped) {
    std::printf("stopped: %s\n", result.stop_reason.c_str());
    return;
  }
  if (result.outcome == TrialResult::Outcome::kRegisteredBefore) {
    std::printf(
        "%s finished already and was registered as %s:v%lld in %s; nothing to resume "
        "(--restart trains it again)\n",
        run_dir.c_str(), config.name.c_str(), static_cast<long long>(result.version),
        result.registry.c_str());
    return;
  }
  const TrainSummary& summary = result.summary;
  // With [eval] few_shot, the prompted base model and the gain over it as well.
  const bool few_shot = !summary.few_shot_scores.empty();
  const std::string shots = std::to_string(summary.few_shot) + "-shot";
  std::printf("%-14s %12s %12s %12s", "metric", "base", "tuned", "gain");
  if (few_shot) std::printf(" %12s %12s", shots.c_str(), ("vs " + shots).c_str());
  std::printf("\n");
  const auto cell = [](const std::map<std::string, double>& baseline, const std::string& name,
                       double value, bool gain) {
    const auto it = baseline.find(name);
    if (it == baseline.end()) return Format(" %12s", "-");
    return gain ? Format(" %+12.4f", value - it->second) : Format(" %12.4f", it->second);
  };
  for (const auto& [name, value] : summary.scores) {
    std::string line = Format("%-14s", name.c_str()) +
                       cell(summary.base_scores, name, value, false) + Format(" %12.4f", value) +
                       cell(summary.base_scores, name, value, true);
    if (few_shot) {
      line += cell(summary.few_shot_scores, name, value, false) +
              cell(summary.few_shot_scores, name, value, true);
    }
    std::printf("%s\n", line.c_str());
  }
  std::printf(
      "trained %zu steps of %lld parameters on %lld examples (%lld held out) in %.1f s, "
      "%.0f tokens/s, peak memory %.0f MiB%s\n",
      summary.curve.size(), static_cast<long long>(summary.trainable_parameters),
      static_cast<long long>(summary.train_examples), static_cast<long long>(summary.eval_examples),
      summary.train_seconds, summary.tokens_per_second,
      static_cast<double>(summary.peak_memory_bytes) / 1048576,
      summary.peak_gpu_memory_bytes > 0
          ? Format(", peak GPU memory %.0f MiB",
                   static_cast<double>(summary.peak_gpu_memory_bytes) / 1048576)
                .c_str()
          : "");
  std::printf("adapter: %s\nregistered: %s:v%lld in %s\n", summary.adapter_dir.c_str(),
              config.name.c_str(), static_cast<long long>(result.version), result.registry.c_str());
}

// How a trial reaches the sweep that started it: a local sweep's channel descriptor, or a Slurm
// task's connection file and trial number (orchestrate/remote_channel.h). Neither: no sweep.
struct DriverOptions {
  int channel_fd = -1;
  fs::path driver_file;
  int64_t trial = 0;
};

int TrainRun(const fs::path& file, const std::vector<std::string>& overrides, TrainOptions options,
             const DriverOptions& driver_options) {
  std::unique_ptr<TrialChannel> channel;
  std::unique_ptr<Heartbeat> heartbeat;  // destroyed before the channel it sends on
  TrialDriver driver;
  if (driver_options.channel_fd >= 0) {
    if (fcntl(driver_options.channel_fd, F_GETFD) == -1) {
      throw UserError("--channel-fd " + std::to_string(driver_options.channel_fd) +
                      " is not an open file descriptor; the option is for the trials tune sweep "
                      "starts, leave it out");
    }
    channel = std::make_unique<TrialChannel>(driver_options.channel_fd);
  } else if (!driver_options.driver_file.empty()) {
    if (driver_options.trial <= 0) {
      throw UserError(
          "--driver needs --trial N, the trial this run is (tune sweep's Slurm script "
          "passes both)");
    }
    driver.go_alone = ReadGo(driver_options.driver_file, driver_options.trial);
    const DriverAddress address = ReadDriverAddress(driver_options.driver_file);
    Connected connected = ConnectToDriver(address, driver_options.trial, std::chrono::seconds(10));
    if (connected.channel != nullptr) {
      channel = std::move(connected.channel);
      heartbeat = std::make_unique<Heartbeat>(
          *channel, std::chrono::seconds(std::max<int64_t>(1, connected.heartbeat_seconds)));
    } else {
      LogWarning("the sweep's driver at " + address.host + ":" + std::to_string(address.port) +
                 " does not answer; training alone, recording in " + driver.go_alone->registry +
                 " (tune sweep --attach " + driver.go_alone->sweep + " picks the result up)");
    }
  }
  driver.channel = channel.get();
  const RunFile run_file = RunFile::Read(file, overrides);
  PluginHost host;
  LoadPlugins(host, run_file.PluginPaths());
  for (const PluginLoadFailure& failure : host.failures()) LogWarning(failure.message);
  const RunConfig config = run_file.Resolve(host);
  if (options.run_dir.empty()) options.run_dir = DefaultRunFolder(config.name, options);
  const InterruptScope interrupts;  // SIGINT/SIGTERM: checkpoint at the step, then stop
  const TrialResult result = RunTrial(
      config, host, options, [&] { return OpenRegistryTracker(config.registry); }, driver);
  PrintTrialResult(config, result, options.run_dir);
  return 0;
}

void PrintVersion() {
  const RuntimeInfo info = DescribeRuntime();
  std::cout << "tune " << info.tune_version << " (commit " << info.git_commit << ")\n"
            << "libtorch " << info.torch_version << "\n"
            << "compiler " << info.compiler << ", plugin ABI " << info.plugin_abi << "\n"
            << "CUDA: "
            << (info.cuda_devices > 0 ? std::to_string(info.cuda_devices) + " device(s) usable"
                                      : std::string("not usable (no device or CPU-only libtorch)"))
            << "\n";
}

// The commands named on the command line, as far as they are commands: "tune adapters ls".
// Sets `unknown` to a word that stands where a command must and names none.
std::string CommandPath(CLI::App& app, int argc, char** argv, std::string& unknown) {
  std::string path = "tune";
  CLI::App* at = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.starts_with("-")) continue;
    const std::vector<CLI::App*> commands = at->get_subcommands([](CLI::App*) { return true; });
    if (commands.empty()) break;
    const auto named = std::find_if(commands.begin(), commands.end(),
                                    [&](CLI::App* command) { return command->get_name() == word; });
    if (named == commands.end()) {
      if (at->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty()) {
        unknown = word;
      }
      break;
    }
    at = *named;
    path += " " + word;
  }
  return path;
}

// One line for a command line CLI11 refused, pointing at the help of the command it was for.
std::string ParseErrorText(CLI::App& app, const CLI::ParseError& error, int argc, char** argv) {
  std::string unknown;
  const std::string path = CommandPath(app, argc, argv, unknown);
  if (!unknown.empty()) {
    CLI::App* at = &app;
    std::string rest = path;
    std::vector<std::string> names;
    for (size_t space; (space = rest.find(' ')) != std::string::npos;) {
      rest.erase(0, space + 1);
      at = at->get_subcommand(rest.substr(0, rest.find(' ')));
    }
    for (const CLI::App* command : at->get_subcommands([](CLI::App*) { return true; })) {
      names.push_back(command->get_name());
    }
    return "unknown command '" + Echo(unknown, 40) + "'" + DidYouMean(unknown, names) + "; see `" +
           path + " --help`";
  }
  return std::string(error.what()) + "; see `" + path + " --help`";
}

void ConfigureLogging(int verbosity) {
  SetLogLevel(verbosity > 0   ? LogLevel::kDebug
              : verbosity < 0 ? LogLevel::kError
                              : LogLevel::kInfo);
}

constexpr const char* kModelFolder = "the model's folder (the one with config.json)";

// `tune tokenize` and `tune generate`: what a model folder does with text.
class ModelCommands {
 public:
  // Adds the subcommands to `app`, which must outlive this object. Call before parsing.
  explicit ModelCommands(CLI::App& app) {
    tokenize_ = app.add_subcommand(
        "tokenize", "Print the token ids and pieces of a text under a model folder's tokenizer");
    tokenize_->add_option("--model", tokenize_model_, "Model directory (Hugging Face layout)")
        ->required()
        ->check(cli::ExistingFolder(kModelFolder));
    tokenize_->add_flag("--json", tokenize_json_, "Print one JSON object with ids and pieces");
    tokenize_->add_option("text", tokenize_text_, "Text to tokenize")->required();

    generate_ =
        app.add_subcommand("generate", "Continue a prompt with a base model (greedy by default)");
    generate_->add_option("--model", generate_model_, "Model directory (Hugging Face layout)")
        ->required()
        ->check(cli::ExistingFolder(kModelFolder));
    generate_
        ->add_option("--adapter", generate_adapter_,
                     "LoRA adapter in PEFT layout to apply (tune train's adapter/, tune fetch's "
                     "output)")
        ->check(cli::ExistingFolder("the adapter's folder (the one with adapter_config.json)"));
    generate_
        ->add_option("--model-plugin", generate_plugin_, "Model plugin that reads the directory")
        ->capture_default_str();
    max_tokens_ = generate_
                      ->add_option("--max-tokens", sampling_.max_new_tokens,
                                   "Most tokens to generate (default: the model's "
                                   "generation_config.json, else 128)")
                      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
    temperature_ = generate_
                       ->add_option("--temperature", sampling_.temperature,
                                    "0 for greedy; higher is more random (default: the model's "
                                    "generation_config.json, else greedy)")
                       ->check(cli::FiniteIn(0.0, 100.0));
    top_p_ = generate_
                 ->add_option("--top-p", sampling_.top_p,
                              "Sample from the smallest set of tokens with this much probability "
                              "(default: the model's generation_config.json, else 1)")
                 ->check(cli::FiniteIn(1e-9, 1.0));
    generate_->add_option("--seed", sampling_.seed, "Seed for sampling")->capture_default_str();
    generate_->add_option("prompt", generate_prompt_, "Text to continue")->required();
  }

  // After parsing: runs the command that was given and returns its exit code, or nullopt when
  // none was.
  std::optional<int> Run() {
    if (tokenize_->parsed()) return Tokenize(tokenize_model_, tokenize_text_, tokenize_json_);
    if (!generate_->parsed()) return std::nullopt;
    const GivenSamplingFlags given{.max_new_tokens = max_tokens_->count() > 0,
                                   .temperature = temperature_->count() > 0,
                                   .top_p = top_p_->count() > 0};
    return Generate(generate_model_, generate_plugin_, generate_adapter_, generate_prompt_,
                    sampling_, given);
  }

 private:
  CLI::App* tokenize_ = nullptr;
  std::string tokenize_model_, tokenize_text_;
  bool tokenize_json_ = false;
  CLI::App* generate_ = nullptr;
  std::string generate_model_, generate_adapter_, generate_prompt_;
  std::string generate_plugin_ = "llama";
  SamplingOptions sampling_;
  CLI::Option* max_tokens_ = nullptr;
  CLI::Option* temperature_ = nullptr;
  CLI::Option* top_p_ = nullptr;
};

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{"tune: fine-tune language models, track experiments, version adapters", "tune"};
  app.require_subcommand(0, 1);
  app.fallthrough();  // -q, -v after a command: `tune train run.toml -q`
  bool show_version = false;
  int verbose = 0;
  bool quiet = false;
  app.add_flag("--version", show_version, "Print tune's version and commit, libtorch's, and CUDA");
  app.add_flag("-v,--verbose", verbose, "Log more detail");
  app.add_flag("-q,--quiet", quiet, "Log errors only");

  CLI::App* plugins = app.add_subcommand("plugins",
                                         "List every plugin found: kind, name, "
                                         "version, file; refused files as errors");
  bool plugins_json = false;
  plugins->add_flag("--json", plugins_json, "Print JSON, with each plugin's options");

  CLI::App* validate = app.add_subcommand(
      "validate", "Check a run or sweep file and print the resolved configuration");
  std::string validate_file;
  std::vector<std::string> validate_overrides;
  validate->add_option("file", validate_file, "Run or sweep file (.toml)")->required();
  validate->add_option("overrides", validate_overrides,
                       "key=value settings that replace the file's");

  ModelCommands model_commands(app);
  const std::unique_ptr<RegistryCommands> registry_commands = RegistryCommands::Add(app);
  const std::unique_ptr<DataCommands> data_commands = DataCommands::Add(app);
  const std::unique_ptr<ReviewCommands> review_commands = ReviewCommands::Add(app);

  CLI::App* train =
      app.add_subcommand("train", "Train one adapter from a run file and evaluate it");
  std::string train_file;
  std::vector<std::string> train_overrides;
  std::string train_output;
  TrainOptions train_options;
  train->add_option("file", train_file, "Run file (.toml)")->required();
  train->add_option("overrides", train_overrides, "key=value settings that replace the file's");
  train
      ->add_option("-o,--output", train_output,
                   "Run directory for checkpoints, metrics and the adapter (default "
                   ".tune/runs/NAME)")
      ->check(cli::FolderToWrite());
  train->add_flag("--resume", train_options.resume, "Continue from the last checkpoint");
  train->add_flag("--restart", train_options.restart, "Discard the run directory and start over");
  train->add_flag("--force", train_options.force,
                  "Resume although the config or the data changed, and train on data that fails "
                  "a [dataset.quality] gate");
  train->get_option("--resume")->excludes("--restart");
  train
      ->add_option("--base-scores", train_options.base_scores_dir,
                   "Folder of base-model scores shared between runs: reuse a matching "
                   "measurement instead of evaluating the base model again (tune sweep passes "
                   "one per sweep)")
      ->check(cli::FolderToWrite());
  DriverOptions train_driver;
  train
      ->add_option("--channel-fd", train_driver.channel_fd,
                   "A trial channel from tune sweep: report progress there, wait for its go "
                   "before training and for its verdict after each intermediate eval")
      ->group("");  // tune sweep's, not a person's: left out of --help
  train
      ->add_option("--driver", train_driver.driver_file,
                   "The connection file of the tune sweep whose Slurm task this is")
      ->group("");
  train->add_option("--trial", train_driver.trial, "The trial of that sweep this run is")
      ->group("");
  train->get_option("--driver")->excludes("--channel-fd");

  CLI::App* sweep = app.add_subcommand(
      "sweep", "Run a sweep's trials, register every finished adapter, print the ranking");
  SweepOptions sweep_options;
  std::string sweep_file;
  sweep->add_option("file", sweep_file, "Sweep file (.toml with [sweep])");
  sweep->add_option("overrides", sweep_options.overrides,
                    "key=value settings that replace the file's, in every trial");
  sweep->add_flag("--resume", sweep_options.resume,
                  "Continue the newest sweep of this name: keep finished trials, resume "
                  "interrupted ones from their checkpoints, run the rest");
  sweep->add_flag("--force", sweep_options.force,
                  "Resume although the sweep file or the data changed");
  sweep->add_flag("--detach", sweep_options.detach,
                  "Slurm: submit the sweep's driver as a Slurm job and return");
  sweep->add_option("--attach", sweep_options.attach,
                    "Pick up sweep NAME (e.g. rank-1): follow its driver, or drive it when none "
                    "runs (the trials still in Slurm are watched again)");
  sweep->get_option("--attach")->excludes("--detach")->excludes("--resume");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << ParseErrorText(app, e, argc, argv) << "\n";
    return 1;
  }

  ConfigureLogging(quiet ? -1 : verbose);
  try {
    if (show_version) {
      PrintVersion();
      return 0;
    }
    if (plugins->parsed()) return ListPlugins(plugins_json);
    if (validate->parsed()) return Validate(validate_file, validate_overrides);
    if (sweep->parsed()) {
      if (sweep_file.empty() == sweep_options.attach.empty()) {
        throw UserError(
            sweep_file.empty()
                ? "tune sweep needs a sweep file, or --attach NAME; see `tune sweep --help`"
                : "tune sweep takes a sweep file or --attach NAME, not both");
      }
      sweep_options.file = sweep_file;
      return RunSweep(sweep_options);
    }
    if (train->parsed()) {
      train_options.run_dir = train_output;
      return TrainRun(train_file, train_overrides, train_options, train_driver);
    }
    if (std::optional<int> code = model_commands.Run()) return *code;
    if (std::optional<int> code = registry_commands->Run()) return *code;
    if (std::optional<int> code = data_commands->Run()) return *code;
    if (std::optional<int> code = review_commands->Run()) return *code;
    std::cout << app.help();
    return 0;
  } catch (const Interrupted& e) {
    std::cerr << "tune: " << e.what() << "\n";
    return 128 + e.signal();
  } catch (const UserError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 2;
  }
}

}  // namespace tune

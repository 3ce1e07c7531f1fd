#include "train/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "chat_template/chat_template.h"
#include "data/dataset_identity.h"
#include "generate/generate.h"
#include "generate/generation_config.h"
#include "plugin_host/plugin_host.h"
#include "runtime/interrupt.h"
#include "runtime/runtime_info.h"
#include "runtime/threads.h"
#include "safetensors/torch_io.h"
#include "train/evaluate.h"
#include "train/examples.h"
#include "train/few_shot.h"
#include "train/lr_schedule.h"
#include "train/step.h"
#include "tune/adapter.h"
#include "tune/metric.h"
#include "tune/model.h"
#include "tune/optimizer.h"
#include "util/counted.h"
#include "util/duration.h"
#include "util/error.h"
#include "util/log.h"
#include "util/sha256.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr char kCheckpoints[] = "checkpoints";
constexpr char kStateFile[] = "state.json";
constexpr char kTensorsFile[] = "tensors.safetensors";
constexpr int kCheckpointsKept = 2;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int64_t PeakResidentBytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw UserError("cannot write " + path.string() + " (disk full?)");
}

// fsyncs a directory so a rename inside it survives a crash.
void SyncDirectory(const fs::path& dir) {
  if (FILE* f = std::fopen(dir.c_str(), "r")) {
    fsync(fileno(f));
    std::fclose(f);
  }
}

torch::Device ChooseDevice(const std::string& wanted) {
  const bool cuda = torch::cuda::is_available();
  if (wanted == "cuda" && !cuda) {
    throw UserError(
        "train.device = \"cuda\" but no CUDA device is visible to this libtorch; use \"cpu\" or "
        "\"auto\"");
  }
  return wanted != "cpu" && cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

// One updating line on a terminal; a plain line every `plain_every` steps otherwise; nothing
// with -q (log level below info).
class ProgressLine {
 public:
  explicit ProgressLine(int64_t total_steps)
      : terminal_(isatty(fileno(stderr)) != 0),
        quiet_(!LogEnabled(LogLevel::kInfo)),
        plain_every_(std::max<int64_t>(1, total_steps / 20)) {}

  void Step(const StepReport& r, int64_t resumed_at) {
    if (quiet_) return;
    const double rate = r.elapsed_seconds > 0 ? (r.step - resumed_at) / r.elapsed_seconds : 0.0;
    const double eta = rate > 0 ? (r.total_steps - r.step) / rate : 0.0;
    char line[256];
    std::snprintf(line, sizeof(line),
                  "step %lld/%lld  loss %.4f  lr %.3g  %.0f tok/s  elapsed %s  ETA %s",
                  static_cast<long long>(r.step), static_cast<long long>(r.total_steps), r.loss,
                  r.lr, r.tokens_per_second, FormatDuration(r.elapsed_seconds).c_str(),
                  FormatDuration(eta).c_str());
    if (terminal_) {
      std::fprintf(stderr, "\r\033[K%s", line);
      if (r.step == r.total_steps) std::fputc('\n', stderr);
    } else if (r.step % plain_every_ == 0 || r.step == r.total_steps) {
      std::fprintf(stderr, "%s\n", line);
    }
    std::fflush(stderr);
  }

  // A message between steps: ends the updating line first.
  void Say(const std::string& message) {
    if (quiet_) return;
    std::fprintf(stderr, "%s%s\n", terminal_ ? "\r\033[K" : "", message.c_str());
    std::fflush(stderr);
  }

 private:
  bool terminal_;
  bool quiet_;
  int64_t plain_every_;
};

// What a checkpoint restores besides tensors.
struct RunState {
  int64_t step = 0;
  std::string config_sha256;
  std::string dataset_sha256;
  GenerationEval base;      // the base model's scores and outputs, measured before training
  GenerationEval few_shot;  // the same, prompted with [eval] few_shot training examples
  std::vector<CurvePoint> curve;
  double train_seconds = 0.0;
  int64_t tokens = 0;
};

json OutputsToJson(const std::vector<ExampleOutput>& outputs) {
  json list = json::array();
  for (const ExampleOutput& o : outputs) {
    list.push_back({{"prediction", o.prediction}, {"scores", o.scores}});
  }
  return list;
}

// Files written before outputs were kept have none: an empty list.
std::vector<ExampleOutput> OutputsFromJson(const json& j) {
  std::vector<ExampleOutput> outputs;
  if (!j.is_array()) return outputs;
  for (const json& o : j) {
    outputs.push_back({o.at("prediction").get<std::string>(),
                       o.at("scores").get<std::map<std::string, double>>()});
  }
  return outputs;
}

json StateToJson(const RunState& s) {
  json curve = json::array();
  for (const CurvePoint& p : s.curve) curve.push_back({p.step, p.loss, p.lr});
  return {{"step", s.step},
          {"config_sha256", s.config_sha256},
          {"dataset_sha256", s.dataset_sha256},
          {"base_scores", s.base.scores},
          {"base_outputs", OutputsToJson(s.base.outputs)},
          {"few_shot_scores", s.few_shot.scores},
          {"few_shot_outputs", OutputsToJson(s.few_shot.outputs)},
          {"curve", curve},
          {"train_seconds", s.train_seconds},
          {"tokens", s.tokens}};
}

RunState StateFromJson(const json& j) {
  RunState s;
  s.step = j.at("step").get<int64_t>();
  s.config_sha256 = j.at("config_sha256").get<std::string>();
  s.dataset_sha256 = j.at("dataset_sha256").get<std::string>();
  s.base.scores = j.at("base_scores").get<std::map<std::string, double>>();
  s.base.outputs = OutputsFromJson(j.value("base_outputs", json()));
  s.few_shot.scores =
      j.value("few_shot_scores", json::object()).get<std::map<std::string, double>>();
  s.few_shot.outputs = OutputsFromJson(j.value("few_shot_outputs", json()));
  for (const json& p : j.at("curve")) {
    s.curve.push_back({p.at(0).get<int64_t>(), p.at(1).get<double>(), p.at(2).get<double>()});
  }
  s.train_seconds = j.at("train_seconds").get<double>();
  s.tokens = j.at("tokens").get<int64_t>();
  return s;
}

std::string StepDirName(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%09lld", static_cast<long long>(step));
  return name;
}

// The newest complete checkpoint. Complete ones are exactly those named step-N: each is
// written as a temporary directory and renamed when whole.
std::optional<fs::path> LatestCheckpoint(const fs::path& run_dir) {
  const fs::path dir = run_dir / kCheckpoints;
  if (!fs::is_directory(dir)) return std::nullopt;
  std::optional<fs::path> latest;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("step-") && (!latest || name > latest->filename().string())) {
      latest = entry.path();
    }
  }
  return latest;
}

// The random generators a run draws from: the CPU's, and the device's when it trains on one
// (dropout and initialisation on a GPU draw from the GPU's generator).
std::vector<std::pair<std::string, at::Generator>> Generators(const torch::Device& device) {
  std::vector<std::pair<std::string, at::Generator>> generators = {
      {"rng/cpu", at::globalContext().defaultGenerator(torch::kCPU)}};
  if (!device.is_cpu()) {
    generators.emplace_back("rng/" + torch::Device(device.type()).str(),
                            at::globalContext().defaultGenerator(device));
  }
  return generators;
}

void SaveCheckpoint(const fs::path& run_dir, const RunState& state, const NamedTensors& trainable,
                    const OptimizerState& optimizer_state, const torch::Device& device) {
  const fs::path dir = run_dir / kCheckpoints;
  fs::create_directories(dir);
  const fs::path final_dir = dir / StepDirName(state.step);
  const fs::path temp_dir = dir / (".tmp-" + StepDirName(state.step));
  fs::remove_all(temp_dir);
  fs::create_directories(temp_dir);

  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, tensor] : trainable)
    tensors.emplace_back("param/" + name, tensor.detach());
  char index[32];
  for (size_t i = 0; i < optimizer_state.size(); ++i) {
    std::snprintf(index, sizeof(index), "%06zu", i);
    tensors.emplace_back(std::string("optim/") + index + "/" + optimizer_state[i].first,
                         optimizer_state[i].second);
  }
  for (const auto& [name, generator] : Generators(device)) {
    tensors.emplace_back(name, generator.get_state());
  }
  safetensors::Save(temp_dir / kTensorsFile, tensors, {});
  WriteText(temp_dir / kStateFile, StateToJson(state).dump(1));
  {
    std::FILE* f = std::fopen((temp_dir / kStateFile).c_str(), "r");
    if (f != nullptr) {
      fsync(fileno(f));
      std::fclose(f);
    }
  }
  SyncDirectory(temp_dir);
  fs::remove_all(final_dir);
  fs::rename(temp_dir, final_dir);
  SyncDirectory(dir);

  std::vector<fs::path> all;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with("step-")) all.push_back(entry.path());
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i + kCheckpointsKept < all.size(); ++i) fs::remove_all(all[i]);
}

RunState LoadCheckpoint(const fs::path& dir, NamedTensors& trainable, Optimizer& optimizer,
                        const torch::Device& device) {
  RunState state;
  try {
    state = StateFromJson(json::parse(std::ifstream(dir / kStateFile)));
  } catch (const json::exception& e) {
    throw UserError((dir / kStateFile).string() + " is unreadable (" + e.what() +
                    "); delete this checkpoint to resume from the one before");
  }
  std::map<std::string, at::Tensor> tensors = safetensors::LoadAll(dir / kTensorsFile);
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : trainable) {
    auto it = tensors.find("param/" + name);
    if (it == tensors.end() || !it->second.sizes().equals(tensor.sizes())) {
      throw UserError((dir / kTensorsFile).string() + ": no tensor for '" + name +
                      "' of the right shape; the checkpoint belongs to another configuration");
    }
    tensor.copy_(it->second);
  }
  OptimizerState optimizer_state;
  for (const auto& [name, tensor] : tensors) {
    if (name.starts_with("optim/")) {
      optimizer_state.emplace_back(name.substr(name.find('/', 6) + 1), tensor.clone());
    }
  }
  optimizer.LoadState(optimizer_state);
  for (auto& [name, generator] : Generators(device)) {
    auto rng = tensors.find(name);
    if (rng == tensors.end()) {
      throw UserError((dir / kTensorsFile).string() + ": no '" + name +
                      "' random state; the checkpoint was written on another device "
                      "(resume with the same train.device)");
    }
    generator.set_state(rng->second.clone());
  }
  return state;
}

void AppendJsonLine(const fs::path& path, const json& line) {
  std::ofstream out(path, std::ios::app);
  out << line.dump() << '\n';
}

// Drops metric lines past `step`, so a resumed run's log has each step once.
void TruncateMetrics(const fs::path& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string kept, line;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("step", int64_t{0}) <= step) kept += line + "\n";
  }
  WriteText(path, kept);
}

// What the base model's scores depend on, one "key=value" line each: the model's files (name,
// size, modification time), how it is loaded and on which device, the adapter method (a
// quantising method changes the base), the exact eval examples, the metrics and the generation
// budget. Two runs with the same identity get the same base scores.
std::string BaseEvalIdentity(const RunConfig& config, const PreparedData& data,
                             const torch::Device& device) {
  std::string text;
  auto add = [&](const std::string& key, const OptionValue& value) {
    text += OverrideText(key, value);
    text += '\n';
  };
  add("model.plugin", config.model.plugin);
  add("model.path", fs::absolute(config.model.path).lexically_normal().string());
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(config.model.path)) {
    if (!entry.is_regular_file()) continue;
    files.push_back(entry.path().filename().string() + " " + std::to_string(entry.file_size()) +
                    " " + std::to_string(entry.last_write_time().time_since_epoch().count()));
  }
  std::sort(files.begin(), files.end());
  add("model.files", files);
  for (const auto& [key, value] : config.model.options.values()) add("model." + key, value);
  add("adapter.method", config.adapter.method);
  add("train.device", device.str());
  add("train.train_on_prompt", config.train.train_on_prompt);
  add("train.eval_max_new_tokens", config.train.eval_max_new_tokens);
  add("eval.examples_sha256", DatasetSha256(data.eval_text));
  for (size_t i = 0; i < config.metrics.size(); ++i) {
    const std::string prefix = "metrics." + std::to_string(i) + ".";
    add(prefix + "plugin", config.metrics[i].plugin);
    for (const auto& [key, value] : config.metrics[i].options.values()) add(prefix + key, value);
  }
  return text;
}

fs::path BaseScoresFile(const fs::path& dir, const std::string& identity) {
  return dir / (Sha256Hex(identity).substr(0, 32) + ".json");
}

// The stored scores and outputs for `identity`, or nullopt when none are stored (or the file is
// unreadable, or from a tune that kept no outputs, which only costs a new measurement).
std::optional<GenerationEval> ReadBaseEval(const fs::path& dir, const std::string& identity) {
  std::ifstream in(BaseScoresFile(dir, identity));
  if (!in) return std::nullopt;
  const json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("identity", "") != identity || !j.contains("scores") ||
      !j.contains("outputs")) {
    return std::nullopt;
  }
  try {
    return GenerationEval{j.at("scores").get<std::map<std::string, double>>(),
                          OutputsFromJson(j.at("outputs"))};
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

// Stores atomically (temporary file, then rename), so concurrent runs that measured the same
// identity leave one whole file. A folder that cannot be written only costs later runs a new
// measurement, so failures are ignored.
void StoreBaseEval(const fs::path& dir, const std::string& identity, const GenerationEval& base) {
  const fs::path file = BaseScoresFile(dir, identity);
  const fs::path temp = file.string() + ".tmp-" + std::to_string(getpid());
  std::error_code error;
  try {
    fs::create_directories(dir, error);
    WriteText(temp, json{{"identity", identity},
                         {"scores", base.scores},
                         {"outputs", OutputsToJson(base.outputs)}}
                            .dump(1) +
                        "\n");
    fs::rename(temp, file, error);
  } catch (const UserError&) {
    fs::remove(temp, error);
  }
}

// One line per eval example: where it is, prompt, reference, the tuned model's output and
// per-example scores, and the base model's (bare and prompted) beside them when they were kept.
void WriteEvalSamples(const fs::path& file, const std::vector<TextExample>& examples,
                      const std::vector<ExampleOutput>& tuned,
                      const std::vector<ExampleOutput>& base,
                      const std::vector<ExampleOutput>& few_shot) {
  std::ofstream samples(file, std::ios::trunc);
  for (size_t i = 0; i < tuned.size(); ++i) {
    json sample = {{"line", examples[i].line},
                   {"prompt", examples[i].prompt},
                   {"reference", examples[i].completion},
                   {"prediction", tuned[i].prediction},
                   {"scores", tuned[i].scores}};
    if (base.size() == tuned.size()) {
      sample["base_prediction"] = base[i].prediction;
      sample["base_scores"] = base[i].scores;
    }
    if (few_shot.size() == tuned.size()) {
      sample["few_shot_prediction"] = few_shot[i].prediction;
      sample["few_shot_scores"] = few_shot[i].scores;
    }
    samples << sample.dump() << '\n';
  }
  if (!samples) throw UserError("cannot write " + file.string() + "; check the disk has space");
}

}  // namespace

namespace {

// Checks what the run folder holds against --resume and --restart (clearing it for a restart)
// and makes it; the checkpoint to resume from, if any.
std::optional<fs::path> StartRunFolder(const TrainOptions& options) {
  const fs::path& run_dir = options.run_dir;
  std::optional<fs::path> checkpoint = LatestCheckpoint(run_dir);
  if (options.restart) {
    fs::remove_all(run_dir);
    checkpoint.reset();
  } else if (options.resume && !checkpoint) {
    throw UserError(run_dir.string() + " has no checkpoint to resume from; run without --resume");
  } else if (!options.resume && fs::exists(run_dir) && !fs::is_empty(run_dir)) {
    throw UserError(run_dir.string() +
                    " holds a previous run; continue it with --resume, start over with "
                    "--restart, or choose another --output");
  }
  fs::create_directories(run_dir);

  return checkpoint;
}

// One run of TrainOrThrow, in phases: prepared (the constructor: the run folder, model, data,
// adapter, optimizer and metrics), begun (the state, resumed or with its baselines measured),
// trained (the loop), finished (the last evaluation, the adapter and summary.json).
struct TrainingRun {
  TrainingRun(const RunConfig& config_in, const PluginHost& host_in, const TrainOptions& options_in)
      : config(config_in),
        host(host_in),
        options(options_in),
        checkpoint(StartRunFolder(options_in)),
        device(ChooseDevice(config_in.train.device)),
        progress(config_in.train.steps),
        schedule(ParseLrSchedule(config_in.optimizer.schedule)) {
    SetComputeThreads(train.threads);
    model = host.LoadModel(config.model.plugin, config.model.path, config.model.options, device);
    model->SetGradientCheckpointing(train.gradient_checkpointing);
    if (const int64_t positions = model->Describe().max_positions; train.seq_len > positions) {
      throw UserError("train.seq_len = " + std::to_string(train.seq_len) +
                      " is longer than the model's max_position_embeddings (" +
                      std::to_string(positions) + "); lower train.seq_len");
    }
    data = PrepareData(config.dataset, host, model->tokenizer(), config.model.path, train.seq_len,
                       options.force);
    end_ids = EndIds(ReadGenerationConfig(config.model.path), model->tokenizer());
    if (!data.skipped.empty()) {
      progress.Say("skipped " + Counted(static_cast<int64_t>(data.skipped.size()), "bad row") +
                   " (dataset.on_bad_row = \"skip\"), first: " + data.skipped.front());
    }
    if (data.eval_text.size() > static_cast<size_t>(train.eval_max_examples) &&
        train.eval_max_examples > 0) {
      data.eval_text.resize(train.eval_max_examples);
      data.eval.resize(train.eval_max_examples);
    }

    if (options.wait_for_turn) {
      progress.Say("prepared; waiting for the sweep to start this trial");
      const auto waiting = Clock::now();
      options.wait_for_turn();
      wall_start += Clock::now() - waiting;
    }
    torch::manual_seed(static_cast<uint64_t>(train.seed));
    adapter = host.CreateAdapter(config.adapter.method, config.adapter.options);
    adapter->Attach(*model, config.model.path);
    trainable = adapter->TrainableParameters();
    for (const auto& [name, tensor] : trainable) {
      parameters.push_back(tensor);
      trainable_parameters += tensor.numel();
    }
    optimizer = host.CreateOptimizer(config.optimizer.plugin, parameters,
                                     config.optimizer.weight_decay, config.optimizer.options);

    for (const MetricConfig& m : config.metrics) {
      metric_objects.push_back(host.CreateMetric(m.plugin, m.options));
      metrics.push_back({m.plugin, metric_objects.back().get()});
    }
  }

  // The eval split's loss and perplexity, and with metrics, the generated outputs and scores.
  GenerationEval Evaluate() {
    GenerationEval eval;
    if (data.eval.empty()) return eval;
    adapter->SetTraining(false);
    if (!metrics.empty()) {
      eval = EvalGeneration(*model, data.eval_text, metrics, train.eval_max_new_tokens,
                            train.batch_size, end_ids);
      if (eval.reached_context > 0) {
        progress.Say("note: " + std::to_string(eval.reached_context) + " of " +
                     Counted(static_cast<int64_t>(eval.outputs.size()), "eval output") +
                     " stopped where the model's context ends (" +
                     std::to_string(model->Describe().max_positions) +
                     " tokens), before an end token; they are scored as they are");
      }
    }
    const double loss = EvalLoss(*model, data.eval, train.batch_size, train.train_on_prompt);
    eval.scores["eval_loss"] = loss;
    eval.scores["perplexity"] = std::exp(loss);
    adapter->SetTraining(true);
    return eval;
  }

  // The prompted baseline: the base model (the adapter does nothing yet) asked with
  // config.eval.few_shot training examples before each eval prompt; generation metrics only.
  GenerationEval EvaluateFewShot() {
    const int64_t room = model->Describe().max_positions - train.eval_max_new_tokens;
    const std::optional<ChatTemplate> chat_template = ChatTemplate::Load(config.model.path);
    const FewShotPrompts prompts = MakeFewShotPrompts(
        data.train_text, data.eval_text, config.eval.few_shot,
        chat_template ? &*chat_template : nullptr,
        [&](const TextExample& shot) {
          const Tokenizer& tokenizer = model->tokenizer();
          std::vector<int32_t> ids = tokenizer.Encode(shot.prompt);
          const std::vector<int32_t> completion = tokenizer.Encode(shot.completion);
          ids.insert(ids.end(), completion.begin(), completion.end());
          return tokenizer.Decode(ids);
        },
        [&](const std::string& prompt) {
          return static_cast<int64_t>(EncodeWithBos(model->tokenizer(), prompt).size()) <= room;
        });
    progress.Say("evaluating the base model prompted with " +
                 Counted(config.eval.few_shot, "training example") + " (eval.few_shot)" +
                 (prompts.shortened > 0 ? "; " + std::to_string(prompts.shortened) +
                                              " prompts hold fewer to fit the model's context"
                                        : ""));
    adapter->SetTraining(false);
    GenerationEval eval =
        EvalGeneration(*model, prompts.examples, metrics, train.eval_max_new_tokens,
                       train.batch_size, end_ids, chat_template ? "" : kShotSeparator);
    adapter->SetTraining(true);
    return eval;
  }

  // A resumed run's state from its checkpoint, checked against the config and data; a new
  // run's from measuring the baselines (or reading them from options.base_scores_dir). Either
  // way the run folder gets what registering the run needs.
  void Begin() {
    if (checkpoint) {
      state = LoadCheckpoint(*checkpoint, trainable, *optimizer, device);
      // The run folder's run.toml decides when the hash differs: an older tune wrote the same
      // config with other float digits.
      if (!options.force && state.config_sha256 != config_sha256 &&
          !RunFolderHoldsConfig(run_dir, config)) {
        throw UserError(run_dir.string() +
                        ": the run config changed since this run started; resuming would mix two "
                        "configurations (use --force to resume anyway, or --restart)");
      }
      if (!options.force && state.dataset_sha256 != data.dataset_sha256) {
        throw UserError(run_dir.string() + ": " + config.dataset.path.string() +
                        " changed since this run started (dataset hash differs); use --force to "
                        "resume anyway, or --restart");
      }
      TruncateMetrics(metrics_path, state.step);
      progress.Say("resuming " + run_dir.string() + " at step " + std::to_string(state.step) +
                   " of " + std::to_string(train.steps));
    } else {
      state.config_sha256 = config_sha256;
      state.dataset_sha256 = data.dataset_sha256;
      const std::string identity =
          options.base_scores_dir.empty() ? std::string() : BaseEvalIdentity(config, data, device);
      std::optional<GenerationEval> stored;
      if (!identity.empty()) stored = ReadBaseEval(options.base_scores_dir, identity);
      if (stored) {
        state.base = std::move(*stored);
        progress.Say("base model scores from " +
                     BaseScoresFile(options.base_scores_dir, identity).string());
      } else {
        if (!data.eval.empty()) {
          progress.Say("evaluating the base model on " +
                       Counted(static_cast<int64_t>(data.eval.size()), "eval example"));
        }
        state.base = Evaluate();
        if (!identity.empty()) StoreBaseEval(options.base_scores_dir, identity, state.base);
      }
      if (config.eval.few_shot > 0 && !data.eval.empty()) {
        // Its own identity: the shots come from the training split.
        const std::string few_shot_identity =
            identity.empty()
                ? std::string()
                : identity + "eval.few_shot=" + std::to_string(config.eval.few_shot) +
                      "\ntrain.examples_sha256=" + DatasetSha256(data.train_text) + "\n";
        std::optional<GenerationEval> stored_few_shot;
        if (!few_shot_identity.empty()) {
          stored_few_shot = ReadBaseEval(options.base_scores_dir, few_shot_identity);
        }
        state.few_shot = stored_few_shot ? std::move(*stored_few_shot) : EvaluateFewShot();
        if (!few_shot_identity.empty() && !stored_few_shot) {
          StoreBaseEval(options.base_scores_dir, few_shot_identity, state.few_shot);
        }
      }
      WriteText(run_dir / "run.toml", config.resolved_toml);
    }
    // What registers the training file as a dataset version when the adapter is registered.
    WriteText(run_dir / "dataset_rows.txt", data.dataset_rows);
    WriteText(run_dir / "data_quality.json", data.quality_report_json + "\n");
    progress.Say("data: " + data.quality_summary);
    if (!data.dropped.empty()) {
      std::string dropped;
      for (const auto& [reason, rows] : data.dropped) {
        dropped += (dropped.empty() ? "" : ", ") + std::to_string(rows) + " " + reason;
      }
      progress.Say("dataset.quality dropped " + dropped);
    }
  }

  // Trains from state.step to train.steps, checkpointing and reporting as it goes.
  void Loop() {
    // Training: example k of the stream is the k-th example any run of this config sees.
    ExampleStream stream(static_cast<int64_t>(data.train.size()),
                         static_cast<uint64_t>(train.seed));
    adapter->SetTraining(true);
    const int64_t resumed_at = state.step;
    const auto loop_start = Clock::now();
    const double seconds_before = state.train_seconds;
    int64_t tokens_this_process = 0;
    const int64_t per_step = train.batch_size * train.gradient_accumulation;
    while (state.step < train.steps) {
      const double lr = LearningRate(schedule, config.optimizer.lr, state.step,
                                     config.optimizer.warmup_steps, train.steps);
      std::vector<Batch> batches;
      for (int64_t micro = 0; micro < train.gradient_accumulation; ++micro) {
        std::vector<const TokenizedExample*> rows;
        for (int64_t b = 0; b < train.batch_size; ++b) {
          const int64_t k = state.step * per_step + micro * train.batch_size + b;
          rows.push_back(&data.train[stream.At(k)]);
        }
        batches.push_back(MakeBatch(rows, train.train_on_prompt));
      }
      const StepStats stats =
          TrainStep(*model, parameters, *optimizer, batches, lr, train.max_grad_norm, device);
      tokens_this_process += stats.tokens;
      state.tokens += stats.tokens;
      ++state.step;
      const auto [loss, grad_norm] = ReadStepNumbers(stats);
      if (!std::isfinite(loss)) {
        throw UserError("the loss became " + std::to_string(loss) + " at step " +
                        std::to_string(state.step) +
                        "; lower optimizer.lr or set train.max_grad_norm (the run directory " +
                        run_dir.string() + " keeps the last checkpoint)");
      }
      state.curve.push_back({state.step, loss, lr});
      const double elapsed = Seconds(Clock::now() - loop_start);
      state.train_seconds = seconds_before + elapsed;
      StepReport report{state.step, train.steps, loss,
                        lr,         grad_norm,   elapsed > 0 ? tokens_this_process / elapsed : 0.0,
                        elapsed};
      progress.Step(report, resumed_at);
      AppendJsonLine(metrics_path, {{"step", report.step},
                                    {"loss", report.loss},
                                    {"lr", report.lr},
                                    {"grad_norm", report.grad_norm},
                                    {"tokens_per_second", report.tokens_per_second}});
      if (options.on_step) options.on_step(report);
      if (train.eval_every > 0 && state.step % train.eval_every == 0 && state.step < train.steps &&
          !data.eval.empty()) {
        adapter->SetTraining(false);
        const double eval_loss =
            EvalLoss(*model, data.eval, train.batch_size, train.train_on_prompt);
        adapter->SetTraining(true);
        AppendJsonLine(metrics_path, {{"step", state.step}, {"eval_loss", eval_loss}});
        if (options.on_eval) options.on_eval(state.step, eval_loss);
      }
      const bool interrupted = InterruptRequested() != 0 && state.step < train.steps;
      if (train.checkpoint_every > 0 &&
          (state.step % train.checkpoint_every == 0 || state.step == train.steps || interrupted)) {
        SaveCheckpoint(run_dir, state, trainable, optimizer->State(), device);
      }
      if (interrupted) {
        throw Interrupted(InterruptRequested(),
                          "interrupted at step " + std::to_string(state.step) + " of " +
                              std::to_string(train.steps) +
                              (train.checkpoint_every > 0
                                   ? " (checkpoint in " + run_dir.string() +
                                         "); continue with the same tune train command and --resume"
                                   : "; train.checkpoint_every is 0, so no checkpoint was written "
                                     "and a rerun starts over"));
      }
    }
  }

  // The trained adapter's scores, its folder and summary.json.
  TrainSummary Finish() {
    TrainSummary summary;
    summary.base_scores = state.base.scores;
    summary.few_shot_scores = state.few_shot.scores;
    summary.few_shot = state.few_shot.scores.empty() ? 0 : config.eval.few_shot;
    if (!data.eval.empty()) progress.Say("evaluating the trained adapter");
    const GenerationEval tuned = Evaluate();
    summary.scores = tuned.scores;
    WriteEvalSamples(run_dir / "eval_samples.jsonl", data.eval_text, tuned.outputs,
                     state.base.outputs, state.few_shot.outputs);

    const fs::path adapter_dir = run_dir / "adapter";
    const fs::path temp_adapter = run_dir / ".tmp-adapter";
    fs::remove_all(temp_adapter);
    fs::create_directories(temp_adapter);
    adapter->Save(temp_adapter);
    fs::remove_all(adapter_dir);
    fs::rename(temp_adapter, adapter_dir);

    summary.curve = state.curve;
    summary.dataset_sha256 = data.dataset_sha256;
    summary.eval_sha256 = data.eval_sha256;
    summary.train_examples = static_cast<int64_t>(data.train.size());
    summary.eval_examples = static_cast<int64_t>(data.eval.size());
    summary.skipped_rows = static_cast<int64_t>(data.skipped.size());
    summary.data_quality = data.quality_summary;
    summary.dropped_rows = data.dropped;
    summary.train_seconds = state.train_seconds;
    summary.wall_seconds = Seconds(Clock::now() - wall_start);
    summary.tokens_per_second =
        state.train_seconds > 0 ? static_cast<double>(state.tokens) / state.train_seconds : 0.0;
    summary.trainable_parameters = trainable_parameters;
    summary.peak_memory_bytes = PeakResidentBytes();
    summary.peak_gpu_memory_bytes = PeakCudaMemoryBytes();
    summary.adapter_dir = adapter_dir;

    json curve = json::array();
    for (const CurvePoint& p : summary.curve) curve.push_back({p.step, p.loss, p.lr});
    WriteText(run_dir / "summary.json",
              json{{"name", config.name},
                   {"method", config.adapter.method},
                   {"scores", summary.scores},
                   {"base_scores", summary.base_scores},
                   {"few_shot_scores", summary.few_shot_scores},
                   {"few_shot", summary.few_shot},
                   {"dataset_sha256", summary.dataset_sha256},
                   {"eval_sha256", summary.eval_sha256},
                   {"train_examples", summary.train_examples},
                   {"eval_examples", summary.eval_examples},
                   {"skipped_rows", summary.skipped_rows},
                   {"data_quality", summary.data_quality},
                   {"dropped_rows", summary.dropped_rows},
                   {"train_seconds", summary.train_seconds},
                   {"wall_seconds", summary.wall_seconds},
                   {"tokens_per_second", summary.tokens_per_second},
                   {"trainable_parameters", summary.trainable_parameters},
                   {"peak_memory_bytes", summary.peak_memory_bytes},
                   {"peak_gpu_memory_bytes", summary.peak_gpu_memory_bytes},
                   {"config_sha256", config_sha256},
                   {"curve", curve}}
                      .dump(1) +
                  "\n");
    return summary;
  }

  const RunConfig& config;
  const PluginHost& host;
  const TrainOptions& options;
  Clock::time_point wall_start = Clock::now();  // the trial's own time, waiting for go left out
  const TrainConfig& train = config.train;
  const fs::path& run_dir = options.run_dir;
  const std::string config_sha256 = Sha256Hex(config.resolved_toml);
  std::optional<fs::path> checkpoint;  // the one to resume from
  const torch::Device device;
  ProgressLine progress;
  const LrSchedule schedule;
  std::unique_ptr<Model> model;
  PreparedData data;
  std::vector<int32_t> end_ids;
  std::unique_ptr<Adapter> adapter;
  NamedTensors trainable;
  std::vector<at::Tensor> parameters;
  int64_t trainable_parameters = 0;
  std::unique_ptr<Optimizer> optimizer;
  std::vector<std::unique_ptr<Metric>> metric_objects;
  std::vector<NamedMetric> metrics;
  RunState state;
  const fs::path metrics_path = run_dir / "metrics.jsonl";
};

TrainSummary TrainOrThrow(const RunConfig& config, const PluginHost& host,
                          const TrainOptions& options) {
  TrainingRun run(config, host, options);
  run.Begin();
  run.Loop();
  return run.Finish();
}

}  // namespace

std::optional<std::string> RunFolderConfig(const fs::path& run_dir) {
  std::ifstream in(run_dir / "run.toml", std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool RunFolderHoldsConfig(const fs::path& run_dir, const RunConfig& config) {
  const std::optional<std::string> held = RunFolderConfig(run_dir);
  return held && SameResolvedConfig(*held, config.resolved_toml);
}

TrainSummary ReadSummary(const fs::path& run_dir) {
  const fs::path path = run_dir / "summary.json";
  try {
    const json j = json::parse(std::ifstream(path));
    TrainSummary summary;
    summary.scores = j.at("scores").get<std::map<std::string, double>>();
    summary.base_scores = j.at("base_scores").get<std::map<std::string, double>>();
    summary.few_shot_scores =
        j.value("few_shot_scores", json::object()).get<std::map<std::string, double>>();
    summary.few_shot = j.value("few_shot", int64_t{0});
    for (const json& p : j.at("curve")) {
      summary.curve.push_back(
          {p.at(0).get<int64_t>(), p.at(1).get<double>(), p.at(2).get<double>()});
    }
    summary.dataset_sha256 = j.at("dataset_sha256").get<std::string>();
    summary.eval_sha256 = j.at("eval_sha256").get<std::string>();
    summary.train_examples = j.at("train_examples").get<int64_t>();
    summary.eval_examples = j.at("eval_examples").get<int64_t>();
    summary.skipped_rows = j.at("skipped_rows").get<int64_t>();
    summary.data_quality = j.value("data_quality", std::string());
    summary.dropped_rows =
        j.value("dropped_rows", json::object()).get<std::map<std::string, int64_t>>();
    summary.train_seconds = j.at("train_seconds").get<double>();
    summary.wall_seconds = j.at("wall_seconds").get<double>();
    summary.tokens_per_second = j.at("tokens_per_second").get<double>();
    summary.trainable_parameters = j.value("trainable_parameters", int64_t{0});
    summary.peak_memory_bytes = j.at("peak_memory_bytes").get<int64_t>();
    summary.peak_gpu_memory_bytes = j.value("peak_gpu_memory_bytes", int64_t{0});
    summary.adapter_dir = run_dir / "adapter";
    return summary;
  } catch (const json::exception& e) {
    throw UserError(path.string() + " is missing or unreadable (" + e.what() +
                    "); the run did not finish");
  }
}

TrainSummary Train(const RunConfig& config, const PluginHost& host, const TrainOptions& options) {
  // libtorch's errors carry a C++ backtrace and several lines; the user gets the first line of
  // the message, what to change, and where the partial run is.
  const std::string kept = "; " + options.run_dir.string() + " keeps what the run wrote";
  try {
    return TrainOrThrow(config, host, options);
  } catch (const OutOfMemory& e) {
    throw UserError(std::string("out of memory while training: ") + e.what() +
                    "; lower train.batch_size or train.seq_len" + kept);
  } catch (const std::bad_alloc&) {
    throw UserError("out of memory while training; lower train.batch_size or train.seq_len" + kept);
  } catch (const c10::Error& e) {
    std::string message = e.what_without_backtrace();
    message = message.substr(0, message.find('\n'));
    if (message.find("can't allocate memory") != std::string::npos ||
        message.find("out of memory") != std::string::npos) {
      throw UserError("out of memory while training: " + message +
                      "; lower train.batch_size or train.seq_len" + kept);
    }
    throw UserError("training failed in libtorch: " + message + kept);
  }
}

}  // namespace tune

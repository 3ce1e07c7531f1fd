#include "sweep/sweep.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include "config/run_config.h"
#include "orchestrate/run_folders.h"
#include "orchestrate/tracker.h"
#include "orchestrate/trial_runner.h"
#include "plugin_host/plugin_host.h"
#include "runtime/runtime_info.h"
#include "sweep/report.h"
#include "sweep/scheduler.h"
#include "sweep/search.h"
#include "sweep/sweep_state.h"
#include "train/lineage.h"
#include "util/counted.h"
#include "util/duration.h"
#include "util/error.h"
#include "util/log.h"
#include "util/sha256.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string TrialDirName(int64_t number) {
  char name[32];
  std::snprintf(name, sizeof(name), "trial-%03lld", static_cast<long long>(number));
  return name;
}

// The last line of `path` that starts with "error: ", without the prefix.
std::string LastErrorLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.starts_with("error: ") || line.starts_with("internal error: ")) last = line;
  }
  return last.empty() ? "" : last.substr(last.find(": ") + 2);
}

// The override a trial process is given for one parameter. A path the sweep chose is relative to
// the run file's folder, as written there; on the command line it would be read relative to the
// current folder, so it is passed as an absolute path.
std::string TrialOverride(const std::string& key, const OptionValue& value,
                          const fs::path& run_file) {
  const auto* path = std::get_if<std::string>(&value);
  if (!IsPathKey(key) || path == nullptr || fs::path(*path).is_absolute()) {
    return OverrideText(key, value);
  }
  return OverrideText(key,
                      fs::absolute(run_file.parent_path() / *path).lexically_normal().string());
}

// What the sweep's tables say: its objective, and each score's range for its intervals.
ReportContext ReportFor(const RunConfig& config) {
  ReportContext report{config.name, config.sweep->objective_metric,
                       config.sweep->objective_goal == MetricGoal::kMaximize};
  for (const auto& [name, traits] : config.metric_traits) {
    report.bounds[name] = {traits.range.min, traits.range.max};
  }
  return report;
}

// What the kernel can give without swapping (/proc/meminfo MemAvailable), in bytes; -1 if unknown.
int64_t AvailableMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  int64_t kib = 0;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return kib * 1024;
  }
  return -1;
}

// The size of a model directory's weight files: about what a readied trial holds beside the
// running ones.
int64_t ModelWeightBytes(const fs::path& dir) {
  int64_t bytes = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.path().extension() == ".safetensors") bytes += entry.file_size(error);
  }
  return bytes;
}

// ASHA's rungs: min_steps * eta^k steps, before the last step.
std::vector<int64_t> AshaRungs(const SweepConfig& sweep, int64_t steps) {
  std::vector<int64_t> rungs;
  if (sweep.early_stop != "asha") return rungs;
  for (int64_t step = sweep.early_stop_min_steps; step < steps; step *= sweep.early_stop_eta) {
    rungs.push_back(step);
  }
  return rungs;
}

// The sweep's folder and what it recorded: the newest of this name with --resume, else a new one.
// A new sweep that fails before its first trial starts leaves no folder behind (a later --resume
// would find it and have nothing to resume): call Keep() once trials run.
class SweepFolder {
 public:
  SweepFolder(const SweepOptions& options, const RunConfig& config, const std::string& sweep_sha256,
              const std::string& dataset_sha256) {
    const std::map<int64_t, fs::path> existing = NumberedFolders(options.root, config.name);
    if (options.resume) {
      if (existing.empty()) {
        throw UserError("no sweep named " + config.name + " under " + options.root.string() +
                        " to resume; run without --resume to start one");
      }
      dir_ = existing.rbegin()->second;
      state_ = LoadSweepState(dir_);
      if (!options.force && state_.sweep_sha256 != sweep_sha256) {
        throw UserError(dir_.string() + ": " + options.file.string() +
                        " (or its overrides) changed since this sweep started; resuming would "
                        "mix two sweeps (use --force to resume anyway, or start a new sweep)");
      }
      if (!options.force && state_.dataset_sha256 != dataset_sha256) {
        throw UserError(dir_.string() +
                        ": the dataset changed since this sweep started; use --force "
                        "to resume anyway, or start a new sweep");
      }
      kept_ = true;
      std::printf("resuming sweep %s in %s\n", state_.name.c_str(), dir_.c_str());
      return;
    }
    const int64_t number = existing.empty() ? 1 : existing.rbegin()->first + 1;
    state_.name = config.name + "-" + std::to_string(number);
    state_.sweep_sha256 = sweep_sha256;
    state_.dataset_sha256 = dataset_sha256;
    dir_ = options.root / state_.name;
    fs::create_directories(dir_);
    if (!existing.empty()) {
      std::printf("starting a new sweep %s (the earlier %s continues with --resume)\n",
                  state_.name.c_str(), existing.rbegin()->second.filename().c_str());
    } else {
      std::printf("starting sweep %s in %s\n", state_.name.c_str(), dir_.c_str());
    }
  }
  ~SweepFolder() {
    std::error_code ec;
    if (!kept_) fs::remove_all(dir_, ec);
  }
  SweepFolder(const SweepFolder&) = delete;
  SweepFolder& operator=(const SweepFolder&) = delete;

  const fs::path& dir() const { return dir_; }
  SweepState& state() { return state_; }
  void Keep() { kept_ = true; }

 private:
  fs::path dir_;
  SweepState state_;
  bool kept_ = false;
};

// Carries out the scheduler's decisions with a trial runner and feeds back what the trials say.
class SweepDriver {
 public:
  struct Setup {
    const SweepOptions* options = nullptr;
    const RunConfig* config = nullptr;
    fs::path dir;
    std::vector<std::string> gpus;  // the device of each slot; empty on the CPU
    int64_t threads = 0;            // train.threads for each trial; 0: the run file's
    int64_t eval_every = 0;         // train.eval_every for each trial; 0: the run file's
    std::string base_model_sha256;  // empty: each trial hashes its own
    int64_t model_weight_bytes = 0;
  };

  SweepDriver(Setup setup, SweepScheduler& scheduler, SweepState& state, Tracker& tracker,
              TrialRunner& runner)
      : s_(std::move(setup)),
        scheduler_(scheduler),
        state_(state),
        tracker_(tracker),
        runner_(runner),
        report_(ReportFor(*s_.config)) {}

  void Run() {
    const auto start = Clock::now();
    auto last_report = Clock::now();
    while (true) {
      Act(scheduler_.Next(AvailableMemoryBytes() > 2 * s_.model_weight_bytes));
      if (scheduler_.done()) break;
      std::vector<RunningTrial*> live;
      for (auto& [number, process] : processes_) live.push_back(process.trial.get());
      runner_.WaitForAny(live, std::chrono::milliseconds(200));
      for (const int64_t number : scheduler_.live()) Watch(number);
      if (Clock::now() - last_report > std::chrono::seconds(5)) {
        last_report = Clock::now();
        PrintProgress(SecondsSince(start));
      }
    }
  }

 private:
  struct Process {
    std::unique_ptr<RunningTrial> trial;
    Clock::time_point started;
    std::string device;    // the GPU it trains on; empty on the CPU
    std::string progress;  // the latest step, as the progress report shows it
  };

  void Save() { SaveSweepState(s_.dir, state_); }

  fs::path LogFile(int64_t number) const { return s_.dir / (TrialDirName(number) + ".log"); }

  void Act(const SweepScheduler::Actions& actions) {
    for (const SweepScheduler::Go& go : actions.go) Go(go.trial);
    for (const SweepScheduler::Launch& launch : actions.launch) {
      Start(launch.trial, launch.slot);
      if (!launch.ready_ahead) Go(launch.trial);
    }
    if (!actions.go.empty() || !actions.launch.empty()) Save();
  }

  void Start(int64_t number, int slot) {
    const Trial& trial = scheduler_.trial(number);
    const SweepOptions& options = *s_.options;
    const fs::path trial_dir = s_.dir / TrialDirName(number);
    TrialLaunch launch;
    launch.train_args = {"train", options.file.string()};
    launch.train_args.insert(launch.train_args.end(), options.overrides.begin(),
                             options.overrides.end());
    for (const auto& [key, value] : trial.assignment) {
      launch.train_args.push_back(TrialOverride(key, value, options.file));
    }
    if (state_.repeats > 1) {
      launch.train_args.push_back("train.seed=" +
                                  std::to_string(s_.config->train.seed + trial.repeat));
    }
    if (s_.threads > 0) launch.train_args.push_back("train.threads=" + std::to_string(s_.threads));
    if (s_.eval_every > 0) {
      launch.train_args.push_back("train.eval_every=" + std::to_string(s_.eval_every));
    }
    // An interrupted trial continues from its checkpoint; anything else starts clean.
    const bool has_checkpoint =
        fs::is_directory(trial_dir / "checkpoints") && !fs::is_empty(trial_dir / "checkpoints");
    launch.train_args.insert(launch.train_args.end(), {"-o", trial_dir.string(), "--base-scores",
                                                       (s_.dir / "base-scores").string(),
                                                       has_checkpoint ? "--resume" : "--restart"});
    launch.log = LogFile(number);
    if (slot >= 0 && !s_.gpus.empty()) {
      launch.cuda_visible_devices = s_.gpus[static_cast<size_t>(slot)];
    }
    processes_[number] = {runner_.Start(launch), Clock::now(), launch.cuda_visible_devices, ""};
  }

  // Lets a started trial train.
  void Go(int64_t number) {
    const Trial& trial = scheduler_.trial(number);
    Process& process = processes_.at(number);
    process.started = Clock::now();
    try {
      process.trial->channel().Send(TrialGo{state_.name, number, trial.configuration,
                                            ParameterText(trial.assignment), s_.base_model_sha256,
                                            tracker_.location()});
    } catch (const ChannelClosed&) {
      // It died while loading: Watch reaps it and says why.
    }
    std::string where;
    if (state_.repeats > 1) {
      where = " (configuration " + std::to_string(trial.configuration) + ", repeat " +
              std::to_string(trial.repeat + 1) + " of " + std::to_string(state_.repeats) + ")";
    }
    if (!process.device.empty()) where += " on GPU " + process.device;
    std::printf("trial %lld started%s: %s\n", static_cast<long long>(number), where.c_str(),
                ParameterText(trial.assignment).c_str());
    std::fflush(stdout);
  }

  // Reads what the trial said, and reaps it if it has ended.
  void Watch(int64_t number) {
    Process& process = processes_.at(number);
    const std::optional<TrialExit> exit = process.trial->Exited();
    std::string failure;
    try {
      for (const TrialMessage& message : process.trial->channel().TakeTrialMessages()) {
        Handle(number, message);
      }
    } catch (const UserError& e) {
      failure = e.what();
      process.trial->Kill();
    }
    if (!exit && failure.empty()) return;
    Ended(number, exit ? *exit : process.trial->Kill(), failure);
  }

  void Handle(int64_t number, const TrialMessage& message) {
    Process& process = processes_.at(number);
    if (Serve(number, message)) return;
    if (const auto* step = std::get_if<StepReport>(&message)) {
      process.progress =
          Format("step %lld/%lld loss %.4f %.0f tok/s", static_cast<long long>(step->step),
                 static_cast<long long>(step->total_steps), step->loss, step->tokens_per_second);
    } else if (const auto* evaluated = std::get_if<TrialEvaluated>(&message)) {
      const TrialVerdict verdict =
          scheduler_.Evaluated(number, evaluated->step, evaluated->eval_loss);
      try {
        process.trial->channel().Send(verdict);
      } catch (const ChannelClosed&) {
        // It died waiting: Watch reaps it.
      }
      if (!verdict.go_on) {
        std::printf("trial %lld %s\n", static_cast<long long>(number), verdict.reason.c_str());
        Save();
      }
    } else if (const auto* done = std::get_if<TrialDone>(&message)) {
      scheduler_.Finished(number, *done);
      const auto score = done->scores.find(report_.objective);
      std::printf("trial %lld finished in %s: %s = %s -> registered %s:v%lld\n",
                  static_cast<long long>(number), FormatDuration(done->wall_seconds).c_str(),
                  report_.objective.c_str(),
                  score == done->scores.end() ? "?" : Format("%.6f", score->second).c_str(),
                  s_.config->name.c_str(), static_cast<long long>(done->version));
      Save();
    }
  }

  // What only the sweep knows of a trial's run, as typed fields for the web view: its
  // configuration and seed, and what the sweep optimises.
  void AddTrialFields(int64_t number, RunInfo& info) const {
    const Trial& trial = scheduler_.trial(number);
    info.configuration = trial.configuration;
    info.seed = s_.config->train.seed + trial.repeat;
    if (const auto swept = trial.assignment.find("train.seed"); swept != trial.assignment.end()) {
      if (const auto* seed = std::get_if<int64_t>(&swept->second)) info.seed = *seed;
    }
    info.objective = report_.objective;
    info.objective_goal = report_.maximize ? "maximize" : "minimize";
  }

  // Carries out a trial's tracker call (trial_channel.h) in the sweep's tracker and answers it;
  // false for any other message. A refusal goes back to the trial, whose call throws it.
  bool Serve(int64_t number, const TrialMessage& message) {
    Trial& trial = scheduler_.trial(number);
    TrackerReply reply;
    try {
      if (const auto* create = std::get_if<TrackerCreateRun>(&message)) {
        RunInfo info = create->info;
        // A trial that fails before its go does not know yet which trial it is.
        if (!info.sweep) info.sweep = state_.name;
        if (!info.trial) info.trial = number;
        AddTrialFields(number, info);
        reply.run_id = tracker_.CreateRun(info);
        trial.run_id = reply.run_id;
        Save();
      } else if (const auto* metrics = std::get_if<TrackerLogMetrics>(&message)) {
        for (const MetricsAtStep& step : metrics->steps) {
          tracker_.LogMetrics(metrics->run_id, step.step, step.values);
        }
        return true;  // not answered
      } else if (const auto* registered = std::get_if<TrackerRegister>(&message)) {
        reply.version = tracker_.Register(registered->version);
      } else if (const auto* finish = std::get_if<TrackerFinishRun>(&message)) {
        tracker_.FinishRun(finish->run_id, finish->status, finish->error);
      } else {
        return false;
      }
    } catch (const UserError& e) {
      reply.error = e.what();
    }
    try {
      processes_.at(number).trial->channel().Send(reply);
    } catch (const ChannelClosed&) {
      // It died waiting: Watch reaps it.
    }
    return true;
  }

  // `failure`: a message the trial sent that could not be read, if that is why it ended.
  void Ended(int64_t number, const TrialExit& exit, std::string failure) {
    Trial& trial = scheduler_.trial(number);
    const double wall_seconds = SecondsSince(processes_.at(number).started);
    if (failure.empty() && !exit.ok()) {
      failure = exit.signaled ? exit.Describe() : LastErrorLine(LogFile(number));
      if (failure.empty()) failure = exit.Describe();
    }
    // A trial records its own failures; a killed one could not, and gets its run finished here.
    if (exit.signaled && trial.status != TrialStatus::kFinished &&
        trial.status != TrialStatus::kPruned) {
      if (trial.run_id.empty()) {
        RunInfo info{s_.config->name, state_.name, number, s_.config->resolved_toml};
        AddTrialFields(number, info);
        trial.run_id = tracker_.CreateRun(info);
      }
      tracker_.FinishRun(trial.run_id, RunStatus::kKilled, failure);
    }
    scheduler_.Ended(number, failure, wall_seconds);
    processes_.erase(number);
    if (trial.status == TrialStatus::kFailed) {
      std::printf("trial %lld failed: %s (log: %s)\n", static_cast<long long>(number),
                  trial.error.c_str(), LogFile(number).c_str());
    }
    std::fflush(stdout);
    Save();
  }

  void PrintProgress(double elapsed_seconds) {
    int64_t training = 0;
    for (const auto& [number, process] : processes_) training += !scheduler_.readied(number);
    std::printf("%s\n",
                ProgressLine(state_, report_, scheduler_.total_trials(), training, elapsed_seconds)
                    .c_str());
    for (const auto& [number, process] : processes_) {
      std::printf("  trial %lld: %s\n", static_cast<long long>(number),
                  scheduler_.readied(number) ? "next: loads now, starts when a slot frees"
                  : process.progress.empty() ? "starting"
                                             : process.progress.c_str());
    }
    std::fflush(stdout);
  }

  Setup s_;
  SweepScheduler& scheduler_;
  SweepState& state_;
  Tracker& tracker_;
  TrialRunner& runner_;
  ReportContext report_;
  std::map<int64_t, Process> processes_;
};

}  // namespace

std::vector<std::string> TrialGpus(int64_t count, const char* cuda_visible_devices) {
  std::vector<std::string> gpus;
  std::string list = cuda_visible_devices != nullptr ? cuda_visible_devices : "";
  for (int64_t i = 0; i < count; ++i) {
    if (cuda_visible_devices == nullptr) {
      gpus.push_back(std::to_string(i));
      continue;
    }
    const size_t comma = list.find(',');
    gpus.push_back(list.substr(0, comma));
    list = comma == std::string::npos ? "" : list.substr(comma + 1);
  }
  return gpus;
}

int RunSweep(const SweepOptions& options) {
  const RunFile run_file = RunFile::Read(options.file, options.overrides);
  PluginHost host;
  host.Load(PluginSearchPathOfThisProcess(run_file.PluginPaths()));
  const RunConfig config = run_file.Resolve(host);
  if (!config.sweep) {
    throw UserError(options.file.string() +
                    " has no [sweep] section; run one trial with tune train, or add [sweep]");
  }
  const SweepConfig& sweep = *config.sweep;
  std::string dataset_sha256 = FileSha256(config.dataset.path);
  if (config.dataset.eval_path) dataset_sha256 += FileSha256(*config.dataset.eval_path);
  SweepFolder folder(options, config, Sha256Hex(config.resolved_toml), dataset_sha256);
  SweepState& state = folder.state();
  state.repeats = sweep.repeats;

  // On CUDA each training trial gets a GPU of its own (CUDA_VISIBLE_DEVICES), so at most one
  // trial per visible GPU trains at once.
  const std::vector<std::string> gpus =
      config.train.device == "cpu"
          ? std::vector<std::string>()
          : TrialGpus(DescribeRuntime().cuda_devices, std::getenv("CUDA_VISIBLE_DEVICES"));
  SchedulePlan plan;
  plan.configurations = SweepConfigurations(sweep);
  if (sweep.method == "grid" && plan.configurations < GridSize(sweep)) {
    std::string varied;
    for (const std::string& key : GridKeysVaried(sweep, plan.configurations)) {
      varied += (varied.empty() ? "" : ", ") + key;
    }
    LogWarning("the grid has " + Grouped(GridSize(sweep)) + " points; sweep.max_trials = " +
               std::to_string(plan.configurations) + " runs the first ones, which vary " +
               (varied.empty() ? std::string("no parameter") : "only " + varied) +
               " (leave max_trials out to run every point)");
  } else if (sweep.method != "grid" && sweep.max_trials == 0) {
    LogInfo(sweep.method + " search over " + Counted(plan.configurations, "configuration") +
            " (sweep.max_trials's default for " + sweep.method + "; set it to run more)");
  }
  plan.repeats = sweep.repeats;
  plan.slots = std::min<int64_t>(sweep.parallel, plan.configurations * plan.repeats);
  if (!gpus.empty()) plan.slots = std::min<int64_t>(plan.slots, static_cast<int64_t>(gpus.size()));
  // A TPE trial waits for the results before it, and on CUDA the next GPU is not known yet.
  plan.ready_ahead = gpus.empty() && sweep.method != "tpe";
  plan.rungs = AshaRungs(sweep, config.train.steps);
  plan.eta = sweep.early_stop_eta;
  plan.objective = sweep.objective_metric;
  plan.maximize = sweep.objective_goal == MetricGoal::kMaximize;
  const auto seed = static_cast<uint64_t>(config.train.seed);
  SweepScheduler scheduler(
      plan, state, [&](int64_t index, const std::vector<FinishedTrial>& finished) -> Assignment {
        if (sweep.method == "grid") return GridTrial(sweep, index);
        if (sweep.method == "random") return RandomTrial(sweep, seed, index);
        return TpeTrial(sweep, seed, index, finished);
      });
  SaveSweepState(folder.dir(), state);

  const std::unique_ptr<Tracker> tracker = OpenRegistryTracker(config.registry);
  // The runs of trials a killed sweep left: they died with it.
  for (const Trial& t : state.trials) {
    if (t.status == TrialStatus::kRunning && !t.run_id.empty()) {
      tracker->FinishRun(t.run_id, RunStatus::kKilled, "the sweep was killed; resumed");
    }
  }
  const std::unique_ptr<TrialRunner> runner = MakeLocalProcessRunner();

  SweepDriver::Setup setup;
  setup.options = &options;
  setup.config = &config;
  setup.dir = folder.dir();
  setup.gpus = gpus;
  // Threads per trial so that parallel trials share the cores, unless the run file sets them.
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  if (config.train.threads == 0) setup.threads = std::max<int64_t>(1, cores / plan.slots);
  if (!plan.rungs.empty() && config.train.eval_every == 0) {
    setup.eval_every = sweep.early_stop_min_steps;
  }
  bool model_swept = false;
  for (const SweepParameter& parameter : sweep.parameters)
    model_swept |= parameter.path == "model.path";
  if (!model_swept) setup.base_model_sha256 = ModelDirectorySha256(config.model.path);
  setup.model_weight_bytes = ModelWeightBytes(config.model.path);

  folder.Keep();
  SweepDriver(setup, scheduler, state, *tracker, *runner).Run();

  const ReportContext report = ReportFor(config);
  std::printf("%s", RankingTable(state, report).c_str());
  std::printf("sweep %s: %s\n", state.name.c_str(), folder.dir().c_str());
  const bool any_failed = std::any_of(state.trials.begin(), state.trials.end(), [](const Trial& t) {
    return t.status == TrialStatus::kFailed;
  });
  return any_failed ? 1 : 0;
}

}  // namespace tune

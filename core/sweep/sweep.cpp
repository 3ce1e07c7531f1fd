#include "sweep/sweep.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include "config/run_config.h"
#include "orchestrate/lineage.h"
#include "orchestrate/remote_channel.h"
#include "orchestrate/run_folders.h"
#include "orchestrate/slurm.h"
#include "orchestrate/slurm_runner.h"
#include "orchestrate/tracker.h"
#include "orchestrate/trial_runner.h"
#include "plugin_host/plugin_host.h"
#include "runtime/runtime_info.h"
#include "sweep/report.h"
#include "sweep/scheduler.h"
#include "sweep/search.h"
#include "sweep/sweep_driver.h"
#include "sweep/sweep_state.h"
#include "util/counted.h"
#include "util/duration.h"
#include "util/error.h"
#include "util/log.h"
#include "util/sha256.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

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

// The tune executable: trials run this process's own.
std::string ThisExecutable() {
  char self[4096];
  const ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) throw UserError("cannot find the tune executable (/proc/self/exe)");
  return std::string(self, static_cast<size_t>(length));
}

struct LoadedSweep {
  PluginHost host;
  RunConfig config;
  std::string sweep_sha256;
  std::string dataset_sha256;
};

std::unique_ptr<LoadedSweep> LoadSweep(const fs::path& file,
                                       const std::vector<std::string>& overrides) {
  auto loaded = std::make_unique<LoadedSweep>();
  const RunFile run_file = RunFile::Read(file, overrides);
  loaded->host.Load(PluginSearchPathOfThisProcess(run_file.PluginPaths()));
  loaded->config = run_file.Resolve(loaded->host);
  const RunConfig& config = loaded->config;
  if (!config.sweep) {
    throw UserError(file.string() +
                    " has no [sweep] section; run one trial with tune train, or add [sweep]");
  }
  loaded->sweep_sha256 = Sha256Hex(config.resolved_toml);
  loaded->dataset_sha256 = FileSha256(config.dataset.path);
  if (config.dataset.eval_path) loaded->dataset_sha256 += FileSha256(*config.dataset.eval_path);
  return loaded;
}

// The sweep's folder and what it recorded: the one named by --attach, the newest of this name
// with --resume, else a new one. A new sweep that fails before its first trial starts leaves no
// folder behind (a later --resume would find it and have nothing to resume): call Keep() once
// trials run.
class SweepFolder {
 public:
  SweepFolder(const SweepOptions& options, const LoadedSweep& sweep) {
    const RunConfig& config = sweep.config;
    const std::map<int64_t, fs::path> existing = NumberedFolders(options.root, config.name);
    if (options.resume) {
      if (existing.empty()) {
        throw UserError("no sweep named " + config.name + " under " + options.root.string() +
                        " to resume; run without --resume to start one");
      }
      dir_ = options.attach.empty() ? existing.rbegin()->second : options.root / options.attach;
      state_ = LoadSweepState(dir_);
      if (!options.force && state_.sweep_sha256 != sweep.sweep_sha256) {
        throw UserError(dir_.string() + ": " + options.file.string() +
                        " (or its overrides) changed since this sweep started; resuming would "
                        "mix two sweeps (use --force to resume anyway, or start a new sweep)");
      }
      if (!options.force && state_.dataset_sha256 != sweep.dataset_sha256) {
        throw UserError(dir_.string() +
                        ": the dataset changed since this sweep started; use --force "
                        "to resume anyway, or start a new sweep");
      }
      kept_ = true;
      return;
    }
    const int64_t number = existing.empty() ? 1 : existing.rbegin()->first + 1;
    state_.name = config.name + "-" + std::to_string(number);
    state_.sweep_sha256 = sweep.sweep_sha256;
    state_.dataset_sha256 = sweep.dataset_sha256;
    state_.file = fs::absolute(options.file).lexically_normal().string();
    state_.overrides = options.overrides;
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

bool IsSlurm(const RunConfig& config) { return config.sweep->executor.kind == "slurm"; }

// Where the sweep records, as its trials are told (TrialGo::registry) and a trial that lost its
// driver opens it (OpenRegistryTracker): a Slurm task runs from elsewhere, so a folder is made
// absolute; a URL (scheme://) is left as it is.
RegistryConfig RegistryForTrials(const RunConfig& config) {
  RegistryConfig registry = config.registry;
  if (IsSlurm(config) && !Registry::IsUrl(registry.location)) {
    registry.location = fs::absolute(registry.location).lexically_normal().string();
  }
  return registry;
}

SchedulePlan PlanFor(const RunConfig& config, const std::vector<std::string>& gpus) {
  const SweepConfig& sweep = *config.sweep;
  SchedulePlan plan;
  plan.configurations = SweepConfigurations(sweep);
  plan.repeats = sweep.repeats;
  const int64_t total = plan.configurations * plan.repeats;
  if (IsSlurm(config)) {
    // Slurm holds what waits and runs array_parallelism at once (--array=...%N). A TPE trial
    // waits for the results before it, so only as many are handed over as may run.
    plan.slots = sweep.method == "tpe" ? std::min(sweep.executor.array_parallelism, total) : total;
    plan.max_retries = sweep.executor.max_retries;
  } else {
    plan.slots = std::min<int64_t>(sweep.parallel, total);
    if (!gpus.empty()) plan.slots = std::min<int64_t>(plan.slots, std::ssize(gpus));
    // A TPE trial waits for the results before it, and on CUDA the next GPU is not known yet.
    plan.ready_ahead = gpus.empty() && sweep.method != "tpe";
  }
  plan.rungs = AshaRungs(sweep, config.train.steps);
  plan.eta = sweep.early_stop_eta;
  plan.objective = sweep.objective_metric;
  plan.maximize = sweep.objective_goal == MetricGoal::kMaximize;
  return plan;
}

void WarnAboutTheSearch(const SweepConfig& sweep, int64_t configurations) {
  if (sweep.method == "grid" && configurations < GridSize(sweep)) {
    std::string varied;
    for (const std::string& key : GridKeysVaried(sweep, configurations)) {
      varied += (varied.empty() ? "" : ", ") + key;
    }
    LogWarning("the grid has " + Grouped(GridSize(sweep)) + " points; sweep.max_trials = " +
               std::to_string(configurations) + " runs the first ones, which vary " +
               (varied.empty() ? std::string("no parameter") : "only " + varied) +
               " (leave max_trials out to run every point)");
  } else if (sweep.method != "grid" && sweep.max_trials == 0) {
    LogInfo(sweep.method + " search over " + Counted(configurations, "configuration") +
            " (sweep.max_trials's default for " + sweep.method + "; set it to run more)");
  }
}

int ExitCode(const SweepState& state) {
  const bool any_failed = std::any_of(state.trials.begin(), state.trials.end(), [](const Trial& t) {
    return t.status == TrialStatus::kFailed;
  });
  return any_failed ? 1 : 0;
}

// Runs the sweep's trials from here until the scheduler is done, then prints the ranking.
int Drive(const SweepOptions& options, const LoadedSweep& sweep, SweepFolder& folder) {
  const RunConfig& config = sweep.config;
  const SweepConfig& sweep_config = *config.sweep;
  SweepState& state = folder.state();
  state.repeats = sweep_config.repeats;
  state.finished = false;
  // Locally, on CUDA, each training trial gets a GPU of its own (CUDA_VISIBLE_DEVICES), so at most
  // one trial per visible GPU trains at once; Slurm gives each task its own (sweep.executor.gres).
  const std::vector<std::string> gpus =
      config.train.device == "cpu" || IsSlurm(config)
          ? std::vector<std::string>()
          : TrialGpus(DescribeRuntime().cuda_devices, std::getenv("CUDA_VISIBLE_DEVICES"));
  const SchedulePlan plan = PlanFor(config, gpus);
  WarnAboutTheSearch(sweep_config, plan.configurations);
  const auto seed = static_cast<uint64_t>(config.train.seed);
  SweepScheduler scheduler(
      plan, state, [&](int64_t index, const std::vector<FinishedTrial>& finished) -> Assignment {
        if (sweep_config.method == "grid") return GridTrial(sweep_config, index);
        if (sweep_config.method == "random") return RandomTrial(sweep_config, seed, index);
        return TpeTrial(sweep_config, seed, index, finished);
      });
  SaveSweepState(folder.dir(), state);

  const std::unique_ptr<Tracker> tracker = OpenRegistryTracker(RegistryForTrials(config));
  std::unique_ptr<TrialRunner> runner;
  if (IsSlurm(config)) {
    SlurmRunnerSetup setup;
    setup.executor = sweep_config.executor;
    setup.sweep = state.name;
    setup.dir = fs::absolute(folder.dir());
    setup.tune = ThisExecutable();
    runner = MakeSlurmRunner(std::move(setup), MakeSlurmCommands());
  } else {
    runner = MakeLocalProcessRunner();
  }

  DriverSetup setup;
  // A Slurm task runs elsewhere, from another folder: it is given absolute paths.
  setup.file = IsSlurm(config) ? fs::absolute(options.file) : options.file;
  setup.overrides = options.overrides;
  setup.config = &config;
  setup.dir = IsSlurm(config) ? fs::absolute(folder.dir()) : folder.dir();
  setup.gpus = gpus;
  // Threads per trial: a Slurm task's cores, or the cores shared out between parallel local
  // trials, unless the run file sets them.
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  if (config.train.threads == 0) {
    setup.threads = IsSlurm(config) ? sweep_config.executor.cpus_per_task
                                    : std::max<int64_t>(1, cores / plan.slots);
  }
  if (!plan.rungs.empty() && config.train.eval_every == 0) {
    setup.eval_every = sweep_config.early_stop_min_steps;
  }
  bool model_swept = false;
  for (const SweepParameter& parameter : sweep_config.parameters) {
    model_swept |= parameter.path == "model.path";
  }
  if (!model_swept) setup.base_model_sha256 = ModelDirectorySha256(config.model.path);
  setup.model_weight_bytes = ModelWeightBytes(config.model.path);
  setup.started = [&] { folder.Keep(); };
  // A resumed sweep has run trials before: it is real already.
  if (!state.trials.empty()) folder.Keep();

  SweepDriver(setup, scheduler, state, *tracker, *runner).Run();
  state.finished = true;
  SaveSweepState(folder.dir(), state);

  std::printf("%s", RankingTable(state, ReportFor(config)).c_str());
  std::printf("sweep %s: %s\n", state.name.c_str(), folder.dir().c_str());
  return ExitCode(state);
}

// Whether the sweep in `dir` has a driver that answers (a detached one, or another attach).
bool DriverRuns(const fs::path& dir) {
  const fs::path file = DriverFile(fs::absolute(dir));
  if (!fs::exists(file)) return false;
  try {
    return DriverAnswers(ReadDriverAddress(file));
  } catch (const UserError&) {
    return false;
  }
}

// Prints the progress of a sweep another process drives, from its sweep.json, until it finishes
// (then its ranking) or its driver goes away (then this process takes over: false).
bool Follow(const fs::path& dir, const LoadedSweep& sweep, int* exit_code) {
  const ReportContext report = ReportFor(sweep.config);
  const SchedulePlan plan = PlanFor(sweep.config, {});
  std::printf(
      "sweep %s has a driver running; following it (Ctrl-C stops following, not the "
      "sweep)\n",
      dir.filename().c_str());
  std::fflush(stdout);
  const auto start = Clock::now();
  auto last_report = Clock::time_point{};
  while (true) {
    const SweepState state = LoadSweepState(dir);
    if (state.finished) {
      std::printf("%s", RankingTable(state, report).c_str());
      std::printf("sweep %s: %s\n", state.name.c_str(), dir.c_str());
      *exit_code = ExitCode(state);
      return true;
    }
    if (!DriverRuns(dir)) {
      std::printf("the driver of sweep %s has gone; driving it from here\n", state.name.c_str());
      std::fflush(stdout);
      return false;
    }
    if (Clock::now() - last_report > std::chrono::seconds(5)) {
      last_report = Clock::now();
      int64_t running = 0;
      for (const Trial& t : state.trials) running += t.status == TrialStatus::kRunning;
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      std::printf("%s\n",
                  ProgressLine(state, report, plan.configurations * plan.repeats, running, elapsed)
                      .c_str());
      std::fflush(stdout);
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

// Submits the sweep's driver as a Slurm job that runs `tune sweep --attach NAME` here.
void SubmitDriver(SweepFolder& folder, const RunConfig& config) {
  const ExecutorConfig& executor = config.sweep->executor;
  const fs::path dir = fs::absolute(folder.dir());
  fs::create_directories(dir / "slurm");
  const fs::path file = dir / "slurm" / "driver.sh";
  {
    std::ofstream out(file, std::ios::trunc);
    out << "#!/bin/bash\n"
        << "# The driver of tune sweep " << folder.state().name
        << " as a Slurm job (tune sweep --detach). Its trials outlive it; if it ends first,\n"
        << "# `tune sweep --attach " << folder.state().name << "` takes over.\n"
        << "#SBATCH --job-name=tune-driver-" << folder.state().name << "\n"
        << "#SBATCH --output=" << (dir / "driver.log").string() << "\n"
        << "#SBATCH --open-mode=append\n"
        << "#SBATCH --chdir=" << fs::current_path().string() << "\n"
        << "#SBATCH --cpus-per-task=1\n";
    if (!executor.partition.empty()) out << "#SBATCH --partition=" << executor.partition << "\n";
    for (const std::string& arg : executor.sbatch_args) out << "#SBATCH " << arg << "\n";
    out << "exec '" << ThisExecutable() << "' sweep --attach '" << folder.state().name << "'\n";
    if (!out.flush()) throw UserError("cannot write " + file.string() + " (disk full?)");
  }
  const std::string job = MakeSlurmCommands()->Submit(file);
  std::printf(
      "sweep %s: its driver is Slurm job %s (log: %s); follow it with `tune sweep "
      "--attach %s`\n",
      folder.state().name.c_str(), job.c_str(), (dir / "driver.log").c_str(),
      folder.state().name.c_str());
}

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

int RunSweep(const SweepOptions& given) {
  SweepOptions options = given;
  if (!options.attach.empty()) {
    const fs::path dir = options.root / options.attach;
    if (!fs::exists(dir / "sweep.json")) {
      throw UserError("no sweep " + options.attach + " under " + options.root.string() +
                      " (run tune sweep --attach in the folder the sweep was started from)");
    }
    const SweepState recorded = LoadSweepState(dir);
    if (recorded.file.empty()) {
      throw UserError(dir.string() +
                      "/sweep.json does not say which file started the sweep (an "
                      "older tune's); continue it with tune sweep FILE --resume");
    }
    options.file = recorded.file;
    options.overrides = recorded.overrides;
    options.resume = true;
  }
  const std::unique_ptr<LoadedSweep> sweep = LoadSweep(options.file, options.overrides);
  const RunConfig& config = sweep->config;
  if (options.detach && !IsSlurm(config)) {
    throw UserError("--detach needs [sweep.executor] kind = \"slurm\" in " + options.file.string() +
                    ": a local sweep's trials end with it");
  }
  // Before anything is made: what Slurm would refuse.
  if (IsSlurm(config)) {
    CheckSlurmExecutor(config.sweep->executor,
                       SweepConfigurations(*config.sweep) * config.sweep->repeats);
  }
  SweepFolder folder(options, *sweep);
  if (options.detach) {
    SaveSweepState(folder.dir(), folder.state());
    SubmitDriver(folder, config);
    folder.Keep();
    return 0;
  }
  if (options.resume) {
    if (IsSlurm(config) && DriverRuns(folder.dir())) {
      int exit_code = 0;
      if (Follow(folder.dir(), *sweep, &exit_code)) return exit_code;
      folder.state() = LoadSweepState(folder.dir());
    }
    std::printf("resuming sweep %s in %s\n", folder.state().name.c_str(), folder.dir().c_str());
  }
  return Drive(options, *sweep, folder);
}

}  // namespace tune

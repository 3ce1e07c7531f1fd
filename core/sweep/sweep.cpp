#include "sweep/sweep.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "config/run_config.h"
#include "plugin_host/plugin_host.h"
#include "registry/registry.h"
#include "runtime/runtime_info.h"
#include "sweep/search.h"
#include "train/lineage.h"
#include "train/trainer.h"
#include "util/duration.h"
#include "util/error.h"
#include "util/sha256.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

enum class TrialStatus { kPending, kRunning, kFinished, kFailed, kPruned };

const char* StatusName(TrialStatus status) {
  switch (status) {
    case TrialStatus::kPending:
      return "pending";
    case TrialStatus::kRunning:
      return "running";
    case TrialStatus::kFinished:
      return "finished";
    case TrialStatus::kFailed:
      return "failed";
    case TrialStatus::kPruned:
      return "pruned";
  }
  return "pending";
}

TrialStatus StatusFromName(const std::string& name) {
  if (name == "running") return TrialStatus::kRunning;
  if (name == "finished") return TrialStatus::kFinished;
  if (name == "failed") return TrialStatus::kFailed;
  if (name == "pruned") return TrialStatus::kPruned;
  return TrialStatus::kPending;
}

struct Trial {
  int64_t number = 0;  // 1-based
  std::vector<std::string> overrides;
  Assignment assignment;
  TrialStatus status = TrialStatus::kPending;
  int64_t version = 0;
  std::map<std::string, double> scores;  // every score of a finished trial, the objective's too
  std::optional<double> base_objective;  // the base model's score on the objective
  double wall_seconds = 0.0;
  std::string error;
  int64_t pruned_at = 0;                  // step at which early stopping ended it
  std::map<int64_t, double> rung_losses;  // eval loss at each early-stopping rung it reached
  // While running:
  pid_t pid = 0;
  int pidfd = -1;  // readable once pid has exited; -1 where the kernel has no pidfd_open
  // Our end of its control socket (tune train --start-fd): one byte lets it start, or go on after
  // an intermediate eval it reported there.
  int control_fd = -1;
  bool standby = false;  // started and prepared, waiting for its first byte
  int gpu = -1;          // slot of the GPU it runs on, -1 on CPU
  std::string run_id;
  std::streamoff metrics_offset = 0;
  std::string progress;  // the latest step line
  Clock::time_point started;
};

struct SweepState {
  std::string name;  // <sweep name>-<N>
  std::string sweep_sha256;
  std::string dataset_sha256;
  std::vector<Trial> trials;
};

json AssignmentJson(const Assignment& assignment) {
  json out = json::object();
  for (const auto& [key, value] : assignment) {
    std::visit(
        [&](const auto& v) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(v)>, std::monostate>) out[key] = v;
        },
        value);
  }
  return out;
}

Assignment AssignmentFromJson(const json& j) {
  Assignment out;
  for (const auto& [key, value] : j.items()) {
    if (value.is_boolean()) {
      out[key] = value.get<bool>();
    } else if (value.is_number_integer()) {
      out[key] = value.get<int64_t>();
    } else if (value.is_number()) {
      out[key] = value.get<double>();
    } else if (value.is_string()) {
      out[key] = value.get<std::string>();
    } else if (value.is_array()) {
      out[key] = value.get<std::vector<std::string>>();
    }
  }
  return out;
}

void SaveState(const fs::path& dir, const SweepState& state) {
  json trials = json::array();
  for (const Trial& t : state.trials) {
    json j = {{"number", t.number},
              {"overrides", t.overrides},
              {"parameters", AssignmentJson(t.assignment)},
              {"status", StatusName(t.status)},
              {"version", t.version},
              {"wall_seconds", t.wall_seconds},
              {"error", t.error},
              {"pruned_at", t.pruned_at}};
    json rungs = json::object();
    for (const auto& [step, loss] : t.rung_losses) rungs[std::to_string(step)] = loss;
    j["rung_losses"] = rungs;
    if (t.base_objective) j["base_objective"] = *t.base_objective;
    j["scores"] = t.scores;
    trials.push_back(std::move(j));
  }
  const json root = {{"name", state.name},
                     {"sweep_sha256", state.sweep_sha256},
                     {"dataset_sha256", state.dataset_sha256},
                     {"trials", trials}};
  const fs::path temp = dir / "sweep.json.tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << root.dump(1) << '\n';
    if (!out.flush()) throw UserError("cannot write " + temp.string() + " (disk full?)");
  }
  fs::rename(temp, dir / "sweep.json");
}

SweepState LoadState(const fs::path& dir) {
  const fs::path path = dir / "sweep.json";
  try {
    const json root = json::parse(std::ifstream(path));
    SweepState state;
    state.name = root.at("name").get<std::string>();
    state.sweep_sha256 = root.at("sweep_sha256").get<std::string>();
    state.dataset_sha256 = root.at("dataset_sha256").get<std::string>();
    for (const json& j : root.at("trials")) {
      Trial t;
      t.number = j.at("number").get<int64_t>();
      t.overrides = j.at("overrides").get<std::vector<std::string>>();
      t.assignment = AssignmentFromJson(j.at("parameters"));
      t.status = StatusFromName(j.at("status").get<std::string>());
      t.version = j.at("version").get<int64_t>();
      t.wall_seconds = j.at("wall_seconds").get<double>();
      t.error = j.at("error").get<std::string>();
      t.pruned_at = j.value("pruned_at", int64_t{0});
      if (j.contains("rung_losses")) {
        for (const auto& [step, loss] : j["rung_losses"].items()) {
          t.rung_losses[std::stoll(step)] = loss.get<double>();
        }
      }
      if (j.contains("base_objective")) t.base_objective = j["base_objective"].get<double>();
      t.scores = j.value("scores", std::map<std::string, double>());
      state.trials.push_back(std::move(t));
    }
    return state;
  } catch (const json::exception& e) {
    throw UserError(path.string() + " is unreadable (" + e.what() +
                    "); start a new sweep without --resume");
  }
}

// <root>/<name>-<N> directories of this sweep name, by N.
std::map<int64_t, fs::path> ExistingSweeps(const fs::path& root, const std::string& name) {
  std::map<int64_t, fs::path> found;
  if (!fs::is_directory(root)) return found;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string dir = entry.path().filename().string();
    if (!dir.starts_with(name + "-")) continue;
    const std::string suffix = dir.substr(name.size() + 1);
    if (suffix.empty() || suffix.find_first_not_of("0123456789") != std::string::npos) continue;
    found[std::stoll(suffix)] = entry.path();
  }
  return found;
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

std::string ParameterText(const Trial& trial) {
  std::string text;
  for (const auto& [key, value] : trial.assignment) {
    if (!text.empty()) text += ' ';
    text += OverrideText(key, value);
  }
  return text;
}

// `cuda_visible_devices`: the value the child sees, or empty to leave the variable alone.
// `start_fd` (close-on-exec in the parent) stays open in the child.
// A trial dies with the sweep (SIGKILL when the sweep exits, however it exits): without its sweep
// nobody registers it, and a resumed sweep would race it for its directory.
pid_t SpawnTrial(const std::vector<std::string>& argv, const fs::path& log,
                 const std::string& cuda_visible_devices, int start_fd) {
  // Everything the child needs is made before fork: between fork and exec a child of a
  // multithreaded process may only make async-signal-safe calls (no allocation: another thread
  // may have held the allocator's lock at the fork).
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (!cuda_visible_devices.empty() &&
        std::string_view(*entry).starts_with("CUDA_VISIBLE_DEVICES=")) {
      continue;
    }
    environment.emplace_back(*entry);
  }
  if (!cuda_visible_devices.empty())
    environment.push_back("CUDA_VISIBLE_DEVICES=" + cuda_visible_devices);
  std::vector<char*> envp;
  for (std::string& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  const std::string log_path = log.string();

  const pid_t sweep = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw UserError("cannot start a trial process: fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != sweep) _exit(127);  // the sweep died before prctl took effect
    fcntl(start_fd, F_SETFD, 0);
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  return pid;
}

// Reaps the trial's process if it has exited (with `block`, once it exits) and releases its
// pidfd; returns its wait status, or nullopt while it still runs.
std::optional<int> Reap(Trial& trial, bool block) {
  int status = 0;
  if (waitpid(trial.pid, &status, block ? 0 : WNOHANG) != trial.pid) return std::nullopt;
  if (trial.pidfd >= 0) close(trial.pidfd);
  if (trial.control_fd >= 0) close(trial.control_fd);
  trial.pid = 0;
  trial.pidfd = -1;
  trial.control_fd = -1;
  trial.standby = false;
  return status;
}

// Sleeps until a trial exits or reports an intermediate eval, or `timeout` passes, so the sweep
// answers at once rather than at its next poll.
void WaitForTrials(const std::vector<Trial>& trials, std::chrono::milliseconds timeout) {
  std::vector<pollfd> fds;
  for (const Trial& t : trials) {
    if (t.pid == 0) continue;
    fds.push_back({t.pidfd, POLLIN, 0});  // poll skips negative descriptors
    if (!t.standby) fds.push_back({t.control_fd, POLLIN, 0});
  }
  poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
}

// Sends the byte that lets the trial start or go on.
void LetTrialGoOn(const Trial& trial) {
  const char byte = 1;
  // MSG_NOSIGNAL: a trial that already died is reaped and failed by the loop, not by SIGPIPE.
  send(trial.control_fd, &byte, 1, MSG_NOSIGNAL);
}

// How many intermediate evals the trial has reported since the last call (one line each).
int64_t TakeEvalReports(const Trial& trial) {
  int64_t reports = 0;
  char buffer[256];
  ssize_t got;
  while ((got = recv(trial.control_fd, buffer, sizeof(buffer), MSG_DONTWAIT)) > 0) {
    reports += std::count(buffer, buffer + got, '\n');
  }
  return reports;
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
  const auto sweep_start = Clock::now();
  const RunFile run_file = RunFile::Read(options.file, options.overrides);
  PluginHost host;
  host.Load(PluginSearchPathOfThisProcess(run_file.PluginPaths()));
  const RunConfig config = run_file.Resolve(host);
  if (!config.sweep) {
    throw UserError(options.file.string() +
                    " has no [sweep] section; run one trial with tune train, or add [sweep]");
  }
  const SweepConfig& sweep = *config.sweep;
  const std::string sweep_sha256 = Sha256Hex(config.resolved_toml);
  std::string dataset_sha256 = FileSha256(config.dataset.path);
  if (config.dataset.eval_path) dataset_sha256 += FileSha256(*config.dataset.eval_path);

  // Which sweep directory.
  const std::map<int64_t, fs::path> existing = ExistingSweeps(options.root, config.name);
  fs::path dir;
  SweepState state;
  // A new sweep that fails before its scheduling loop starts leaves no folder behind (a later
  // --resume would find it and have nothing to resume).
  struct RemoveIfNotStarted {
    fs::path dir;
    bool started = false;
    ~RemoveIfNotStarted() {
      std::error_code ec;
      if (!started && !dir.empty()) fs::remove_all(dir, ec);
    }
  } new_sweep;
  if (options.resume) {
    if (existing.empty()) {
      throw UserError("no sweep named " + config.name + " under " + options.root.string() +
                      " to resume; run without --resume to start one");
    }
    dir = existing.rbegin()->second;
    state = LoadState(dir);
    if (!options.force && state.sweep_sha256 != sweep_sha256) {
      throw UserError(dir.string() + ": " + options.file.string() +
                      " (or its overrides) changed since this sweep started; resuming would mix "
                      "two sweeps (use --force to resume anyway, or start a new sweep)");
    }
    if (!options.force && state.dataset_sha256 != dataset_sha256) {
      throw UserError(dir.string() +
                      ": the dataset changed since this sweep started; use --force "
                      "to resume anyway, or start a new sweep");
    }
    std::printf("resuming sweep %s in %s\n", state.name.c_str(), dir.c_str());
  } else {
    const int64_t number = existing.empty() ? 1 : existing.rbegin()->first + 1;
    state.name = config.name + "-" + std::to_string(number);
    dir = options.root / state.name;
    fs::create_directories(dir);
    new_sweep.dir = dir;
    state.sweep_sha256 = sweep_sha256;
    state.dataset_sha256 = dataset_sha256;
    if (!existing.empty()) {
      std::printf("starting a new sweep %s (the earlier %s continues with --resume)\n",
                  state.name.c_str(), existing.rbegin()->second.filename().c_str());
    } else {
      std::printf("starting sweep %s in %s\n", state.name.c_str(), dir.c_str());
    }
  }
  // ASHA (Li et al. 2020): rungs at min_steps * eta^k steps; a trial that reaches a rung
  // continues only if its eval loss there is among the best 1/eta of all trials that reached it.
  std::vector<int64_t> rungs;
  if (sweep.early_stop == "asha") {
    for (int64_t step = sweep.early_stop_min_steps; step < config.train.steps;
         step *= sweep.early_stop_eta) {
      rungs.push_back(step);
    }
  }

  const bool maximize = sweep.objective_goal == MetricGoal::kMaximize;
  // A trial's score on the objective; none unless it finished and measured it.
  auto objective = [&](const Trial& t) -> std::optional<double> {
    const auto it = t.scores.find(sweep.objective_metric);
    if (it == t.scores.end()) return std::nullopt;
    return it->second;
  };
  const auto seed = static_cast<uint64_t>(config.train.seed);
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  // On CUDA each running trial gets a GPU of its own (CUDA_VISIBLE_DEVICES), so at most one trial
  // per visible GPU runs at once.
  const std::vector<std::string> gpus =
      config.train.device == "cpu"
          ? std::vector<std::string>()
          : TrialGpus(DescribeRuntime().cuda_devices, std::getenv("CUDA_VISIBLE_DEVICES"));
  int64_t parallel = std::min<int64_t>(sweep.parallel, sweep.max_trials);
  if (!gpus.empty()) parallel = std::min<int64_t>(parallel, static_cast<int64_t>(gpus.size()));
  // Threads per trial so that parallel trials share the cores, unless the run file sets them.
  const int64_t threads = std::max<int64_t>(1, cores / parallel);

  // The trial list: the whole grid up front; random and tpe one at a time as slots free up.
  if (state.trials.empty() && sweep.method == "grid") {
    for (Assignment& assignment : GridTrials(sweep)) {
      Trial trial;
      trial.number = static_cast<int64_t>(state.trials.size()) + 1;
      trial.assignment = std::move(assignment);
      state.trials.push_back(std::move(trial));
    }
  }
  auto next_assignment = [&](int64_t index) {
    if (sweep.method == "random") return RandomTrial(sweep, seed, index);
    std::vector<FinishedTrial> finished;
    for (const Trial& t : state.trials) {
      if (const std::optional<double> score = objective(t);
          t.status == TrialStatus::kFinished && score) {
        finished.push_back({t.assignment, maximize ? *score : -*score});
      }
    }
    return TpeTrial(sweep, seed, index, finished);
  };
  for (Trial& trial : state.trials) {
    trial.overrides.clear();
    for (const auto& [key, value] : trial.assignment) {
      trial.overrides.push_back(TrialOverride(key, value, options.file));
    }
  }
  SaveState(dir, state);

  const std::unique_ptr<Registry> registry =
      Registry::Open(config.registry_path, Registry::OpenMode::kCreate);
  char self[4096];
  const ssize_t self_length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (self_length <= 0) throw UserError("cannot find the tune executable (/proc/self/exe)");
  const std::string tune_binary(self, static_cast<size_t>(self_length));

  auto create_run = [&](const Trial& trial) {
    return registry->CreateRun(
        {config.name, state.name, trial.number,
         config.resolved_toml + "\n# trial: " + ParameterText(trial) + "\n"});
  };

  // Tells a started trial to train: it leaves standby and takes a slot.
  auto go = [&](Trial& trial) {
    LetTrialGoOn(trial);
    trial.standby = false;
    trial.status = TrialStatus::kRunning;
    trial.started = Clock::now();
    trial.metrics_offset = 0;
    trial.run_id = create_run(trial);
    const std::string device = trial.gpu >= 0 ? gpus[static_cast<size_t>(trial.gpu)] : "";
    std::printf("trial %lld started%s: %s\n", static_cast<long long>(trial.number),
                device.empty() ? "" : (" on GPU " + device).c_str(), ParameterText(trial).c_str());
    SaveState(dir, state);
  };

  // Starts the trial's process. It loads plugins, model and data, then waits for go(); a
  // `standby` trial is readied while the slots are still busy, so that work overlaps training.
  auto launch = [&](Trial& trial, bool standby) {
    const fs::path trial_dir = dir / TrialDirName(trial.number);
    int sockets[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
      throw UserError("cannot start a trial process: socketpair failed");
    }
    std::vector<std::string> argv = {tune_binary, "train", options.file.string()};
    argv.insert(argv.end(), options.overrides.begin(), options.overrides.end());
    argv.insert(argv.end(), trial.overrides.begin(), trial.overrides.end());
    if (config.train.threads == 0) argv.push_back("train.threads=" + std::to_string(threads));
    if (!rungs.empty() && config.train.eval_every == 0) {
      argv.push_back("train.eval_every=" + std::to_string(sweep.early_stop_min_steps));
    }
    argv.insert(argv.end(),
                {"-o", trial_dir.string(), "--no-register", "--base-scores",
                 (dir / "base-scores").string(), "--start-fd", std::to_string(sockets[1])});
    // An interrupted trial continues from its checkpoint; anything else starts clean.
    const bool has_checkpoint =
        fs::is_directory(trial_dir / "checkpoints") && !fs::is_empty(trial_dir / "checkpoints");
    argv.push_back(has_checkpoint ? "--resume" : "--restart");
    std::string device;
    if (!gpus.empty()) {
      std::vector<bool> used(gpus.size(), false);
      for (const Trial& other : state.trials) {
        if (other.pid != 0 && other.gpu >= 0) used[static_cast<size_t>(other.gpu)] = true;
      }
      trial.gpu = static_cast<int>(std::find(used.begin(), used.end(), false) - used.begin());
      device = gpus[static_cast<size_t>(trial.gpu)];
    }
    trial.pid = SpawnTrial(argv, dir / (TrialDirName(trial.number) + ".log"), device, sockets[1]);
    close(sockets[1]);
    trial.pidfd = static_cast<int>(syscall(SYS_pidfd_open, trial.pid, 0));
    trial.control_fd = sockets[0];
    trial.standby = true;
    trial.started = Clock::now();
    if (!standby) go(trial);
  };

  // Forwards new per-step metrics lines to the registry; keeps the latest as progress text.
  auto forward_metrics = [&](Trial& trial) {
    std::ifstream in(dir / TrialDirName(trial.number) / "metrics.jsonl");
    if (!in) return;
    in.seekg(trial.metrics_offset);
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // a line still being written
      trial.metrics_offset = in.tellg();
      const json j = json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("step")) continue;
      std::map<std::string, double> values;
      for (const auto& [key, value] : j.items()) {
        if (key != "step" && value.is_number()) values[key] = value.get<double>();
      }
      registry->LogMetrics(trial.run_id, j["step"].get<int64_t>(), values);
      const int64_t step = j["step"].get<int64_t>();
      if (j.contains("eval_loss") && std::find(rungs.begin(), rungs.end(), step) != rungs.end()) {
        trial.rung_losses[step] = j["eval_loss"].get<double>();
        std::vector<double> at_rung;
        for (const Trial& other : state.trials) {
          if (const auto it = other.rung_losses.find(step); it != other.rung_losses.end()) {
            at_rung.push_back(it->second);
          }
        }
        std::sort(at_rung.begin(), at_rung.end());
        const size_t kept = static_cast<size_t>(std::ceil(
            static_cast<double>(at_rung.size()) / static_cast<double>(sweep.early_stop_eta)));
        if (trial.rung_losses[step] > at_rung[kept - 1]) trial.pruned_at = step;
      }
      if (j.contains("loss")) {
        char text[128];
        std::snprintf(text, sizeof(text), "step %lld/%lld loss %.4f %.0f tok/s",
                      static_cast<long long>(j["step"].get<int64_t>()),
                      static_cast<long long>(config.train.steps), j["loss"].get<double>(),
                      j.value("tokens_per_second", 0.0));
        trial.progress = text;
      }
    }
  };

  // Base model hashes by directory, computed at the first registration of a trial on each.
  std::map<fs::path, std::string> model_sha256s;
  // `trial` has exited with `status` and been reaped.
  auto finish = [&](Trial& trial, int status) {
    if (trial.run_id.empty()) trial.run_id = create_run(trial);  // a standby that failed
    forward_metrics(trial);
    trial.wall_seconds = std::chrono::duration<double>(Clock::now() - trial.started).count();
    const fs::path trial_dir = dir / TrialDirName(trial.number);
    const fs::path log = dir / (TrialDirName(trial.number) + ".log");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      try {
        std::vector<std::string> trial_overrides = options.overrides;
        trial_overrides.insert(trial_overrides.end(), trial.overrides.begin(),
                               trial.overrides.end());
        const RunConfig trial_config = RunFile::Read(options.file, trial_overrides).Resolve(host);
        const TrainSummary summary = ReadSummary(trial_dir);
        const fs::path model_path = fs::absolute(trial_config.model.path).lexically_normal();
        auto model_sha256 = model_sha256s.find(model_path);
        if (model_sha256 == model_sha256s.end()) {
          model_sha256 = model_sha256s.emplace(model_path, ModelDirectorySha256(model_path)).first;
        }
        VersionRecord record =
            MakeVersionRecord(trial_config, host, summary, trial.run_id, model_sha256->second);
        record.sweep = state.name;
        record.trial = trial.number;
        RegisterRunDataset(*registry, trial_config, summary, record);
        trial.version =
            registry->Register(config.name, record, summary.adapter_dir, EvalSamplesFile(summary));
        trial.scores = summary.scores;
        const auto base = summary.base_scores.find(sweep.objective_metric);
        if (base != summary.base_scores.end()) trial.base_objective = base->second;
        trial.status = TrialStatus::kFinished;
        registry->FinishRun(trial.run_id, RunStatus::kFinished);
      } catch (const UserError& e) {
        trial.status = TrialStatus::kFailed;
        trial.error = e.what();
        registry->FinishRun(trial.run_id, RunStatus::kFailed, trial.error);
      }
    } else {
      trial.status = TrialStatus::kFailed;
      trial.error = WIFSIGNALED(status)
                        ? std::string("killed by signal ") + std::to_string(WTERMSIG(status)) +
                              (WTERMSIG(status) == SIGKILL ? " (out of memory?)" : "")
                        : LastErrorLine(log);
      if (trial.error.empty())
        trial.error = "exited with status " + std::to_string(WEXITSTATUS(status));
      registry->FinishRun(
          trial.run_id, WIFSIGNALED(status) ? RunStatus::kKilled : RunStatus::kFailed, trial.error);
    }
    if (trial.status == TrialStatus::kFinished) {
      std::printf("trial %lld finished in %s: %s = %s -> registered %s:v%lld\n",
                  static_cast<long long>(trial.number), FormatDuration(trial.wall_seconds).c_str(),
                  sweep.objective_metric.c_str(),
                  objective(trial) ? std::to_string(*objective(trial)).c_str() : "?",
                  config.name.c_str(), static_cast<long long>(trial.version));
    } else {
      std::printf("trial %lld failed: %s (log: %s)\n", static_cast<long long>(trial.number),
                  trial.error.c_str(), log.c_str());
    }
    SaveState(dir, state);
  };

  auto best = [&]() -> const Trial* {
    const Trial* found = nullptr;
    for (const Trial& t : state.trials) {
      const std::optional<double> score = objective(t);
      if (t.status != TrialStatus::kFinished || !score) continue;
      if (found == nullptr ||
          (maximize ? *score > *objective(*found) : *score < *objective(*found))) {
        found = &t;
      }
    }
    return found;
  };

  const int64_t model_weight_bytes = ModelWeightBytes(config.model.path);

  // The scheduling loop: keep `parallel` trials running, report every few seconds.
  new_sweep.started = true;
  auto last_report = Clock::now();
  while (true) {
    int64_t running = 0;
    Trial* standby = nullptr;
    for (Trial& t : state.trials) {
      running += t.pid != 0 && !t.standby;
      if (t.pid != 0 && t.standby) standby = &t;
    }
    // A free slot takes the readied trial, then interrupted trials (status running without a
    // process: the sweep was killed), then pending ones, then new ones.
    if (standby != nullptr && running < parallel) {
      go(*standby);
      standby = nullptr;
      ++running;
    }
    for (Trial& t : state.trials) {
      if (running >= parallel) break;
      if (t.pid == 0 && (t.status == TrialStatus::kRunning || t.status == TrialStatus::kPending)) {
        launch(t, /*standby=*/false);
        ++running;
      }
    }
    auto new_trial = [&]() -> Trial& {
      Trial trial;
      trial.number = static_cast<int64_t>(state.trials.size()) + 1;
      trial.assignment = next_assignment(trial.number - 1);
      for (const auto& [key, value] : trial.assignment) {
        trial.overrides.push_back(TrialOverride(key, value, options.file));
      }
      state.trials.push_back(std::move(trial));
      return state.trials.back();
    };
    while (running < parallel && static_cast<int64_t>(state.trials.size()) < sweep.max_trials &&
           sweep.method != "grid") {
      launch(new_trial(), /*standby=*/false);
      ++running;
    }
    if (running == 0) break;
    // Ready the next trial while every slot trains. Grid and random trials are known ahead; a TPE
    // trial waits for the results before it, and on CUDA the next GPU is not known yet. The
    // readied process holds a second copy of the model, so only with room for two more (the
    // running trials may still grow).
    if (standby == nullptr && running == parallel && gpus.empty() && sweep.method != "tpe" &&
        AvailableMemoryBytes() > 2 * model_weight_bytes) {
      for (Trial& t : state.trials) {
        if (t.pid == 0 &&
            (t.status == TrialStatus::kRunning || t.status == TrialStatus::kPending)) {
          standby = &t;
          break;
        }
      }
      if (standby == nullptr && sweep.method == "random" &&
          static_cast<int64_t>(state.trials.size()) < sweep.max_trials) {
        standby = &new_trial();
      }
      if (standby != nullptr) launch(*standby, /*standby=*/true);
    }

    WaitForTrials(state.trials, std::chrono::milliseconds(200));
    for (Trial& t : state.trials) {
      if (t.pid == 0) continue;
      if (const std::optional<int> status = Reap(t, /*block=*/false)) {
        finish(t, *status);
        continue;
      }
      if (t.standby) continue;
      // A reported eval is in metrics.jsonl already, and its trial waits for the verdict: the
      // early-stopping decision is made at exactly the rung's step.
      const int64_t reports = TakeEvalReports(t);
      forward_metrics(t);
      if (t.pruned_at == 0) {
        for (int64_t i = 0; i < reports; ++i) LetTrialGoOn(t);
      } else {
        kill(t.pid, SIGKILL);
        Reap(t, /*block=*/true);
        t.status = TrialStatus::kPruned;
        t.wall_seconds = std::chrono::duration<double>(Clock::now() - t.started).count();
        char reason[96];
        std::snprintf(reason, sizeof(reason), "pruned at step %lld (eval_loss %.4f)",
                      static_cast<long long>(t.pruned_at), t.rung_losses[t.pruned_at]);
        t.error = reason;
        registry->FinishRun(t.run_id, RunStatus::kKilled, t.error);
        std::printf("trial %lld %s\n", static_cast<long long>(t.number), reason);
        SaveState(dir, state);
      }
    }
    if (Clock::now() - last_report > std::chrono::seconds(5)) {
      last_report = Clock::now();
      int64_t finished = 0, failed = 0, active = 0, pruned = 0;
      for (const Trial& t : state.trials) {
        finished += t.status == TrialStatus::kFinished;
        failed += t.status == TrialStatus::kFailed;
        pruned += t.status == TrialStatus::kPruned;
        active += t.pid != 0 && !t.standby;
      }
      const Trial* leader = best();
      const double elapsed = std::chrono::duration<double>(Clock::now() - sweep_start).count();
      const int64_t done = finished + failed + pruned;
      const double eta = done > 0 ? elapsed / static_cast<double>(done) *
                                        static_cast<double>(sweep.max_trials - done)
                                  : 0.0;
      std::printf(
          "sweep %s: %lld/%lld done, %lld running, %lld failed, %lld pruned, best %s %s, elapsed "
          "%s, ETA %s\n",
          state.name.c_str(), static_cast<long long>(finished),
          static_cast<long long>(sweep.max_trials), static_cast<long long>(active),
          static_cast<long long>(failed), static_cast<long long>(pruned),
          sweep.objective_metric.c_str(),
          leader ? (std::to_string(*objective(*leader)) + " (trial " +
                    std::to_string(leader->number) + ")")
                       .c_str()
                 : "-",
          FormatDuration(elapsed).c_str(), done > 0 ? FormatDuration(eta).c_str() : "?");
      for (const Trial& t : state.trials) {
        if (t.pid != 0) {
          std::printf("  trial %lld: %s\n", static_cast<long long>(t.number),
                      t.standby            ? "next: loads now, starts when a slot frees"
                      : t.progress.empty() ? "starting"
                                           : t.progress.c_str());
        }
      }
      std::fflush(stdout);
    }
  }

  // The table, best first.
  std::vector<const Trial*> order;
  for (const Trial& t : state.trials) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [&](const Trial* a, const Trial* b) {
    const std::optional<double> x = objective(*a), y = objective(*b);
    if (x.has_value() != y.has_value()) return x.has_value();
    if (!x) return false;
    return maximize ? *x > *y : *x < *y;
  });
  // Columns: the objective and its gain over the base model, then every other score.
  std::set<std::string> other_scores;
  for (const Trial& t : state.trials) {
    for (const auto& [name, value] : t.scores) {
      if (name != sweep.objective_metric) other_scores.insert(name);
    }
  }
  // Every column as wide as its longest entry, so long names and metrics keep the table aligned.
  auto column = [](const std::string& name) { return std::max(10, static_cast<int>(name.size())); };
  auto version_text = [&](const Trial& t) {
    return t.version > 0 ? config.name + ":v" + std::to_string(t.version) : std::string("-");
  };
  int version_width = 7;
  for (const Trial& t : state.trials) {
    version_width = std::max(version_width, static_cast<int>(version_text(t).size()));
  }
  const int objective_width = column(sweep.objective_metric);
  std::printf("\n%-6s %-9s %-*s %*s %10s", "trial", "status", version_width, "version",
              objective_width, sweep.objective_metric.c_str(), "gain");
  for (const std::string& name : other_scores) std::printf(" %*s", column(name), name.c_str());
  std::printf(" %9s  %s\n", "wall", "parameters");
  int failed = 0;
  for (const Trial* t : order) {
    failed += t->status == TrialStatus::kFailed;
    const std::string version = version_text(*t);
    char score[32] = "-", gain[32] = "-";
    if (const std::optional<double> x = objective(*t)) {
      std::snprintf(score, sizeof(score), "%.4f", *x);
      if (t->base_objective) std::snprintf(gain, sizeof(gain), "%+.4f", *x - *t->base_objective);
    }
    std::printf("%-6lld %-9s %-*s %*s %10s", static_cast<long long>(t->number),
                StatusName(t->status), version_width, version.c_str(), objective_width, score,
                gain);
    for (const std::string& name : other_scores) {
      char value[32] = "-";
      if (const auto it = t->scores.find(name); it != t->scores.end()) {
        std::snprintf(value, sizeof(value), "%.4f", it->second);
      }
      std::printf(" %*s", column(name), value);
    }
    std::printf(" %9s  %s\n", FormatDuration(t->wall_seconds).c_str(), ParameterText(*t).c_str());
  }
  if (const Trial* leader = best()) {
    std::printf("\nbest: %s:v%lld (trial %lld, %s = %.4f)\n", config.name.c_str(),
                static_cast<long long>(leader->version), static_cast<long long>(leader->number),
                sweep.objective_metric.c_str(), *objective(*leader));
  }
  std::printf("sweep %s: %s\n", state.name.c_str(), dir.c_str());
  return failed > 0 ? 1 : 0;
}

}  // namespace tune

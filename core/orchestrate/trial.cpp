#include "orchestrate/trial.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "orchestrate/lineage.h"
#include "orchestrate/trial_runner.h"
#include "runtime/interrupt.h"
#include "util/log.h"

namespace tune {
namespace {

namespace fs = std::filesystem;

// A trained run whose registry server could not be reached: not a failed run; its folder holds
// what `tune registry push` records.
class RegistrationPending : public UserError {
 public:
  using UserError::UserError;
};

// Thrown out of the trainer by a stop verdict.
class Stopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A finished run remembers the version it became (run_dir/registered.json), so --resume on it
// with the same config registers nothing a second time (a changed config is refused, or with
// --force trained on, by Train).
fs::path RegisteredFile(const fs::path& run_dir) { return run_dir / "registered.json"; }

std::optional<TrialResult> RegisteredBefore(const RunConfig& config, const TrainOptions& options) {
  const fs::path file = RegisteredFile(options.run_dir);
  if (!options.resume || !fs::exists(file) || !RunFolderHoldsConfig(options.run_dir, config)) {
    return std::nullopt;
  }
  try {
    const nlohmann::json registered = nlohmann::json::parse(std::ifstream(file));
    TrialResult result;
    result.outcome = TrialResult::Outcome::kRegisteredBefore;
    result.version = registered.at("version").get<int64_t>();
    result.registry = registered.at("registry").get<std::string>();
    result.summary = ReadSummary(options.run_dir);
    return result;
  } catch (const nlohmann::json::exception& e) {
    throw UserError(file.string() + ": unreadable (" + e.what() + "); check `tune adapters ls " +
                    config.name + "` for the version this run became, then delete the file");
  }
}

void WriteRegistered(const fs::path& run_dir, const std::string& name, int64_t version,
                     const std::string& registry) {
  const fs::path file = RegisteredFile(run_dir);
  std::ofstream out(file, std::ios::trunc);
  out << nlohmann::json{{"name", name}, {"version", version}, {"registry", registry}}.dump()
      << "\n";
  if (!out.flush()) throw UserError("cannot write " + file.string() + " (disk full?)");
}

TrialDone DoneMessage(const TrialResult& result) {
  return {result.version, result.summary.scores, result.summary.base_scores,
          result.summary.wall_seconds, result.summary.few_shot_scores};
}

// The Slurm job this process runs in ("1234_5": task 5 of array 1234); empty outside Slurm.
std::string SlurmJob() {
  const char* array = std::getenv("SLURM_ARRAY_JOB_ID");
  const char* task = std::getenv("SLURM_ARRAY_TASK_ID");
  if (array != nullptr && task != nullptr) return std::string(array) + "_" + task;
  const char* job = std::getenv("SLURM_JOB_ID");
  return job != nullptr ? job : "";
}

// The trial's side of its driver, and its tracker: the driver's (MakeDriverTracker) while it has
// one, else the registry's. A trial that may go on alone (TrialDriver::go_alone) turns alone when
// the driver is lost, and the tracker call that found it out is made again in the registry; any
// other trial ends with DriverLost's error.
class DriverLink : public Tracker {
 public:
  // `registry`: the trial's own [registry] (its token and CA), used at the driver's location
  // (TrialGo::registry) once alone.
  DriverLink(const TrialDriver& driver, const OpenTracker& open_tracker, RegistryConfig registry)
      : channel_(driver.channel),
        go_alone_(driver.go_alone),
        open_tracker_(open_tracker),
        registry_(std::move(registry)) {}

  bool driven() const { return channel_ != nullptr; }

  void Tell(const TrialMessage& message) {
    if (channel_ == nullptr) return;
    try {
      TellDriver(*channel_, message);
    } catch (const DriverLost& e) {
      Lose(e);
    }
  }

  // Reports prepared and returns the driver's go; alone, the go the driver wrote (or none).
  TrialGo AwaitGo() {
    Tell(TrialPrepared{});
    if (channel_ != nullptr) {
      try {
        go_ = AwaitDriver<TrialGo>(*channel_);
        return go_;
      } catch (const DriverLost& e) {
        Lose(e);
      }
    }
    if (go_alone_) go_ = *go_alone_;
    return go_;
  }

  // The verdict on an eval just reported; alone, train on.
  TrialVerdict AwaitVerdict() {
    if (channel_ == nullptr) return {};
    try {
      return AwaitDriver<TrialVerdict>(*channel_);
    } catch (const DriverLost& e) {
      Lose(e);
      return {};
    }
  }

  std::string CreateRun(const RunInfo& info) override {
    return Call([&](Tracker& t) { return t.CreateRun(info); });
  }
  void LogMetrics(std::string_view run_id, int64_t step,
                  const std::map<std::string, double>& values) override {
    Call([&](Tracker& t) { t.LogMetrics(run_id, step, values); });
  }
  int64_t Register(TrackedVersion version) override {
    // Registration is idempotent by run (OpenRegistryTracker), so a version the driver made
    // before its reply was lost is not made twice.
    return Call([&](Tracker& t) { return t.Register(version); });
  }
  void FinishRun(std::string_view run_id, RunStatus status, std::string_view error,
                 std::string_view end_reason) override {
    Call([&](Tracker& t) { t.FinishRun(run_id, status, error, end_reason); });
  }
  std::string location() const override {
    if (tracker_ != nullptr) return tracker_->location();
    return go_.registry;
  }

 private:
  template <typename F>
  auto Call(F call) -> decltype(call(std::declval<Tracker&>())) {
    try {
      return call(Current());
    } catch (const DriverLost& e) {
      Lose(e);
      return call(Current());
    }
  }

  Tracker& Current() {
    if (tracker_ == nullptr) {
      if (channel_ != nullptr) {
        tracker_ = MakeDriverTracker(*channel_, go_.registry);
      } else if (go_alone_) {
        RegistryConfig alone = registry_;
        alone.location = go_.registry.empty() ? go_alone_->registry : go_.registry;
        tracker_ = OpenRegistryTracker(alone);
      } else {
        tracker_ = open_tracker_();
      }
    }
    return *tracker_;
  }

  void Lose(const DriverLost& e) {
    if (!go_alone_) throw e;
    const std::string registry = go_.registry.empty() ? go_alone_->registry : go_.registry;
    LogWarning("lost the sweep's driver; training on alone, recording in " + registry +
               " (the sweep picks the result up: tune sweep --attach " + go_alone_->sweep + ")");
    channel_ = nullptr;
    tracker_.reset();
  }

  TrialChannel* channel_;
  std::optional<TrialGo> go_alone_;
  const OpenTracker& open_tracker_;
  RegistryConfig registry_;
  TrialGo go_;  // what the driver said at go, or go_alone_
  std::unique_ptr<Tracker> tracker_;
};

}  // namespace

std::optional<TrialDone> RegisteredTrial(const fs::path& run_dir) {
  const fs::path file = RegisteredFile(run_dir);
  if (!fs::exists(file)) return std::nullopt;
  try {
    const nlohmann::json registered = nlohmann::json::parse(std::ifstream(file));
    const TrainSummary summary = ReadSummary(run_dir);
    return TrialDone{registered.at("version").get<int64_t>(), summary.scores, summary.base_scores,
                     summary.wall_seconds, summary.few_shot_scores};
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  } catch (const UserError&) {
    return std::nullopt;
  }
}

TrialResult RunTrial(const RunConfig& config, const PluginHost& host, TrainOptions options,
                     const OpenTracker& open_tracker, const TrialDriver& driver) {
  DriverLink link(driver, open_tracker, config.registry);
  if (std::optional<TrialResult> before = RegisteredBefore(config, options)) {
    link.Tell(DoneMessage(*before));
    return *before;
  }
  TrialGo go;  // what the driver says this trial is; empty when alone
  std::string run_id;
  RunInfo run_info;
  auto create_run = [&] {
    RunInfo info{config.name, std::nullopt, std::nullopt, config.resolved_toml};
    if (!go.sweep.empty()) {
      info.sweep = go.sweep;
      info.trial = go.trial;
      info.attempt = go.attempt;
      info.params = go.parameters;
    }
    info.node = HostName();
    info.job = SlurmJob();
    run_id = link.CreateRun(info);
    run_info = info;
  };
  if (link.driven() || driver.go_alone) {
    options.wait_for_turn = [&] {
      go = link.AwaitGo();
      create_run();
    };
  } else {
    create_run();
  }
  // Steps reach the driver as progress, at most one per kStepReportInterval (trial_channel.h).
  std::optional<std::chrono::steady_clock::time_point> last_step_report;
  options.on_step = [&](const StepReport& report) {
    link.LogMetrics(run_id, report.step,
                    {{"loss", report.loss},
                     {"lr", report.lr},
                     {"grad_norm", report.grad_norm},
                     {"tokens_per_second", report.tokens_per_second}});
    const auto now = std::chrono::steady_clock::now();
    if (!last_step_report || now - *last_step_report >= kStepReportInterval ||
        report.step == report.total_steps) {
      last_step_report = now;
      link.Tell(report);
    }
  };
  options.on_eval = [&](int64_t step, double eval_loss) {
    link.LogMetrics(run_id, step, {{"eval_loss", eval_loss}});
    if (!link.driven()) return;
    link.Tell(TrialEvaluated{step, eval_loss});
    const TrialVerdict verdict = link.AwaitVerdict();
    if (!verdict.go_on) throw Stopped(verdict.reason);
  };

  // A trial that fails before its go has no run yet: it gets one, so every attempt is recorded.
  auto finish = [&](RunStatus status, const std::string& error, AttemptEnd end) {
    if (run_id.empty()) create_run();
    link.FinishRun(run_id, status, error, AttemptEndName(end));
  };
  TrialResult result;
  try {
    result.summary = Train(config, host, options);
    TrackedVersion version =
        TrainedVersion(config, host, result.summary, run_id,
                       go.base_model_sha256.empty() ? ModelDirectorySha256(config.model.path)
                                                    : go.base_model_sha256);
    if (!go.sweep.empty()) {
      version.record.sweep = go.sweep;
      version.record.trial = go.trial;
      version.record.configuration = go.configuration;
    }
    // What `tune registry push` records if the registry cannot be reached now.
    WriteRunRecord(options.run_dir, run_id, run_info);
    WriteRegistration(options.run_dir, version);
    try {
      result.version = link.Register(std::move(version));
    } catch (const RegistryUnreachable& e) {
      // Trained and kept: only the registration is left to do.
      throw RegistrationPending(std::string(e.what()) + " (the run folder is " +
                                options.run_dir.string() + ")");
    }
  } catch (const Stopped& e) {
    finish(RunStatus::kKilled, e.what(), AttemptEnd::kPruned);
    result.outcome = TrialResult::Outcome::kStopped;
    result.stop_reason = e.what();
    return result;
  } catch (const Interrupted& e) {
    finish(RunStatus::kKilled, e.what(), AttemptEnd::kInterrupted);
    throw;
  } catch (const RegistrationPending&) {
    throw;  // the run stays running on the server until pushed
  } catch (const std::exception& e) {
    finish(RunStatus::kFailed, e.what(), AttemptEnd::kFailed);
    throw;
  }
  link.FinishRun(run_id, RunStatus::kFinished, "", AttemptEndName(AttemptEnd::kFinished));
  result.registry = link.location();
  WriteRegistered(options.run_dir, config.name, result.version, result.registry);
  link.Tell(DoneMessage(result));
  return result;
}

}  // namespace tune

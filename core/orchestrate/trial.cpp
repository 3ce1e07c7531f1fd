#include "orchestrate/trial.h"

#include <chrono>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "runtime/interrupt.h"
#include "train/lineage.h"

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

void Tell(TrialChannel* driver, const TrialMessage& message) {
  if (driver != nullptr) TellDriver(*driver, message);
}

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
          result.summary.wall_seconds};
}

}  // namespace

TrialResult RunTrial(const RunConfig& config, const PluginHost& host, TrainOptions options,
                     const OpenTracker& open_tracker, TrialChannel* driver) {
  if (std::optional<TrialResult> before = RegisteredBefore(config, options)) {
    Tell(driver, DoneMessage(*before));
    return *before;
  }
  TrialGo go;  // what the driver says this trial is; empty when alone
  // A driven trial records through its driver, which holds the registry for all its trials.
  std::unique_ptr<Tracker> opened;
  auto tracker = [&]() -> Tracker& {
    if (opened == nullptr) {
      opened = driver != nullptr ? MakeDriverTracker(*driver, go.registry) : open_tracker();
    }
    return *opened;
  };
  std::string run_id;
  RunInfo run_info;
  auto create_run = [&] {
    RunInfo info{config.name, std::nullopt, std::nullopt, config.resolved_toml};
    if (!go.sweep.empty()) {
      info.sweep = go.sweep;
      info.trial = go.trial;
      // The web view reads the configuration's swept values from this line.
      info.config_toml += "\n# trial: " + go.parameters + "\n";
    }
    run_id = tracker().CreateRun(info);
    run_info = info;
  };
  if (driver != nullptr) {
    options.wait_for_turn = [&] {
      Tell(driver, TrialPrepared{});
      go = AwaitDriver<TrialGo>(*driver);
      create_run();
    };
  } else {
    create_run();
  }
  // Steps reach the driver as progress, at most one per kStepReportInterval (trial_channel.h).
  std::optional<std::chrono::steady_clock::time_point> last_step_report;
  options.on_step = [&](const StepReport& report) {
    tracker().LogMetrics(run_id, report.step,
                         {{"loss", report.loss},
                          {"lr", report.lr},
                          {"grad_norm", report.grad_norm},
                          {"tokens_per_second", report.tokens_per_second}});
    const auto now = std::chrono::steady_clock::now();
    if (!last_step_report || now - *last_step_report >= kStepReportInterval ||
        report.step == report.total_steps) {
      last_step_report = now;
      Tell(driver, report);
    }
  };
  options.on_eval = [&](int64_t step, double eval_loss) {
    tracker().LogMetrics(run_id, step, {{"eval_loss", eval_loss}});
    if (driver == nullptr) return;
    Tell(driver, TrialEvaluated{step, eval_loss});
    const TrialVerdict verdict = AwaitDriver<TrialVerdict>(*driver);
    if (!verdict.go_on) throw Stopped(verdict.reason);
  };

  // A trial that fails before its go has no run yet: it gets one, so every attempt is recorded.
  auto finish = [&](RunStatus status, const std::string& error) {
    if (run_id.empty()) create_run();
    tracker().FinishRun(run_id, status, error);
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
      result.version = tracker().Register(std::move(version));
    } catch (const RegistryUnreachable& e) {
      // Trained and kept: only the registration is left to do.
      throw RegistrationPending(std::string(e.what()) + " (the run folder is " +
                                options.run_dir.string() + ")");
    }
  } catch (const Stopped& e) {
    finish(RunStatus::kKilled, e.what());
    result.outcome = TrialResult::Outcome::kStopped;
    result.stop_reason = e.what();
    return result;
  } catch (const Interrupted& e) {
    finish(RunStatus::kKilled, e.what());
    throw;
  } catch (const RegistrationPending&) {
    throw;  // the run stays running on the server until pushed
  } catch (const std::exception& e) {
    finish(RunStatus::kFailed, e.what());
    throw;
  }
  tracker().FinishRun(run_id, RunStatus::kFinished);
  result.registry = tracker().location();
  WriteRegistered(options.run_dir, config.name, result.version, result.registry);
  Tell(driver, DoneMessage(result));
  return result;
}

}  // namespace tune

#include "sweep/sweep_driver.h"

#include <chrono>
#include <cstdio>
#include <fstream>

#include "orchestrate/lineage.h"
#include "orchestrate/trial.h"
#include "train/trainer.h"
#include "util/duration.h"
#include "util/error.h"
#include "util/log.h"

namespace tune {
namespace {

namespace fs = std::filesystem;

// A trial's swept values as its run and version record them.
std::map<std::string, ParamValue> SweptParams(const Assignment& assignment) {
  std::map<std::string, ParamValue> params;
  for (const auto& [key, value] : assignment) params[key] = ToParam(value);
  return params;
}
using Clock = std::chrono::steady_clock;

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

}  // namespace

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

struct SweepDriver::Process {
  std::unique_ptr<RunningTrial> trial;
  Clock::time_point started;
  std::string device;    // the GPU it trains on; empty on the CPU
  std::string progress;  // the latest step, as the progress report shows it
  bool go_due = false;   // the scheduler let it train
  bool go_sent = false;  // and it has been told
  TrialPlace place;      // where it runs, as last recorded
};

std::string TrialDirName(int64_t number) {
  char name[32];
  std::snprintf(name, sizeof(name), "trial-%03lld", static_cast<long long>(number));
  return name;
}

ReportContext ReportFor(const RunConfig& config) {
  ReportContext report{config.name, config.sweep->objective_metric,
                       config.sweep->objective_goal == MetricGoal::kMaximize};
  for (const auto& [name, traits] : config.metric_traits) {
    report.bounds[name] = {traits.range.min, traits.range.max};
  }
  return report;
}

SweepDriver::SweepDriver(DriverSetup setup, SweepScheduler& scheduler, SweepState& state,
                         Tracker& tracker, TrialRunner& runner)
    : s_(std::move(setup)),
      scheduler_(scheduler),
      state_(state),
      tracker_(tracker),
      runner_(runner),
      report_(ReportFor(*s_.config)) {}

SweepDriver::~SweepDriver() = default;

double SweepDriver::SecondsSince(std::chrono::steady_clock::time_point start) const {
  return std::chrono::duration<double>(s_.now() - start).count();
}

void SweepDriver::Run() {
  TakeOver();
  const auto start = s_.now();
  auto last_report = start;
  while (true) {
    Act(scheduler_.Next(s_.available_memory() > 2 * s_.model_weight_bytes));
    if (scheduler_.done()) break;
    std::vector<RunningTrial*> live;
    for (auto& [number, process] : processes_) live.push_back(process->trial.get());
    runner_.WaitForAny(live, std::chrono::milliseconds(200));
    AnswerRegistrations();
    for (const int64_t number : scheduler_.live()) Watch(number);
    if (s_.now() - last_report > std::chrono::seconds(5)) {
      last_report = s_.now();
      PrintProgress(SecondsSince(start));
    }
  }
}

void SweepDriver::AnswerRegistrations() {
  for (auto it = registrations_.begin(); it != registrations_.end();) {
    if (it->reply.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      ++it;
      continue;
    }
    const TrackerReply reply = it->reply.get();
    if (const auto process = processes_.find(it->number); process != processes_.end()) {
      try {
        process->second->trial->channel()->Send(reply);
      } catch (const ChannelClosed&) {
        // It died waiting: Watch reaps it.
      }
    }
    it = registrations_.erase(it);
  }
}

void SweepDriver::Save() { SaveSweepState(s_.dir, state_); }

fs::path SweepDriver::LogFile(int64_t number) const {
  return s_.dir / (TrialDirName(number) + ".log");
}

fs::path SweepDriver::RunFolder(int64_t number) const { return s_.dir / TrialDirName(number); }

TrialGo SweepDriver::GoFor(int64_t number) const {
  Trial& trial = scheduler_.trial(number);
  return TrialGo{state_.name,
                 number,
                 trial.configuration,
                 SweptParams(trial.assignment),
                 s_.base_model_sha256,
                 tracker_.location(),
                 std::max<int64_t>(1, static_cast<int64_t>(trial.attempts.size()))};
}

TrialLaunch SweepDriver::LaunchFor(int64_t number, int slot) const {
  const Trial& trial = scheduler_.trial(number);
  TrialLaunch launch;
  launch.trial = number;
  launch.train_args = {"train", s_.file.string()};
  launch.train_args.insert(launch.train_args.end(), s_.overrides.begin(), s_.overrides.end());
  for (const auto& [key, value] : trial.assignment) {
    launch.train_args.push_back(TrialOverride(key, value, s_.file));
  }
  if (state_.repeats > 1) {
    launch.train_args.push_back("train.seed=" +
                                std::to_string(s_.config->train.seed + trial.repeat));
  }
  if (s_.threads > 0) launch.train_args.push_back("train.threads=" + std::to_string(s_.threads));
  if (s_.eval_every > 0) {
    launch.train_args.push_back("train.eval_every=" + std::to_string(s_.eval_every));
  }
  launch.train_args.insert(
      launch.train_args.end(),
      {"-o", RunFolder(number).string(), "--base-scores", (s_.dir / "base-scores").string()});
  launch.log = LogFile(number);
  if (slot >= 0 && !s_.gpus.empty()) {
    launch.cuda_visible_devices = s_.gpus[static_cast<size_t>(slot)];
  }
  launch.go = GoFor(number);
  // The attempt before this one (the scheduler has added this one's record).
  if (trial.attempts.size() >= 2) launch.job = trial.attempts[trial.attempts.size() - 2].job;
  return launch;
}

// What an earlier driver of this sweep left: trials still running or queued in a cluster are
// watched again; the others of its running trials finished alone (their run folder says so) or
// ended with it, and run again from their checkpoints.
void SweepDriver::TakeOver() {
  std::vector<int64_t> numbers;
  std::vector<TrialLaunch> launches;
  for (const Trial& t : state_.trials) {
    if (t.status != TrialStatus::kRunning) continue;
    numbers.push_back(t.number);
    TrialLaunch launch;
    launch.trial = t.number;
    launch.go = GoFor(t.number);
    if (!t.attempts.empty()) launch.job = t.attempts.back().job;
    launches.push_back(std::move(launch));
  }
  if (numbers.empty()) return;
  std::vector<std::unique_ptr<RunningTrial>> adopted = runner_.Adopt(launches);
  for (size_t i = 0; i < numbers.size(); ++i) {
    const int64_t number = numbers[i];
    if (adopted[i] != nullptr) {
      scheduler_.Adopt(number);
      auto process = std::make_unique<Process>();
      process->trial = std::move(adopted[i]);
      process->go_due = true;
      processes_[number] = std::move(process);
      std::printf("trial %lld is still in Slurm (job %s): watching it\n",
                  static_cast<long long>(number), launches[i].job.c_str());
      continue;
    }
    Trial& trial = scheduler_.trial(number);
    if (std::optional<TrialDone> done = RegisteredTrial(RunFolder(number))) {
      scheduler_.Finished(number, *done);
      if (!trial.attempts.empty())
        trial.attempts.back().end = AttemptEndName(AttemptEnd::kFinished);
      std::printf("trial %lld finished while the sweep had no driver: %s:v%lld\n",
                  static_cast<long long>(number), s_.config->name.c_str(),
                  static_cast<long long>(done->version));
      continue;
    }
    // It ended with the driver (a local process), or Slurm no longer runs it.
    const std::string why = launches[i].job.empty() ? "ended with its sweep's driver"
                                                    : "its Slurm task ended while the sweep had "
                                                      "no driver";
    if (!trial.attempts.empty() && trial.attempts.back().end.empty()) {
      trial.attempts.back().end = AttemptEndName(AttemptEnd::kKilled);
      trial.attempts.back().error = why;
    }
    if (!trial.run_id.empty()) {
      tracker_.FinishRun(trial.run_id, RunStatus::kKilled, why + "; resumed",
                         AttemptEndName(AttemptEnd::kKilled));
    }
  }
  fflush(stdout);
  Save();
}

void SweepDriver::Act(const SweepScheduler::Actions& actions) {
  for (const SweepScheduler::Go& go : actions.go) GoDue(go.trial);
  std::vector<TrialLaunch> launches;
  for (const SweepScheduler::Launch& launch : actions.launch) {
    launches.push_back(LaunchFor(launch.trial, launch.slot));
  }
  if (!launches.empty()) {
    std::vector<std::unique_ptr<RunningTrial>> started;
    try {
      started = runner_.Start(launches);
    } catch (const UserError&) {
      for (const TrialLaunch& launch : launches) {
        scheduler_.Ended(launch.trial, AttemptEnd::kLost, "never started", 0.0);
      }
      Save();
      throw;
    }
    for (size_t i = 0; i < launches.size(); ++i) {
      auto process = std::make_unique<Process>();
      process->trial = std::move(started[i]);
      process->device = launches[i].cuda_visible_devices;
      process->place = process->trial->place();
      Attempt& attempt = scheduler_.trial(launches[i].trial).attempts.back();
      attempt.job = process->place.job;
      attempt.node = process->place.node;
      processes_[launches[i].trial] = std::move(process);
      if (!actions.launch[i].ready_ahead) GoDue(launches[i].trial);
    }
    if (s_.started) {
      s_.started();
      s_.started = nullptr;
    }
  }
  if (!actions.go.empty() || !actions.launch.empty()) Save();
}

void SweepDriver::GoDue(int64_t number) {
  processes_.at(number)->go_due = true;
  SendGo(number);
}

// Lets a trial train once the scheduler has and the trial is there to hear it (a cluster's trial
// connects once it starts on its node).
void SweepDriver::SendGo(int64_t number) {
  Process& process = *processes_.at(number);
  TrialChannel* channel = process.trial->channel();
  if (!process.go_due || process.go_sent || channel == nullptr) return;
  process.go_sent = true;
  process.started = s_.now();
  try {
    channel->Send(GoFor(number));
  } catch (const ChannelClosed&) {
    // It died while loading: Watch reaps it and says why.
  }
  const Trial& trial = scheduler_.trial(number);
  std::string where;
  if (state_.repeats > 1) {
    where = " (configuration " + std::to_string(trial.configuration) + ", repeat " +
            std::to_string(trial.repeat + 1) + " of " + std::to_string(state_.repeats) + ")";
  }
  if (!process.device.empty()) where += " on GPU " + process.device;
  const TrialPlace place = process.trial->place();
  if (!place.job.empty()) {
    where += " in Slurm job " + place.job + (place.node.empty() ? "" : " on " + place.node);
  }
  if (trial.attempts.size() > 1) {
    where += ", attempt " + std::to_string(trial.attempts.size());
  }
  std::printf("trial %lld started%s: %s\n", static_cast<long long>(number), where.c_str(),
              ParameterText(trial.assignment).c_str());
  std::fflush(stdout);
}

// Reads what the trial said, records where it runs, and reaps it if it has ended.
void SweepDriver::Watch(int64_t number) {
  Process& process = *processes_.at(number);
  SendGo(number);
  const std::optional<TrialExit> exit = process.trial->Exited();
  std::string failure;
  if (TrialChannel* channel = process.trial->channel()) {
    try {
      for (const TrialMessage& message : channel->TakeTrialMessages()) Handle(number, message);
    } catch (const UserError& e) {
      failure = e.what();
      process.trial->Kill();
    }
  }
  if (const TrialPlace place = process.trial->place(); place != process.place) {
    process.place = place;
    Attempt& attempt = scheduler_.trial(number).attempts.back();
    attempt.job = place.job;
    attempt.node = place.node;
    Save();
  }
  if (exit || !failure.empty()) {
    Ended(number, exit ? *exit : process.trial->Kill(), failure);
    return;
  }
  // A cluster's trial that reported its result and closed its channel has ended, whatever the
  // scheduler says once it has noticed (a query or two later): the next one need not wait. (A
  // local process is reaped at once, and killed if dropped before.)
  const TrialStatus status = scheduler_.trial(number).status;
  const TrialChannel* channel = process.trial->channel();
  if (!process.trial->place().job.empty() && channel != nullptr && channel->closed() &&
      (status == TrialStatus::kFinished || status == TrialStatus::kPruned)) {
    Ended(number, TrialExit{}, "");
  }
}

void SweepDriver::Handle(int64_t number, const TrialMessage& message) {
  Process& process = *processes_.at(number);
  if (Serve(number, message)) return;
  if (const auto* step = std::get_if<StepReport>(&message)) {
    process.progress =
        Format("step %lld/%lld loss %.4f %.0f tok/s", static_cast<long long>(step->step),
               static_cast<long long>(step->total_steps), step->loss, step->tokens_per_second);
  } else if (const auto* evaluated = std::get_if<TrialEvaluated>(&message)) {
    const TrialVerdict verdict =
        scheduler_.Evaluated(number, evaluated->step, evaluated->eval_loss);
    try {
      process.trial->channel()->Send(verdict);
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
// configuration and seed, the attempt, and what the sweep optimises.
void SweepDriver::AddTrialFields(int64_t number, RunInfo& info) const {
  const Trial& trial = scheduler_.trial(number);
  info.configuration = trial.configuration;
  info.seed = s_.config->train.seed + trial.repeat;
  if (const auto swept = trial.assignment.find("train.seed"); swept != trial.assignment.end()) {
    if (const auto* seed = std::get_if<int64_t>(&swept->second)) info.seed = *seed;
  }
  info.params = SweptParams(trial.assignment);
  info.objective = report_.objective;
  info.objective_goal = report_.maximize ? "maximize" : "minimize";
  info.attempt = std::max<int64_t>(1, static_cast<int64_t>(trial.attempts.size()));
  if (!trial.attempts.empty()) {
    if (info.node.empty()) info.node = trial.attempts.back().node;
    if (info.job.empty()) info.job = trial.attempts.back().job;
  }
}

// Carries out a trial's tracker call (trial_channel.h) in the sweep's tracker and answers it;
// false for any other message. A refusal goes back to the trial, whose call throws it.
bool SweepDriver::Serve(int64_t number, const TrialMessage& message) {
  if (std::holds_alternative<TrialHeartbeat>(message)) return true;  // heard: enough
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
      if (!trial.attempts.empty()) {
        // The trial knows its host before the scheduler says.
        trial.attempts.back().run_id = reply.run_id;
        if (trial.attempts.back().node.empty()) trial.attempts.back().node = info.node;
      }
      Save();
    } else if (const auto* metrics = std::get_if<TrackerLogMetrics>(&message)) {
      for (const MetricsAtStep& step : metrics->steps) {
        tracker_.LogMetrics(metrics->run_id, step.step, step.values);
      }
      return true;  // not answered
    } else if (const auto* registered = std::get_if<TrackerRegister>(&message)) {
      // Answered by AnswerRegistrations once made (OpenRegistryTracker's trackers take Register
      // on another thread beside the other calls).
      registrations_.push_back(
          {number, std::async(std::launch::async, [this, version = registered->version] {
             TrackerReply made;
             try {
               made.version = tracker_.Register(version);
             } catch (const UserError& e) {
               made.error = e.what();
             }
             return made;
           })});
      return true;
    } else if (const auto* finish = std::get_if<TrackerFinishRun>(&message)) {
      tracker_.FinishRun(finish->run_id, finish->status, finish->error, finish->end_reason);
    } else {
      return false;
    }
  } catch (const UserError& e) {
    reply.error = e.what();
  }
  try {
    processes_.at(number)->trial->channel()->Send(reply);
  } catch (const ChannelClosed&) {
    // It died waiting: Watch reaps it.
  }
  return true;
}

// `failure`: a message the trial sent that could not be read, if that is why it ended.
void SweepDriver::Ended(int64_t number, const TrialExit& exit, std::string failure) {
  Trial& trial = scheduler_.trial(number);
  Process& process = *processes_.at(number);
  const double wall_seconds = SecondsSince(process.started);
  // A trial that lost its driver registered through the registry: its run folder says so.
  if (trial.status != TrialStatus::kFinished && trial.status != TrialStatus::kPruned) {
    if (std::optional<TrialDone> done = RegisteredTrial(RunFolder(number))) {
      scheduler_.Finished(number, *done);
    }
  }
  // An unreadable message is a mismatch of versions: running again would not help.
  const AttemptEnd end = failure.empty() ? exit.end : AttemptEnd::kFailed;
  if (failure.empty() && !exit.ok()) {
    if (end == AttemptEnd::kFailed) failure = LastErrorLine(LogFile(number));
    if (failure.empty()) failure = exit.Describe();
  }
  const bool settled =
      trial.status == TrialStatus::kFinished || trial.status == TrialStatus::kPruned;
  if (!settled) RecordEnd(number, end, failure);
  const TrialPlace place = process.trial->place();
  Attempt& attempt = trial.attempts.back();
  if (!place.job.empty()) attempt.job = place.job;
  if (!place.node.empty()) attempt.node = place.node;
  const bool again = scheduler_.Ended(number, end, failure, wall_seconds);
  // Nothing of a trial that will not run again may run on (a task Slurm queued again itself).
  if (!again) process.trial->Kill();
  processes_.erase(number);
  if (again) {
    std::printf("trial %lld attempt %zu ended (%s): %s; running it again (attempt %zu of %lld)\n",
                static_cast<long long>(number), trial.attempts.size(), attempt.end.c_str(),
                failure.c_str(), trial.attempts.size() + 1,
                static_cast<long long>(1 + s_.config->sweep->executor.max_retries));
  } else if (trial.status == TrialStatus::kFailed) {
    std::printf("trial %lld failed: %s (log: %s)\n", static_cast<long long>(number),
                trial.error.c_str(), LogFile(number).c_str());
  }
  std::fflush(stdout);
  Save();
}

// The attempt's run, finished with why it ended: the trial records its own failures and
// interruptions, but what killed it (a signal, Slurm, a lost heartbeat) only the driver knows.
void SweepDriver::RecordEnd(int64_t number, AttemptEnd end, const std::string& failure) {
  if (end == AttemptEnd::kFailed || end == AttemptEnd::kFinished) return;
  Trial& trial = scheduler_.trial(number);
  std::string run_id = trial.attempts.empty() ? "" : trial.attempts.back().run_id;
  if (run_id.empty()) {
    // Its own config when it got as far as writing it, else the sweep's (its params say what
    // differs).
    RunInfo info{s_.config->name, state_.name, number,
                 RunFolderConfig(RunFolder(number)).value_or(s_.config->resolved_toml)};
    AddTrialFields(number, info);
    run_id = tracker_.CreateRun(info);
    trial.run_id = run_id;
    if (!trial.attempts.empty()) trial.attempts.back().run_id = run_id;
  }
  tracker_.FinishRun(run_id, RunStatus::kKilled, failure, AttemptEndName(end));
}

void SweepDriver::PrintProgress(double elapsed_seconds) {
  int64_t training = 0, queued = 0;
  for (const auto& [number, process] : processes_) {
    if (process->trial->channel() == nullptr) {
      ++queued;
    } else {
      training += !scheduler_.readied(number);
    }
  }
  std::printf("%s\n", ProgressLine(state_, report_, scheduler_.total_trials(), training,
                                   elapsed_seconds, queued)
                          .c_str());
  for (const auto& [number, process] : processes_) {
    const TrialPlace place = process->trial->place();
    std::string where;
    if (!place.node.empty() && !place.job.empty())
      where = " on " + PlaceText(place.node, place.job);
    if (place.node.empty() && !place.job.empty()) where = " " + PlaceText(place.node, place.job);
    std::string what;
    if (scheduler_.readied(number)) {
      what = "next: loads now, starts when a slot frees";
    } else if (process->trial->channel() == nullptr) {
      what = place.node.empty() ? "queued in Slurm" : "starting";
    } else {
      what = process->progress.empty() ? "starting" : process->progress;
    }
    std::printf("  trial %lld%s: %s\n", static_cast<long long>(number), where.c_str(),
                what.c_str());
  }
  std::fflush(stdout);
}

}  // namespace tune

#include "orchestrate/slurm_runner.h"

#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "orchestrate/remote_channel.h"
#include "util/error.h"
#include "util/log.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kFirstQuery{250};
constexpr std::chrono::seconds kMostQueryInterval{30};
// Queries in a row that must miss a task before it counts as lost: a task Slurm has just been
// given may not be listed at once.
constexpr int kMissesToLose = 3;
// How long a connection waits for the driver to take it: a task that Slurm ran again connects
// before the driver has decided to run it again.
constexpr std::chrono::seconds kWaitingConnection{120};

// When to ask Slurm next: soon after something changed, then twice as long each time nothing
// did, up to kMostQueryInterval.
class QueryBackoff {
 public:
  bool Due(Clock::time_point now) const { return now >= due_; }
  Clock::time_point due() const { return due_; }
  void Queried(Clock::time_point now, bool changed) {
    interval_ = changed ? kFirstQuery
                        : std::min<std::chrono::milliseconds>(interval_ * 2, kMostQueryInterval);
    due_ = now + interval_;
  }
  void Soon(Clock::time_point now) {
    interval_ = kFirstQuery;
    due_ = std::min(due_, now + kFirstQuery);
  }

 private:
  std::chrono::milliseconds interval_ = kFirstQuery;
  Clock::time_point due_{};
};

// One attempt at a trial as a Slurm task.
struct Task {
  int64_t trial = 0;
  std::string id;      // "1234_5"
  std::string array;   // "1234"
  SlurmTask slurm;     // what Slurm said last; its state is empty until it says
  bool ran = false;    // seen running, or connected
  bool alone = false;  // adopted while running: it trains alone and never connects
  // Run again (requeued): released (SlurmCommands::Release) once Slurm has it pending, which may
  // be only when its last run has finished completing, and no sooner than `release_after`.
  bool release = false;
  Clock::time_point release_after{};
  int misses = 0;
  std::optional<Clock::time_point> running_since;
  std::unique_ptr<TrialChannel> channel;
  Clock::time_point heard;                     // on the runner's clock
  Clock::time_point heard_mark;                // the channel's last_heard() then
  std::optional<Clock::time_point> closed_at;  // when its channel was seen closed
  Clock::time_point answered_at{};             // when Slurm last said what it is
  std::optional<TrialExit> exit;
};

struct Waiting {
  std::unique_ptr<TrialChannel> channel;
  Clock::time_point since;
};

std::string Seconds(std::chrono::seconds s) { return std::to_string(s.count()) + " s"; }

// What the runner and its trials share; the trials may outlive neither.
struct Shared {
  SlurmRunnerSetup setup;
  std::unique_ptr<SlurmCommands> slurm;
  ChannelListener listener;
  DriverAddress address;
  std::map<int64_t, Task*> live;  // trial -> its attempt under way
  std::map<int64_t, Waiting> waiting;
  std::set<int64_t> requeued_by_slurm;  // trials whose last task Slurm queued again itself
  QueryBackoff backoff;
  int64_t arrays = 0;  // scripts written so far

  Shared(SlurmRunnerSetup s, std::unique_ptr<SlurmCommands> commands, std::string secret)
      : setup(std::move(s)),
        slurm(std::move(commands)),
        listener(secret, std::max<int64_t>(1, setup.executor.heartbeat_timeout_seconds / 4)),
        address{setup.host, listener.port(), std::move(secret)} {}

  std::chrono::seconds heartbeat() const {
    return std::chrono::seconds(setup.executor.heartbeat_timeout_seconds);
  }

  std::string Where(const Task& task) const {
    return "Slurm task " + task.id + (task.slurm.node.empty() ? "" : " on " + task.slurm.node);
  }

  // The attempt's end, once there is one to tell (slurm_runner.h).
  void Judge(Task& task) {
    if (task.exit) return;
    const Clock::time_point now = setup.now();
    const bool open = task.channel != nullptr && !task.channel->closed();
    if (open) {
      if (task.channel->last_heard() != task.heard_mark) {
        task.heard_mark = task.channel->last_heard();
        task.heard = now;
      }
      if (now - task.heard > heartbeat()) {
        slurm->Cancel(task.id);
        task.exit = TrialExit{false, 0, AttemptEnd::kHeartbeatLost,
                              Where(task) + " sent nothing for " + Seconds(heartbeat()) +
                                  " (sweep.executor.heartbeat_timeout_seconds); cancelled"};
      }
      return;
    }
    if (task.channel != nullptr && !task.closed_at) {
      task.closed_at = now;
      backoff.Soon(now);  // the process is ending: how, Slurm says shortly
    }
    // What Slurm said before the process ended is not how it ended.
    if (task.closed_at && task.answered_at <= *task.closed_at) return;
    if (task.channel == nullptr && !task.alone && task.running_since &&
        now - *task.running_since > heartbeat()) {
      slurm->Cancel(task.id);
      task.exit = TrialExit{false, 0, AttemptEnd::kHeartbeatLost,
                            Where(task) + " ran " + Seconds(heartbeat()) +
                                " without reaching the driver at " + address.host + ":" +
                                std::to_string(address.port) +
                                " (can the nodes reach it? sweep.executor.driver_address); "
                                "cancelled"};
      return;
    }
    if (SlurmTaskRequeued(task.slurm) || (task.ran && task.slurm.state == "PENDING")) {
      requeued_by_slurm.insert(task.trial);
      task.exit = TrialExit{false, 0, AttemptEnd::kRequeued,
                            "Slurm put task " + task.id + " back in its queue (requeued)"};
    } else if (SlurmTaskEnded(task.slurm)) {
      AttemptEnd end = SlurmAttemptEnd(task.slurm);
      std::string detail = "Slurm: " + task.slurm.state;
      if (task.slurm.signal != 0) {
        detail += " (signal " + std::to_string(task.slurm.signal) + ")";
      } else if (task.slurm.exit_code != 0) {
        detail += " (exit status " + std::to_string(task.slurm.exit_code) + ")";
      }
      detail += ", task " + task.id + (task.slurm.node.empty() ? "" : " on " + task.slurm.node);
      // A trial's own failures come after it has connected: one that never did failed to start
      // (its node refused it, or could not run tune), which another attempt may not.
      if (end == AttemptEnd::kFailed && task.channel == nullptr && !task.alone) {
        end = AttemptEnd::kNodeFailure;
        detail += "; it never reached its driver, so it did not start (see its log)";
      }
      task.exit =
          TrialExit{task.slurm.signal != 0,
                    task.slurm.signal != 0 ? task.slurm.signal : task.slurm.exit_code, end, detail};
    } else if (task.misses >= kMissesToLose) {
      task.exit = TrialExit{
          false, 0, AttemptEnd::kLost,
          "Slurm no longer knows task " + task.id + ", and the trial did not say how it ended"};
    }
  }

  void Attach(Task& task, std::unique_ptr<TrialChannel> channel) {
    task.channel = std::move(channel);
    task.heard = setup.now();
    task.heard_mark = task.channel->last_heard();
    task.ran = true;
    task.slurm.state = "RUNNING";  // whatever Slurm said before it connected
    if (!task.running_since) task.running_since = task.heard;
  }

  // A connection that proved itself as `trial`.
  void Connected(int64_t trial, std::unique_ptr<TrialChannel> channel) {
    const auto it = live.find(trial);
    if (it != live.end() && it->second->channel == nullptr && !it->second->exit) {
      Attach(*it->second, std::move(channel));
      return;
    }
    if (it != live.end() && !it->second->exit) {
      // The attempt the driver knows connected before: this is Slurm running the task again.
      requeued_by_slurm.insert(trial);
      it->second->exit = TrialExit{false, 0, AttemptEnd::kRequeued,
                                   "Slurm ran task " + it->second->id + " again (requeued)"};
    }
    waiting[trial] = {std::move(channel), setup.now()};
  }

  // Asks Slurm about every task under way that has not ended, when it is time.
  void Refresh() {
    const Clock::time_point now = setup.now();
    std::set<std::string> arrays;
    std::vector<std::string> raw_ids;
    for (const auto& [trial, task] : live) {
      if (task->exit) continue;
      arrays.insert(task->array);
      if (!task->slurm.raw_id.empty()) raw_ids.push_back(task->slurm.raw_id);
    }
    if (arrays.empty() || !backoff.Due(now)) return;
    const std::vector<SlurmTask> answer =
        slurm->Query(std::vector<std::string>(arrays.begin(), arrays.end()), raw_ids);
    bool changed = false;
    for (const auto& [trial, task] : live) {
      if (task->exit) continue;
      const auto found = std::find_if(answer.begin(), answer.end(), [&](const SlurmTask& t) {
        return t.id == task->id ||
               (t.id.empty() && !task->slurm.raw_id.empty() && t.raw_id == task->slurm.raw_id);
      });
      task->answered_at = now;
      if (found == answer.end()) {
        ++task->misses;
        continue;
      }
      task->misses = 0;
      SlurmTask seen = *found;
      seen.id = task->id;
      if (seen.raw_id.empty()) seen.raw_id = task->slurm.raw_id;
      if (seen.node.empty()) seen.node = task->slurm.node;
      changed |= seen != task->slurm;
      task->slurm = seen;
      if (task->release && seen.state == "PENDING" && now >= task->release_after) {
        slurm->Release(task->id);
        task->release = false;
      }
      if (seen.state == "RUNNING") {
        task->ran = true;
        if (!task->running_since) task->running_since = now;
      }
    }
    backoff.Queried(now, changed);
  }
};

class SlurmTrial : public RunningTrial {
 public:
  SlurmTrial(std::shared_ptr<Shared> shared, std::unique_ptr<Task> task)
      : shared_(std::move(shared)), task_(std::move(task)) {
    shared_->live[task_->trial] = task_.get();
    if (const auto it = shared_->waiting.find(task_->trial); it != shared_->waiting.end()) {
      shared_->Attach(*task_, std::move(it->second.channel));
      shared_->waiting.erase(it);
    }
  }
  ~SlurmTrial() override {
    const auto it = shared_->live.find(task_->trial);
    if (it != shared_->live.end() && it->second == task_.get()) shared_->live.erase(it);
  }

  // Releases it when it is next seen waiting, two seconds from now at the soonest: its last run
  // may have ended this very second (Task::release, SlurmCommands::Release).
  void Release(Clock::time_point now) {
    task_->release = true;
    task_->release_after = now + std::chrono::seconds(2);
  }

  TrialChannel* channel() override { return task_->channel.get(); }
  TrialPlace place() const override { return {task_->slurm.node, task_->id}; }

  std::optional<TrialExit> Exited() override {
    shared_->Judge(*task_);
    return task_->exit;
  }

  TrialExit Kill() override {
    // Ended, unless Slurm queued it again itself: then it must not start.
    if (!task_->exit || shared_->requeued_by_slurm.contains(task_->trial)) {
      shared_->slurm->Cancel(task_->id);
      shared_->requeued_by_slurm.erase(task_->trial);
    }
    if (!task_->exit) {
      task_->exit = TrialExit{false, 0, AttemptEnd::kCancelled,
                              "cancelled by tune sweep (Slurm task " + task_->id + ")"};
    }
    return *task_->exit;
  }

 private:
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<Task> task_;
};

class SlurmRunner : public TrialRunner {
 public:
  explicit SlurmRunner(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  std::vector<std::unique_ptr<RunningTrial>> Start(std::span<const TrialLaunch> launches) override {
    const fs::path driver_file = DriverFile(shared_->setup.dir);
    for (const TrialLaunch& launch : launches) WriteGo(driver_file, launch.go);
    const std::map<std::string, SlurmTask> known = Known(launches);
    std::vector<std::unique_ptr<RunningTrial>> started(launches.size());
    std::vector<size_t> fresh;
    for (size_t i = 0; i < launches.size(); ++i) {
      const TrialLaunch& launch = launches[i];
      const auto it = known.find(launch.job);
      if (launch.job.empty() || it == known.end()) {
        fresh.push_back(i);
        continue;
      }
      const SlurmTask& task = it->second;
      const bool queued = task.state == "PENDING" || SlurmTaskRequeued(task);
      const bool rerun_by_slurm = shared_->requeued_by_slurm.erase(launch.trial) > 0 ||
                                  shared_->waiting.contains(launch.trial);
      if ((queued || (rerun_by_slurm && !SlurmTaskEnded(task))) ||
          shared_->slurm->Requeue(launch.job)) {
        started[i] = Bind(launch.trial, launch.job, false);
        static_cast<SlurmTrial&>(*started[i]).Release(shared_->setup.now());
      } else {
        fresh.push_back(i);
      }
    }
    if (!fresh.empty()) {
      std::vector<TrialLaunch> batch;
      for (const size_t i : fresh) batch.push_back(launches[i]);
      const std::string array = Submit(batch);
      for (const size_t i : fresh) {
        started[i] =
            Bind(launches[i].trial, array + "_" + std::to_string(launches[i].trial), false);
      }
    }
    shared_->backoff.Soon(shared_->setup.now());
    return started;
  }

  std::vector<std::unique_ptr<RunningTrial>> Adopt(std::span<const TrialLaunch> launches) override {
    const std::map<std::string, SlurmTask> known = Known(launches);
    std::vector<std::unique_ptr<RunningTrial>> adopted(launches.size());
    for (size_t i = 0; i < launches.size(); ++i) {
      const auto it = known.find(launches[i].job);
      if (launches[i].job.empty() || it == known.end() || SlurmTaskEnded(it->second)) continue;
      // Running already: it reached its earlier driver or none, and trains alone.
      adopted[i] = Bind(launches[i].trial, launches[i].job, it->second.state == "RUNNING");
    }
    return adopted;
  }

  void WaitForAny(std::span<RunningTrial* const> trials,
                  std::chrono::milliseconds timeout) override {
    Shared& s = *shared_;
    std::vector<pollfd> fds;
    for (const int fd : s.listener.fds()) fds.push_back({fd, POLLIN, 0});
    for (RunningTrial* trial : trials) {
      const TrialChannel* channel = trial->channel();
      if (channel != nullptr && !channel->closed()) fds.push_back({channel->fd(), POLLIN, 0});
    }
    const Clock::time_point now = s.setup.now();
    auto wait = timeout;
    if (!s.live.empty()) {
      wait =
          std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(s.backoff.due() - now),
                     std::chrono::milliseconds(0), timeout);
    }
    poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
    for (ChannelListener::Accepted& accepted : s.listener.Poll()) {
      s.Connected(accepted.trial, std::move(accepted.channel));
    }
    for (auto it = s.waiting.begin(); it != s.waiting.end();) {
      it = s.setup.now() - it->second.since > kWaitingConnection ? s.waiting.erase(it)
                                                                 : std::next(it);
    }
    s.Refresh();
  }

 private:
  // What Slurm says of the jobs of `launches`' earlier attempts, by task id.
  std::map<std::string, SlurmTask> Known(std::span<const TrialLaunch> launches) {
    std::set<std::string> arrays;
    for (const TrialLaunch& launch : launches) {
      if (!launch.job.empty()) arrays.insert(launch.job.substr(0, launch.job.find('_')));
    }
    std::map<std::string, SlurmTask> known;
    if (arrays.empty()) return known;
    for (const SlurmTask& task :
         shared_->slurm->Query(std::vector<std::string>(arrays.begin(), arrays.end()), {})) {
      known[task.id] = task;
    }
    return known;
  }

  std::unique_ptr<RunningTrial> Bind(int64_t trial, const std::string& job, bool alone) {
    auto task = std::make_unique<Task>();
    task->trial = trial;
    task->id = job;
    task->array = job.substr(0, job.find('_'));
    task->alone = alone;
    if (alone) task->ran = true;
    return std::make_unique<SlurmTrial>(shared_, std::move(task));
  }

  // Writes the batch script of `launches` and submits it; returns the array's job id.
  std::string Submit(const std::vector<TrialLaunch>& launches) {
    const SlurmRunnerSetup& setup = shared_->setup;
    ArrayScript script;
    script.sweep = setup.sweep;
    script.tune = setup.tune;
    script.options = SbatchOptions(setup.executor);
    std::vector<int64_t> trials;
    for (const TrialLaunch& launch : launches) trials.push_back(launch.trial);
    script.options.insert(
        script.options.begin(),
        {"--job-name=tune-" + setup.sweep,
         "--array=" + ArrayIndices(trials) + "%" + std::to_string(setup.executor.array_parallelism),
         "--output=" + (setup.dir / "trial-%3a.log").string()});
    for (const TrialLaunch& launch : launches) {
      script.tasks.push_back(
          {launch.trial,
           launch.train_args,
           TrialRunFolder(launch),
           {"--driver", DriverFile(setup.dir).string(), "--trial", std::to_string(launch.trial)}});
    }
    const fs::path file =
        setup.dir / "slurm" / ("array-" + std::to_string(++shared_->arrays) + ".sh");
    {
      std::ofstream out(file, std::ios::trunc);
      out << RenderArrayScript(script);
      if (!out.flush()) throw UserError("cannot write " + file.string() + " (disk full?)");
    }
    fs::permissions(file, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
    return shared_->slurm->Submit(file);
  }

  std::shared_ptr<Shared> shared_;
};

}  // namespace

fs::path DriverFile(const fs::path& sweep_dir) { return sweep_dir / "slurm" / "driver.json"; }

std::unique_ptr<TrialRunner> MakeSlurmRunner(SlurmRunnerSetup setup,
                                             std::unique_ptr<SlurmCommands> slurm) {
  if (setup.host.empty()) setup.host = setup.executor.driver_address;
  if (setup.host.empty()) {
    setup.host = HostName();
    // A host whose own name does not resolve (a container's) is reached by its address here;
    // other nodes then need sweep.executor.driver_address.
    if (!Resolves(setup.host)) {
      LogWarning("this host's name '" + setup.host +
                 "' does not resolve; trials reach the driver at 127.0.0.1, which only works on "
                 "this host (set sweep.executor.driver_address to a name the nodes resolve)");
      setup.host = "127.0.0.1";
    }
  }
  fs::create_directories(setup.dir / "slurm");
  // The scripts already there are an earlier driver's: number on after them.
  int64_t arrays = 0;
  for (const auto& entry : fs::directory_iterator(setup.dir / "slurm")) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("array-") && name.ends_with(".sh")) {
      arrays = std::max<int64_t>(arrays, std::strtoll(name.c_str() + 6, nullptr, 10));
    }
  }
  auto shared = std::make_shared<Shared>(std::move(setup), std::move(slurm), RandomHex32());
  shared->arrays = arrays;
  WriteDriverAddress(DriverFile(shared->setup.dir), shared->address);
  return std::make_unique<SlurmRunner>(std::move(shared));
}

}  // namespace tune

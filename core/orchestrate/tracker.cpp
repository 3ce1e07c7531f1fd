#include "orchestrate/tracker.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "registry/wire.h"
#include "util/error.h"
#include "util/log.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Records a trained version in `registry`: the dataset first, then the adapter linked to it.
int64_t RegisterTracked(Registry& registry, TrackedVersion version) {
  if (version.dataset) {
    version.record.dataset_name = version.dataset->name;
    version.record.dataset_version = registry.RegisterDataset(
        version.dataset->name, version.dataset->record, version.dataset->rows_file);
  }
  return registry.Register(version.name, version.record, version.artifact_dir,
                           version.eval_samples);
}

class RegistryTracker : public Tracker {
 public:
  explicit RegistryTracker(std::unique_ptr<Registry> registry) : registry_(std::move(registry)) {}

  std::string CreateRun(const RunInfo& info) override { return registry_->CreateRun(info); }

  void LogMetrics(std::string_view run_id, int64_t step,
                  const std::map<std::string, double>& values) override {
    registry_->LogMetrics(run_id, step, values);
  }

  int64_t Register(TrackedVersion version) override {
    return RegisterTracked(*registry_, std::move(version));
  }

  void FinishRun(std::string_view run_id, RunStatus status, std::string_view error,
                 std::string_view end_reason) override {
    registry_->FinishRun(run_id, status, error, end_reason);
  }

  std::string location() const override { return registry_->location(); }

 private:
  std::unique_ptr<Registry> registry_;
};

std::string NewRunId() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id;
  uint64_t bits = random();
  for (int i = 0; i < 16; ++i, bits >>= 4) id += kHex[bits & 15];
  return id;
}

// A registry server behind a thread of the tracker's own: calls queue in order and go out from
// there, waiting (with backoff) while the server cannot be reached, so the training thread never
// does; metrics of a run the server has not heard of yet are held until it has.
class ServerTracker : public Tracker {
 public:
  explicit ServerTracker(RegistryConfig config)
      : config_(std::move(config)), access_(AccessOf(config_)) {
    worker_ = std::thread([this] { Work(); });
  }

  // What is queued gets a last chance: the time a server unreachable all along would get.
  ~ServerTracker() override {
    {
      std::unique_lock lock(mutex_);
      const auto deadline = Clock::now() + std::chrono::seconds(std::min<int64_t>(
                                               config_.retry_seconds, kLastChanceSeconds));
      drained_.wait_until(lock, deadline, [&] { return queue_.empty() && !busy_; });
      stopping_ = true;
    }
    wake_.notify_all();
    worker_.join();
    if (!queue_.empty()) {
      LogWarning("registry server " + config_.location +
                 " could not be reached: " + std::to_string(queue_.size()) +
                 " calls were not made; `tune registry push RUN_DIR` records the run");
    }
  }

  std::string CreateRun(const RunInfo& info) override {
    const std::string id = NewRunId();
    Enqueue([this, info, id](Registry& registry) {
      registry.CreateRun(info, id);
      std::lock_guard lock(mutex_);
      created_.insert(id);
      // What was logged before the server knew the run.
      if (const auto held = held_.find(id); held != held_.end()) {
        for (const auto& [step, values] : held->second) registry.LogMetrics(id, step, values);
        held_.erase(held);
      }
    });
    return id;
  }

  void LogMetrics(std::string_view run_id, int64_t step,
                  const std::map<std::string, double>& values) override {
    std::lock_guard lock(mutex_);
    if (registry_ != nullptr && created_.count(std::string(run_id))) {
      registry_->LogMetrics(run_id, step, values);  // buffered; sent from its own thread
      return;
    }
    for (const auto& [metric, value] : values) held_[std::string(run_id)][step][metric] = value;
  }

  int64_t Register(TrackedVersion version) override {
    auto done = std::make_shared<Outcome>();
    Enqueue(
        [version, done](Registry& registry) { done->version = RegisterTracked(registry, version); },
        done);
    std::unique_lock lock(mutex_);
    for (;;) {
      if (drained_.wait_for(lock, std::chrono::seconds(1), [&] { return done->finished; })) break;
      if (unreachable_since_ &&
          Clock::now() - *unreachable_since_ >= std::chrono::seconds(config_.retry_seconds)) {
        throw RegistryUnreachable("registry server " + config_.location +
                                  " could not be reached for " +
                                  std::to_string(config_.retry_seconds) +
                                  " s ([registry] retry_seconds): " + last_unreachable_ +
                                  "; the run is kept in its folder: `tune registry push RUN_DIR` "
                                  "registers it when the server answers");
      }
    }
    if (done->error) std::rethrow_exception(done->error);
    return done->version;
  }

  void FinishRun(std::string_view run_id, RunStatus status, std::string_view error,
                 std::string_view end_reason) override {
    Enqueue([id = std::string(run_id), status, text = std::string(error),
             reason = std::string(end_reason)](Registry& registry) {
      registry.FinishRun(id, status, text, reason);
    });
  }

  std::string location() const override { return config_.location; }

 private:
  static constexpr int64_t kLastChanceSeconds = 30;

  // A queued call's result, for the caller that waits for it.
  struct Outcome {
    bool finished = false;
    int64_t version = 0;
    std::exception_ptr error;
  };
  struct Call {
    std::function<void(Registry&)> run;
    std::shared_ptr<Outcome> outcome;  // null: nobody waits
  };

  void Enqueue(std::function<void(Registry&)> run, std::shared_ptr<Outcome> outcome = nullptr) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back({std::move(run), std::move(outcome)});
    }
    wake_.notify_all();
  }

  // Makes the queued calls in order; a call that cannot reach the server is tried again after a
  // pause that doubles up to a minute, and the ones after it wait (order matters: a run is
  // created before its metrics, and a version registered before the run finishes).
  void Work() {
    auto pause = std::chrono::milliseconds(500);
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      Call call = queue_.front();
      busy_ = true;
      lock.unlock();
      bool unreachable = false;
      std::string why;
      std::exception_ptr error;
      try {
        if (registry_ == nullptr) {
          std::unique_ptr<Registry> opened = Registry::Open(
              config_.location, Registry::OpenMode::kReadWrite, Registry::OpenOptions{{}, access_});
          std::lock_guard opened_lock(mutex_);
          registry_ = std::move(opened);
        }
        call.run(*registry_);
      } catch (const RegistryUnreachable& e) {
        unreachable = true;
        why = e.what();
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      busy_ = false;
      if (unreachable) {
        if (!unreachable_since_) {
          unreachable_since_ = Clock::now();
          LogWarning(why + "; training goes on, and the calls wait for the server");
        }
        last_unreachable_ = why;
        wake_.wait_for(lock, pause, [&] { return stopping_; });
        pause = std::min(pause * 2, std::chrono::milliseconds(60'000));
        continue;
      }
      if (unreachable_since_) LogInfo("registry server " + config_.location + " answers again");
      unreachable_since_.reset();
      pause = std::chrono::milliseconds(500);
      queue_.pop_front();
      if (call.outcome) {
        call.outcome->finished = true;
        call.outcome->error = error;
      } else if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          LogWarning(std::string("registry server ") + config_.location + ": " + e.what());
        }
      }
      drained_.notify_all();
    }
  }

  const RegistryConfig config_;
  const RemoteAccess access_;
  std::mutex mutex_;
  std::condition_variable wake_;     // the worker: a call queued, or stopping
  std::condition_variable drained_;  // callers: a call made
  std::deque<Call> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  std::unique_ptr<Registry> registry_;  // opened by the worker when the server first answers
  std::set<std::string> created_;       // runs the server has heard of
  std::map<std::string, std::map<int64_t, std::map<std::string, double>>> held_;
  std::optional<Clock::time_point> unreachable_since_;
  std::string last_unreachable_;
  std::thread worker_;
};

std::string ReadFirstLine(const fs::path& file, const std::string& what) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line) || line.empty()) {
    throw UserError(what + " " + file.string() +
                    ": cannot read a token from its first line; write the token there");
  }
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

}  // namespace

RemoteAccess AccessOf(const RegistryConfig& config) {
  RemoteAccess access;
  if (!config.token_file.empty()) {
    access.token = ReadFirstLine(config.token_file, "[registry] token_file");
  }
  access.ca_file = config.ca_file.string();
  return access;
}

std::unique_ptr<Tracker> OpenRegistryTracker(const RegistryConfig& config) {
  if (Registry::IsUrl(config.location)) return std::make_unique<ServerTracker>(config);
  return std::make_unique<RegistryTracker>(
      Registry::Open(config.location, Registry::OpenMode::kCreate));
}

json TrackedVersionToJson(const TrackedVersion& version) {
  json out = {{"name", version.name},
              {"record", json::parse(VersionRecordToJson(version.record))},
              {"artifact_dir", version.artifact_dir.string()},
              {"eval_samples", version.eval_samples.string()},
              {"dataset", nullptr}};
  if (version.dataset) {
    out["dataset"] = {{"name", version.dataset->name},
                      {"record", json::parse(DatasetRecordToJson(version.dataset->record))},
                      {"rows_file", version.dataset->rows_file.string()}};
  }
  return out;
}

TrackedVersion TrackedVersionFromJson(const json& in) {
  try {
    TrackedVersion version;
    version.name = in.at("name").get<std::string>();
    version.record = VersionRecordFromJson(in.at("record").dump());
    version.artifact_dir = in.at("artifact_dir").get<std::string>();
    version.eval_samples = in.at("eval_samples").get<std::string>();
    if (const json& dataset = in.at("dataset"); dataset.is_object()) {
      version.dataset = TrackedDataset{dataset.at("name").get<std::string>(),
                                       DatasetRecordFromJson(dataset.at("record").dump()),
                                       dataset.at("rows_file").get<std::string>()};
    }
    return version;
  } catch (const json::exception& e) {
    throw UserError(std::string("a registration that is not one tune wrote (") + e.what() + ")");
  }
}

void WriteRunRecord(const fs::path& run_dir, const std::string& run_id, const RunInfo& info) {
  RunRecord run;
  run.id = run_id;
  run.info = info;
  const fs::path file = run_dir / "run.json";
  std::ofstream out(file, std::ios::trunc);
  out << wire::RunToJson(run).dump(2) << "\n";
  if (!out.flush()) throw UserError("cannot write " + file.string() + " (disk full?)");
}

void WriteRegistration(const fs::path& run_dir, const TrackedVersion& version) {
  const fs::path file = run_dir / "registration.json";
  std::ofstream out(file, std::ios::trunc);
  out << TrackedVersionToJson(version).dump(2) << "\n";
  if (!out.flush()) throw UserError("cannot write " + file.string() + " (disk full?)");
}

int64_t PushRunFolder(const fs::path& run_dir, Registry& registry) {
  const auto read = [&](const char* name) {
    const fs::path file = run_dir / name;
    std::ifstream in(file);
    if (!in) {
      throw UserError(file.string() + " does not exist: " + run_dir.string() +
                      " is not a run folder that finished training (tune train writes it)");
    }
    const json parsed = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) throw UserError(file.string() + " is not JSON; it is damaged");
    return parsed;
  };
  RunRecord run;
  try {
    run = wire::RunFromJson(read("run.json"));
  } catch (const json::exception& e) {
    throw UserError((run_dir / "run.json").string() + " is not a run tune wrote (" + e.what() +
                    "); it is damaged");
  }
  const TrackedVersion version = TrackedVersionFromJson(read("registration.json"));
  const std::string id = registry.CreateRun(run.info, run.id);
  std::ifstream metrics(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    const json point = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!point.is_object() || !point.contains("step")) continue;
    std::map<std::string, double> values;
    for (const auto& [key, value] : point.items()) {
      if (key != "step" && value.is_number()) values[key] = value.get<double>();
    }
    registry.LogMetrics(id, point["step"].get<int64_t>(), values);
  }
  const int64_t registered = RegisterTracked(registry, version);
  registry.FinishRun(id, RunStatus::kFinished);
  return registered;
}

}  // namespace tune

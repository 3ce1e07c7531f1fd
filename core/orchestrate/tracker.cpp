#include "orchestrate/tracker.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

namespace tune {
namespace {

// Metrics go to the registry from a thread of the tracker's own: a write opens the registry,
// commits and fsyncs (about 10 ms, more on a busy disk), and a training step should not wait for
// that.
class RegistryTracker : public Tracker {
 public:
  explicit RegistryTracker(std::unique_ptr<Registry> registry)
      : registry_(std::move(registry)), writer_([this] { WriteMetricsUntilStopped(); }) {}

  ~RegistryTracker() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    writer_.join();
    try {
      WritePending();  // the registry keeps what it was given and writes it when destroyed
    } catch (const UserError&) {
      // A destructor cannot report it; FinishRun would have.
    }
  }

  std::string CreateRun(const RunInfo& info) override { return registry_->CreateRun(info); }

  void LogMetrics(std::string_view run_id, int64_t step,
                  const std::map<std::string, double>& values) override {
    std::lock_guard lock(mutex_);
    if (!failure_.empty()) throw UserError(failure_);
    std::map<std::string, double>& merged = pending_[{std::string(run_id), step}];
    for (const auto& [name, value] : values) merged[name] = value;
  }

  int64_t Register(TrackedVersion version) override {
    if (version.dataset) {
      version.record.dataset_name = version.dataset->name;
      version.record.dataset_version = registry_->RegisterDataset(
          version.dataset->name, version.dataset->record, version.dataset->rows_file);
    }
    return registry_->Register(version.name, version.record, version.artifact_dir,
                               version.eval_samples);
  }

  void FinishRun(std::string_view run_id, RunStatus status, std::string_view error) override {
    WritePending();
    {
      std::lock_guard lock(mutex_);
      if (!failure_.empty()) throw UserError(failure_);
    }
    registry_->FinishRun(run_id, status, error);  // writes every metric it holds first
  }

  std::string location() const override { return registry_->dir().string(); }

 private:
  using Pending = std::map<std::pair<std::string, int64_t>, std::map<std::string, double>>;

  // Hands what is pending to the registry, which buffers it and commits at most every 2 s.
  void WritePending() {
    Pending taken;
    {
      std::lock_guard lock(mutex_);
      taken.swap(pending_);
    }
    for (const auto& [key, values] : taken) registry_->LogMetrics(key.first, key.second, values);
  }

  void WriteMetricsUntilStopped() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_; });
      if (stopping_) break;
      lock.unlock();
      try {
        WritePending();
      } catch (const UserError& e) {
        std::lock_guard failed(mutex_);
        if (failure_.empty()) failure_ = e.what();
      }
      lock.lock();
    }
  }

  std::unique_ptr<Registry> registry_;
  std::mutex mutex_;
  std::condition_variable wake_;
  Pending pending_;
  bool stopping_ = false;
  std::string failure_;  // the first write that failed, reported by the next call
  std::thread writer_;   // last: it starts once everything above exists
};

}  // namespace

std::unique_ptr<Tracker> OpenRegistryTracker(const std::filesystem::path& dir) {
  return std::make_unique<RegistryTracker>(Registry::Open(dir, Registry::OpenMode::kCreate));
}

}  // namespace tune

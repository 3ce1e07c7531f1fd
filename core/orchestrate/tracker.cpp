#include "orchestrate/tracker.h"

#include <optional>

#include "util/error.h"

namespace tune {
namespace {

class RegistryTracker : public Tracker {
 public:
  explicit RegistryTracker(std::unique_ptr<Registry> registry) : registry_(std::move(registry)) {}

  std::string CreateRun(const RunInfo& info) override { return registry_->CreateRun(info); }

  void LogMetrics(std::string_view run_id, int64_t step,
                  const std::map<std::string, double>& values) override {
    registry_->LogMetrics(run_id, step, values);
  }

  int64_t Register(TrackedVersion version) override {
    // Idempotent by run: a trial that lost its driver after asking it to register, and asks
    // again here, gets the version the driver made.
    if (!version.record.run_id.empty()) {
      if (const std::optional<int64_t> made = VersionOfRun(version.name, version.record.run_id)) {
        return *made;
      }
    }
    if (version.dataset) {
      version.record.dataset_name = version.dataset->name;
      version.record.dataset_version = registry_->RegisterDataset(
          version.dataset->name, version.dataset->record, version.dataset->rows_file);
    }
    return registry_->Register(version.name, version.record, version.artifact_dir,
                               version.eval_samples);
  }

  void FinishRun(std::string_view run_id, RunStatus status, std::string_view error,
                 std::string_view end_reason) override {
    registry_->FinishRun(run_id, status, error, end_reason);
  }

  std::string location() const override { return registry_->dir().string(); }

 private:
  std::optional<int64_t> VersionOfRun(const std::string& name, const std::string& run_id) const {
    ListOptions options;
    options.name = name;
    std::vector<VersionRecord> versions;
    try {
      versions = registry_->List(options);
    } catch (const UserError&) {
      return std::nullopt;  // no adapter of that name yet
    }
    for (const VersionRecord& record : versions) {
      if (record.run_id == run_id) return record.version;
    }
    return std::nullopt;
  }

  std::unique_ptr<Registry> registry_;
};

}  // namespace

std::unique_ptr<Tracker> OpenRegistryTracker(const std::string& location) {
  return std::make_unique<RegistryTracker>(Registry::Open(location, Registry::OpenMode::kCreate));
}

}  // namespace tune

#include "orchestrate/tracker.h"

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
    if (version.dataset) {
      version.record.dataset_name = version.dataset->name;
      version.record.dataset_version = registry_->RegisterDataset(
          version.dataset->name, version.dataset->record, version.dataset->rows_file);
    }
    return registry_->Register(version.name, version.record, version.artifact_dir,
                               version.eval_samples);
  }

  void FinishRun(std::string_view run_id, RunStatus status, std::string_view error) override {
    registry_->FinishRun(run_id, status, error);
  }

  std::string location() const override { return registry_->dir().string(); }

 private:
  std::unique_ptr<Registry> registry_;
};

}  // namespace

std::unique_ptr<Tracker> OpenRegistryTracker(const std::filesystem::path& dir) {
  return std::make_unique<RegistryTracker>(Registry::Open(dir, Registry::OpenMode::kCreate));
}

}  // namespace tune

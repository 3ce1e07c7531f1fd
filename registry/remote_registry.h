// RemoteRegistry: a registry named by a URL, reached through `tune serve` (registry.h's second
// kind). Each call is one or a few requests (wire.h); private to the registry: Registry::Open
// makes it.
//
// Objects travel by digest: Register asks which of its files' objects the server lacks and sends
// only those, in chunks each checked by its SHA-256, resuming where an upload stopped (also after
// the server restarted); Fetch resumes a cut download with a Range request and checks every byte
// before the folder appears. LogMetrics hands points to a thread of its own that sends them about
// once a second and keeps what the server did not take (it is unreachable) for the next send.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "registry/http_client.h"
#include "registry/registry.h"

namespace tune {

struct OutgoingObject;  // a file to send (remote_registry.cpp)

class RemoteRegistry final : public Registry {
 public:
  // Checks the server answers, speaks this protocol and takes the token (GET /api/health).
  static std::unique_ptr<RemoteRegistry> Open(const std::string& url, OpenMode mode,
                                              const RemoteAccess& access);
  // Sends the metrics it holds, waiting for the server at most a few seconds.
  ~RemoteRegistry() override;

  const std::string& location() const override { return url_; }
  bool read_only() const override { return read_only_; }
  int64_t Register(std::string_view name, const VersionRecord& record,
                   const std::filesystem::path& artifact_dir,
                   const std::filesystem::path& eval_samples = {}) override;
  VersionRecord Resolve(std::string_view ref) const override;
  VersionRecord Get(std::string_view name, int64_t version) const override;
  std::vector<std::string> Names() const override;
  Page ListPage(const ListOptions& options, size_t offset, size_t limit) const override;
  std::map<std::string, int64_t> Aliases(std::string_view name) const override;
  int64_t MoveAlias(std::string_view name, std::string_view alias, int64_t version,
                    std::optional<int64_t> expected = std::nullopt,
                    std::string_view override_reason = {}) override;
  std::vector<AliasMove> History(std::string_view name) const override;
  VersionRecord Fetch(std::string_view ref, const std::filesystem::path& out_dir) const override;
  std::string ReadObject(const ManifestEntry& object, std::string_view what) const override;
  VerifyReport Verify() const override;
  GcReport Gc(std::chrono::seconds grace) override;
  void Backup(const std::filesystem::path& backup_dir) const override;
  int64_t RegisterDataset(std::string_view name, const DatasetRecord& record,
                          const std::filesystem::path& rows_file,
                          const std::filesystem::path& content_file = {}) override;
  DatasetRecord GetDataset(std::string_view ref) const override;
  std::vector<DatasetRecord> ListDatasets() const override;
  std::string CreateRun(const RunInfo& info, std::string_view id = {}) override;
  void LogMetrics(std::string_view run_id, int64_t step,
                  const std::map<std::string, double>& values) override;
  void FinishRun(std::string_view run_id, RunStatus status, std::string_view error = "",
                 std::string_view end_reason = "") override;
  RunRecord GetRun(std::string_view run_id) const override;
  std::vector<RunRecord> ListRuns() const override;
  std::vector<MetricsAtStep> GetRunMetrics(std::string_view run_id) const override;
  void CreateReview(std::string_view name, std::string_view set) override;
  ReviewRecord GetReview(std::string_view name) const override;
  std::vector<ReviewRecord> ListReviews() const override;
  void AddReviewOutputs(std::string_view review, std::string_view contestant,
                        const std::filesystem::path& outputs_file,
                        std::string_view generation) override;
  std::optional<BlindPair> NextPair(std::string_view review) override;
  void Judge(std::string_view review, int64_t pair, Verdict verdict,
             std::string_view reason = {}) override;
  void CloseReview(std::string_view review) override;
  ReviewResults Results(std::string_view review) const override;
  std::vector<ShownPair> Judgements(std::string_view review) const override;
  void SetPolicy(const AliasPolicy& policy) override;
  void RemovePolicy(std::string_view name, std::string_view alias) override;
  std::vector<AliasPolicy> Policies(std::string_view name) const override;
  std::vector<PolicyCheck> CheckPolicy(std::string_view name, std::string_view alias,
                                       int64_t version) const override;
  PromotionRequest Promote(std::string_view name, std::string_view alias, int64_t version,
                           std::optional<int64_t> expected = std::nullopt) override;
  PromotionRequest Approve(std::string_view name, int64_t request) override;
  std::vector<PromotionRequest> PromotionRequests(std::string_view name) const override;
  std::string AddToken(std::string_view name, Role role) override;
  std::vector<TokenInfo> ListTokens() const override;
  void RevokeToken(std::string_view name) override;

 private:
  RemoteRegistry(std::string url, bool read_only, registry_internal::HttpClientOptions options);

  void RequireWritable(std::string_view what) const;
  // Sends the objects of `files` the server lacks, each from the bytes that arrived before.
  void SendObjects(const std::vector<OutgoingObject>& files);
  void SendObject(const OutgoingObject& object, int64_t received);
  // Sends what is held for `run_id` (every run when empty). False when the server could not be
  // reached: the points are held for the next try.
  bool SendMetrics(const std::string& run_id);
  void SendMetricsLoop();

  std::string url_;
  bool read_only_;
  registry_internal::HttpClient client_;

  mutable std::mutex metrics_mutex_;
  std::condition_variable metrics_wake_;
  // run id -> step -> values logged and not yet taken by the server
  std::map<std::string, std::map<int64_t, std::map<std::string, double>>> pending_metrics_;
  std::string last_unreachable_;  // why the last send of metrics failed
  bool stopping_ = false;
  std::thread sender_;  // started by the first LogMetrics
};

}  // namespace tune

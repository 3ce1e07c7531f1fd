// LocalRegistry: the embedded registry, a folder on this machine (registry.h's first kind), and
// what a registry server needs of it besides the Registry interface: objects by digest, uploads
// received in chunks, versions of objects already stored, tokens checked, and writes recorded as
// made by the token that asked.
//
// On disk, under the registry directory:
//   db/                       RocksDB: metadata in column families, a schema-version key
//   db/LOCK.pid               PID and command line of the process that holds db/LOCK for writing
//   db/LAST_WRITE.seq         RocksDB sequence number after the last write that returned: readers
//                             reopen when it moves and refuse a view that does not reach it
//   db/FILES.lock             held while a writer changes the database's files (db_locks.h)
//   objects/sha256/ab/<hex>   adapter files, named by the SHA-256 of their bytes, never changed
//   objects/tmp/              files being written; anything left here is an interrupted write
//   objects/uploads/<hex>     an object a server is receiving in chunks, as far as it has come
//
// Threads: any number of threads may use one LocalRegistry, and one process may open several;
// writes are serialised between them all. Processes: any number may open a registry, for reading
// or writing, at once. Each write holds db/LOCK only for its own transaction (milliseconds; a Gc
// for as long as it removes files) and waits up to `write_wait` for another's to end; a read
// waits at most for a writer's open or compaction (milliseconds), never for a write.
// Damage: a listing, Gc and Backup refuse a database whose tables fail their checksums or whose
// records do not add up to the counts it keeps; Verify reports each such problem. A write refuses
// a log whose tail is damaged (it held a write that returned) until Recover accepts the loss.
// Space: a write first checks that the disk has room for RocksDB to open (a few MiB); Gc and
// Verify open nothing for writing, so they work on a full disk.
// Many machines share one registry only through `tune serve`, never by opening this folder over
// a network file system (RocksDB's locks do not hold there).
#pragma once

#include <memory>

#include "registry/registry.h"

namespace tune {

class LocalRegistry final : public Registry {
 public:
  // As Registry::Open for a folder.
  static std::unique_ptr<LocalRegistry> Open(
      const std::filesystem::path& dir, OpenMode mode,
      std::chrono::milliseconds write_wait = OpenOptions{}.write_wait);
  ~LocalRegistry() override;

  // The same registry, whose writes record `by` as who made them (a server's token name) instead
  // of this process's USER@HOST. Shares this one's views and buffers; must not outlive it.
  std::unique_ptr<LocalRegistry> Acting(std::string_view by) const;

  const std::filesystem::path& dir() const;

  // Where the object with `digest` (64 lowercase hex digits, checked: UserError otherwise) is
  // stored, for a server to send while it checks the bytes; it may be missing if the registry is
  // damaged.
  std::filesystem::path ObjectPath(std::string_view digest) const;

  // Uploads, the server's side (DESIGN section 10). How many bytes of the object `digest` of
  // `size_bytes` bytes have arrived so far: `size_bytes` when it is stored, 0 when nothing is. An
  // upload whose bytes all arrived before the server stopped is stored now, if they hash right.
  int64_t ObjectReceived(std::string_view digest, int64_t size_bytes);
  // Appends `bytes`, which the client says hash to `chunk_sha256`, to the object's upload at
  // `offset`. Refuses (UserError, storing nothing) an offset that is not what has arrived
  // (UploadOffsetConflict, naming it) and bytes past `size_bytes`. The chunk that completes the
  // object has the whole checked against `digest` and the object stored. When the whole does not
  // match, each chunk is checked against what was sent with it: the first that differs was
  // damaged on the way, and the upload goes back to it (UploadOffsetConflict); with none (the
  // file changed while it was sent), the upload is dropped. So bytes are hashed once on the way
  // and chunks again only when something is wrong. Returns the bytes that have arrived.
  int64_t ReceiveObjectChunk(std::string_view digest, int64_t size_bytes, int64_t offset,
                             std::string_view bytes, std::string_view chunk_sha256);
  // Register and RegisterDataset for objects already stored (by digest): `record.files` and
  // `record.eval_samples`, or `record.rows_object` and `record.content`, name them. UserError
  // naming the first that is not stored, or stored with another size.
  int64_t RegisterStored(std::string_view name, const VersionRecord& record);
  int64_t RegisterStoredDataset(std::string_view name, const DatasetRecord& record);
  // CreateRun for a client on another machine, which says which process finishes the run.
  std::string CreateRunFor(const RunInfo& info, std::string_view id, const RunProcess& process);
  // AddReviewOutputs for an object already stored (by digest), checked as the file would be.
  void AddStoredReviewOutputs(std::string_view review, std::string_view contestant,
                              const ManifestEntry& object, std::string_view generation);

  // The token's record when `token` (NAME.SECRET) is one of this registry's and not revoked; the
  // secret is compared by its SHA-256, in constant time. nullopt otherwise.
  std::optional<TokenInfo> Authenticate(std::string_view token) const;

  // Opens a registry whose write-ahead log is damaged (writes refuse it: the log held writes that
  // returned), keeping every write before the damage and dropping the rest. Returns one line
  // saying what was kept and what was lost. Waits for other writers as a write does.
  static std::string Recover(const std::filesystem::path& dir);

  // Registry.
  const std::string& location() const override;
  bool read_only() const override;
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

  class Impl;

 private:
  LocalRegistry(std::shared_ptr<Impl> impl, std::string by);
  std::shared_ptr<Impl> impl_;
  std::string by_;  // who this registry's writes record as having made them
};

// A chunk sent for an offset other than the bytes that have arrived (a retry of one that did
// arrive, or of one lost): the client resumes from received().
class UploadOffsetConflict : public UserError {
 public:
  UploadOffsetConflict(const std::string& message, int64_t received)
      : UserError(message), received_(received) {}
  int64_t received() const { return received_; }

 private:
  int64_t received_;
};

}  // namespace tune

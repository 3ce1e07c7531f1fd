#include "registry/local_registry.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <rocksdb/db.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <nlohmann/json.hpp>

#include "registry/common.h"
#include "registry/db_locks.h"
#include "registry/filter.h"
#include "registry/object_store.h"
#include "registry/policy.h"
#include "registry/review.h"
#include "registry/wire.h"
#include "util/counted.h"
#include "util/echo.h"
#include "util/names.h"
#include "util/sha256.h"
#include "util/suggest.h"

namespace tune {

namespace fs = std::filesystem;
using nlohmann::json;
using registry_internal::Filter;
using registry_internal::NowMs;
using registry_internal::ObjectStore;
using registry_internal::RandomHex;
using registry_internal::Sha256Hex;
using registry_internal::SortKey;

namespace {

constexpr int64_t kSchemaVersion = 1;
constexpr const char* kSchemaKey = "tune.schema_version";

// Column families. Keys join names and numbers with '/', which names cannot contain; numbers are
// zero-padded to 20 digits so that keys sort as the numbers do.
enum Column : size_t {
  kDefault,       // kSchemaKey; datasets/NAME/VERSION -> DatasetRecord JSON (kDatasetPrefix)
  kAdapters,      // NAME -> {created_ms, last_version, alias_moves}
  kVersions,      // NAME/VERSION -> VersionRecord JSON
  kAliases,       // NAME/ALIAS -> version
  kAliasHistory,  // NAME/SEQUENCE -> AliasMove JSON
  kRuns,          // RUN_ID -> RunRecord JSON
  kRunMetrics,    // RUN_ID/STEP -> {metric: value}
  kColumnCount,
};
constexpr const char* kColumnNames[kColumnCount] = {
    "default", "adapters", "versions", "aliases", "alias_history", "runs", "run_metrics"};

// Datasets live in the default column family, which every registry has: no registry written
// before datasets existed needs a new column family to be read.
constexpr const char* kDatasetPrefix = "datasets/";
// registered/NAME/RUN_ID/ARTIFACT_DIGEST -> the version a run's artifact became: a retried
// registration returns it instead of adding a version.
constexpr const char* kRegisteredPrefix = "registered/";
// tokens/NAME -> TokenInfo JSON with the SHA-256 of the secret.
constexpr const char* kTokenPrefix = "tokens/";
// People's judgement (DESIGN section 11), in the default column family as datasets are:
//   reviews/NAME              -> ReviewRecord JSON
//   review_pairs/NAME/ID      -> ShownPair JSON, IDs from 1 in the order shown
//   policies/ADAPTER/ALIAS    -> AliasPolicy JSON
//   promotions/ADAPTER/ID     -> PromotionRequest JSON, IDs from 1 per adapter
constexpr const char* kReviewPrefix = "reviews/";
constexpr const char* kReviewPairPrefix = "review_pairs/";
constexpr const char* kPolicyPrefix = "policies/";
constexpr const char* kPromotionPrefix = "promotions/";

std::string Pad(int64_t number) {
  char text[32];
  std::snprintf(text, sizeof text, "%020" PRId64, number);
  return text;
}

std::string Key(std::string_view a, int64_t number) { return std::string(a) + "/" + Pad(number); }

// RocksDB logs into db/LOG; a read-only open must not rotate the writer's log, so it logs nowhere.
class NullLogger : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

// A run's error comes from anywhere (a plugin, a dataset row): bytes that are not UTF-8 become
// U+FFFD rather than failing the write.
std::string RunText(const RunRecord& run) { return wire::Dump(wire::RunToJson(run)); }

RunRecord RunFromJson(const std::string& text) { return wire::RunFromJson(json::parse(text)); }

struct AdapterEntry {
  int64_t created_ms = 0;
  int64_t last_version = 0;
  int64_t alias_moves = 0;

  std::string ToJson() const {
    return json{
        {"created_ms", created_ms}, {"last_version", last_version}, {"alias_moves", alias_moves}}
        .dump();
  }
  static AdapterEntry FromJson(const std::string& text) {
    const json j = json::parse(text);
    return {j.at("created_ms").get<int64_t>(), j.at("last_version").get<int64_t>(),
            j.at("alias_moves").get<int64_t>()};
  }
};

// An open RocksDB with the registry's column families, and the reads of records through it. A
// read-only Db sees the database as it was when opened; a writable one holds db/LOCK until it is
// destroyed, so a write reads what it changes through the handle it commits with.
// The version records of one state of a registry's adapters, and the listings made of them.
struct ParsedVersions {
  using Order = std::vector<const VersionRecord*>;
  std::vector<VersionRecord> versions;
  std::mutex orders_mutex;
  std::map<std::string, std::shared_ptr<const Order>> orders;
};

// The last ParsedVersions a registry's views made, and the state of the adapters' entries (their
// SHA-256) it was made from.
struct ParsedVersionsCache {
  std::mutex mutex;
  std::string state;
  std::shared_ptr<ParsedVersions> parsed;
};

class Db {
 public:
  explicit Db(std::string registry_name) : name(std::move(registry_name)) {}
  ~Db() {
    if (db == nullptr) return;
    for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
    db->Close().PermitUncheckedError();
    delete db;
  }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  [[noreturn]] void ThrowStatus(const rocksdb::Status& status, const std::string& doing) const {
    if (status.IsCorruption()) {
      throw RegistryDamaged("registry " + name + " is damaged: " + doing +
                            " failed: " + status.ToString() +
                            "; run `tune registry verify`, then restore it from a backup");
    }
    throw UserError("registry " + name + ": " + doing + " failed: " + status.ToString() +
                    "; check the disk, then run `tune registry verify`");
  }

  void Check(const rocksdb::Status& status, const std::string& doing) const {
    if (!status.ok()) ThrowStatus(status, doing);
  }

  std::optional<std::string> Get(Column column, const std::string& key) const {
    std::string value;
    const rocksdb::Status status = db->Get(rocksdb::ReadOptions(), handles[column], key, &value);
    if (status.IsNotFound()) return std::nullopt;
    Check(status, "reading");
    return value;
  }

  // Every (key, value) whose key starts with `prefix`, in key order.
  template <typename Visit>
  void Scan(Column column, const std::string& prefix, Visit visit) const {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[column]));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      visit(it->key().ToString(), it->value().ToString());
    }
    Check(it->status(), "scanning");
  }

  void Commit(rocksdb::WriteBatch& batch, bool sync) const {
    rocksdb::WriteOptions options;
    options.sync = sync;
    Check(db->Write(options, &batch), "committing");
  }

  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    Scan(kAdapters, "", [&](const std::string& key, const std::string&) { names.push_back(key); });
    return names;
  }

  AdapterEntry RequireAdapter(std::string_view adapter) const {
    if (std::optional<std::string> entry = Get(kAdapters, std::string(adapter))) {
      return AdapterEntry::FromJson(*entry);
    }
    const std::vector<std::string> names = Names();
    if (names.empty()) {
      throw UserError("no adapter named '" + std::string(adapter) + "': registry " + name +
                      " has no adapters yet; train one, or pass --registry to use another");
    }
    std::string hint = DidYouMean(adapter, names);
    if (hint.empty()) {
      // The closest few by edit distance, so a long list still points somewhere useful.
      std::vector<std::string> closest = names;
      std::stable_sort(closest.begin(), closest.end(),
                       [&](const std::string& a, const std::string& b) {
                         return EditDistance(adapter, a) < EditDistance(adapter, b);
                       });
      if (closest.size() > 5) closest.resize(5);
      hint = "; closest names: " + JoinNames(closest);
    }
    throw UserError("no adapter named '" + std::string(adapter) + "' in registry " + name + hint +
                    "; `tune adapters ls` lists them");
  }

  VersionRecord GetVersion(std::string_view adapter, int64_t version) const {
    const AdapterEntry entry = RequireAdapter(adapter);
    std::optional<std::string> record = Get(kVersions, Key(adapter, version));
    if (!record) {
      throw UserError("adapter '" + std::string(adapter) + "' has no version " +
                      std::to_string(version) + " in registry " + name + "; its versions are " +
                      (entry.last_version == 1 ? std::string("1")
                                               : "1 to " + std::to_string(entry.last_version)));
    }
    return VersionRecordFromJson(*record);
  }

  std::map<std::string, int64_t> Aliases(std::string_view adapter) const {
    std::map<std::string, int64_t> aliases;
    const std::string prefix = std::string(adapter) + "/";
    Scan(kAliases, prefix, [&](const std::string& key, const std::string& value) {
      aliases[key.substr(prefix.size())] = std::stoll(value);
    });
    return aliases;
  }

  RunRecord GetRun(std::string_view run_id) const {
    std::optional<std::string> text = Get(kRuns, std::string(run_id));
    if (!text) {
      throw UserError("no run '" + std::string(run_id) + "' in registry " + name +
                      "; run ids are the 16 hex digits a trainer prints");
    }
    return RunFromJson(*text);
  }

  // Every version record in key order (by name, then version), parsed once per state of the
  // adapters' entries (every registration changes one): views reopened after writes that add no
  // version (metrics, runs, every 2 seconds while something trains) share the parse through
  // `cache`, so a server answering many requests parses the registry once per new version, not
  // once per request or write. Throws RegistryDamaged when the records do not match the counts
  // the adapters' entries keep (MissingRecords): a listing never leaves out a version silently.
  const std::vector<VersionRecord>& AllVersions() const { return Parsed().versions; }

  ParsedVersions& Parsed() const {
    std::call_once(parsed_once_, [&] {
      Sha256 fingerprint;
      Scan(kAdapters, "", [&](const std::string& key, const std::string& value) {
        fingerprint.Update(key);
        fingerprint.Update(value);
      });
      const std::string state = fingerprint.FinishHex();
      if (cache != nullptr) {
        std::lock_guard lock(cache->mutex);
        if (cache->parsed != nullptr && cache->state == state) {
          parsed_ = cache->parsed;
          return;
        }
      }
      auto parsed = std::make_shared<ParsedVersions>();
      Scan(kVersions, "", [&](const std::string&, const std::string& value) {
        parsed->versions.push_back(VersionRecordFromJson(value));
      });
      if (const std::vector<std::string> missing = MissingRecords(); !missing.empty()) {
        throw RegistryDamaged(
            "registry " + name + " is damaged: " + missing.front() +
            (missing.size() > 1
                 ? " (and " + Counted(static_cast<int64_t>(missing.size()) - 1, "more problem") +
                       ")"
                 : std::string()) +
            "; run `tune registry verify`, then restore it from a backup");
      }
      if (cache != nullptr) {
        std::lock_guard lock(cache->mutex);
        cache->state = state;
        cache->parsed = parsed;
      }
      parsed_ = std::move(parsed);
    });
    return *parsed_;
  }

  // What a scan cannot tell by itself: a damaged table block can end an iteration early, or hide
  // some records, without an error. Every adapter's entry counts its versions (1 to
  // last_version, never removed) and a dataset's versions run from 1 without gaps; one line per
  // gap found. Reads only keys and entries: cheap beside a listing.
  std::vector<std::string> MissingRecords() const {
    std::map<std::string, int64_t> last_versions;
    Scan(kAdapters, "", [&](const std::string& key, const std::string& value) {
      last_versions[key] = AdapterEntry::FromJson(value).last_version;
    });
    std::map<std::string, std::set<int64_t>> versions;
    Scan(kVersions, "", [&](const std::string& key, const std::string&) {
      const size_t slash = key.rfind('/');
      versions[key.substr(0, slash)].insert(std::stoll(key.substr(slash + 1)));
    });
    std::vector<std::string> missing;
    const auto gaps = [&](const std::string& what, int64_t last, const std::set<int64_t>& have) {
      int64_t absent = 0;
      int64_t first = 0;
      for (int64_t v = 1; v <= last; ++v) {
        if (have.count(v)) continue;
        if (absent++ == 0) first = v;
      }
      if (absent > 0) {
        missing.push_back(what + " has versions 1 to " + std::to_string(last) + ", but " +
                          Counted(absent, "record") + " cannot be read (the first: version " +
                          std::to_string(first) + ")");
      }
    };
    for (const auto& [adapter, last] : last_versions)
      gaps("adapter " + adapter, last, versions[adapter]);
    for (const auto& [adapter, have] : versions) {
      if (!last_versions.count(adapter)) {
        missing.push_back("adapter " + adapter + " has version records but no entry");
      }
    }
    std::map<std::string, std::set<int64_t>> datasets;
    Scan(kDefault, kDatasetPrefix, [&](const std::string& key, const std::string&) {
      const size_t slash = key.rfind('/');
      datasets[key.substr(std::strlen(kDatasetPrefix), slash - std::strlen(kDatasetPrefix))].insert(
          std::stoll(key.substr(slash + 1)));
    });
    for (const auto& [dataset, have] : datasets) gaps("dataset " + dataset, *have.rbegin(), have);
    return missing;
  }

  // A listing's records in its order, computed by `compute` the first time it is asked for `key`
  // and kept with the parsed versions: a web view asks for the same list every 2 seconds, and
  // for pages of it. Holds a few dozen listings; past that it starts again.
  using Order = ParsedVersions::Order;
  std::shared_ptr<const Order> CachedOrder(const std::string& key,
                                           const std::function<Order()>& compute) const {
    constexpr size_t kListings = 32;
    ParsedVersions& parsed = Parsed();
    {
      std::lock_guard lock(parsed.orders_mutex);
      if (const auto it = parsed.orders.find(key); it != parsed.orders.end()) return it->second;
    }
    auto order = std::make_shared<const Order>(compute());  // outside the lock: may throw
    std::lock_guard lock(parsed.orders_mutex);
    if (parsed.orders.size() >= kListings) parsed.orders.clear();
    parsed.orders.emplace(key, order);
    return order;
  }

  std::string name;  // how messages name the registry: the path as given
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::shared_ptr<rocksdb::Logger> logger;
  std::shared_ptr<ParsedVersionsCache> cache;  // shared by a registry's views; null: none

 private:
  mutable std::once_flag parsed_once_;
  mutable std::shared_ptr<ParsedVersions> parsed_;
};

// What a reader may see while a writer replaces the file list under it: worth another try.
bool IsTransientReadError(const rocksdb::Status& status) {
  return status.IsIOError() || status.IsCorruption() || status.IsPathNotFound();
}

constexpr auto kMetricsFlushInterval = std::chrono::seconds(2);

// Every object a version refers to: its artifact's files and its evaluation outputs.
std::vector<ManifestEntry> ObjectsOf(const VersionRecord& record) {
  std::vector<ManifestEntry> objects = record.files;
  if (record.eval_samples) objects.push_back(*record.eval_samples);
  return objects;
}

std::string DatasetKeyPrefix(std::string_view name) {
  return std::string(kDatasetPrefix).append(name).append("/");
}
std::string DatasetKey(std::string_view name, int64_t version) {
  return DatasetKeyPrefix(name).append(Pad(version));
}

}  // namespace

namespace {

// One upload's chunk at a time in this process (two clients may send the same bytes), and the
// chunks that wait for the one before them. Gc takes it too, so that it removes an abandoned
// upload between two chunks, never under one being written.
std::mutex uploads_mutex;
std::condition_variable upload_arrived;
constexpr auto kChunkWait = std::chrono::seconds(30);

}  // namespace

class LocalRegistry::Impl {
 public:
  Impl(fs::path dir_in, bool read_only_in, std::chrono::milliseconds write_wait_in)
      : dir(std::move(dir_in)),
        name(dir.string()),
        read_only(read_only_in),
        write_wait(write_wait_in),
        objects(dir / "objects", name) {}

  // Metrics still buffered reach the disk if the registry lets us write within write_wait.
  ~Impl() {
    try {
      if (HasPendingMetrics()) {
        Lease lease = Write(write_wait);
        lease.CommitMetrics();
      }
    } catch (const std::exception&) {
      // Nowhere to report from a destructor; the run folder's metrics.jsonl has them.
    }
  }

  fs::path DbDir() const { return dir / "db"; }

  void RequireWritable(std::string_view what) const {
    if (read_only) {
      throw UserError("registry " + name + " was opened read-only, so it cannot " +
                      std::string(what) + "; open it for writing");
    }
  }

  // How an open treats a damaged log. A writer refuses a log whose tail is cut (kAbsolute): the
  // write it held returned, and recovering to the last whole record would drop it without a word.
  // A reader reads up to the last whole record (a writer may be appending one as it reads) and
  // learns from the write stamp whether anything is missing.
  enum class LogRecovery { kAbsolute, kPointInTime };

  // One attempt at opening the database; the caller decides what a failure means.
  std::unique_ptr<Db> TryOpenDb(bool writable, bool create, LogRecovery recovery,
                                rocksdb::Status& status) const {
    auto opened = std::make_unique<Db>(name);
    rocksdb::DBOptions options;
    options.create_if_missing = create;
    options.create_missing_column_families = writable;
    options.keep_log_file_num = 3;
    options.info_log_level = rocksdb::WARN_LEVEL;
    options.wal_recovery_mode = recovery == LogRecovery::kAbsolute
                                    ? rocksdb::WALRecoveryMode::kAbsoluteConsistency
                                    : rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    // Every write opens the database: skip what an open need not read, and open its few table
    // files on this thread rather than starting 16 threads per open.
    options.max_file_opening_threads = 1;
    options.skip_stats_update_on_db_open = true;
    options.skip_checking_sst_file_sizes_on_db_open = true;
    if (!writable) {
      // A read-only open must not rotate the writer's db/LOG, so it logs nowhere.
      opened->logger = std::make_shared<NullLogger>();
      options.info_log = opened->logger;
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> columns;
    for (const char* column : kColumnNames) {
      rocksdb::ColumnFamilyOptions column_options;
      // Each write is a process's short open: a compaction RocksDB starts in the background would
      // be cut off by the close. Lease::Compact compacts instead.
      column_options.disable_auto_compactions = true;
      columns.emplace_back(column, column_options);
    }
    status = writable ? rocksdb::DB::Open(options, DbDir().string(), columns, &opened->handles,
                                          &opened->db)
                      : rocksdb::DB::OpenForReadOnly(options, DbDir().string(), columns,
                                                     &opened->handles, &opened->db);
    if (!status.ok()) return nullptr;
    return opened;
  }

  [[noreturn]] void ThrowOpenFailure(const rocksdb::Status& status) const {
    const std::string text = status.ToString();
    if (status.IsIOError() && (text.find("Permission denied") != std::string::npos ||
                               text.find("Read-only file system") != std::string::npos)) {
      throw UserError("registry at " + name + " is not writable by this user (" + text +
                      "); fix its permissions, or use read-only commands such as `tune adapters "
                      "ls`");
    }
    if (status.IsNoSpace() || text.find("No space left") != std::string::npos) {
      throw UserError("registry " + name + ": the disk is full (" + text +
                      "); free space and retry; nothing already stored was changed (`tune "
                      "registry gc` works on a full disk)");
    }
    if (status.IsCorruption()) {
      throw RegistryDamaged(
          "registry at " + name + " is damaged: " + text +
          "; run `tune registry verify`, then restore it from a backup, or run `tune "
          "registry recover` to keep what is whole and lose the damaged writes");
    }
    throw UserError("cannot open registry at " + name + ": " + text +
                    "; check the path, or restore the registry from a backup");
  }

  [[noreturn]] void ThrowBehind(uint64_t view, uint64_t stamp) const {
    throw RegistryDamaged(
        "registry at " + name + " is damaged: its database ends at write " + std::to_string(view) +
        ", but write " + std::to_string(stamp) +
        " returned (db/LAST_WRITE.seq): its log lost the writes in between; run "
        "`tune registry verify`, then restore it from a backup or run `tune registry "
        "recover` to keep what is whole");
  }

  // A read-only view of the database as of now, holding every write that returned before the
  // call (the write stamp is read first, and a view that does not reach it is opened again).
  std::unique_ptr<Db> OpenView() const {
    rocksdb::Status status;
    std::optional<uint64_t> behind;
    const std::optional<uint64_t> stamp = registry_internal::ReadWriteStamp(DbDir());
    // A writer may be replacing the file list while we read it: retry for about two seconds.
    for (int attempt = 0; attempt < 24; ++attempt) {
      std::unique_ptr<Db> opened;
      {
        registry_internal::FilesLock files(DbDir(), registry_internal::FilesLock::Kind::kShared);
        opened = TryOpenDb(/*writable=*/false, /*create=*/false, LogRecovery::kPointInTime, status);
      }
      if (opened != nullptr) {
        const uint64_t sequence = opened->db->GetLatestSequenceNumber();
        if (!stamp || sequence >= *stamp) {
          opened->cache = parsed_versions;
          return opened;
        }
        behind = sequence;
      } else if (!IsTransientReadError(status)) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5 << attempt, 100)));
    }
    if (behind) ThrowBehind(*behind, *stamp);
    ThrowOpenFailure(status);
  }

  // What a read needs to be current: everything, or everything but the runs' metrics.
  enum class Reads { kAll, kAllButMetrics };

  // The registry as of now: the view is reopened when a write (of any process) has returned since
  // it was opened. For reads that leave the runs' metrics alone, this process's own metrics
  // writes do not count: while runs log, the version list is not read again from the disk every
  // two seconds.
  std::shared_ptr<const Db> Reader(Reads reads = Reads::kAllButMetrics) const {
    const std::optional<uint64_t> stamp = registry_internal::ReadWriteStamp(DbDir());
    std::lock_guard lock(view_mutex);
    if (view != nullptr && stamp) {
      if (stamp == view_stamp && !view_stale) return view;
      if (reads == Reads::kAllButMetrics && stamp == view_current_but_metrics) return view;
    }
    view = OpenView();
    view_stamp = stamp;
    view_current_but_metrics = stamp;
    view_stale = false;
    return view;
  }

  // Holds the registry for one write, with RocksDB open for writing, for as long as it lives.
  // Commit what the write changes before it ends.
  class Lease {
   public:
    Lease(Impl& impl, std::unique_ptr<registry_internal::WriteLock> write_lock,
          std::unique_ptr<Db> db)
        : impl_(impl), write_lock_(std::move(write_lock)), db_(std::move(db)) {}
    ~Lease() {
      if (committed_) {
        const uint64_t written = db_->db->GetLatestSequenceNumber();
        registry_internal::WriteWriteStamp(impl_.DbDir(), written);
        std::lock_guard lock(impl_.view_mutex);
        impl_.view_stale = true;
        // Only metrics changed since the view was opened, all of it by this process: the view
        // still holds everything else.
        const bool view_current =
            impl_.view_current_but_metrics && stamp_before_ == impl_.view_current_but_metrics;
        impl_.view_current_but_metrics =
            !changed_more_than_metrics_ && view_current ? std::optional(written) : std::nullopt;
      }
      registry_internal::FilesLock files(impl_.DbDir(),
                                         registry_internal::FilesLock::Kind::kExclusive);
      Compact();
      db_.reset();  // closing is the last change to the database's files
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    const Db& db() const { return *db_; }
    rocksdb::ColumnFamilyHandle* column(Column c) const { return db_->handles[c]; }

    void Commit(rocksdb::WriteBatch& batch, bool sync = true) {
      db_->Commit(batch, sync);
      committed_ = true;
      changed_more_than_metrics_ = true;
    }

    // Writes the metrics buffered so far, merged into what their steps already have.
    void CommitMetrics() {
      std::lock_guard lock(impl_.metrics_mutex);
      if (impl_.pending_metrics.empty()) return;
      rocksdb::WriteBatch batch;
      for (const auto& [key, values] : impl_.pending_metrics) {
        std::map<std::string, double> merged;
        if (std::optional<std::string> existing = db_->Get(kRunMetrics, key)) {
          merged = wire::MetricValuesFromJson(json::parse(*existing));
        }
        for (const auto& [metric, value] : values) merged[metric] = value;
        batch.Put(column(kRunMetrics), key, wire::MetricValuesToJson(merged).dump());
      }
      db_->Commit(batch, /*sync=*/false);  // the run folder's metrics.jsonl is the durable copy
      committed_ = true;
      impl_.pending_metrics.clear();
      impl_.last_metrics_commit = std::chrono::steady_clock::now();
    }

   private:
    // Each open flushes what the last writer left in the log into new level-0 files, and a
    // database closed right after a write never compacts in the background: without this, every
    // write would add files that every later open reads. Moving level 0 down is not enough: keys
    // that only grow (versions, alias moves) make each level-0 file a "trivial move" to level 1,
    // where they piled up (621 files after 460 registrations), so a column family of more than
    // a few files is compacted whole, bottom level included.
    void Compact() {
      constexpr size_t kMostFiles = 8;
      for (rocksdb::ColumnFamilyHandle* handle : db_->handles) {
        rocksdb::ColumnFamilyMetaData meta;
        db_->db->GetColumnFamilyMetaData(handle, &meta);
        // A compaction writes the whole family again before it removes the old files; on a disk
        // without that much room it would fail halfway, so it waits for a write with room.
        if (meta.file_count < kMostFiles ||
            registry_internal::FreeBytes(impl_.DbDir()) < 2 * meta.size + (uint64_t{4} << 20)) {
          continue;
        }
        rocksdb::CompactRangeOptions options;
        options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
        db_->db->CompactRange(options, handle, nullptr, nullptr)
            .PermitUncheckedError();  // a failed compaction loses nothing; the next one retries
      }
    }

    Impl& impl_;
    std::unique_ptr<registry_internal::WriteLock> write_lock_;
    std::unique_ptr<Db> db_;
    // The write stamp when the lease began: no other process can write while it lives.
    const std::optional<uint64_t> stamp_before_ = registry_internal::ReadWriteStamp(impl_.DbDir());
    bool committed_ = false;
    bool changed_more_than_metrics_ = false;
  };

  // Takes the registry for one write, waiting up to `wait` for another process's write to end.
  Lease Write(std::chrono::milliseconds wait, bool create = false) {
    auto write_lock = std::make_unique<registry_internal::WriteLock>(DbDir(), name, wait);
    registry_internal::RemoveInterruptedOpenFiles(DbDir());
    registry_internal::RequireRoomToWrite(DbDir(), name);
    rocksdb::Status status;
    std::unique_ptr<Db> opened;
    {
      registry_internal::FilesLock files(DbDir(), registry_internal::FilesLock::Kind::kExclusive);
      opened = TryOpenDb(/*writable=*/true, create, LogRecovery::kAbsolute, status);
    }
    if (opened == nullptr) ThrowOpenFailure(status);
    return Lease(*this, std::move(write_lock), std::move(opened));
  }

  // Holds the registry against every other writer without opening RocksDB for writing, which
  // needs free space: for work that only reads the database (Gc removes objects by what a
  // complete view says; Verify checks the log under it).
  std::unique_ptr<registry_internal::WriteLock> HoldForWrites(std::chrono::milliseconds wait) {
    return std::make_unique<registry_internal::WriteLock>(DbDir(), name, wait);
  }

  // Records `record`, whose objects are stored, as the next version of `adapter`, made by `by`.
  // Under the lease an object a Gc took meanwhile is handed to `restore`, which stores it again
  // or throws. A record with a run_id that registered the same artifact under this name before
  // (a retry) gets the version it became, and nothing is added.
  int64_t CommitVersion(std::string_view adapter, VersionRecord record, const std::string& by,
                        const std::function<void(const std::string& digest)>& restore) {
    Lease lease = Write(write_wait);
    std::string once;
    if (!record.run_id.empty()) {
      once = std::string(kRegisteredPrefix)
                 .append(adapter)
                 .append("/")
                 .append(record.run_id)
                 .append("/")
                 .append(record.artifact_digest);
      if (std::optional<std::string> version = lease.db().Get(kDefault, once)) {
        return std::stoll(*version);
      }
    }
    for (const ManifestEntry& object : ObjectsOf(record)) {
      std::error_code ec;
      if (!fs::exists(objects.PathOf(object.digest), ec)) restore(object.digest);
    }
    AdapterEntry entry;
    if (std::optional<std::string> text = lease.db().Get(kAdapters, std::string(adapter))) {
      entry = AdapterEntry::FromJson(*text);
    } else {
      entry.created_ms = NowMs();
    }
    entry.last_version += 1;
    record.name = std::string(adapter);
    record.version = entry.last_version;
    record.registered_by = by;
    if (record.created_ms == 0) record.created_ms = NowMs();

    rocksdb::WriteBatch batch;
    batch.Put(lease.column(kAdapters), std::string(adapter), entry.ToJson());
    batch.Put(lease.column(kVersions), Key(adapter, record.version), VersionRecordToJson(record));
    if (!once.empty()) batch.Put(lease.column(kDefault), once, std::to_string(record.version));
    lease.Commit(batch);
    return record.version;
  }

  void RequireDatasetRecord(std::string_view name, const DatasetRecord& record) const {
    if (!IsValidName(name)) {
      throw UserError("invalid dataset name '" + Echo(name, 64) +
                      "': names are 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit");
    }
    if (record.rows <= 0) {
      throw UserError("dataset '" + std::string(name) + "': " + record.source +
                      " has no rows; a dataset version holds at least one (check the file and "
                      "its format)");
    }
  }

  // Records `record`, whose rows are stored, as the next version of dataset `name` made by `by`,
  // unless the latest version has the same rows: then that version, and nothing is added. Under
  // the lease a rows object a Gc took meanwhile is handed to `restore`.
  int64_t CommitDataset(std::string_view name, DatasetRecord record, const std::string& by,
                        const std::function<void(const std::string& digest)>& restore) {
    record.name = std::string(name);
    Lease lease = Write(write_wait);
    std::optional<DatasetRecord> latest;
    lease.db().Scan(kDefault, DatasetKeyPrefix(name),
                    [&](const std::string&, const std::string& value) {
                      latest = DatasetRecordFromJson(value);
                    });
    // A name holds training data or review sets, never both: a review set must not become the
    // latest version a training run's rows are compared with.
    if (latest && latest->content.has_value() != record.content.has_value()) {
      throw UserError("dataset " + std::string(name) + " in registry " + this->name + " holds " +
                      (latest->content ? "review sets" : "training data") + ", and this is " +
                      (record.content ? "a review set" : "training data") +
                      "; give it a name of its own");
    }
    if (latest && latest->sha256 == record.sha256) return latest->version;
    std::error_code ec;
    if (!fs::exists(objects.PathOf(record.rows_object.digest), ec)) {
      restore(record.rows_object.digest);
    }
    if (record.content && !fs::exists(objects.PathOf(record.content->digest), ec)) {
      restore(record.content->digest);
    }
    record.version = latest ? latest->version + 1 : 1;
    record.registered_by = by;
    if (record.created_ms == 0) record.created_ms = NowMs();
    rocksdb::WriteBatch batch;
    batch.Put(lease.column(kDefault), DatasetKey(name, record.version),
              DatasetRecordToJson(record));
    lease.Commit(batch);
    return record.version;
  }

  // The digest of an upload's bytes so far (uploads_mutex): what FinishUpload need not read again.
  struct SentChunk {
    int64_t offset;
    std::string sha256;  // as the client sent it
  };
  struct UploadDigest {
    Sha256 whole;
    int64_t hashed = 0;
    std::vector<SentChunk> chunks;  // in order, as appended
  };
  std::map<std::string, UploadDigest> upload_digests;

  struct UploadEnd {
    std::string digest;                 // what the bytes that arrived hash to
    std::optional<int64_t> damaged_at;  // where the first chunk damaged on the way began
  };
  // Stores an upload that has all its bytes once they are checked to hash to `digest`. When they
  // hash otherwise, the upload goes back to its first chunk that does not hash as it was sent,
  // or, when every chunk does, is removed (it starts again).
  UploadEnd FinishUpload(std::string_view digest) {
    const fs::path staging = objects.UploadPath(digest);
    UploadEnd end;
    std::error_code ec;
    const auto size = static_cast<int64_t>(fs::file_size(staging, ec));
    const auto running = upload_digests.find(std::string(digest));
    std::vector<SentChunk> chunks;
    if (running != upload_digests.end()) {
      chunks = std::move(running->second.chunks);
      end.digest = !ec && running->second.hashed == size ? running->second.whole.FinishHex() : "";
      upload_digests.erase(running);
    }
    if (end.digest.empty()) end.digest = ObjectStore::HashFile(staging).digest;
    if (end.digest == digest) {
      objects.Adopt(staging, digest);
      return end;
    }
    end.damaged_at = FirstDamagedChunk(staging, chunks, size);
    if (end.damaged_at) {
      ::truncate(staging.c_str(), *end.damaged_at);
    } else {
      fs::remove(staging, ec);
    }
    return end;
  }

  // Where the first of `chunks` in `file` (of `size` bytes) begins whose bytes do not hash to
  // the SHA-256 sent with it; nullopt when each does.
  static std::optional<int64_t> FirstDamagedChunk(const fs::path& file,
                                                  const std::vector<SentChunk>& chunks,
                                                  int64_t size) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes;
    for (size_t i = 0; i < chunks.size(); ++i) {
      const int64_t end = i + 1 < chunks.size() ? chunks[i + 1].offset : size;
      bytes.resize(static_cast<size_t>(end - chunks[i].offset));
      in.seekg(chunks[i].offset);
      if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size())) ||
          Sha256Hex(bytes) != chunks[i].sha256) {
        return chunks[i].offset;
      }
    }
    return std::nullopt;
  }

  // Throws UserError naming `what` unless the object `entry` names is stored with its size.
  void RequireStored(const ManifestEntry& entry, const std::string& what) const {
    if (!registry_internal::IsHexDigest(entry.digest)) {
      throw UserError(what + ": '" + Echo(entry.digest, 64) +
                      "' is not a SHA-256 digest (64 lowercase hex digits)");
    }
    std::error_code ec;
    const auto size = fs::file_size(objects.PathOf(entry.digest), ec);
    if (ec) {
      throw UserError(what + ": object sha256:" + entry.digest + " is not stored; send it first");
    }
    if (static_cast<int64_t>(size) != entry.size_bytes) {
      throw UserError(what + ": object sha256:" + entry.digest + " has " + std::to_string(size) +
                      " bytes, not the " + std::to_string(entry.size_bytes) + " the record says");
    }
  }

  bool HasPendingMetrics() const {
    std::lock_guard lock(metrics_mutex);
    return !pending_metrics.empty();
  }

  fs::path dir;
  std::string name;  // how messages name the registry: the path as given
  bool read_only;
  std::chrono::milliseconds write_wait;
  ObjectStore objects;

  // The versions parsed by the last view, for the next one when no version changed in between.
  std::shared_ptr<ParsedVersionsCache> parsed_versions = std::make_shared<ParsedVersionsCache>();
  mutable std::mutex view_mutex;
  mutable std::shared_ptr<const Db> view;
  mutable std::optional<uint64_t> view_stamp;
  mutable bool view_stale = false;
  // The write stamp up to which the view holds everything but the runs' metrics.
  mutable std::optional<uint64_t> view_current_but_metrics;

  mutable std::mutex metrics_mutex;
  std::map<std::string, std::map<std::string, double>> pending_metrics;  // RUN_ID/STEP -> values
  std::set<std::string> known_runs;  // run ids LogMetrics has checked exist
  std::chrono::steady_clock::time_point last_metrics_commit = std::chrono::steady_clock::now();
};

std::unique_ptr<LocalRegistry> LocalRegistry::Open(const fs::path& dir, OpenMode mode,
                                                   std::chrono::milliseconds write_wait) {
  const bool read_only = mode == OpenMode::kReadOnly;
  auto impl = std::make_shared<Impl>(dir, read_only, write_wait);
  const std::string& name = impl->name;
  const fs::path db_dir = impl->DbDir();
  std::error_code ec;
  const bool exists = fs::exists(db_dir / "CURRENT", ec);
  if (!exists && mode != OpenMode::kCreate) {
    if (fs::is_directory(db_dir, ec) && !fs::is_empty(db_dir, ec)) {
      throw UserError("registry at " + name +
                      " is damaged: db/CURRENT, which names the database's current manifest, is "
                      "missing; restore the registry from a backup (`tune registry backup` makes "
                      "one)");
    }
    throw UserError("no registry at " + name +
                    (fs::exists(dir, ec) ? " (the folder has no db/ inside)" : "") +
                    "; pass --registry PATH or set TUNE_REGISTRY to where adapters were "
                    "registered");
  }
  if (!read_only) {
    try {
      fs::create_directories(db_dir);
      impl->objects.CreateLayout();
    } catch (const fs::filesystem_error& e) {
      throw UserError("cannot " + std::string(exists ? "write to" : "create") + " registry at " +
                      name + ": " + e.code().message() +
                      (exists ? "; fix its permissions, or use read-only commands such as "
                                "`tune adapters ls`"
                              : "; choose a writable folder with --registry"));
    }
  }

  // Only a new registry is written to when opened: opening one for writing works on a full disk,
  // so that `tune registry gc` can free it.
  std::optional<std::string> schema;
  if (exists) {
    try {
      schema = impl->Reader()->Get(kDefault, kSchemaKey);
    } catch (const RegistryDamaged&) {
      return std::unique_ptr<LocalRegistry>(
          new LocalRegistry(std::move(impl), registry_internal::LocalUser()));
    }
  }
  if (!exists || (!schema && !read_only)) {
    Impl::Lease lease = impl->Write(write_wait, /*create=*/true);
    schema = lease.db().Get(kDefault, kSchemaKey);
    if (!schema) {
      rocksdb::WriteBatch batch;
      batch.Put(lease.column(kDefault), kSchemaKey, std::to_string(kSchemaVersion));
      lease.Commit(batch);
    }
  }
  if (schema && std::stoll(*schema) > kSchemaVersion) {
    throw UserError("registry at " + name + " has schema version " + *schema +
                    "; this tune reads " + std::to_string(kSchemaVersion) +
                    " — upgrade tune to use it");
  }
  return std::unique_ptr<LocalRegistry>(
      new LocalRegistry(std::move(impl), registry_internal::LocalUser()));
}
LocalRegistry::LocalRegistry(std::shared_ptr<Impl> impl, std::string by)
    : impl_(std::move(impl)), by_(std::move(by)) {}
LocalRegistry::~LocalRegistry() = default;

std::unique_ptr<LocalRegistry> LocalRegistry::Acting(std::string_view by) const {
  return std::unique_ptr<LocalRegistry>(new LocalRegistry(impl_, std::string(by)));
}

const fs::path& LocalRegistry::dir() const { return impl_->dir; }
const std::string& LocalRegistry::location() const { return impl_->name; }
bool LocalRegistry::read_only() const { return impl_->read_only; }

int64_t LocalRegistry::Register(std::string_view adapter, const VersionRecord& lineage,
                                const fs::path& artifact_dir, const fs::path& eval_samples) {
  Impl& impl = *impl_;
  impl.RequireWritable("register adapters");
  registry_internal::RequireAdapterName(adapter);
  std::vector<std::pair<std::string, fs::path>> files =
      registry_internal::ArtifactFiles(artifact_dir);

  // The objects are stored before the registry is taken, so a large artifact does not hold up
  // other writers.
  VersionRecord record = lineage;
  record.files.clear();
  record.artifact_size_bytes = 0;
  for (const auto& [relative, path] : files) {
    const registry_internal::StoredObject object = impl.objects.Store(path);
    record.files.push_back({relative, object.digest, object.size_bytes});
    record.artifact_size_bytes += object.size_bytes;
  }
  record.artifact_digest = Sha256Hex(ManifestText(record.files));
  record.eval_samples.reset();
  if (!eval_samples.empty()) {
    const registry_internal::StoredObject object = impl.objects.Store(eval_samples);
    record.eval_samples = ManifestEntry{"eval_samples.jsonl", object.digest, object.size_bytes};
    files.emplace_back("eval_samples.jsonl", eval_samples);
  }
  std::map<std::string, fs::path> sources;  // digest -> a file with its bytes
  for (size_t i = 0; i < record.files.size(); ++i)
    sources[record.files[i].digest] = files[i].second;
  if (record.eval_samples) sources[record.eval_samples->digest] = eval_samples;
  // A Gc (which holds the registry while it removes) may have taken an object that had the same
  // bytes and no reference since we stored it: stored again before the record names it.
  return impl.CommitVersion(adapter, std::move(record), by_, [&](const std::string& digest) {
    impl.objects.Store(sources.at(digest));
  });
}

int64_t LocalRegistry::RegisterStored(std::string_view adapter, const VersionRecord& given) {
  Impl& impl = *impl_;
  impl.RequireWritable("register adapters");
  registry_internal::RequireAdapterName(adapter);
  if (given.files.empty()) {
    throw UserError("a version of '" + std::string(adapter) +
                    "' lists no files; send the "
                    "adapter's files with it");
  }
  VersionRecord record = given;
  std::sort(record.files.begin(), record.files.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  record.artifact_size_bytes = 0;
  for (const ManifestEntry& file : record.files) {
    impl.RequireStored(file,
                       "file " + file.path + " of the new version of " + std::string(adapter));
    record.artifact_size_bytes += file.size_bytes;
  }
  record.artifact_digest = Sha256Hex(ManifestText(record.files));
  if (record.eval_samples) {
    record.eval_samples->path = "eval_samples.jsonl";
    impl.RequireStored(*record.eval_samples,
                       "the evaluation outputs of the new version of " + std::string(adapter));
  }
  return impl.CommitVersion(adapter, std::move(record), by_, [&](const std::string& digest) {
    throw UserError("object sha256:" + digest +
                    " was removed by a gc while the version that names it was being registered; "
                    "send it again");
  });
}

VersionRecord LocalRegistry::Resolve(std::string_view text) const {
  const AdapterRef ref = ParseAdapterRef(text);
  const std::shared_ptr<const Db> db = impl_->Reader();
  const AdapterEntry entry = db->RequireAdapter(ref.name);
  if (ref.alias && *ref.alias != kLatestAlias) {
    const std::map<std::string, int64_t> aliases = db->Aliases(ref.name);
    const auto it = aliases.find(*ref.alias);
    if (it == aliases.end()) {
      std::vector<std::string> names;
      std::string listed;
      for (const auto& [alias, version] : aliases) {
        names.push_back(alias);
        listed += (listed.empty() ? "" : ", ") + alias + " -> " + std::to_string(version);
      }
      throw UserError("adapter '" + ref.name + "' has no alias '" + *ref.alias + "'" +
                      DidYouMean(*ref.alias, names) + " in registry " + impl_->name +
                      (aliases.empty() ? "; it has no aliases yet: set one with `tune adapters "
                                         "promote " +
                                             ref.name + ":N " + *ref.alias + "`"
                                       : "; its aliases: " + listed));
    }
    return db->GetVersion(ref.name, it->second);
  }
  return db->GetVersion(ref.name, ref.version.value_or(entry.last_version));
}

VersionRecord LocalRegistry::Get(std::string_view name, int64_t version) const {
  return impl_->Reader()->GetVersion(name, version);
}

std::vector<std::string> LocalRegistry::Names() const { return impl_->Reader()->Names(); }

std::map<std::string, int64_t> LocalRegistry::Aliases(std::string_view name) const {
  const std::shared_ptr<const Db> db = impl_->Reader();
  db->RequireAdapter(name);
  return db->Aliases(name);
}

namespace {

// Every version `options` selects, in its order. Throws UserError for a filter or sort key that
// does not parse or that no version has.
Db::Order OrderedListing(const Db& db, const ListOptions& options) {
  const Filter filter = Filter::Parse(options.filter);
  const std::optional<SortKey> sort =
      options.sort.empty() ? std::nullopt : std::optional(SortKey::Parse(options.sort));
  std::vector<const VersionRecord*> all;
  for (const VersionRecord& record : db.AllVersions()) {
    if (!options.name || record.name == *options.name) all.push_back(&record);
  }

  // A key no version has is most likely a typo: say so instead of listing nothing.
  if (!all.empty()) {
    std::vector<std::pair<std::string, size_t>> used;
    for (const Filter::KeyUse& use : filter.keys()) used.emplace_back(use.key, use.column);
    if (sort) used.emplace_back(sort->key, 0);
    for (const auto& [key, column] : used) {
      const bool somewhere = std::any_of(all.begin(), all.end(), [&](const VersionRecord* r) {
        return registry_internal::LookupKey(*r, key).has_value();
      });
      if (somewhere) continue;
      std::set<std::string> known;
      for (const VersionRecord* r : all) registry_internal::CollectKeys(*r, known);
      const std::vector<std::string> candidates(known.begin(), known.end());
      const std::string where =
          column > 0 ? "filter `" + Echo(options.filter) + "`, column " + std::to_string(column)
                     : "sort key '" + Echo(options.sort, 40) + "'";
      throw UserError(where + ": no version has the key '" + Echo(key, 40) + "'" +
                      DidYouMean(key, candidates) +
                      "; keys are scores.METRIC, a parameter such as adapter.rank, or an "
                      "attribute such as version or method");
    }
  }

  const SortKey by = sort.value_or(SortKey{});
  std::vector<registry_internal::SortEntry> matching;
  for (const VersionRecord* record : all) {
    if (filter.Matches(*record)) matching.push_back(registry_internal::MakeSortEntry(by, *record));
  }
  std::sort(matching.begin(), matching.end(),
            [&](const registry_internal::SortEntry& a, const registry_internal::SortEntry& b) {
              return registry_internal::SortBefore(by, a, b);
            });
  Db::Order order;
  order.reserve(matching.size());
  for (const registry_internal::SortEntry& entry : matching) order.push_back(entry.record);
  return order;
}

}  // namespace

Registry::Page LocalRegistry::ListPage(const ListOptions& options, size_t offset,
                                       size_t limit) const {
  const std::shared_ptr<const Db> db = impl_->Reader();
  if (options.name) db->RequireAdapter(*options.name);
  // Names, filters and sort keys hold no NUL, so the key names one listing.
  const std::string key = options.name.value_or("")
                              .append(1, '\0')
                              .append(options.filter)
                              .append(1, '\0')
                              .append(options.sort);
  const std::shared_ptr<const Db::Order> order =
      db->CachedOrder(key, [&] { return OrderedListing(*db, options); });
  Page page;
  page.total = order->size();
  for (size_t i = offset; i < order->size() && i - offset < limit; ++i) {
    page.versions.push_back(*(*order)[i]);
  }
  return page;
}

namespace {

void RequireMovableAlias(std::string_view adapter, std::string_view alias) {
  if (!IsValidName(alias)) {
    throw UserError("invalid alias '" + Echo(alias, 64) + "'" +
                    ": aliases are 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit");
  }
  if (alias == kLatestAlias) {
    throw UserError("alias 'latest' is reserved: " + std::string(adapter) +
                    "@latest always names the latest version; choose another word such as "
                    "production or staging");
  }
  // NAME:3 and NAME:v3 are versions, so an alias may not read as one: NAME@v3 and NAME:v3 would
  // name different versions.
  const std::string_view digits = alias.starts_with('v') ? alias.substr(1) : alias;
  if (!digits.empty() &&
      std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    throw UserError("invalid alias '" + std::string(alias) + "': it reads as a version (" +
                    std::string(adapter) + ":" + std::string(alias) +
                    "); choose a word such as production or staging");
  }
}

std::string AliasKey(std::string_view adapter, std::string_view alias) {
  return std::string(adapter) + "/" + std::string(alias);
}

std::string PolicyKey(std::string_view adapter, std::string_view alias) {
  return std::string(kPolicyPrefix) + AliasKey(adapter, alias);
}

std::optional<AliasPolicy> PolicyOf(const Db& db, std::string_view adapter,
                                    std::string_view alias) {
  const std::optional<std::string> text = db.Get(kDefault, PolicyKey(adapter, alias));
  if (!text) return std::nullopt;
  return wire::PolicyFromJson(json::parse(*text));
}

int64_t CurrentVersion(const Db& db, std::string_view adapter, std::string_view alias) {
  const std::optional<std::string> text = db.Get(kAliases, AliasKey(adapter, alias));
  return text ? std::stoll(*text) : 0;
}

std::string Describe(int64_t version) {
  return version == 0 ? std::string("unset") : "version " + std::to_string(version);
}

// Points `alias` at `version` under `lease` (MoveAlias's checks of the alias's name made), with
// what `extra` also writes, in one batch. Returns where it pointed before.
int64_t CommitAliasMove(LocalRegistry::Impl::Lease& lease, std::string_view adapter,
                        std::string_view alias, int64_t version, std::optional<int64_t> expected,
                        AliasMove move, rocksdb::WriteBatch& extra) {
  AdapterEntry entry = lease.db().RequireAdapter(adapter);
  lease.db().GetVersion(adapter, version);  // refuses a version that does not exist
  const int64_t current = CurrentVersion(lease.db(), adapter, alias);
  if (expected && *expected != current) {
    throw AliasConflict("alias '" + std::string(alias) + "' of adapter '" + std::string(adapter) +
                        "' is " + Describe(current) + ", not " + Describe(*expected) +
                        " as expected: it was moved meanwhile; check `tune adapters history " +
                        std::string(adapter) + "` and retry");
  }
  if (current == version) {
    if (extra.Count() > 0) lease.Commit(extra);
    return current;
  }
  entry.alias_moves += 1;
  move.time_ms = NowMs();
  move.alias = std::string(alias);
  move.old_version = current;
  move.new_version = version;
  extra.Put(lease.column(kAliases), AliasKey(adapter, alias), std::to_string(version));
  extra.Put(lease.column(kAliasHistory), Key(adapter, entry.alias_moves),
            wire::AliasMoveToJson(move).dump());
  extra.Put(lease.column(kAdapters), std::string(adapter), entry.ToJson());
  lease.Commit(extra);
  return current;
}

}  // namespace

int64_t LocalRegistry::MoveAlias(std::string_view adapter, std::string_view alias, int64_t version,
                                 std::optional<int64_t> expected,
                                 std::string_view override_reason) {
  Impl& impl = *impl_;
  impl.RequireWritable("move aliases");
  RequireMovableAlias(adapter, alias);
  if (override_reason.size() > 1000) {
    throw UserError("the reason for overriding the policy of " + std::string(adapter) + "@" +
                    std::string(alias) + " has " + std::to_string(override_reason.size()) +
                    " bytes; say it in 1,000 at most");
  }
  Impl::Lease lease = impl.Write(impl.write_wait);
  AliasMove move;
  move.by = by_;
  if (PolicyOf(lease.db(), adapter, alias)) {
    if (override_reason.empty()) {
      throw PolicyRefused("alias '" + std::string(alias) + "' of adapter '" + std::string(adapter) +
                              "' has a promotion policy: promote with `tune adapters promote " +
                              std::string(adapter) + ":" + std::to_string(version) + " " +
                              std::string(alias) +
                              "`, or, as an admin, override the policy with --override REASON",
                          {});
    }
    move.reason = std::string(override_reason);
    move.overridden = true;
  } else {
    move.reason = std::string(override_reason);
  }
  rocksdb::WriteBatch batch;
  return CommitAliasMove(lease, adapter, alias, version, expected, std::move(move), batch);
}

std::vector<AliasMove> LocalRegistry::History(std::string_view adapter) const {
  const std::shared_ptr<const Db> db = impl_->Reader();
  db->RequireAdapter(adapter);
  std::vector<AliasMove> moves;
  db->Scan(kAliasHistory, std::string(adapter) + "/",
           [&](const std::string&, const std::string& value) {
             moves.push_back(wire::AliasMoveFromJson(json::parse(value)));
           });
  return moves;
}

VersionRecord LocalRegistry::Fetch(std::string_view ref, const fs::path& out_dir) const {
  const VersionRecord record = Resolve(ref);
  const std::string label = record.name + ":" + std::to_string(record.version);
  registry_internal::WriteFetched(
      record, out_dir, impl_->name, [&](const ManifestEntry& file, const fs::path& destination) {
        impl_->objects.CopyVerified(file.digest, file.size_bytes, destination,
                                    label + " " + file.path);
      });
  return record;
}

fs::path LocalRegistry::ObjectPath(std::string_view digest) const {
  if (!registry_internal::IsHexDigest(digest)) {
    throw UserError("'" + Echo(digest) + "' is not a SHA-256 digest (64 lowercase hex digits)");
  }
  return impl_->objects.PathOf(digest);
}

namespace {

// The records' own checks for Verify: each version's key and manifest, and that every object a
// version, dataset or alias refers to is there and whole (`good`: the digests that re-hashed).
void CheckRecords(const Db& db, const ObjectStore& objects, const std::set<std::string>& good,
                  VerifyReport& report) {
  std::map<std::string, std::set<int64_t>> versions;
  db.Scan(kVersions, "", [&](const std::string& key, const std::string& value) {
    ++report.versions_checked;
    VersionRecord record;
    try {
      record = VersionRecordFromJson(value);
    } catch (const UserError& e) {
      report.problems.push_back("record " + key + ": " + e.what());
      return;
    }
    const std::string label = record.name + ":" + std::to_string(record.version);
    if (key != Key(record.name, record.version)) {
      report.problems.push_back("record stored as " + key + " says it is " + label);
    }
    versions[record.name].insert(record.version);
    if (Sha256Hex(ManifestText(record.files)) != record.artifact_digest) {
      report.problems.push_back(label + ": its file list does not hash to its artifact digest " +
                                record.artifact_digest);
    }
    for (const ManifestEntry& file : ObjectsOf(record)) {
      if (good.count(file.digest)) continue;
      const bool present = fs::exists(objects.PathOf(file.digest));
      report.problems.push_back(label + " " + file.path + ": object sha256:" + file.digest +
                                (present ? " is corrupted" : " is missing"));
    }
  });
  const auto check = [&](const std::string& what, const std::string& digest) {
    if (good.count(digest)) return;
    const bool present = fs::exists(objects.PathOf(digest));
    report.problems.push_back(what + ": object sha256:" + digest +
                              (present ? " is corrupted" : " is missing"));
  };
  db.Scan(kDefault, kDatasetPrefix, [&](const std::string& key, const std::string& value) {
    DatasetRecord record;
    try {
      record = DatasetRecordFromJson(value);
    } catch (const UserError& e) {
      report.problems.push_back("record " + key + ": " + e.what());
      return;
    }
    const std::string label = "dataset " + record.name + ":" + std::to_string(record.version);
    check(label + " rows", record.rows_object.digest);
    if (record.content) check(label + " prompts", record.content->digest);
  });
  db.Scan(kDefault, kReviewPrefix, [&](const std::string& key, const std::string& value) {
    ReviewRecord review;
    try {
      review = wire::ReviewFromJson(json::parse(value));
    } catch (const std::exception& e) {
      report.problems.push_back("record " + key + ": " + e.what());
      return;
    }
    for (const ReviewOutputs& outputs : review.outputs) {
      check("review " + review.name + " outputs of " + outputs.contestant, outputs.object.digest);
    }
  });
  db.Scan(kAliases, "", [&](const std::string& key, const std::string& value) {
    const std::string adapter = key.substr(0, key.find('/'));
    if (!versions[adapter].count(std::stoll(value))) {
      report.problems.push_back("alias " + key + " points at version " + value +
                                ", which does not exist");
    }
  });
}

// Every object a version or a dataset refers to: what Gc keeps and Backup copies. Throws
// UserError, before anything acts on it, when the view is not whole: a table that fails its
// checksum or records the entries count and the scan did not find.
std::set<std::string> ReferencedObjects(const Db& db, const std::string& doing) {
  const auto refuse = [&](const std::string& why) {
    throw RegistryDamaged("registry " + db.name + " is damaged: " + why + "; " + doing +
                          " was refused, nothing was changed: run `tune registry verify`");
  };
  if (const rocksdb::Status status = db.db->VerifyChecksum(); !status.ok()) {
    refuse("a table of its database fails its checksum (" + status.ToString() + ")");
  }
  if (const std::vector<std::string> missing = db.MissingRecords(); !missing.empty()) {
    refuse(missing.front());
  }
  std::set<std::string> referenced;
  for (const VersionRecord& record : db.AllVersions()) {
    for (const ManifestEntry& file : ObjectsOf(record)) referenced.insert(file.digest);
  }
  db.Scan(kDefault, kDatasetPrefix, [&](const std::string&, const std::string& value) {
    const DatasetRecord record = DatasetRecordFromJson(value);
    referenced.insert(record.rows_object.digest);
    if (record.content) referenced.insert(record.content->digest);
  });
  db.Scan(kDefault, kReviewPrefix, [&](const std::string&, const std::string& value) {
    for (const ReviewOutputs& outputs : wire::ReviewFromJson(json::parse(value)).outputs) {
      referenced.insert(outputs.object.digest);
    }
  });
  return referenced;
}

}  // namespace

std::string LocalRegistry::ReadObject(const ManifestEntry& object, std::string_view what) const {
  if (!registry_internal::IsHexDigest(object.digest)) {
    throw RegistryDamaged("'" + Echo(object.digest) + "' (" + std::string(what) +
                          ") is not a SHA-256 digest: registry " + impl_->name +
                          " is damaged; run `tune registry verify`");
  }
  return impl_->objects.ReadVerified(object.digest, object.size_bytes, what);
}

VerifyReport LocalRegistry::Verify() const {
  const Impl& impl = *impl_;
  VerifyReport report;
  // Taken before the objects are read, so every record it holds had its objects stored already.
  // A view that cannot be opened (a damaged log, a missing table) is the first problem; the
  // objects are still checked.
  std::shared_ptr<const Db> db;
  try {
    db = impl.Reader(Impl::Reads::kAll);
  } catch (const UserError& e) {
    report.problems.push_back(e.what());
  }
  std::set<std::string> good;
  impl.objects.ForEachObject([&](const fs::path& path, const std::string& digest) {
    if (digest.empty()) {
      report.problems.push_back("unexpected file " + path.string() +
                                " among the objects; move it out of the registry");
      return;
    }
    ++report.objects_checked;
    try {
      const registry_internal::StoredObject actual = ObjectStore::HashFile(path);
      report.bytes_checked += actual.size_bytes;
      if (actual.digest == digest) {
        good.insert(digest);
      } else {
        report.problems.push_back("object sha256:" + digest +
                                  " is corrupted: its bytes hash to sha256:" + actual.digest +
                                  " (" + path.string() + ")");
      }
    } catch (const UserError& e) {
      std::error_code ec;
      if (!fs::exists(path, ec)) {  // collected meanwhile by a Gc: it was unreferenced
        --report.objects_checked;
        return;
      }
      report.problems.push_back(e.what());
    }
  });
  if (db == nullptr) return report;

  // Every block of every table against its checksum, and every record the entries count: a
  // damaged block can hide records from the scans below without an error.
  if (const rocksdb::Status status = db->db->VerifyChecksum(); !status.ok()) {
    report.problems.push_back("registry " + impl.name +
                              " is damaged: a table of its database fails its checksum (" +
                              status.ToString() + "); restore it from a backup");
  }
  try {
    for (std::string& missing : db->MissingRecords()) {
      report.problems.push_back(std::move(missing));
    }
    CheckRecords(*db, impl.objects, good, report);
  } catch (const UserError& e) {
    report.problems.push_back(e.what());
  }
  return report;
}

GcReport LocalRegistry::Gc(std::chrono::seconds grace) {
  Impl& impl = *impl_;
  impl.RequireWritable("collect garbage");
  // Held while objects are removed, so no registration can name one in between (Register checks
  // its objects under its lease). It opens nothing for writing, so gc works on a full disk; the
  // view opened under it holds every write there is.
  const std::unique_ptr<registry_internal::WriteLock> hold = impl.HoldForWrites(impl.write_wait);
  const std::set<std::string> referenced =
      ReferencedObjects(*impl.OpenView(), "garbage collection");
  const auto cutoff = fs::file_time_type::clock::now() - grace;
  const auto old_enough = [&](const fs::path& path) {
    std::error_code ec;
    const auto time = fs::last_write_time(path, ec);
    return !ec && time <= cutoff;
  };
  GcReport report;
  impl.objects.ForEachObject([&](const fs::path& path, const std::string& digest) {
    if (digest.empty() || referenced.count(digest)) {
      ++report.objects_kept;
      return;
    }
    if (!old_enough(path)) {
      ++report.objects_kept;
      return;
    }
    std::error_code ec;
    const auto size = static_cast<int64_t>(fs::file_size(path, ec));
    if (fs::remove(path, ec)) {
      ++report.objects_removed;
      report.bytes_removed += ec ? 0 : size;
    }
  });
  std::error_code ec;
  if (fs::is_directory(impl.objects.TempDir(), ec)) {
    for (const fs::directory_entry& entry : fs::directory_iterator(impl.objects.TempDir())) {
      if (old_enough(entry.path()) && impl.objects.RemoveUnusedTemp(entry.path())) {
        ++report.temp_files_removed;
      }
    }
  }
  // Uploads a client stopped sending (killed, or gone for good) and never finished. A chunk that
  // arrives for one afterwards finds it gone and is refused (the client starts it again).
  // Their age is measured from now, with no chunk being written: with no grace, every upload
  // not under way this instant goes.
  const fs::path uploads = impl.objects.UploadsDir();
  std::lock_guard lock(uploads_mutex);
  const auto uploads_cutoff = fs::file_time_type::clock::now() - grace;
  if (fs::is_directory(uploads, ec)) {
    for (const fs::directory_entry& entry : fs::directory_iterator(uploads)) {
      const auto written = fs::last_write_time(entry.path(), ec);
      if (ec || written > uploads_cutoff || !fs::remove(entry.path(), ec)) continue;
      impl.upload_digests.erase(entry.path().filename().string());
      ++report.temp_files_removed;
    }
  }
  return report;
}

void LocalRegistry::Backup(const fs::path& backup_dir) const {
  Impl& impl = *impl_;
  impl.RequireWritable("be backed up (RocksDB checkpoints need the writer)");
  std::error_code ec;
  if (fs::exists(backup_dir, ec)) {
    throw UserError("backup folder " + backup_dir.string() +
                    " already exists; choose a new folder, backups never overwrite");
  }
  // Written under a name that says it is unfinished, and renamed to `backup_dir` only once whole
  // and verified: a backup cut short never looks like a registry.
  const fs::path target = fs::absolute(backup_dir).lexically_normal();
  const fs::path partial =
      target.parent_path() / (target.filename().string() + ".partial-" + RandomHex(8));
  try {
    fs::create_directories(partial);
    // The registry is held only for the checkpoint (hard links): every object a record in it
    // refers to was on disk before the record was committed, and no object a record refers to
    // is ever removed, so the objects are copied afterwards.
    std::set<std::string> referenced;
    {
      Impl::Lease lease = impl.Write(impl.write_wait);
      referenced = ReferencedObjects(lease.db(), "the backup");
      rocksdb::Checkpoint* raw = nullptr;
      lease.db().Check(rocksdb::Checkpoint::Create(lease.db().db, &raw), "starting a checkpoint");
      std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
      // A checkpoint flushes the log into tables: readers must not open the folder meanwhile.
      registry_internal::FilesLock files(impl.DbDir(),
                                         registry_internal::FilesLock::Kind::kExclusive);
      lease.db().Check(checkpoint->CreateCheckpoint((partial / "db").string()),
                       "writing a checkpoint to " + (partial / "db").string());
    }
    ObjectStore copy(partial / "objects", partial.string());
    copy.CreateLayout();
    for (const std::string& digest : referenced) {
      const fs::path source = impl.objects.PathOf(digest);
      if (!registry_internal::IsHexDigest(digest) || !fs::exists(source, ec)) continue;
      const fs::path destination = copy.PathOf(digest);
      fs::create_directories(destination.parent_path());
      fs::copy_file(source, destination);
    }
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(partial, ec);
    throw UserError("cannot back up registry " + impl.name + " to " + backup_dir.string() + ": " +
                    e.code().message() + "; check that folder is writable and has space");
  } catch (...) {
    fs::remove_all(partial, ec);
    throw;
  }
  // The copy is checked as `tune registry verify` checks a registry: a missing or corrupted
  // object in the source is one in the copy too. The copy stays, with everything that was whole.
  const VerifyReport report = Open(partial, OpenMode::kReadOnly)->Verify();
  fs::rename(partial, target, ec);
  if (ec) {
    throw UserError("cannot rename the finished backup " + partial.string() + " to " +
                    backup_dir.string() + ": " + ec.message() + "; rename it yourself");
  }
  if (!report.problems.empty()) {
    throw UserError("registry " + impl.name + " was backed up to " + backup_dir.string() +
                    " with " + Counted(static_cast<int64_t>(report.problems.size()), "problem") +
                    ", first: " + report.problems.front() +
                    "; the source has them too (tune registry verify)");
  }
}

std::string LocalRegistry::Recover(const fs::path& dir) {
  Impl impl(dir, /*read_only=*/false, OpenOptions{}.write_wait);
  std::error_code ec;
  if (!fs::exists(impl.DbDir() / "CURRENT", ec)) {
    throw UserError("no registry at " + impl.name + " to recover; pass --registry PATH");
  }
  const std::unique_ptr<registry_internal::WriteLock> hold =
      impl.HoldForWrites(OpenOptions{}.write_wait);
  registry_internal::RemoveInterruptedOpenFiles(impl.DbDir());
  const std::optional<uint64_t> stamp = registry_internal::ReadWriteStamp(impl.DbDir());
  rocksdb::Status status;
  std::unique_ptr<Db> opened;
  {
    registry_internal::FilesLock files(impl.DbDir(),
                                       registry_internal::FilesLock::Kind::kExclusive);
    opened = impl.TryOpenDb(/*writable=*/true, /*create=*/false, Impl::LogRecovery::kPointInTime,
                            status);
  }
  if (opened == nullptr) impl.ThrowOpenFailure(status);
  const uint64_t kept = opened->db->GetLatestSequenceNumber();
  {
    registry_internal::FilesLock files(impl.DbDir(),
                                       registry_internal::FilesLock::Kind::kExclusive);
    opened.reset();
  }
  registry_internal::WriteWriteStamp(impl.DbDir(), kept);
  if (stamp && *stamp > kept) {
    return "recovered registry " + impl.name + " up to write " + std::to_string(kept) +
           "; the writes after it, up to write " + std::to_string(*stamp) +
           ", returned but are lost: check `tune adapters ls` and `tune adapters history`, and "
           "register or promote them again";
  }
  return "registry " + impl.name + " is whole up to its last write (" + std::to_string(kept) +
         "); nothing was lost";
}

int64_t LocalRegistry::RegisterDataset(std::string_view name, const DatasetRecord& given,
                                       const fs::path& rows_file, const fs::path& content_file) {
  Impl& impl = *impl_;
  impl.RequireWritable("register datasets");
  impl.RequireDatasetRecord(name, given);
  const registry_internal::StoredObject object = impl.objects.Store(rows_file);
  DatasetRecord record = given;
  record.rows_object = {"rows.txt", object.digest, object.size_bytes};
  record.content.reset();
  if (!content_file.empty()) {
    const registry_internal::StoredObject content = impl.objects.Store(content_file);
    record.content = ManifestEntry{"prompts.jsonl", content.digest, content.size_bytes};
  }
  const std::string content_digest = record.content ? record.content->digest : std::string();
  return impl.CommitDataset(name, std::move(record), by_, [&](const std::string& digest) {
    impl.objects.Store(digest == content_digest ? content_file : rows_file);
  });
}

int64_t LocalRegistry::RegisterStoredDataset(std::string_view name, const DatasetRecord& given) {
  Impl& impl = *impl_;
  impl.RequireWritable("register datasets");
  impl.RequireDatasetRecord(name, given);
  DatasetRecord record = given;
  record.rows_object.path = "rows.txt";
  impl.RequireStored(record.rows_object,
                     "the rows of the new version of dataset " + std::string(name));
  if (record.content) {
    record.content->path = "prompts.jsonl";
    impl.RequireStored(*record.content,
                       "the content of the new version of dataset " + std::string(name));
  }
  return impl.CommitDataset(name, std::move(record), by_, [&](const std::string& digest) {
    throw UserError("object sha256:" + digest +
                    " was removed by a gc while the dataset that names it was being registered; "
                    "send it again");
  });
}

DatasetRecord LocalRegistry::GetDataset(std::string_view text) const {
  const DatasetRef ref = ParseDatasetRef(text);
  std::vector<DatasetRecord> versions;
  std::set<std::string> names;
  for (DatasetRecord& record : ListDatasets()) {
    names.insert(record.name);
    if (record.name == ref.name) versions.push_back(std::move(record));
  }
  if (versions.empty()) {
    const std::vector<std::string> known(names.begin(), names.end());
    throw UserError("no dataset '" + ref.name + "' in registry " + impl_->name +
                    DidYouMean(ref.name, known) +
                    (known.empty() ? "; runs register their training file, or use `tune data "
                                     "register FILE --name NAME`"
                                   : ""));
  }
  if (!ref.version) return versions.back();
  for (DatasetRecord& record : versions) {
    if (record.version == *ref.version) return std::move(record);
  }
  throw UserError("dataset '" + ref.name + "' has no version " + std::to_string(*ref.version) +
                  "; its versions are 1 to " + std::to_string(versions.back().version));
}

std::vector<DatasetRecord> LocalRegistry::ListDatasets() const {
  std::vector<DatasetRecord> records;
  impl_->Reader()->Scan(kDefault, kDatasetPrefix,
                        [&](const std::string&, const std::string& value) {
                          records.push_back(DatasetRecordFromJson(value));
                        });
  return records;
}

std::string LocalRegistry::CreateRun(const RunInfo& info, std::string_view id) {
  return CreateRunFor(info, id, registry_internal::ThisProcess());
}

std::string LocalRegistry::CreateRunFor(const RunInfo& info, std::string_view id,
                                        const RunProcess& process) {
  Impl& impl = *impl_;
  impl.RequireWritable("record runs");
  if (!id.empty() && !registry_internal::IsRunId(id)) {
    throw UserError("run id '" + Echo(id, 32) + "' is not 16 lowercase hex digits");
  }
  RunRecord run;
  run.id = id.empty() ? RandomHex(16) : std::string(id);
  run.info = info;
  run.started_ms = NowMs();
  run.process = process;
  run.created_by = by_;
  {
    Impl::Lease lease = impl.Write(impl.write_wait);
    if (std::optional<std::string> existing = lease.db().Get(kRuns, run.id)) {
      // A retried create (the client did not hear the answer), or an id two clients drew alike.
      if (RunFromJson(*existing).info != info) {
        throw UserError("run " + run.id +
                        " exists with another name or config; let the "
                        "registry choose the id");
      }
    } else {
      rocksdb::WriteBatch batch;
      batch.Put(lease.column(kRuns), run.id, RunText(run));
      lease.Commit(batch);
    }
  }
  std::lock_guard lock(impl.metrics_mutex);
  impl.known_runs.insert(run.id);
  return run.id;
}

RunRecord LocalRegistry::GetRun(std::string_view run_id) const {
  return impl_->Reader()->GetRun(run_id);
}

void LocalRegistry::LogMetrics(std::string_view run_id, int64_t step,
                               const std::map<std::string, double>& values) {
  Impl& impl = *impl_;
  impl.RequireWritable("log metrics");
  if (step < 0)
    throw UserError("metric step " + std::to_string(step) + " is negative; steps start at 0");
  bool known = false;
  {
    std::lock_guard lock(impl.metrics_mutex);
    known = impl.known_runs.count(std::string(run_id)) > 0;
  }
  if (!known) GetRun(run_id);  // refuses an unknown run
  bool due = false;
  {
    std::lock_guard lock(impl.metrics_mutex);
    impl.known_runs.insert(std::string(run_id));
    std::map<std::string, double>& merged = impl.pending_metrics[Key(run_id, step)];
    for (const auto& [metric, value] : values) merged[metric] = value;
    due = std::chrono::steady_clock::now() - impl.last_metrics_commit >= kMetricsFlushInterval;
  }
  if (!due) return;
  try {
    // Training does not wait for the registry: a busy registry takes them at the next chance.
    Impl::Lease lease = impl.Write(std::chrono::milliseconds(0));
    lease.CommitMetrics();
  } catch (const RegistryBusy&) {
    std::lock_guard lock(impl.metrics_mutex);
    impl.last_metrics_commit = std::chrono::steady_clock::now();
  }
}

void LocalRegistry::FinishRun(std::string_view run_id, RunStatus status, std::string_view error,
                              std::string_view end_reason) {
  Impl& impl = *impl_;
  impl.RequireWritable("finish runs");
  if (end_reason.size() > 32 || !std::all_of(end_reason.begin(), end_reason.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || c == '_';
      })) {
    throw UserError("a run's end reason is one word of at most 32 letters a-z and '_', not '" +
                    Echo(end_reason, 40) + "'");
  }
  Impl::Lease lease = impl.Write(impl.write_wait);
  lease.CommitMetrics();
  RunRecord run = lease.db().GetRun(run_id);
  run.status = status;
  run.finished_ms = NowMs();
  run.error = std::string(error);
  run.end_reason =
      end_reason.empty() ? std::string(RunStatusName(status)) : std::string(end_reason);
  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kRuns), run.id, RunText(run));
  lease.Commit(batch);
}

std::vector<RunRecord> LocalRegistry::ListRuns() const {
  std::vector<RunRecord> runs;
  impl_->Reader()->Scan(kRuns, "", [&](const std::string&, const std::string& value) {
    runs.push_back(RunFromJson(value));
  });
  std::stable_sort(runs.begin(), runs.end(), [](const RunRecord& a, const RunRecord& b) {
    return a.started_ms < b.started_ms;
  });
  return runs;
}

std::vector<MetricsAtStep> LocalRegistry::GetRunMetrics(std::string_view run_id) const {
  const std::shared_ptr<const Db> db = impl_->Reader(Impl::Reads::kAll);
  db->GetRun(run_id);
  const std::string prefix = std::string(run_id) + "/";
  std::map<int64_t, std::map<std::string, double>> by_step;
  db->Scan(kRunMetrics, prefix, [&](const std::string& key, const std::string& value) {
    by_step[std::stoll(key.substr(prefix.size()))] = wire::MetricValuesFromJson(json::parse(value));
  });
  {
    // What this process logged and has not written yet.
    std::lock_guard lock(impl_->metrics_mutex);
    for (auto it = impl_->pending_metrics.lower_bound(prefix);
         it != impl_->pending_metrics.end() && it->first.starts_with(prefix); ++it) {
      for (const auto& [metric, value] : it->second) {
        by_step[std::stoll(it->first.substr(prefix.size()))][metric] = value;
      }
    }
  }
  std::vector<MetricsAtStep> steps;
  for (auto& [step, values] : by_step) steps.push_back({step, std::move(values)});
  return steps;
}

}  // namespace tune

namespace tune {

namespace {

// A secret of 32 random bytes from the system's generator, as hex.
std::string NewSecret() {
  std::ifstream random("/dev/urandom", std::ios::binary);
  unsigned char bytes[32] = {};
  random.read(reinterpret_cast<char*>(bytes), sizeof(bytes));
  if (!random) throw UserError("cannot read /dev/urandom for a token's secret");
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (const unsigned char byte : bytes) hex.append(1, kHex[byte >> 4]).append(1, kHex[byte & 15]);
  return hex;
}

bool SameText(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ |= static_cast<unsigned char>(a[i] ^ b[i]);
  return differ == 0;
}

std::string TokenKey(std::string_view name) { return std::string(kTokenPrefix).append(name); }

}  // namespace

std::string LocalRegistry::AddToken(std::string_view name, Role role) {
  Impl& impl = *impl_;
  impl.RequireWritable("add tokens");
  if (!IsValidName(name)) {
    throw UserError("invalid token name '" + Echo(name, 64) +
                    "': names are 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit "
                    "(a person's or a machine's name)");
  }
  const std::string secret = NewSecret();
  TokenInfo token;
  token.name = std::string(name);
  token.role = role;
  token.created_ms = NowMs();
  token.created_by = by_;
  json stored = wire::TokenToJson(token);
  stored["secret_sha256"] = Sha256Hex(secret);
  Impl::Lease lease = impl.Write(impl.write_wait);
  if (std::optional<std::string> existing = lease.db().Get(kDefault, TokenKey(name))) {
    if (wire::TokenFromJson(json::parse(*existing)).revoked_ms == 0) {
      throw UserError("token '" + std::string(name) + "' exists in registry " + impl.name +
                      "; revoke it first (tune serve token revoke " + std::string(name) +
                      ") or choose another name");
    }
  }
  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kDefault), TokenKey(name), stored.dump());
  lease.Commit(batch);
  return std::string(name) + "." + secret;
}

std::vector<TokenInfo> LocalRegistry::ListTokens() const {
  std::vector<TokenInfo> tokens;
  impl_->Reader()->Scan(kDefault, kTokenPrefix, [&](const std::string&, const std::string& value) {
    tokens.push_back(wire::TokenFromJson(json::parse(value)));
  });
  return tokens;
}

void LocalRegistry::RevokeToken(std::string_view name) {
  Impl& impl = *impl_;
  impl.RequireWritable("revoke tokens");
  Impl::Lease lease = impl.Write(impl.write_wait);
  const std::optional<std::string> existing = lease.db().Get(kDefault, TokenKey(name));
  if (!existing) {
    std::vector<std::string> names;
    lease.db().Scan(kDefault, kTokenPrefix, [&](const std::string& key, const std::string&) {
      names.push_back(key.substr(std::strlen(kTokenPrefix)));
    });
    throw UserError("no token named '" + Echo(name, 64) + "' in registry " + impl.name +
                    DidYouMean(name, names) + "; `tune serve token ls` lists them");
  }
  json stored = json::parse(*existing);
  if (stored.value("revoked_ms", int64_t{0}) != 0) return;
  stored["revoked_ms"] = NowMs();
  stored["revoked_by"] = by_;
  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kDefault), TokenKey(name), stored.dump());
  lease.Commit(batch);
}

std::optional<TokenInfo> LocalRegistry::Authenticate(std::string_view token) const {
  const size_t dot = token.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  const std::string_view name = token.substr(0, dot);
  if (!IsValidName(name)) return std::nullopt;
  const std::optional<std::string> stored = impl_->Reader()->Get(kDefault, TokenKey(name));
  if (!stored) return std::nullopt;
  const json record = json::parse(*stored);
  const TokenInfo info = wire::TokenFromJson(record);
  const bool secret_matches =
      SameText(Sha256Hex(token.substr(dot + 1)), record.value("secret_sha256", ""));
  if (!secret_matches || info.revoked_ms != 0) return std::nullopt;
  return info;
}

int64_t LocalRegistry::ObjectReceived(std::string_view digest, int64_t size_bytes) {
  if (!registry_internal::IsHexDigest(digest)) {
    throw UserError("'" + Echo(digest, 64) + "' is not a SHA-256 digest (64 lowercase hex digits)");
  }
  std::lock_guard lock(uploads_mutex);
  std::error_code ec;
  if (fs::exists(impl_->objects.PathOf(digest), ec)) return size_bytes;
  const auto staged = fs::file_size(impl_->objects.UploadPath(digest), ec);
  if (ec) return 0;
  // Whole, but the server stopped before it stored it: stored now (or refused, and sent again
  // from its damaged chunk, or from the start).
  if (static_cast<int64_t>(staged) == size_bytes) {
    const Impl::UploadEnd end = impl_->FinishUpload(digest);
    return end.digest == digest ? size_bytes : end.damaged_at.value_or(0);
  }
  return static_cast<int64_t>(staged);
}

int64_t LocalRegistry::ReceiveObjectChunk(std::string_view digest, int64_t size_bytes,
                                          int64_t offset, std::string_view bytes,
                                          std::string_view chunk_sha256) {
  Impl& impl = *impl_;
  impl.RequireWritable("receive objects");
  const std::string what = "object sha256:" + Echo(digest, 64);
  if (!registry_internal::IsHexDigest(digest)) {
    throw UserError("'" + Echo(digest, 64) + "' is not a SHA-256 digest (64 lowercase hex digits)");
  }
  if (!registry_internal::IsHexDigest(chunk_sha256)) {
    throw UserError(what + ": the chunk's SHA-256 '" + Echo(chunk_sha256, 64) +
                    "' is not 64 lowercase hex digits");
  }
  if (size_bytes < 0 || offset < 0 || offset + static_cast<int64_t>(bytes.size()) > size_bytes) {
    throw UserError(what + ": a chunk of " + std::to_string(bytes.size()) + " bytes at " +
                    std::to_string(offset) + " does not fit in its " + std::to_string(size_bytes) +
                    " bytes");
  }
  std::unique_lock lock(uploads_mutex);
  const fs::path staging = impl.objects.UploadPath(digest);
  // A chunk that came ahead of the one before it (a client sends two at once) waits for it.
  const auto deadline = std::chrono::steady_clock::now() + kChunkWait;
  int64_t received = 0;
  for (;;) {
    std::error_code ec;
    if (fs::exists(impl.objects.PathOf(digest), ec)) return size_bytes;
    const auto staged = fs::file_size(staging, ec);
    received = ec ? 0 : static_cast<int64_t>(staged);
    if (offset <= received || std::chrono::steady_clock::now() >= deadline) break;
    upload_arrived.wait_until(lock, deadline);
  }
  if (offset != received) {
    throw UploadOffsetConflict(what + ": " + std::to_string(received) +
                                   " bytes have arrived, not " + std::to_string(offset) +
                                   "; send from there",
                               received);
  }
  // The whole's digest as the bytes arrive, so a finished upload need not be read again. A
  // server that restarted, or a chunk not written below, leaves none: the file is read then.
  Impl::UploadDigest& running = impl.upload_digests[std::string(digest)];
  if (offset == 0) running = Impl::UploadDigest{};
  const bool follows = running.hashed == offset;
  if (follows) {
    running.whole.Update(bytes);
    running.hashed += static_cast<int64_t>(bytes.size());
  }
  if (!follows) impl.upload_digests.erase(std::string(digest));
  {
    const int fd = ::open(staging.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    bool written = fd >= 0;
    for (size_t at = 0; written && at < bytes.size();) {
      const ssize_t n = ::write(fd, bytes.data() + at, bytes.size() - at);
      written = n > 0 || (n < 0 && errno == EINTR);
      if (n > 0) at += static_cast<size_t>(n);
    }
    // The disk starts on these bytes now, so the fsync of the whole object waits for less.
    if (written)
      ::sync_file_range(fd, offset, static_cast<off64_t>(bytes.size()), SYNC_FILE_RANGE_WRITE);
    if (fd >= 0) ::close(fd);
    if (!written) {
      impl.upload_digests.erase(std::string(digest));
      ::truncate(staging.c_str(), offset);  // what arrived before stays; this chunk is sent again
      throw UserError("cannot write " + staging.string() + " in registry " + impl.name +
                      "; check the disk has space");
    }
  }
  if (const auto kept = impl.upload_digests.find(std::string(digest));
      kept != impl.upload_digests.end()) {
    kept->second.chunks.push_back({offset, std::string(chunk_sha256)});
  }
  upload_arrived.notify_all();
  const int64_t now = received + static_cast<int64_t>(bytes.size());
  if (now < size_bytes) return now;
  const Impl::UploadEnd end = impl.FinishUpload(digest);
  if (end.damaged_at) {
    throw UploadOffsetConflict(what + ": the chunk at " + std::to_string(*end.damaged_at) +
                                   " does not hash to the SHA-256 sent with it: it was damaged "
                                   "on the way; send from there",
                               *end.damaged_at);
  }
  if (end.digest != digest) {
    throw UserError(what + ": the bytes that arrived hash to sha256:" + end.digest +
                    " instead (the file changed while it was sent?); send it again from the "
                    "start");
  }
  return now;
}

// ---- Reviews and promotion policies (DESIGN section 11) ----

namespace {

std::string ReviewKey(std::string_view review) { return std::string(kReviewPrefix).append(review); }

std::string PairKeyPrefix(std::string_view review) {
  return std::string(kReviewPairPrefix).append(review).append("/");
}

std::vector<ReviewRecord> AllReviews(const Db& db) {
  std::vector<ReviewRecord> reviews;
  db.Scan(kDefault, kReviewPrefix, [&](const std::string&, const std::string& value) {
    reviews.push_back(wire::ReviewFromJson(json::parse(value)));
  });
  return reviews;
}

ReviewRecord RequireReview(const Db& db, std::string_view review) {
  if (!IsValidName(review)) {
    throw UserError("invalid review name '" + Echo(review, 64) +
                    "': names are 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit");
  }
  if (const std::optional<std::string> text = db.Get(kDefault, ReviewKey(review))) {
    return wire::ReviewFromJson(json::parse(*text));
  }
  std::vector<std::string> names;
  for (const ReviewRecord& known : AllReviews(db)) names.push_back(known.name);
  throw UserError("no review '" + std::string(review) + "' in registry " + db.name +
                  DidYouMean(review, names) +
                  "; `tune review create NAME --prompts FILE` makes one");
}

void RequireOpen(const ReviewRecord& review, const std::string& what) {
  if (review.closed_ms == 0) return;
  throw UserError("review '" + review.name + "' was closed by " + review.closed_by +
                  "; it takes no more " + what + " (`tune review results " + review.name +
                  "` shows what it found)");
}

std::vector<ShownPair> PairsOf(const Db& db, std::string_view review) {
  std::vector<ShownPair> pairs;
  db.Scan(kDefault, PairKeyPrefix(review), [&](const std::string&, const std::string& value) {
    pairs.push_back(wire::ShownPairFromJson(json::parse(value)));
  });
  return pairs;
}

const ReviewOutputs* OutputsOf(const ReviewRecord& review, std::string_view contestant) {
  for (const ReviewOutputs& outputs : review.outputs) {
    if (outputs.contestant == contestant) return &outputs;
  }
  return nullptr;
}

// Every judgement in every review `contestant` is in, over the contestants of all of them.
struct PooledJudgements {
  std::vector<std::string> contestants;
  std::vector<PairwiseJudgement> judgements;
  int Index(const std::string& contestant) const {
    const auto it = std::find(contestants.begin(), contestants.end(), contestant);
    return it == contestants.end() ? -1 : static_cast<int>(it - contestants.begin());
  }
};

PooledJudgements PoolJudgements(const Db& db, const std::string& contestant) {
  PooledJudgements pooled;
  for (const ReviewRecord& review : AllReviews(db)) {
    if (OutputsOf(review, contestant) == nullptr) continue;
    std::vector<std::string> names;
    for (const ReviewOutputs& outputs : review.outputs) {
      names.push_back(outputs.contestant);
      if (pooled.Index(outputs.contestant) < 0) pooled.contestants.push_back(outputs.contestant);
    }
    for (PairwiseJudgement j : registry_internal::ToPairwise(names, PairsOf(db, review.name))) {
      j.first = pooled.Index(names[j.first]);
      j.second = pooled.Index(names[j.second]);
      pooled.judgements.push_back(j);
    }
  }
  return pooled;
}

// How `version` of the policy's adapter stands against the policy, the alias as `db` has it.
std::vector<PolicyCheck> CheckVersion(const Db& db, const AliasPolicy& policy, int64_t version) {
  const VersionRecord record = db.GetVersion(policy.name, version);
  const std::string me = policy.name + ":" + std::to_string(version);
  const int64_t current_version = CurrentVersion(db, policy.name, policy.alias);
  const std::string current = current_version == 0
                                  ? std::string(kBaseContestant)
                                  : policy.name + ":" + std::to_string(current_version);
  std::optional<PooledJudgements> pooled;
  std::vector<std::vector<WinRate>> rates;
  std::vector<PolicyCheck> checks;
  for (size_t i = 0; i < policy.require.size(); ++i) {
    const registry_internal::Condition condition = registry_internal::ParseCondition(policy, i);
    std::optional<double> value;
    std::string missing;
    if (!registry_internal::IsHumanMetric(condition.metric)) {
      if (const auto it = record.scores.find(condition.metric); it != record.scores.end()) {
        value = it->second;
      } else {
        missing = me + " has no score " + condition.metric;
      }
    } else {
      if (!pooled) {
        pooled = PoolJudgements(db, me);
        rates = WinRates(static_cast<int>(pooled->contestants.size()), pooled->judgements);
      }
      const int mine = pooled->Index(me);
      const auto rate_against = [&](const std::string& other) {
        const int theirs = pooled->Index(other);
        return mine >= 0 && theirs >= 0 && mine != theirs ? rates[mine][theirs] : WinRate{};
      };
      if (condition.metric == "human.rating") {
        if (mine >= 0) {
          value = EloRating(BradleyTerryStrengths(static_cast<int>(pooled->contestants.size()),
                                                  pooled->judgements)[mine]);
        } else {
          missing = me + " is in no review yet (`tune review generate`)";
        }
      } else {
        const std::string other =
            condition.metric == "human.win_rate_vs_base" ? std::string(kBaseContestant) : current;
        const WinRate rate = rate_against(other);
        if (condition.metric == "human.judgements") {
          value = static_cast<double>(rate.judgements);
        } else {
          value = rate.rate();
          if (!value) missing = "no judgements of " + me + " against " + other + " yet";
        }
      }
    }
    checks.push_back(registry_internal::Evaluate(condition, policy.require[i], value, missing));
  }
  return checks;
}

bool AllMet(const std::vector<PolicyCheck>& checks) {
  return std::all_of(checks.begin(), checks.end(), [](const PolicyCheck& c) { return c.met; });
}

[[noreturn]] void RefusePromotion(const AliasPolicy& policy, int64_t version,
                                  std::vector<PolicyCheck> checks) {
  const std::string source = policy.source.empty() ? std::string() : " (" + policy.source + ")";
  const std::string message = "cannot promote " + policy.name + ":" + std::to_string(version) +
                              " to " + policy.alias + ": its policy" + source +
                              " is not met: " + registry_internal::DescribeFailures(checks);
  throw PolicyRefused(message, std::move(checks));
}

std::string PromotionKeyPrefix(std::string_view adapter) {
  return std::string(kPromotionPrefix).append(adapter).append("/");
}

std::vector<PromotionRequest> RequestsOf(const Db& db, std::string_view adapter) {
  std::vector<PromotionRequest> requests;
  db.Scan(kDefault, PromotionKeyPrefix(adapter), [&](const std::string&, const std::string& value) {
    requests.push_back(wire::PromotionFromJson(json::parse(value)));
  });
  return requests;
}

BlindPair Show(const ObjectStore& objects, const Db& db, const ReviewRecord& review,
               const ShownPair& shown, int64_t judged, int64_t remaining) {
  const DatasetRecord set = [&] {
    const DatasetRef ref = ParseDatasetRef(review.set);
    const std::optional<std::string> text = db.Get(kDefault, DatasetKey(ref.name, *ref.version));
    if (!text || !DatasetRecordFromJson(*text).content) {
      throw RegistryDamaged("review '" + review.name + "' names the review set " + review.set +
                            ", which registry " + db.name +
                            " does not hold: run `tune registry verify`");
    }
    return DatasetRecordFromJson(*text);
  }();
  const std::vector<ReviewPrompt> prompts = ParseReviewSet(
      objects.ReadVerified(set.content->digest, set.content->size_bytes, review.set + " prompts"),
      review.set);
  const auto output = [&](const std::string& contestant) {
    const ReviewOutputs* outputs = OutputsOf(review, contestant);
    const std::string what = "the outputs of " + contestant + " in review " + review.name;
    return registry_internal::ParseOutputs(
        objects.ReadVerified(outputs->object.digest, outputs->object.size_bytes, what),
        review.prompts, what)[static_cast<size_t>(shown.prompt)];
  };
  const ReviewPrompt& prompt = prompts.at(static_cast<size_t>(shown.prompt));
  return BlindPair{shown.id,           shown.prompt,        prompt.prompt, prompt.reference,
                   output(shown.left), output(shown.right), judged,        remaining};
}

}  // namespace

void LocalRegistry::CreateReview(std::string_view name, std::string_view set_ref) {
  Impl& impl = *impl_;
  impl.RequireWritable("create reviews");
  if (!IsValidName(name)) {
    throw UserError("invalid review name '" + Echo(name, 64) +
                    "': names are 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit");
  }
  const DatasetRecord set = GetDataset(set_ref);
  const std::string set_name = set.name + ":" + std::to_string(set.version);
  if (!set.content) {
    throw UserError("dataset " + set_name +
                    " is a training file, whose rows the registry does not hold; a review needs "
                    "a review set: `tune review create NAME --prompts FILE`");
  }
  const std::vector<ReviewPrompt> prompts =
      ParseReviewSet(impl.objects.ReadVerified(set.content->digest, set.content->size_bytes,
                                               set_name + " prompts"),
                     set_name);
  Impl::Lease lease = impl.Write(impl.write_wait);
  if (lease.db().Get(kDefault, ReviewKey(name))) {
    throw UserError("review '" + std::string(name) +
                    "' exists already; choose another name (`tune review results " +
                    std::string(name) + "` shows it)");
  }
  ReviewRecord review;
  review.name = std::string(name);
  review.set = set_name;
  review.prompts = static_cast<int64_t>(prompts.size());
  review.created_ms = NowMs();
  review.created_by = by_;
  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kDefault), ReviewKey(name), wire::Dump(wire::ReviewToJson(review)));
  lease.Commit(batch);
}

ReviewRecord LocalRegistry::GetReview(std::string_view name) const {
  return RequireReview(*impl_->Reader(), name);
}

std::vector<ReviewRecord> LocalRegistry::ListReviews() const {
  return AllReviews(*impl_->Reader());
}

void LocalRegistry::AddReviewOutputs(std::string_view review, std::string_view contestant,
                                     const fs::path& outputs_file, std::string_view generation) {
  Impl& impl = *impl_;
  impl.RequireWritable("record outputs");
  const registry_internal::StoredObject object = impl.objects.Store(outputs_file);
  AddStoredReviewOutputs(review, contestant,
                         {outputs_file.filename().string(), object.digest, object.size_bytes},
                         generation);
}

void LocalRegistry::AddStoredReviewOutputs(std::string_view review_name,
                                           std::string_view contestant, const ManifestEntry& object,
                                           std::string_view generation) {
  Impl& impl = *impl_;
  impl.RequireWritable("record outputs");
  if (!registry_internal::IsContestant(contestant)) {
    throw UserError("'" + Echo(contestant, 64) +
                    "' is not a contestant: a version (NAME:N) or base, the base model");
  }
  impl.RequireStored(object, "the outputs of " + std::string(contestant));
  const std::string what = "the outputs of " + std::string(contestant) + " (" + object.path + ")";
  Impl::Lease lease = impl.Write(impl.write_wait);
  ReviewRecord review = RequireReview(lease.db(), review_name);
  RequireOpen(review, "outputs");
  registry_internal::ParseOutputs(impl.objects.ReadVerified(object.digest, object.size_bytes, what),
                                  review.prompts, what);
  if (const ReviewOutputs* recorded = OutputsOf(review, contestant)) {
    if (recorded->object.digest == object.digest) return;
    throw UserError("review '" + review.name + "' has the outputs of " + std::string(contestant) +
                    " already (recorded by " + recorded->created_by +
                    "), and they differ from these; a contestant's outputs are recorded once: "
                    "start another review to compare new ones");
  }
  if (contestant != kBaseContestant) {
    const VersionRecord version = Resolve(contestant);  // refuses versions that do not exist
    if (review.base_model_hash.empty()) {
      review.base_model_hash = version.base_model_hash;
    } else if (version.base_model_hash != review.base_model_hash) {
      throw UserError(std::string(contestant) + " was trained from base model " +
                      version.base_model_name + " (" + version.base_model_hash.substr(0, 12) +
                      "), not the one the other versions in review '" + review.name + "' share (" +
                      review.base_model_hash.substr(0, 12) +
                      "); compare versions of one base model per review");
    }
  }
  ReviewOutputs outputs;
  outputs.contestant = std::string(contestant);
  outputs.object = object;
  outputs.object.path = "outputs.jsonl";
  outputs.generation = std::string(generation);
  outputs.created_ms = NowMs();
  outputs.created_by = by_;
  review.outputs.push_back(std::move(outputs));
  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kDefault), ReviewKey(review.name), wire::Dump(wire::ReviewToJson(review)));
  lease.Commit(batch);
}

std::optional<BlindPair> LocalRegistry::NextPair(std::string_view review_name) {
  Impl& impl = *impl_;
  impl.RequireWritable("show pairs");
  Impl::Lease lease = impl.Write(impl.write_wait);
  const ReviewRecord review = RequireReview(lease.db(), review_name);
  RequireOpen(review, "judgements");
  if (review.outputs.size() < 2) {
    throw UserError("review '" + review.name + "' has the outputs of " +
                    Counted(static_cast<int64_t>(review.outputs.size()), "contestant") +
                    "; it needs two to compare (`tune review generate " + review.name +
                    " VERSION...`)");
  }
  const std::vector<ShownPair> pairs = PairsOf(lease.db(), review.name);
  int64_t judged = 0;
  const ShownPair* waiting = nullptr;
  for (const ShownPair& pair : pairs) {
    if (pair.rater != by_) continue;
    if (pair.verdict) {
      ++judged;
    } else if (waiting == nullptr) {
      waiting = &pair;
    }
  }
  std::random_device entropy;
  const uint64_t random = (uint64_t{entropy()} << 32) ^ entropy();
  const std::optional<registry_internal::PairChoice> choice =
      registry_internal::ChoosePair(review, pairs, by_, random);
  if (waiting != nullptr) {
    return Show(impl.objects, lease.db(), review, *waiting, judged,
                choice ? choice->remaining + 1 : 1);
  }
  if (!choice) return std::nullopt;
  ShownPair shown;
  shown.id = static_cast<int64_t>(pairs.size()) + 1;
  shown.rater = by_;
  shown.shown_ms = NowMs();
  shown.prompt = choice->prompt;
  shown.left = choice->left;
  shown.right = choice->right;
  BlindPair blind = Show(impl.objects, lease.db(), review, shown, judged, choice->remaining);
  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kDefault), PairKeyPrefix(review.name) + Pad(shown.id),
            wire::Dump(wire::ShownPairToJson(shown)));
  lease.Commit(batch);
  return blind;
}

void LocalRegistry::Judge(std::string_view review_name, int64_t pair_id, Verdict verdict,
                          std::string_view reason) {
  Impl& impl = *impl_;
  impl.RequireWritable("record judgements");
  if (reason.size() > 1000) {
    throw UserError("the reason has " + std::to_string(reason.size()) +
                    " bytes; say it in 1,000 at most");
  }
  Impl::Lease lease = impl.Write(impl.write_wait);
  const ReviewRecord review = RequireReview(lease.db(), review_name);
  RequireOpen(review, "judgements");
  const std::string key = PairKeyPrefix(review.name) + Pad(pair_id);
  const std::optional<std::string> text =
      pair_id > 0 ? lease.db().Get(kDefault, key) : std::nullopt;
  std::optional<ShownPair> pair;
  if (text) pair = wire::ShownPairFromJson(json::parse(*text));
  if (!pair || pair->rater != by_) {
    throw UserError("pair " + std::to_string(pair_id) + " of review '" + review.name +
                    "' was never shown to " + by_ +
                    "; judge the pairs the review shows you (ask for the next one)");
  }
  if (pair->verdict) {
    throw UserError(by_ + " judged pair " + std::to_string(pair_id) + " of review '" + review.name +
                    "' already (" + std::string(VerdictName(*pair->verdict)) +
                    "); each pair is judged once by each rater");
  }
  pair->verdict = verdict;
  pair->judged_ms = NowMs();
  pair->reason = std::string(reason);
  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kDefault), key, wire::Dump(wire::ShownPairToJson(*pair)));
  lease.Commit(batch);
}

void LocalRegistry::CloseReview(std::string_view review_name) {
  Impl& impl = *impl_;
  impl.RequireWritable("close reviews");
  Impl::Lease lease = impl.Write(impl.write_wait);
  ReviewRecord review = RequireReview(lease.db(), review_name);
  RequireOpen(review, "closing");
  review.closed_ms = NowMs();
  review.closed_by = by_;
  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kDefault), ReviewKey(review.name), wire::Dump(wire::ReviewToJson(review)));
  lease.Commit(batch);
}

ReviewResults LocalRegistry::Results(std::string_view review_name) const {
  const std::shared_ptr<const Db> db = impl_->Reader();
  const ReviewRecord review = RequireReview(*db, review_name);
  return registry_internal::ComputeResults(review, PairsOf(*db, review.name));
}

std::vector<ShownPair> LocalRegistry::Judgements(std::string_view review_name) const {
  const std::shared_ptr<const Db> db = impl_->Reader();
  const ReviewRecord review = RequireReview(*db, review_name);
  if (review.closed_ms == 0) {
    throw UserError("review '" + review.name +
                    "' is open: who wrote what stays hidden until it is closed (`tune review "
                    "close " +
                    review.name + "`)");
  }
  return PairsOf(*db, review.name);
}

void LocalRegistry::SetPolicy(const AliasPolicy& given) {
  Impl& impl = *impl_;
  impl.RequireWritable("set policies");
  RequireMovableAlias(given.name, given.alias);
  if (given.approvers < 0 || given.approvers > 10) {
    throw UserError((given.source.empty() ? std::string("policy") : given.source) + ": policy." +
                    given.alias + ".approvers is a whole number from 0 to 10");
  }
  std::set<std::string> scores;
  ListOptions options;
  options.name = given.name;
  for (const VersionRecord& record : List(options)) {
    for (const auto& [metric, value] : record.scores) scores.insert(metric);
  }
  for (size_t i = 0; i < given.require.size(); ++i) {
    const registry_internal::Condition condition = registry_internal::ParseCondition(given, i);
    if (registry_internal::IsHumanMetric(condition.metric) || scores.count(condition.metric)) {
      continue;
    }
    const std::vector<std::string> known(scores.begin(), scores.end());
    throw UserError(
        registry_internal::WhereCondition(given, i) + ": unknown metric '" + condition.metric +
        "'" + DidYouMean(condition.metric, known) + "; " +
        (known.empty() ? "the versions of " + given.name + " have no scores"
                       : "the versions of " + given.name + " have the scores " + JoinNames(known)) +
        ", and people's judgements give human.win_rate_vs_current, "
        "human.win_rate_vs_base, human.judgements and human.rating");
  }
  AliasPolicy policy = given;
  policy.set_ms = NowMs();
  policy.set_by = by_;
  Impl::Lease lease = impl.Write(impl.write_wait);
  lease.db().RequireAdapter(policy.name);
  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kDefault), PolicyKey(policy.name, policy.alias),
            wire::Dump(wire::PolicyToJson(policy)));
  lease.Commit(batch);
}

void LocalRegistry::RemovePolicy(std::string_view name, std::string_view alias) {
  Impl& impl = *impl_;
  impl.RequireWritable("remove policies");
  Impl::Lease lease = impl.Write(impl.write_wait);
  lease.db().RequireAdapter(name);
  if (!PolicyOf(lease.db(), name, alias)) {
    throw UserError("alias '" + Echo(alias, 64) + "' of adapter '" + std::string(name) +
                    "' has no policy to remove; `tune adapters policy show " + std::string(name) +
                    "` lists them");
  }
  rocksdb::WriteBatch batch;
  batch.Delete(lease.column(kDefault), PolicyKey(name, alias));
  lease.Commit(batch);
}

std::vector<AliasPolicy> LocalRegistry::Policies(std::string_view name) const {
  const std::shared_ptr<const Db> db = impl_->Reader();
  db->RequireAdapter(name);
  std::vector<AliasPolicy> policies;
  db->Scan(kDefault, std::string(kPolicyPrefix).append(name).append("/"),
           [&](const std::string&, const std::string& value) {
             policies.push_back(wire::PolicyFromJson(json::parse(value)));
           });
  return policies;
}

std::vector<PolicyCheck> LocalRegistry::CheckPolicy(std::string_view name, std::string_view alias,
                                                    int64_t version) const {
  const std::shared_ptr<const Db> db = impl_->Reader();
  db->RequireAdapter(name);
  const std::optional<AliasPolicy> policy = PolicyOf(*db, name, alias);
  if (!policy) return {};
  return CheckVersion(*db, *policy, version);
}

PromotionRequest LocalRegistry::Promote(std::string_view name, std::string_view alias,
                                        int64_t version, std::optional<int64_t> expected) {
  Impl& impl = *impl_;
  impl.RequireWritable("move aliases");
  RequireMovableAlias(name, alias);
  Impl::Lease lease = impl.Write(impl.write_wait);
  lease.db().RequireAdapter(name);
  PromotionRequest request;
  request.name = std::string(name);
  request.alias = std::string(alias);
  request.version = version;
  request.requested_by = by_;
  request.requested_ms = NowMs();
  const std::optional<AliasPolicy> policy = PolicyOf(lease.db(), name, alias);
  AliasMove move;
  move.by = by_;
  rocksdb::WriteBatch batch;
  if (policy) {
    request.checks = CheckVersion(lease.db(), *policy, version);
    if (!AllMet(request.checks)) RefusePromotion(*policy, version, request.checks);
    request.approvers = policy->approvers;
    move.reason = "its policy is met";
    if (policy->approvers > 0) {
      const int64_t current = CurrentVersion(lease.db(), name, alias);
      if (expected && *expected != current) {
        throw AliasConflict("alias '" + std::string(alias) + "' of adapter '" + std::string(name) +
                            "' is " + Describe(current) + ", not " + Describe(*expected) +
                            " as expected: it was moved meanwhile");
      }
      const std::vector<PromotionRequest> requests = RequestsOf(lease.db(), name);
      for (const PromotionRequest& asked : requests) {
        if (asked.status == "waiting" && asked.alias == alias && asked.version == version &&
            asked.from_version == current) {
          return asked;
        }
      }
      request.id = static_cast<int64_t>(requests.size()) + 1;
      request.from_version = current;
      request.status = "waiting";
      batch.Put(lease.column(kDefault), PromotionKeyPrefix(name) + Pad(request.id),
                wire::Dump(wire::PromotionToJson(request)));
      lease.Commit(batch);
      return request;
    }
  }
  request.from_version = CommitAliasMove(lease, name, alias, version, expected, move, batch);
  request.status = "moved";
  return request;
}

PromotionRequest LocalRegistry::Approve(std::string_view name, int64_t request_id) {
  Impl& impl = *impl_;
  impl.RequireWritable("approve promotions");
  Impl::Lease lease = impl.Write(impl.write_wait);
  lease.db().RequireAdapter(name);
  const std::string key = PromotionKeyPrefix(name) + Pad(request_id);
  const std::optional<std::string> text =
      request_id > 0 ? lease.db().Get(kDefault, key) : std::nullopt;
  if (!text) {
    throw UserError("adapter '" + std::string(name) + "' has no promotion request " +
                    std::to_string(request_id) + "; `tune adapters requests " + std::string(name) +
                    "` lists them");
  }
  PromotionRequest request = wire::PromotionFromJson(json::parse(*text));
  const std::string label = "request " + std::to_string(request.id) + " (" + request.name + ":" +
                            std::to_string(request.version) + " to " + request.alias + ")";
  if (request.status != "waiting") {
    throw UserError(label + " is " + request.status + "; only a waiting request is approved");
  }
  if (request.requested_by == by_) {
    throw UserError(by_ + " asked for " + label +
                    "; another person with the promote role must approve it");
  }
  if (std::find(request.approved_by.begin(), request.approved_by.end(), by_) !=
      request.approved_by.end()) {
    throw UserError(by_ + " approved " + label + " already; it waits for " +
                    Counted(request.approvers - static_cast<int64_t>(request.approved_by.size()),
                            "more approver"));
  }
  request.approved_by.push_back(by_);
  rocksdb::WriteBatch batch;
  const auto save = [&] {
    batch.Put(lease.column(kDefault), key, wire::Dump(wire::PromotionToJson(request)));
  };
  if (static_cast<int64_t>(request.approved_by.size()) < request.approvers) {
    save();
    lease.Commit(batch);
    return request;
  }
  const int64_t current = CurrentVersion(lease.db(), name, request.alias);
  if (current != request.from_version) {
    request.status = "stale";
    save();
    lease.Commit(batch);
    throw AliasConflict(label + " was asked while " + request.alias + " was " +
                        Describe(request.from_version) + "; it is " + Describe(current) +
                        " now, so the request is stale: ask again");
  }
  if (const std::optional<AliasPolicy> policy = PolicyOf(lease.db(), name, request.alias)) {
    request.checks = CheckVersion(lease.db(), *policy, request.version);
    if (!AllMet(request.checks)) {
      request.approved_by.pop_back();  // the approval counts once the policy holds again
      save();
      lease.Commit(batch);
      RefusePromotion(*policy, request.version, request.checks);
    }
  }
  request.status = "moved";
  save();
  AliasMove move;
  move.by = by_;
  move.reason = "request " + std::to_string(request.id) + " by " + request.requested_by +
                ", approved by " + JoinNames(request.approved_by);
  CommitAliasMove(lease, name, request.alias, request.version, request.from_version,
                  std::move(move), batch);
  return request;
}

std::vector<PromotionRequest> LocalRegistry::PromotionRequests(std::string_view name) const {
  const std::shared_ptr<const Db> db = impl_->Reader();
  db->RequireAdapter(name);
  return RequestsOf(*db, name);
}

}  // namespace tune

#include "registry/registry.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <rocksdb/db.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <nlohmann/json.hpp>

#include "registry/db_locks.h"
#include "registry/filter.h"
#include "registry/object_store.h"
#include "util/counted.h"
#include "util/echo.h"
#include "util/names.h"
#include "util/suggest.h"

namespace tune {

namespace fs = std::filesystem;
using nlohmann::json;
using registry_internal::Filter;
using registry_internal::ObjectStore;
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

std::string Pad(int64_t number) {
  char text[32];
  std::snprintf(text, sizeof text, "%020" PRId64, number);
  return text;
}

std::string Key(std::string_view a, int64_t number) { return std::string(a) + "/" + Pad(number); }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// RocksDB logs into db/LOG; a read-only open must not rotate the writer's log, so it logs nowhere.
class NullLogger : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

std::string RandomHex(size_t digits) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  while (hex.size() < digits) {
    uint64_t bits = random();
    for (int i = 0; i < 16 && hex.size() < digits; ++i, bits >>= 4) hex += kHex[bits & 15];
  }
  return hex;
}

// A relative path with no '..', '.' or empty parts: safe to join under a fetch directory.
bool IsSafeRelativePath(std::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

json RunToJson(const RunRecord& run) {
  const auto optional = [](const std::optional<int64_t>& v) {
    return v ? json(*v) : json(nullptr);
  };
  return {{"id", run.id},
          {"name", run.info.name},
          {"sweep", run.info.sweep ? json(*run.info.sweep) : json(nullptr)},
          {"trial", optional(run.info.trial)},
          {"configuration", optional(run.info.configuration)},
          {"seed", optional(run.info.seed)},
          {"objective", run.info.objective},
          {"objective_goal", run.info.objective_goal},
          {"node", run.info.node},
          {"job", run.info.job},
          {"attempt", optional(run.info.attempt)},
          {"end_reason", run.end_reason},
          {"config_toml", run.info.config_toml},
          {"status", RunStatusName(run.status)},
          {"started_ms", run.started_ms},
          {"finished_ms", run.finished_ms},
          {"error", run.error},
          {"process",
           {{"pid", run.process.pid},
            {"start_ticks", run.process.start_ticks},
            {"boot_id", run.process.boot_id}}}};
}

// The first line of a /proc file, or "" when it cannot be read.
std::string ProcLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// Field 22 of /proc/PID/stat (starttime), counted after the ')' that ends the command name, which
// may itself hold spaces and parentheses; -1 when there is no such process.
int64_t StartTicks(const std::string& pid) {
  const std::string stat = ProcLine("/proc/" + pid + "/stat");
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));  // field 3 (state) on
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::strtoll(field.c_str(), nullptr, 10);
  }
  return -1;
}

RunProcess ThisProcess() {
  return {static_cast<int64_t>(::getpid()), StartTicks("self"),
          ProcLine("/proc/sys/kernel/random/boot_id")};
}

// A run's error comes from anywhere (a plugin, a dataset row): bytes that are not UTF-8 become
// U+FFFD rather than failing the write.
std::string RunText(const RunRecord& run) {
  return RunToJson(run).dump(-1, ' ', false, json::error_handler_t::replace);
}

RunRecord RunFromJson(const std::string& text) {
  const json j = json::parse(text);
  RunRecord run;
  run.id = j.at("id").get<std::string>();
  run.info.name = j.at("name").get<std::string>();
  if (!j.at("sweep").is_null()) run.info.sweep = j.at("sweep").get<std::string>();
  if (!j.at("trial").is_null()) run.info.trial = j.at("trial").get<int64_t>();
  if (j.contains("configuration") && !j["configuration"].is_null()) {
    run.info.configuration = j["configuration"].get<int64_t>();
  }
  if (j.contains("seed") && !j["seed"].is_null()) run.info.seed = j["seed"].get<int64_t>();
  run.info.objective = j.value("objective", "");
  run.info.objective_goal = j.value("objective_goal", "");
  run.info.node = j.value("node", "");
  run.info.job = j.value("job", "");
  if (j.contains("attempt") && !j["attempt"].is_null()) {
    run.info.attempt = j["attempt"].get<int64_t>();
  }
  run.end_reason = j.value("end_reason", "");
  if (const auto it = j.find("process"); it != j.end() && it->is_object()) {
    run.process = {it->value("pid", int64_t{0}), it->value("start_ticks", int64_t{0}),
                   it->value("boot_id", "")};
  }
  run.info.config_toml = j.at("config_toml").get<std::string>();
  if (const std::optional<RunStatus> status =
          RunStatusFromName(j.at("status").get<std::string>())) {
    run.status = *status;
  }
  run.started_ms = j.at("started_ms").get<int64_t>();
  run.finished_ms = j.at("finished_ms").get<int64_t>();
  run.error = j.at("error").get<std::string>();
  return run;
}

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

  // Every version record in key order (by name, then version), parsed once: a read view lives
  // until the next write, so a server answering many requests parses the registry once per
  // change, not once per request. Throws UserError when the records do not match the counts the
  // adapters' entries keep (MissingRecords): a listing never leaves out a version silently.
  const std::vector<VersionRecord>& AllVersions() const {
    std::call_once(versions_parsed_, [&] {
      std::vector<VersionRecord> parsed;
      Scan(kVersions, "", [&](const std::string&, const std::string& value) {
        parsed.push_back(VersionRecordFromJson(value));
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
      versions_ = std::move(parsed);
    });
    return versions_;
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

  // A listing's records in its order, computed by `compute` the first time this view is asked
  // for `key` and kept for the view's life: a web view asks for the same list every 2 seconds,
  // and for pages of it. Holds a few dozen listings; past that it starts again.
  using Order = std::vector<const VersionRecord*>;
  std::shared_ptr<const Order> CachedOrder(const std::string& key,
                                           const std::function<Order()>& compute) const {
    constexpr size_t kListings = 32;
    {
      std::lock_guard lock(orders_mutex_);
      if (const auto it = orders_.find(key); it != orders_.end()) return it->second;
    }
    auto order = std::make_shared<const Order>(compute());  // outside the lock: may throw
    std::lock_guard lock(orders_mutex_);
    if (orders_.size() >= kListings) orders_.clear();
    orders_.emplace(key, order);
    return order;
  }

  std::string name;  // how messages name the registry: the path as given
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::shared_ptr<rocksdb::Logger> logger;

 private:
  mutable std::once_flag versions_parsed_;
  mutable std::vector<VersionRecord> versions_;
  mutable std::mutex orders_mutex_;
  mutable std::map<std::string, std::shared_ptr<const Order>> orders_;
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

class Registry::Impl {
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
        if (!stamp || sequence >= *stamp) return opened;
        behind = sequence;
      } else if (!IsTransientReadError(status)) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5 << attempt, 100)));
    }
    if (behind) ThrowBehind(*behind, *stamp);
    ThrowOpenFailure(status);
  }

  // The registry as of now: the view is reopened when a write (of any process) has returned since
  // it was opened.
  std::shared_ptr<const Db> Reader() const {
    const std::optional<uint64_t> stamp = registry_internal::ReadWriteStamp(DbDir());
    std::lock_guard lock(view_mutex);
    if (view != nullptr && stamp && stamp == view_stamp && !view_stale) return view;
    view = OpenView();
    view_stamp = stamp;
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
        registry_internal::WriteWriteStamp(impl_.DbDir(), db_->db->GetLatestSequenceNumber());
        std::lock_guard lock(impl_.view_mutex);
        impl_.view_stale = true;
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
    }

    // Writes the metrics buffered so far, merged into what their steps already have.
    void CommitMetrics() {
      std::lock_guard lock(impl_.metrics_mutex);
      if (impl_.pending_metrics.empty()) return;
      rocksdb::WriteBatch batch;
      for (const auto& [key, values] : impl_.pending_metrics) {
        json merged = json::object();
        if (std::optional<std::string> existing = db_->Get(kRunMetrics, key)) {
          merged = json::parse(*existing);
        }
        for (const auto& [metric, value] : values) merged[metric] = value;
        batch.Put(column(kRunMetrics), key, merged.dump());
      }
      Commit(batch, /*sync=*/false);  // the run folder's metrics.jsonl is the durable copy
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
    bool committed_ = false;
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

  bool HasPendingMetrics() const {
    std::lock_guard lock(metrics_mutex);
    return !pending_metrics.empty();
  }

  fs::path dir;
  std::string name;  // how messages name the registry: the path as given
  bool read_only;
  std::chrono::milliseconds write_wait;
  ObjectStore objects;

  mutable std::mutex view_mutex;
  mutable std::shared_ptr<const Db> view;
  mutable std::optional<uint64_t> view_stamp;
  mutable bool view_stale = false;

  mutable std::mutex metrics_mutex;
  std::map<std::string, std::map<std::string, double>> pending_metrics;  // RUN_ID/STEP -> values
  std::set<std::string> known_runs;  // run ids LogMetrics has checked exist
  std::chrono::steady_clock::time_point last_metrics_commit = std::chrono::steady_clock::now();
};

std::unique_ptr<Registry> Registry::Open(const fs::path& dir, OpenMode mode,
                                         std::chrono::milliseconds write_wait) {
  const bool read_only = mode == OpenMode::kReadOnly;
  auto impl = std::make_unique<Impl>(dir, read_only, write_wait);
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
      return std::unique_ptr<Registry>(new Registry(std::move(impl)));
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
  return std::unique_ptr<Registry>(new Registry(std::move(impl)));
}
Registry::Registry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Registry::~Registry() = default;

const fs::path& Registry::dir() const { return impl_->dir; }
bool Registry::read_only() const { return impl_->read_only; }

int64_t Registry::Register(std::string_view adapter, const VersionRecord& lineage,
                           const fs::path& artifact_dir, const fs::path& eval_samples) {
  Impl& impl = *impl_;
  impl.RequireWritable("register adapters");
  if (!IsValidName(adapter)) {
    throw UserError("invalid adapter name '" + std::string(adapter) +
                    "': names are 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit");
  }
  std::error_code ec;
  if (!fs::is_directory(artifact_dir, ec)) {
    throw UserError("adapter folder " + artifact_dir.string() +
                    " does not exist or is not a folder; pass the folder the trainer wrote");
  }
  std::vector<std::pair<std::string, fs::path>> files;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(artifact_dir)) {
    if (entry.is_directory()) continue;
    const std::string relative = fs::relative(entry.path(), artifact_dir).generic_string();
    if (!entry.is_regular_file()) {
      throw UserError("adapter folder " + artifact_dir.string() + " holds " + relative +
                      ", which is not a regular file; remove it");
    }
    if (relative == "tune.json") {
      throw UserError("adapter folder " + artifact_dir.string() +
                      " holds tune.json, the name `tune fetch` writes the lineage to; rename it");
    }
    files.emplace_back(relative, entry.path());
  }
  if (files.empty()) {
    throw UserError("adapter folder " + artifact_dir.string() +
                    " is empty; pass the folder with adapter_config.json and the weights");
  }
  std::sort(files.begin(), files.end());

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
    files.emplace_back("eval_samples.jsonl", eval_samples);  // for the check below
  }

  Impl::Lease lease = impl.Write(impl.write_wait);
  // A Gc (which holds the registry while it removes) may have taken an object that had the same
  // bytes and no reference since we stored it: store those again before the record names them.
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& digest =
        i < record.files.size() ? record.files[i].digest : record.eval_samples->digest;
    std::error_code ec;
    if (!fs::exists(impl.objects.PathOf(digest), ec)) impl.objects.Store(files[i].second);
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
  if (record.created_ms == 0) record.created_ms = NowMs();

  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kAdapters), std::string(adapter), entry.ToJson());
  batch.Put(lease.column(kVersions), Key(adapter, record.version), VersionRecordToJson(record));
  lease.Commit(batch);
  return record.version;
}

VersionRecord Registry::Resolve(std::string_view text) const {
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

VersionRecord Registry::Get(std::string_view name, int64_t version) const {
  return impl_->Reader()->GetVersion(name, version);
}

std::vector<std::string> Registry::Names() const { return impl_->Reader()->Names(); }

std::map<std::string, int64_t> Registry::Aliases(std::string_view name) const {
  const std::shared_ptr<const Db> db = impl_->Reader();
  db->RequireAdapter(name);
  return db->Aliases(name);
}

std::vector<VersionRecord> Registry::List(const ListOptions& options) const {
  return ListPage(options, 0, SIZE_MAX).versions;
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

Registry::Page Registry::ListPage(const ListOptions& options, size_t offset, size_t limit) const {
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

int64_t Registry::MoveAlias(std::string_view adapter, std::string_view alias, int64_t version,
                            std::optional<int64_t> expected) {
  Impl& impl = *impl_;
  impl.RequireWritable("move aliases");
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
  Impl::Lease lease = impl.Write(impl.write_wait);
  AdapterEntry entry = lease.db().RequireAdapter(adapter);
  lease.db().GetVersion(adapter, version);  // refuses a version that does not exist
  const std::string alias_key = std::string(adapter) + "/" + std::string(alias);
  const std::optional<std::string> current_text = lease.db().Get(kAliases, alias_key);
  const int64_t current = current_text ? std::stoll(*current_text) : 0;
  if (expected && *expected != current) {
    const auto describe = [](int64_t v) {
      return v == 0 ? std::string("unset") : "version " + std::to_string(v);
    };
    throw AliasConflict("alias '" + std::string(alias) + "' of adapter '" + std::string(adapter) +
                        "' is " + describe(current) + ", not " + describe(*expected) +
                        " as expected: it was moved meanwhile; check `tune adapters history " +
                        std::string(adapter) + "` and retry");
  }
  if (current == version) return current;
  entry.alias_moves += 1;
  const AliasMove move{NowMs(), std::string(alias), current, version};
  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kAliases), alias_key, std::to_string(version));
  batch.Put(lease.column(kAliasHistory), Key(adapter, entry.alias_moves),
            json{{"time_ms", move.time_ms},
                 {"alias", move.alias},
                 {"old_version", move.old_version},
                 {"new_version", move.new_version}}
                .dump());
  batch.Put(lease.column(kAdapters), std::string(adapter), entry.ToJson());
  lease.Commit(batch);
  return current;
}

std::vector<AliasMove> Registry::History(std::string_view adapter) const {
  const std::shared_ptr<const Db> db = impl_->Reader();
  db->RequireAdapter(adapter);
  std::vector<AliasMove> moves;
  db->Scan(
      kAliasHistory, std::string(adapter) + "/", [&](const std::string&, const std::string& value) {
        const json j = json::parse(value);
        moves.push_back({j.at("time_ms").get<int64_t>(), j.at("alias").get<std::string>(),
                         j.at("old_version").get<int64_t>(), j.at("new_version").get<int64_t>()});
      });
  return moves;
}

VersionRecord Registry::Fetch(std::string_view ref, const fs::path& out_dir) const {
  const Impl& impl = *impl_;
  const VersionRecord record = Resolve(ref);
  const std::string label = record.name + ":" + std::to_string(record.version);
  std::error_code ec;
  if (fs::exists(out_dir, ec) && !(fs::is_directory(out_dir, ec) && fs::is_empty(out_dir, ec))) {
    throw UserError("output folder " + out_dir.string() +
                    " exists and is not empty; choose another with -o or remove it");
  }
  for (const ManifestEntry& file : record.files) {
    if (!IsSafeRelativePath(file.path) || !registry_internal::IsHexDigest(file.digest)) {
      throw UserError("version " + label + " in registry " + impl.name + " lists a file '" +
                      file.path + "' with digest '" + file.digest +
                      "' that cannot be fetched; the registry is damaged: run `tune registry "
                      "verify`");
    }
  }
  const fs::path target = fs::absolute(out_dir).lexically_normal();
  const fs::path parent = target.parent_path();
  try {
    fs::create_directories(parent);
  } catch (const fs::filesystem_error& e) {
    throw UserError("cannot create " + parent.string() + ": " + e.code().message() +
                    "; choose a writable folder with -o");
  }
  // Everything goes to a hidden sibling first and appears at out_dir in one rename.
  const fs::path temp = parent / ("." + target.filename().string() + ".fetch-" + RandomHex(8));
  try {
    fs::create_directory(temp);
    for (const ManifestEntry& file : record.files) {
      const fs::path destination = temp / file.path;
      fs::create_directories(destination.parent_path());
      impl.objects.CopyVerified(file.digest, file.size_bytes, destination, label + " " + file.path);
    }
    std::ofstream lineage(temp / "tune.json", std::ios::binary);
    lineage << VersionRecordToJson(record, 2) << "\n";
    lineage.close();
    if (!lineage) throw UserError("cannot write " + (temp / "tune.json").string());
    if (fs::exists(target, ec)) fs::remove(target);  // empty, checked above
    fs::rename(temp, target);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(temp, ec);
    throw UserError("cannot write " + target.string() + ": " + e.code().message() +
                    "; check that folder is writable and has space");
  } catch (...) {
    fs::remove_all(temp, ec);
    throw;
  }
  return record;
}

fs::path Registry::ObjectPath(std::string_view digest) const {
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
  db.Scan(kDefault, kDatasetPrefix, [&](const std::string& key, const std::string& value) {
    DatasetRecord record;
    try {
      record = DatasetRecordFromJson(value);
    } catch (const UserError& e) {
      report.problems.push_back("record " + key + ": " + e.what());
      return;
    }
    const std::string& digest = record.rows_object.digest;
    if (good.count(digest)) return;
    const bool present = fs::exists(objects.PathOf(digest));
    report.problems.push_back("dataset " + record.name + ":" + std::to_string(record.version) +
                              " rows: object sha256:" + digest +
                              (present ? " is corrupted" : " is missing"));
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
    referenced.insert(DatasetRecordFromJson(value).rows_object.digest);
  });
  return referenced;
}

}  // namespace

std::string Registry::ReadObject(const ManifestEntry& object, std::string_view what) const {
  if (!registry_internal::IsHexDigest(object.digest)) {
    throw RegistryDamaged("'" + Echo(object.digest) + "' (" + std::string(what) +
                          ") is not a SHA-256 digest: registry " + impl_->name +
                          " is damaged; run `tune registry verify`");
  }
  return impl_->objects.ReadVerified(object.digest, object.size_bytes, what);
}

VerifyReport Registry::Verify() const {
  const Impl& impl = *impl_;
  VerifyReport report;
  // Taken before the objects are read, so every record it holds had its objects stored already.
  // A view that cannot be opened (a damaged log, a missing table) is the first problem; the
  // objects are still checked.
  std::shared_ptr<const Db> db;
  try {
    db = impl.Reader();
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

GcReport Registry::Gc(std::chrono::seconds grace) {
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
  return report;
}

void Registry::Backup(const fs::path& backup_dir) const {
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

std::string Registry::Recover(const fs::path& dir) {
  Impl impl(dir, /*read_only=*/false, kWriteWait);
  std::error_code ec;
  if (!fs::exists(impl.DbDir() / "CURRENT", ec)) {
    throw UserError("no registry at " + impl.name + " to recover; pass --registry PATH");
  }
  const std::unique_ptr<registry_internal::WriteLock> hold = impl.HoldForWrites(kWriteWait);
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

int64_t Registry::RegisterDataset(std::string_view name, const DatasetRecord& given,
                                  const fs::path& rows_file) {
  Impl& impl = *impl_;
  impl.RequireWritable("register datasets");
  if (!IsValidName(name)) {
    throw UserError("invalid dataset name '" + Echo(name, 64) +
                    "': names are 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit");
  }
  if (given.rows <= 0) {
    throw UserError("dataset '" + std::string(name) + "': " + given.source +
                    " has no rows; a dataset version holds at least one (check the file and "
                    "its format)");
  }
  const registry_internal::StoredObject object = impl.objects.Store(rows_file);
  DatasetRecord record = given;
  record.name = std::string(name);
  record.rows_object = {"rows.txt", object.digest, object.size_bytes};
  Impl::Lease lease = impl.Write(impl.write_wait);
  std::optional<DatasetRecord> latest;
  lease.db().Scan(
      kDefault, DatasetKeyPrefix(name),
      [&](const std::string&, const std::string& value) { latest = DatasetRecordFromJson(value); });
  if (latest && latest->sha256 == record.sha256) return latest->version;
  std::error_code ec;
  if (!fs::exists(impl.objects.PathOf(object.digest), ec)) impl.objects.Store(rows_file);
  record.version = latest ? latest->version + 1 : 1;
  if (record.created_ms == 0) record.created_ms = NowMs();
  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kDefault), DatasetKey(name, record.version), DatasetRecordToJson(record));
  lease.Commit(batch);
  return record.version;
}

DatasetRecord Registry::GetDataset(std::string_view text) const {
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

std::vector<DatasetRecord> Registry::ListDatasets() const {
  std::vector<DatasetRecord> records;
  impl_->Reader()->Scan(kDefault, kDatasetPrefix,
                        [&](const std::string&, const std::string& value) {
                          records.push_back(DatasetRecordFromJson(value));
                        });
  return records;
}

std::string Registry::CreateRun(const RunInfo& info) {
  Impl& impl = *impl_;
  impl.RequireWritable("record runs");
  RunRecord run;
  run.id = RandomHex(16);
  run.info = info;
  run.started_ms = NowMs();
  run.process = ThisProcess();
  Impl::Lease lease = impl.Write(impl.write_wait);
  rocksdb::WriteBatch batch;
  batch.Put(lease.column(kRuns), run.id, RunText(run));
  lease.Commit(batch);
  std::lock_guard lock(impl.metrics_mutex);
  impl.known_runs.insert(run.id);
  return run.id;
}

RunRecord Registry::GetRun(std::string_view run_id) const {
  return impl_->Reader()->GetRun(run_id);
}

void Registry::LogMetrics(std::string_view run_id, int64_t step,
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

void Registry::FinishRun(std::string_view run_id, RunStatus status, std::string_view error,
                         std::string_view end_reason) {
  Impl& impl = *impl_;
  impl.RequireWritable("finish runs");
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

bool RunProcessEnded(const RunRecord& run) {
  if (run.status != RunStatus::kRunning || run.process.pid <= 0) return false;
  if (!run.info.job.empty()) return false;  // Slurm's: its trial may outlive the run's creator
  const std::string boot_id = ProcLine("/proc/sys/kernel/random/boot_id");
  if (boot_id.empty() || run.process.boot_id.empty()) return false;
  if (boot_id != run.process.boot_id) return true;  // rebooted since
  return StartTicks(std::to_string(run.process.pid)) != run.process.start_ticks;
}

std::vector<RunRecord> Registry::ListRuns() const {
  std::vector<RunRecord> runs;
  impl_->Reader()->Scan(kRuns, "", [&](const std::string&, const std::string& value) {
    runs.push_back(RunFromJson(value));
  });
  std::stable_sort(runs.begin(), runs.end(), [](const RunRecord& a, const RunRecord& b) {
    return a.started_ms < b.started_ms;
  });
  return runs;
}

std::vector<MetricsAtStep> Registry::GetRunMetrics(std::string_view run_id) const {
  const std::shared_ptr<const Db> db = impl_->Reader();
  db->GetRun(run_id);
  const std::string prefix = std::string(run_id) + "/";
  std::map<int64_t, std::map<std::string, double>> by_step;
  db->Scan(kRunMetrics, prefix, [&](const std::string& key, const std::string& value) {
    by_step[std::stoll(key.substr(prefix.size()))] =
        json::parse(value).get<std::map<std::string, double>>();
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

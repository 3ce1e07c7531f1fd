#include "registry/remote_registry.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <future>
#include <optional>

#include <nlohmann/json.hpp>

#include "registry/common.h"
#include "registry/object_store.h"
#include "registry/wire.h"
#include "util/echo.h"
#include "util/log.h"
#include "util/sha256.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using registry_internal::HttpAnswer;
using registry_internal::UrlEncode;

constexpr int kSendAttempts = 5;  // per chunk or download, over a cut connection
// Chunks of one object sent at once.
constexpr size_t kChunksInFlight = 2;
// Metrics in one request: about 400 KiB of JSON, far below the server's limit for a body.
constexpr size_t kMetricsPerRequest = 10'000;

std::string EnvOr(const std::string& given, const char* variable) {
  if (!given.empty()) return given;
  const char* value = std::getenv(variable);
  return value != nullptr ? value : "";
}

// The answer's JSON, or the refusal it carries as the exception a local registry would throw.
json Expect(const HttpAnswer& answer, const std::string& url) {
  const json body = json::parse(answer.body, nullptr, /*allow_exceptions=*/false);
  if (answer.status >= 200 && answer.status < 300) {
    if (body.is_discarded()) {
      throw UserError("the registry server at " + url +
                      " answered with something that is not "
                      "JSON; is that URL a tune serve?");
    }
    return body;
  }
  const std::string error = body.is_object() && body.contains("error") && body["error"].is_string()
                                ? body["error"].get<std::string>()
                                : Echo(answer.body, 200);
  switch (answer.status) {
    case 401:
      throw RegistryDenied(error + " (registry server " + url +
                           "; set TUNE_TOKEN, or [registry] token_file, to a token from `tune "
                           "serve token add`)");
    case 403:
      throw RegistryDenied(error + " (registry server " + url + ")");
    case 409:
      throw AliasConflict(error);
    case 500:
      throw RegistryDamaged(error + " (registry server " + url + ")");
    case 503:
      throw RegistryBusy(error, 0);
    default:
      if (body.is_object() && body.contains("checks") && body["checks"].is_array()) {
        throw PolicyRefused(error, wire::PolicyChecksFromJson(body["checks"]));
      }
      throw UserError(error);
  }
}

std::string Query(const ListOptions& options, size_t offset, size_t limit) {
  std::string query =
      "?detail=full&offset=" + std::to_string(offset) + "&limit=" + std::to_string(limit);
  if (options.name) query += "&name=" + UrlEncode(*options.name);
  if (!options.filter.empty()) query += "&filter=" + UrlEncode(options.filter);
  if (!options.sort.empty()) query += "&sort=" + UrlEncode(options.sort);
  return query;
}

// `call`, again after a pause while the server cannot be reached (it restarts, a connection is
// cut), kSendAttempts times in all.
template <typename Call>
auto Retried(const Call& call) {
  for (int attempt = 1;; ++attempt) {
    try {
      return call();
    } catch (const RegistryUnreachable&) {
      if (attempt >= kSendAttempts) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
    }
  }
}

}  // namespace

// A file to send: its object's digest and size, read as the folder registry reads it, and the
// SHA-256 of each of its chunks (wire::kChunkBytes each, the last one shorter).
struct OutgoingObject {
  ManifestEntry entry;
  std::filesystem::path file;
  std::vector<std::string> chunk_sha256;
};

namespace {

// Reads `size` bytes of `fd` at `offset`; throws UserError naming `file` when it has fewer.
std::unique_ptr<char[]> ReadChunk(int fd, const fs::path& file, int64_t offset, size_t size) {
  std::unique_ptr<char[]> bytes(new char[size]);  // left unset: every byte is read into
  for (size_t at = 0; at < size;) {
    const ssize_t n = ::pread(fd, bytes.get() + at, size - at, offset + static_cast<int64_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw UserError("cannot read " + file.string() + " at byte " +
                      std::to_string(offset + static_cast<int64_t>(at)) +
                      " (it changed while being sent?); register it again");
    }
    at += static_cast<size_t>(n);
  }
  return bytes;
}

// The SHA-256 of each chunk of the first `size` bytes of `file`.
std::vector<std::string> ChunkDigests(const fs::path& file, int64_t size) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw UserError("cannot read " + file.string() + "; check it exists and is readable");
  }
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close{fd};
  std::vector<std::string> digests;
  const auto chunk_bytes = static_cast<int64_t>(wire::kChunkBytes);
  for (int64_t offset = 0; offset < size; offset += chunk_bytes) {
    const auto n = static_cast<size_t>(std::min(size - offset, chunk_bytes));
    digests.push_back(Sha256Hex(std::string_view(ReadChunk(fd, file, offset, n).get(), n)));
  }
  return digests;
}

OutgoingObject HashForSending(const std::string& relative, const fs::path& file) {
  // A file of several chunks has their digests taken on a second core while this one takes the
  // whole's, so that sending only reads and sends; a file of one chunk has one digest.
  std::error_code ec;
  const auto size = static_cast<int64_t>(fs::file_size(file, ec));
  std::future<std::vector<std::string>> chunks;
  if (!ec && size > static_cast<int64_t>(wire::kChunkBytes)) {
    chunks = std::async(std::launch::async, ChunkDigests, file, size);
  }
  const registry_internal::StoredObject hashed = registry_internal::ObjectStore::HashFile(file);
  OutgoingObject object{{relative, hashed.digest, hashed.size_bytes}, file, {hashed.digest}};
  if (chunks.valid()) {
    object.chunk_sha256 = chunks.get();
    // Changed between the two reads: its chunks are hashed as they are sent instead.
    if (hashed.size_bytes != size) object.chunk_sha256.clear();
  }
  return object;
}

// A server's page of versions: 1,000 at most (web/api.cpp).
constexpr size_t kServerPage = 1000;

}  // namespace

RemoteRegistry::RemoteRegistry(std::string url, bool read_only,
                               registry_internal::HttpClientOptions options)
    : url_(std::move(url)), read_only_(read_only), client_(std::move(options)) {}

std::unique_ptr<RemoteRegistry> RemoteRegistry::Open(const std::string& url, OpenMode mode,
                                                     const RemoteAccess& access) {
  registry_internal::HttpClientOptions options;
  options.base_url = url;
  options.token = EnvOr(access.token, "TUNE_TOKEN");
  options.ca_file = EnvOr(access.ca_file, "TUNE_CA_FILE");
  std::unique_ptr<RemoteRegistry> registry(
      new RemoteRegistry(url, mode == OpenMode::kReadOnly, std::move(options)));
  const json health = Expect(registry->client_.Get("/api/health"), url);
  if (health.value("protocol", 0) != wire::kProtocol) {
    throw UserError("the registry server at " + url + " speaks protocol " +
                    std::to_string(health.value("protocol", 0)) + "; this tune speaks " +
                    std::to_string(wire::kProtocol) + ": use the same tune version on both");
  }
  return registry;
}

RemoteRegistry::~RemoteRegistry() {
  {
    std::lock_guard lock(metrics_mutex_);
    stopping_ = true;
  }
  metrics_wake_.notify_all();
  if (sender_.joinable()) sender_.join();
  try {
    SendMetrics("");  // what is left; a server that cannot be reached keeps it
  } catch (const std::exception&) {
    // Nowhere to report from a destructor; the run folder's metrics.jsonl has them.
  }
}

void RemoteRegistry::RequireWritable(std::string_view what) const {
  if (read_only_) {
    throw UserError("registry " + url_ + " was opened read-only, so it cannot " +
                    std::string(what) + "; open it for writing");
  }
}

void RemoteRegistry::SendObjects(const std::vector<OutgoingObject>& files) {
  json objects = json::array();
  for (const OutgoingObject& file : files) {
    objects.push_back({{"digest", file.entry.digest}, {"size_bytes", file.entry.size_bytes}});
  }
  const json received =
      Expect(client_.Post("/api/objects/received", wire::Dump({{"objects", objects}})), url_);
  for (size_t i = 0; i < files.size(); ++i) {
    const int64_t have = received.at("received").at(i).get<int64_t>();
    if (have < files[i].entry.size_bytes) SendObject(files[i], have);
  }
}

void RemoteRegistry::SendObject(const OutgoingObject& object, int64_t received) {
  const int fd = ::open(object.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw UserError("cannot read " + object.file.string() + " to send it to " + url_ +
                    "; check it exists and is readable");
  }
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close{fd};
  const int64_t size = object.entry.size_bytes;
  const std::string& digest = object.entry.digest;
  const auto chunk_bytes = static_cast<int64_t>(wire::kChunkBytes);
  // Taken before sending; after a failure each chunk is hashed as it is sent, in case the file
  // changed since.
  std::vector<std::string> chunk_sha256 = object.chunk_sha256;
  // Sends the chunk at `offset`; its answer (the server waits with a chunk until the ones before
  // it arrived), or nullopt when the connection was cut.
  const auto send = [&](int64_t offset) -> std::optional<HttpAnswer> {
    const auto n = static_cast<size_t>(std::min(size - offset, chunk_bytes));
    const std::unique_ptr<char[]> bytes = ReadChunk(fd, object.file, offset, n);
    const std::string_view chunk(bytes.get(), n);
    const auto index = static_cast<size_t>(offset / chunk_bytes);
    const std::string sha256 = offset % chunk_bytes == 0 && index < chunk_sha256.size()
                                   ? chunk_sha256[index]
                                   : Sha256Hex(chunk);
    try {
      return client_.Put("/api/objects/" + digest + "?size=" + std::to_string(size) +
                             "&offset=" + std::to_string(offset),
                         chunk, {{wire::kChunkShaHeader, sha256}});
    } catch (const RegistryUnreachable&) {
      return std::nullopt;
    }
  };
  int failures = 0;
  while (received < size) {
    // Two chunks in flight: the server reads the next from the network while it hashes and
    // writes this one.
    std::deque<std::future<std::optional<HttpAnswer>>> in_flight;
    int64_t next = received;
    bool broken = false;
    while (!broken && (next < size || !in_flight.empty())) {
      while (next < size && in_flight.size() < kChunksInFlight) {
        in_flight.push_back(std::async(std::launch::async, send, next));
        next += std::min(size - next, chunk_bytes);
      }
      const std::optional<HttpAnswer> answer = in_flight.front().get();
      in_flight.pop_front();
      if (answer && answer->status == 200) {
        received = Expect(*answer, url_).at("received").get<int64_t>();
        continue;
      }
      if (answer && answer->status != 409) Expect(*answer, url_);  // refused: thrown
      broken = true;  // a cut connection or a chunk out of turn: ask how far it came
    }
    for (auto& pending : in_flight) pending.wait();
    if (!broken) break;
    chunk_sha256.clear();
    if (++failures >= kSendAttempts) {
      throw RegistryUnreachable("cannot send object sha256:" + digest +
                                " to the registry server "
                                "at " +
                                url_ + ": the connection was cut " + std::to_string(failures) +
                                " times; check the network and retry");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << failures));
    received = Expect(client_.Post(
                          "/api/objects/received",
                          wire::Dump({{"objects", {{{"digest", digest}, {"size_bytes", size}}}}})),
                      url_)
                   .at("received")
                   .at(0)
                   .get<int64_t>();
  }
}

int64_t RemoteRegistry::Register(std::string_view name, const VersionRecord& lineage,
                                 const fs::path& artifact_dir, const fs::path& eval_samples) {
  RequireWritable("register adapters");
  registry_internal::RequireAdapterName(name);
  VersionRecord record = lineage;
  record.files.clear();
  std::vector<OutgoingObject> objects;
  for (const auto& [relative, path] : registry_internal::ArtifactFiles(artifact_dir)) {
    objects.push_back(HashForSending(relative, path));
    record.files.push_back(objects.back().entry);
  }
  record.eval_samples.reset();
  if (!eval_samples.empty()) {
    objects.push_back(HashForSending("eval_samples.jsonl", eval_samples));
    record.eval_samples = objects.back().entry;
  }
  const std::string body = wire::Dump({{"record", json::parse(VersionRecordToJson(record))}});
  // Every step is safe to repeat: objects the server has are not sent again, and a record with a
  // run id registers once.
  return Retried([&] {
    SendObjects(objects);
    return Expect(client_.Post("/api/adapters/" + std::string(name) + "/versions", body), url_)
        .at("version")
        .get<int64_t>();
  });
}

VersionRecord RemoteRegistry::Resolve(std::string_view ref) const {
  return VersionRecordFromJson(
      Expect(client_.Get("/api/resolve?ref=" + UrlEncode(ref)), url_).dump());
}

VersionRecord RemoteRegistry::Get(std::string_view name, int64_t version) const {
  return Resolve(std::string(name) + ":" + std::to_string(version));
}

std::vector<std::string> RemoteRegistry::Names() const {
  return Expect(client_.Get("/api/names"), url_).get<std::vector<std::string>>();
}

Registry::Page RemoteRegistry::ListPage(const ListOptions& options, size_t offset,
                                        size_t limit) const {
  Page page;
  for (;;) {
    const size_t want = std::min(limit - page.versions.size(), kServerPage);
    const json answer = Expect(client_.Get("/api/versions" + Query(options, offset, want)), url_);
    page.total = answer.at("total").get<size_t>();
    const json& versions = answer.at("versions");
    for (const json& record : versions)
      page.versions.push_back(VersionRecordFromJson(record.dump()));
    offset += versions.size();
    if (versions.empty() || page.versions.size() >= limit || offset >= page.total) return page;
  }
}

std::map<std::string, int64_t> RemoteRegistry::Aliases(std::string_view name) const {
  return Expect(client_.Get("/api/adapters/" + UrlEncode(name) + "/aliases"), url_)
      .get<std::map<std::string, int64_t>>();
}

int64_t RemoteRegistry::MoveAlias(std::string_view name, std::string_view alias, int64_t version,
                                  std::optional<int64_t> expected,
                                  std::string_view override_reason) {
  RequireWritable("move aliases");
  json body = {{"version", version}};
  if (expected) body["expect_version"] = *expected;
  if (!override_reason.empty()) body["override_reason"] = override_reason;
  return Expect(client_.Post("/api/adapters/" + UrlEncode(name) + "/aliases/" + UrlEncode(alias),
                             wire::Dump(body)),
                url_)
      .at("previous")
      .get<int64_t>();
}

std::vector<AliasMove> RemoteRegistry::History(std::string_view name) const {
  std::vector<AliasMove> moves;
  for (const json& move :
       Expect(client_.Get("/api/adapters/" + UrlEncode(name) + "/history"), url_)) {
    moves.push_back(wire::AliasMoveFromJson(move));
  }
  return moves;
}

VersionRecord RemoteRegistry::Fetch(std::string_view ref, const fs::path& out_dir) const {
  const VersionRecord record = Resolve(ref);
  const std::string label = record.name + ":" + std::to_string(record.version);
  registry_internal::WriteFetched(
      record, out_dir, url_, [&](const ManifestEntry& file, const fs::path& destination) {
        std::ofstream out(destination, std::ios::binary | std::ios::trunc);
        Sha256 hash;
        int64_t written = 0;
        const std::string target = "/api/adapters/" + UrlEncode(record.name) + "/versions/" +
                                   std::to_string(record.version) + "/files/" + file.path;
        for (int attempt = 1; written < file.size_bytes || written == 0; ++attempt) {
          try {
            const HttpAnswer answer =
                client_.Download(target, written, [&](const char* data, size_t size) {
                  if (written + static_cast<int64_t>(size) > file.size_bytes) return false;
                  hash.Update(std::string_view(data, size));
                  out.write(data, static_cast<std::streamsize>(size));
                  written += static_cast<int64_t>(size);
                  return static_cast<bool>(out);
                });
            if (answer.status != 200 && answer.status != 206) Expect(answer, url_);
          } catch (const RegistryUnreachable&) {
            if (attempt >= kSendAttempts) throw;
          }
          if (written >= file.size_bytes) break;
          if (attempt >= kSendAttempts) {
            throw RegistryDamaged("the registry server at " + url_ + " sent " +
                                  std::to_string(written) + " of the " +
                                  std::to_string(file.size_bytes) + " bytes of " + label + " " +
                                  file.path + " (object sha256:" + file.digest +
                                  "), cutting the connection each time: the object is damaged "
                                  "there; ask its admin to run `tune registry verify`");
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
        }
        out.close();
        if (!out) {
          throw UserError("cannot write " + destination.string() +
                          "; check that folder is writable and has space");
        }
        const std::string actual = hash.FinishHex();
        if (actual != file.digest) {
          throw RegistryDamaged("object sha256:" + file.digest + " (" + label + " " + file.path +
                                ") from " + url_ + " hashes to sha256:" + actual +
                                ": damaged on the way or on the server; nothing was written");
        }
      });
  return record;
}

std::string RemoteRegistry::ReadObject(const ManifestEntry& object, std::string_view what) const {
  const HttpAnswer answer = client_.Get("/api/objects/" + object.digest);
  if (answer.status != 200) Expect(answer, url_);
  if (static_cast<int64_t>(answer.body.size()) != object.size_bytes ||
      Sha256Hex(answer.body) != object.digest) {
    throw RegistryDamaged("object sha256:" + object.digest + " (" + std::string(what) + ") from " +
                          url_ + " is not what its record says (" +
                          std::to_string(answer.body.size()) +
                          " bytes): damaged on the way or "
                          "on the server; ask its admin to run `tune registry verify`");
  }
  return answer.body;
}

VerifyReport RemoteRegistry::Verify() const {
  return wire::VerifyReportFromJson(Expect(client_.Post("/api/registry/verify", "{}"), url_));
}

GcReport RemoteRegistry::Gc(std::chrono::seconds grace) {
  RequireWritable("collect garbage");
  return wire::GcReportFromJson(Expect(
      client_.Post("/api/registry/gc", wire::Dump({{"grace_seconds", grace.count()}})), url_));
}

void RemoteRegistry::Backup(const fs::path& backup_dir) const {
  RequireWritable("be backed up");
  Expect(client_.Post("/api/registry/backup", wire::Dump({{"dir", backup_dir.string()}})), url_);
}

int64_t RemoteRegistry::RegisterDataset(std::string_view name, const DatasetRecord& given,
                                        const fs::path& rows_file, const fs::path& content_file) {
  RequireWritable("register datasets");
  DatasetRecord record = given;
  std::vector<OutgoingObject> objects = {HashForSending("rows.txt", rows_file)};
  record.rows_object = objects.back().entry;
  record.content.reset();
  if (!content_file.empty()) {
    objects.push_back(HashForSending("prompts.jsonl", content_file));
    record.content = objects.back().entry;
  }
  const std::string body = wire::Dump({{"record", json::parse(DatasetRecordToJson(record))}});
  return Retried([&] {
    SendObjects(objects);
    return Expect(client_.Post("/api/datasets/" + UrlEncode(name), body), url_)
        .at("version")
        .get<int64_t>();
  });
}

DatasetRecord RemoteRegistry::GetDataset(std::string_view ref) const {
  return DatasetRecordFromJson(
      Expect(client_.Get("/api/datasets?ref=" + UrlEncode(ref)), url_).dump());
}

std::vector<DatasetRecord> RemoteRegistry::ListDatasets() const {
  std::vector<DatasetRecord> records;
  for (const json& record : Expect(client_.Get("/api/datasets"), url_)) {
    records.push_back(DatasetRecordFromJson(record.dump()));
  }
  return records;
}

std::string RemoteRegistry::CreateRun(const RunInfo& info, std::string_view id) {
  RequireWritable("record runs");
  RunRecord run;
  run.id = id.empty() ? registry_internal::RandomHex(16) : std::string(id);
  run.info = info;
  run.process = registry_internal::ThisProcess();
  return Expect(client_.Post("/api/runs", wire::Dump({{"run", wire::RunToJson(run)}})), url_)
      .at("id")
      .get<std::string>();
}

void RemoteRegistry::LogMetrics(std::string_view run_id, int64_t step,
                                const std::map<std::string, double>& values) {
  RequireWritable("log metrics");
  if (step < 0) {
    throw UserError("metric step " + std::to_string(step) + " is negative; steps start at 0");
  }
  std::lock_guard lock(metrics_mutex_);
  std::map<std::string, double>& merged = pending_metrics_[std::string(run_id)][step];
  for (const auto& [metric, value] : values) merged[metric] = value;
  if (!sender_.joinable()) sender_ = std::thread([this] { SendMetricsLoop(); });
}

void RemoteRegistry::SendMetricsLoop() {
  std::unique_lock lock(metrics_mutex_);
  while (!stopping_) {
    metrics_wake_.wait_for(lock, std::chrono::seconds(1));
    if (stopping_) return;
    lock.unlock();
    try {
      SendMetrics("");
    } catch (const std::exception&) {
      // A server that answers nonsense; the points wait, and FinishRun reports it.
    }
    lock.lock();
  }
}

bool RemoteRegistry::SendMetrics(const std::string& run_id) {
  std::map<std::string, std::map<int64_t, std::map<std::string, double>>> taking;
  {
    std::lock_guard lock(metrics_mutex_);
    if (run_id.empty()) {
      taking.swap(pending_metrics_);
    } else if (const auto it = pending_metrics_.find(run_id); it != pending_metrics_.end()) {
      taking[run_id] = std::move(it->second);
      pending_metrics_.erase(it);
    }
  }
  bool reached = true;
  for (auto& [run, steps] : taking) {
    // In requests of a bounded size, each taken or held whole.
    while (reached && !steps.empty()) {
      std::vector<MetricsAtStep> points;
      auto end = steps.begin();
      for (; end != steps.end() && points.size() < kMetricsPerRequest; ++end) {
        points.push_back({end->first, end->second});
      }
      try {
        Expect(client_.Post("/api/runs/" + run + "/metrics",
                            wire::Dump({{"metrics", wire::MetricsToJson(points)}})),
               url_);
        steps.erase(steps.begin(), end);
      } catch (const RegistryUnreachable&) {
        reached = false;
      } catch (const UserError& e) {
        // Refused (a run the server does not know): not worth sending again, but said.
        LogWarning("metrics of " + std::to_string(steps.size()) + " steps of run " + run +
                   " were refused: " + e.what());
        steps.clear();
      }
    }
  }
  // What the server did not take waits for the next send; values logged since win.
  std::lock_guard lock(metrics_mutex_);
  for (auto& [run, steps] : taking) {
    for (auto& [step, values] : steps) {
      std::map<std::string, double>& held = pending_metrics_[run][step];
      for (auto& [metric, value] : values) held.emplace(metric, value);
    }
  }
  return reached;
}

void RemoteRegistry::FinishRun(std::string_view run_id, RunStatus status, std::string_view error,
                               std::string_view end_reason) {
  RequireWritable("finish runs");
  // What is held for the run goes first, a few times over a cut connection.
  for (int attempt = 1; !SendMetrics(std::string(run_id)); ++attempt) {
    if (attempt >= kSendAttempts) {
      std::lock_guard lock(metrics_mutex_);
      throw RegistryUnreachable(last_unreachable_ + " (sending the metrics of run " +
                                std::string(run_id) + " before finishing it)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
  }
  Expect(client_.Post("/api/runs/" + std::string(run_id) + "/finish",
                      wire::Dump({{"status", RunStatusName(status)},
                                  {"error", error},
                                  {"end_reason", end_reason}})),
         url_);
}

RunRecord RemoteRegistry::GetRun(std::string_view run_id) const {
  return wire::RunFromJson(Expect(client_.Get("/api/runs/" + UrlEncode(run_id)), url_));
}

std::vector<RunRecord> RemoteRegistry::ListRuns() const {
  std::vector<RunRecord> runs;
  for (const json& run : Expect(client_.Get("/api/runs"), url_)) {
    runs.push_back(wire::RunFromJson(run));
  }
  return runs;
}

std::vector<MetricsAtStep> RemoteRegistry::GetRunMetrics(std::string_view run_id) const {
  std::vector<MetricsAtStep> metrics = wire::MetricsFromJson(
      Expect(client_.Get("/api/runs/" + UrlEncode(run_id)), url_).at("metrics"));
  // What this process logged and has not sent yet.
  std::lock_guard lock(metrics_mutex_);
  if (const auto it = pending_metrics_.find(std::string(run_id)); it != pending_metrics_.end()) {
    std::map<int64_t, std::map<std::string, double>> by_step;
    for (MetricsAtStep& at : metrics) by_step[at.step] = std::move(at.values);
    for (const auto& [step, values] : it->second) {
      for (const auto& [metric, value] : values) by_step[step][metric] = value;
    }
    metrics.clear();
    for (auto& [step, values] : by_step) metrics.push_back({step, std::move(values)});
  }
  return metrics;
}

std::string RemoteRegistry::AddToken(std::string_view name, Role role) {
  RequireWritable("add tokens");
  return Expect(client_.Post("/api/tokens", wire::Dump({{"name", name}, {"role", RoleName(role)}})),
                url_)
      .at("token")
      .get<std::string>();
}

std::vector<TokenInfo> RemoteRegistry::ListTokens() const {
  std::vector<TokenInfo> tokens;
  for (const json& token : Expect(client_.Get("/api/tokens"), url_)) {
    tokens.push_back(wire::TokenFromJson(token));
  }
  return tokens;
}

void RemoteRegistry::RevokeToken(std::string_view name) {
  RequireWritable("revoke tokens");
  Expect(client_.Post("/api/tokens/" + UrlEncode(name) + "/revoke", "{}"), url_);
}

void RemoteRegistry::CreateReview(std::string_view name, std::string_view set) {
  RequireWritable("create reviews");
  Expect(client_.Post("/api/reviews", wire::Dump({{"name", name}, {"set", set}})), url_);
}

ReviewRecord RemoteRegistry::GetReview(std::string_view name) const {
  return wire::ReviewFromJson(Expect(client_.Get("/api/reviews/" + UrlEncode(name)), url_));
}

std::vector<ReviewRecord> RemoteRegistry::ListReviews() const {
  std::vector<ReviewRecord> reviews;
  for (const json& review : Expect(client_.Get("/api/reviews"), url_)) {
    reviews.push_back(wire::ReviewFromJson(review));
  }
  return reviews;
}

void RemoteRegistry::AddReviewOutputs(std::string_view review, std::string_view contestant,
                                      const fs::path& outputs_file, std::string_view generation) {
  RequireWritable("record outputs");
  const OutgoingObject outputs = HashForSending("outputs.jsonl", outputs_file);
  const std::string body = wire::Dump({{"contestant", contestant},
                                       {"object",
                                        {{"path", outputs.entry.path},
                                         {"digest", outputs.entry.digest},
                                         {"size_bytes", outputs.entry.size_bytes}}},
                                       {"generation", generation}});
  Retried([&] {
    SendObjects({outputs});
    return Expect(client_.Post("/api/reviews/" + UrlEncode(review) + "/outputs", body), url_);
  });
}

std::optional<BlindPair> RemoteRegistry::NextPair(std::string_view review) {
  const json answer =
      Expect(client_.Post("/api/reviews/" + UrlEncode(review) + "/next", "{}"), url_);
  if (answer.value("done", false)) return std::nullopt;
  return wire::BlindPairFromJson(answer);
}

void RemoteRegistry::Judge(std::string_view review, int64_t pair, Verdict verdict,
                           std::string_view reason) {
  Expect(client_.Post(
             "/api/reviews/" + UrlEncode(review) + "/judgements",
             wire::Dump({{"pair", pair}, {"verdict", VerdictName(verdict)}, {"reason", reason}})),
         url_);
}

void RemoteRegistry::CloseReview(std::string_view review) {
  RequireWritable("close reviews");
  Expect(client_.Post("/api/reviews/" + UrlEncode(review) + "/close", "{}"), url_);
}

ReviewResults RemoteRegistry::Results(std::string_view review) const {
  return wire::ResultsFromJson(
      Expect(client_.Get("/api/reviews/" + UrlEncode(review) + "/results"), url_));
}

std::vector<ShownPair> RemoteRegistry::Judgements(std::string_view review) const {
  std::vector<ShownPair> pairs;
  for (const json& pair :
       Expect(client_.Get("/api/reviews/" + UrlEncode(review) + "/judgements"), url_)) {
    pairs.push_back(wire::ShownPairFromJson(pair));
  }
  return pairs;
}

void RemoteRegistry::SetPolicy(const AliasPolicy& policy) {
  RequireWritable("set policies");
  Expect(client_.Post("/api/adapters/" + UrlEncode(policy.name) + "/policies",
                      wire::Dump({{"policy", wire::PolicyToJson(policy)}})),
         url_);
}

void RemoteRegistry::RemovePolicy(std::string_view name, std::string_view alias) {
  RequireWritable("remove policies");
  Expect(
      client_.Post("/api/adapters/" + UrlEncode(name) + "/policies/" + UrlEncode(alias) + "/remove",
                   "{}"),
      url_);
}

std::vector<AliasPolicy> RemoteRegistry::Policies(std::string_view name) const {
  std::vector<AliasPolicy> policies;
  for (const json& policy :
       Expect(client_.Get("/api/adapters/" + UrlEncode(name) + "/policies"), url_)) {
    policies.push_back(wire::PolicyFromJson(policy));
  }
  return policies;
}

std::vector<PolicyCheck> RemoteRegistry::CheckPolicy(std::string_view name, std::string_view alias,
                                                     int64_t version) const {
  return wire::PolicyChecksFromJson(
      Expect(client_.Get("/api/adapters/" + UrlEncode(name) + "/policies/" + UrlEncode(alias) +
                         "/check?version=" + std::to_string(version)),
             url_));
}

PromotionRequest RemoteRegistry::Promote(std::string_view name, std::string_view alias,
                                         int64_t version, std::optional<int64_t> expected) {
  RequireWritable("move aliases");
  json body = {{"alias", alias}, {"version", version}};
  if (expected) body["expect_version"] = *expected;
  return wire::PromotionFromJson(Expect(
      client_.Post("/api/adapters/" + UrlEncode(name) + "/promotions", wire::Dump(body)), url_));
}

PromotionRequest RemoteRegistry::Approve(std::string_view name, int64_t request) {
  RequireWritable("approve promotions");
  return wire::PromotionFromJson(
      Expect(client_.Post("/api/adapters/" + UrlEncode(name) + "/promotions/" +
                              std::to_string(request) + "/approve",
                          "{}"),
             url_));
}

std::vector<PromotionRequest> RemoteRegistry::PromotionRequests(std::string_view name) const {
  std::vector<PromotionRequest> requests;
  for (const json& request :
       Expect(client_.Get("/api/adapters/" + UrlEncode(name) + "/promotions"), url_)) {
    requests.push_back(wire::PromotionFromJson(request));
  }
  return requests;
}

}  // namespace tune

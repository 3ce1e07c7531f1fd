// The registry's client protocol (registry/wire.h), the server's side: what `tune` on another
// machine calls through RemoteRegistry. Every write is made as the caller's token (Acting).
#include <algorithm>
#include <nlohmann/json.hpp>

#include "registry/local_registry.h"
#include "registry/record_json.h"
#include "registry/wire.h"
#include "util/echo.h"
#include "util/names.h"
#include "web/api.h"
#include "web/api_internal.h"

namespace tune {
namespace {

using nlohmann::json;
using namespace web_internal;

bool IsDigest(const std::string& text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

std::optional<HttpResponse> Api::GetForClient(const HttpRequest& request,
                                              const std::vector<std::string>& parts,
                                              const Caller& caller) const {
  if (parts.size() == 1 && parts[0] == "names") return JsonResponse(registry_.Names());
  if (parts.size() == 1 && parts[0] == "resolve") {
    const auto ref = request.query.find("ref");
    if (ref == request.query.end()) return ErrorResponse(400, "resolve needs ref=REF");
    return JsonResponse(VersionRecordJson(registry_.Resolve(ref->second)));
  }
  if (parts.size() == 1 && parts[0] == "versions" && request.query.count("detail") &&
      request.query.at("detail") == "full") {
    const std::optional<int64_t> offset = QueryInt(request, "offset", 0, int64_t{1} << 40);
    const std::optional<int64_t> limit = QueryInt(request, "limit", 50, 1000);
    if (!offset || !limit) {
      return ErrorResponse(400, "offset and limit are whole numbers (limit at most 1000)");
    }
    const Registry::Page listed = registry_.ListPage(
        ListOptionsOf(request), static_cast<size_t>(*offset), static_cast<size_t>(*limit));
    json page = json::array();
    for (const VersionRecord& record : listed.versions) page.push_back(VersionRecordJson(record));
    return JsonResponse({{"total", listed.total}, {"offset", *offset}, {"versions", page}});
  }
  if (parts.size() == 3 && parts[0] == "adapters" && parts[2] == "aliases") {
    if (!IsValidName(parts[1])) return ErrorResponse(400, "invalid adapter name");
    return JsonResponse(registry_.Aliases(parts[1]));
  }
  if (parts.size() == 2 && parts[0] == "objects") {
    if (!IsDigest(parts[1])) return ErrorResponse(400, "an object is named by its SHA-256");
    const std::filesystem::path path = registry_.ObjectPath(parts[1]);
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) return ErrorResponse(404, "no object sha256:" + parts[1]);
    HttpResponse response;
    response.object =
        ObjectBody{path, parts[1], static_cast<int64_t>(size), "object sha256:" + parts[1]};
    response.content_type = "application/octet-stream";
    return response;
  }
  if (parts.size() == 1 && parts[0] == "datasets") {
    if (const auto ref = request.query.find("ref"); ref != request.query.end()) {
      return JsonResponse(json::parse(DatasetRecordToJson(registry_.GetDataset(ref->second))));
    }
    json datasets = json::array();
    for (const DatasetRecord& record : registry_.ListDatasets()) {
      datasets.push_back(json::parse(DatasetRecordToJson(record)));
    }
    return JsonResponse(datasets);
  }
  if (parts.size() == 1 && parts[0] == "runs") {
    json runs = json::array();
    for (const RunRecord& run : registry_.ListRuns()) runs.push_back(wire::RunToJson(run));
    return JsonResponse(runs);
  }
  if (parts.size() == 2 && parts[0] == "runs") {
    if (!IsRunId(parts[1])) return ErrorResponse(400, "invalid run id: 16 hex digits");
    std::optional<RunRecord> run;
    try {
      run = registry_.GetRun(parts[1]);
    } catch (const UserError&) {
      return ErrorResponse(404, "no run " + parts[1]);
    }
    json answer = wire::RunToJson(*run);
    answer["metrics"] = wire::MetricsToJson(registry_.GetRunMetrics(run->id));
    std::tie(answer["shown_status"], answer["shown_error"]) = ShownStatus(*run);
    return JsonResponse(answer);
  }
  if (parts.size() == 1 && parts[0] == "tokens") {
    Require(caller, Role::kAdmin);
    json tokens = json::array();
    for (const TokenInfo& token : registry_.ListTokens())
      tokens.push_back(wire::TokenToJson(token));
    return JsonResponse(tokens);
  }
  return std::nullopt;
}

std::optional<HttpResponse> Api::PostForClient(const HttpRequest& request,
                                               const std::vector<std::string>& parts,
                                               const Caller& caller) const {
  // Objects: which have arrived, so a client sends only the rest.
  if (parts.size() == 2 && parts[0] == "objects" && parts[1] == "received") {
    Require(caller, Role::kWrite);
    const json body = Body(request, "{\"objects\": [{\"digest\": D, \"size_bytes\": N}, ...]}");
    json received = json::array();
    for (const json& object : body.value("objects", json::array())) {
      const std::string digest = object.value("digest", "");
      const std::optional<int64_t> size = WholeNumber(object.value("size_bytes", json()), 0);
      if (!IsDigest(digest) || !size) {
        return ErrorResponse(400, "each object is {\"digest\": SHA-256, \"size_bytes\": N}");
      }
      received.push_back(registry_.ObjectReceived(digest, *size));
    }
    return JsonResponse({{"received", received}});
  }
  // A version or dataset whose objects have been sent.
  if (parts.size() == 3 && parts[0] == "adapters" && parts[2] == "versions") {
    Require(caller, Role::kWrite);
    const json body = Body(request, "{\"record\": VERSION_RECORD}");
    const VersionRecord record = VersionRecordFromJson(body.value("record", json()).dump());
    const int64_t version = registry_.Acting(caller.name)->RegisterStored(parts[1], record);
    return JsonResponse({{"name", parts[1]}, {"version", version}});
  }
  if (parts.size() == 2 && parts[0] == "datasets") {
    Require(caller, Role::kWrite);
    const json body = Body(request, "{\"record\": DATASET_RECORD}");
    const DatasetRecord record = DatasetRecordFromJson(body.value("record", json()).dump());
    const int64_t version = registry_.Acting(caller.name)->RegisterStoredDataset(parts[1], record);
    return JsonResponse({{"name", parts[1]}, {"version", version}});
  }
  // Runs.
  if (parts.size() == 1 && parts[0] == "runs") {
    Require(caller, Role::kWrite);
    const json body = Body(request, "{\"run\": RUN}");
    const RunRecord run = wire::RunFromJson(body.value("run", json::object()));
    const std::string id =
        registry_.Acting(caller.name)->CreateRunFor(run.info, run.id, run.process);
    return JsonResponse({{"id", id}});
  }
  if (parts.size() == 3 && parts[0] == "runs" && (parts[2] == "metrics" || parts[2] == "finish")) {
    Require(caller, Role::kWrite);
    if (!IsRunId(parts[1])) return ErrorResponse(400, "invalid run id: 16 hex digits");
    if (parts[2] == "metrics") {
      const json body = Body(request, "{\"metrics\": [{\"step\": N, \"values\": {...}}, ...]}");
      for (const MetricsAtStep& at : wire::MetricsFromJson(body.value("metrics", json::array()))) {
        registry_.LogMetrics(parts[1], at.step, at.values);
      }
      return JsonResponse(json::object());
    }
    const json body = Body(
        request, "{\"status\": finished|failed|killed, \"error\": TEXT, \"end_reason\": WORD}");
    const std::optional<RunStatus> status = RunStatusFromName(body.value("status", ""));
    if (!status) return ErrorResponse(400, "status is finished, failed or killed");
    registry_.FinishRun(parts[1], *status, body.value("error", ""), body.value("end_reason", ""));
    return JsonResponse(json::object());
  }
  // The registry's upkeep and its tokens.
  if (parts.size() == 2 && parts[0] == "registry") {
    Require(caller, Role::kAdmin);
    const json body = Body(request, "{...}");
    if (parts[1] == "verify") return JsonResponse(wire::VerifyReportToJson(registry_.Verify()));
    if (parts[1] == "gc") {
      const std::optional<int64_t> grace = WholeNumber(body.value("grace_seconds", json()), 0);
      if (!grace) return ErrorResponse(400, "grace_seconds is a whole number of seconds");
      return JsonResponse(wire::GcReportToJson(registry_.Gc(std::chrono::seconds(*grace))));
    }
    if (parts[1] == "backup") {
      const std::string dir = body.value("dir", "");
      if (dir.empty() || dir.front() != '/') {
        return ErrorResponse(400, "dir is an absolute path on the server's machine");
      }
      registry_.Backup(dir);
      return JsonResponse({{"dir", dir}});
    }
    return std::nullopt;
  }
  if (!parts.empty() && parts[0] == "tokens") {
    Require(caller, Role::kAdmin);
    const auto acting = registry_.Acting(caller.name);
    if (parts.size() == 1) {
      const json body = Body(request, "{\"name\": NAME, \"role\": read|write|promote|admin}");
      const std::optional<Role> role = RoleFromName(body.value("role", ""));
      if (!role) return ErrorResponse(400, "role is read, write, promote or admin");
      return JsonResponse({{"token", acting->AddToken(body.value("name", ""), *role)}});
    }
    if (parts.size() == 3 && parts[2] == "revoke") {
      acting->RevokeToken(parts[1]);
      return JsonResponse(json::object());
    }
  }
  return std::nullopt;
}

HttpResponse Api::Put(const HttpRequest& request, const std::vector<std::string>& parts,
                      const Caller& caller) const {
  if (parts.size() != 2 || parts[0] != "objects") {
    return ErrorResponse(404, "no such resource: " + Echo(request.path));
  }
  Require(caller, Role::kWrite);
  if (!IsDigest(parts[1])) return ErrorResponse(400, "an object is named by its SHA-256");
  const std::optional<int64_t> size = QueryInt(request, "size", -1, int64_t{1} << 50);
  const std::optional<int64_t> offset = QueryInt(request, "offset", -1, int64_t{1} << 50);
  std::string header = wire::kChunkShaHeader;
  for (char& c : header) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto chunk_sha = request.headers.find(header);
  if (!size || !offset || *size < 0 || *offset < 0 || chunk_sha == request.headers.end()) {
    return ErrorResponse(400,
                         std::string("a chunk is PUT with ?size=S&offset=O and its SHA-256 in ") +
                             wire::kChunkShaHeader);
  }
  const int64_t received =
      registry_.ReceiveObjectChunk(parts[1], *size, *offset, request.body, chunk_sha->second);
  object_bytes_received_ += static_cast<int64_t>(request.body.size());
  return JsonResponse({{"received", received}});
}

}  // namespace tune

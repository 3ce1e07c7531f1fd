#include "web/api.h"

#include <algorithm>
#include <charconv>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "registry/local_registry.h"
#include "registry/record_json.h"
#include "registry/wire.h"
#include "util/echo.h"
#include "util/names.h"
#include "util/spread.h"
#include "web/api_internal.h"

namespace tune {
namespace web_internal {

using nlohmann::json;

HttpResponse JsonResponse(const json& value, int status) {
  HttpResponse response;
  response.status = status;
  response.body = wire::Dump(value);
  return response;
}

json Body(const HttpRequest& request, const char* shape) {
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) throw UserError(std::string("the body is JSON ") + shape);
  return body;
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 1;  // after the leading '/'
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// A version number as a path segment or query value: 1 to 18 digits, no sign, no leading zero.
std::optional<int64_t> ParseVersion(const std::string& text) {
  if (text.empty() || text.size() > 18 || text[0] < '1' || text[0] > '9') return std::nullopt;
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<int64_t> QueryInt(const HttpRequest& request, const std::string& key,
                                int64_t fallback, int64_t max) {
  const auto it = request.query.find(key);
  if (it == request.query.end()) return fallback;
  if (it->second == "0") return 0;
  const std::optional<int64_t> value = ParseVersion(it->second);
  if (!value || *value > max) return std::nullopt;
  return value;
}

// A JSON number as a version: a whole number in [minimum, 2^53] (2^64 - 1 read as a signed
// number would be -1).
std::optional<int64_t> WholeNumber(const json& value, int64_t minimum) {
  if (!value.is_number_integer()) return std::nullopt;
  if (value.is_number_unsigned() && value.get<uint64_t>() > (uint64_t{1} << 53))
    return std::nullopt;
  const int64_t number = value.get<int64_t>();
  if (number < minimum || number > (int64_t{1} << 53)) return std::nullopt;
  return number;
}

bool IsRunId(const std::string& text) {
  return text.size() == 16 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool SameSecret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ |= static_cast<unsigned char>(a[i] ^ b[i]);
  return differ == 0;
}

ListOptions ListOptionsOf(const HttpRequest& request) {
  ListOptions options;
  if (const auto it = request.query.find("name"); it != request.query.end()) {
    if (!IsValidName(it->second)) throw UserError("invalid adapter name");
    options.name = it->second;
  }
  if (const auto it = request.query.find("filter"); it != request.query.end()) {
    options.filter = it->second;
  }
  if (const auto it = request.query.find("sort"); it != request.query.end()) {
    options.sort = it->second;
  }
  return options;
}

// A run's status as the web view shows it: a run still marked running whose process has ended
// (its sweep was killed and not resumed, the machine rebooted) is killed, not running forever.
std::pair<std::string, std::string> ShownStatus(const RunRecord& run) {
  if (RunProcessEnded(run)) {
    return {"killed",
            "its process ended before it finished (killed?); `tune sweep --resume` continues a "
            "sweep"};
  }
  return {std::string(RunStatusName(run.status)), run.error};
}

}  // namespace web_internal

namespace {

using nlohmann::json;
using namespace web_internal;

// The aliases of an adapter that point at `version`.
json AliasesAt(const std::map<std::string, int64_t>& aliases, int64_t version) {
  json pointing = json::array();
  for (const auto& [alias, at] : aliases) {
    if (at == version) pointing.push_back(alias);
  }
  return pointing;
}

// What a list shows of a version: the record without its config, curve and files.
json Summary(const VersionRecord& record, const std::map<std::string, int64_t>& aliases) {
  json summary = VersionRecordJson(record, RecordDetail::kSummary);
  summary["aliases"] = AliasesAt(aliases, record.version);
  return summary;
}

Bounds BoundsOf(const ScoreScale& scale) {
  Bounds bounds;
  if (scale.min) bounds.min = *scale.min;
  if (scale.max) bounds.max = *scale.max;
  return bounds;
}

json SpreadJson(const Spread& spread) {
  return {{"count", spread.count},
          {"mean", spread.mean},
          {"stddev", spread.stddev},
          {"ci95_low", spread.ci95_low},
          {"ci95_high", spread.ci95_high}};
}

// Each configuration of a sweep's rows: its swept values, its trials, and every score's mean,
// standard deviation and 95% interval over its finished repeats, as `tune sweep` ranks them
// (util/spread.h), each interval within its score's scale.
json Configurations(const std::map<int64_t, json>& rows,
                    const std::map<std::string, ScoreScale>& scales) {
  std::map<int64_t, std::vector<const json*>> by_configuration;
  for (const auto& [trial, row] : rows) {
    if (row.contains("configuration") && row["configuration"].is_number_integer()) {
      by_configuration[row["configuration"].get<int64_t>()].push_back(&row);
    }
  }
  json out = json::array();
  for (const auto& [configuration, members] : by_configuration) {
    std::map<std::string, std::vector<double>> values;
    json trials = json::array();
    json params = json::object();
    int64_t finished = 0;
    for (const json* row : members) {
      trials.push_back(row->value("trial", json()));
      if (params.empty()) params = row->value("params", json::object());
      if (!row->contains("version") || row->value("status", "") != "finished") continue;
      ++finished;
      const json trial_scores = row->value("scores", json::object());
      for (const auto& [metric, value] : trial_scores.items()) {
        if (value.is_number()) values[metric].push_back(value.get<double>());
      }
    }
    json scores = json::object();
    for (const auto& [metric, list] : values) {
      const auto scale = scales.find(metric);
      scores[metric] =
          SpreadJson(SpreadOf(list, scale == scales.end() ? Bounds{} : BoundsOf(scale->second)));
    }
    out.push_back({{"configuration", configuration},
                   {"params", params},
                   {"trials", trials},
                   {"finished", finished},
                   {"scores", scores}});
  }
  return out;
}

}  // namespace

HttpResponse ErrorResponse(int status, const std::string& message) {
  return JsonResponse({{"error", message}}, status);
}

namespace {

std::string Lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

int DefaultPort(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

// NAME or NAME:PORT as the pair, the port defaulting to `default_port`; nullopt when the port is
// not a number.
std::optional<std::pair<std::string, int>> SplitHostPort(std::string_view text, int default_port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::pair(Lower(text), default_port);
  const std::string_view digits = text.substr(colon + 1);
  int port = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return std::pair(Lower(text.substr(0, colon)), port);
}

}  // namespace

bool ServerNames::AcceptsHost(std::string_view host) const {
  const auto split = SplitHostPort(host, DefaultPort(scheme));
  if (!split || split->second != port) return false;
  std::string name = split->first;
  if (name.ends_with('.')) name.pop_back();  // "localhost." is "localhost"
  return std::find(hosts.begin(), hosts.end(), name) != hosts.end();
}

bool ServerNames::AcceptsOrigin(std::string_view origin) const {
  const std::string prefix = scheme + "://";
  return origin.starts_with(prefix) && AcceptsHost(origin.substr(prefix.size()));
}

Api::Api(LocalRegistry& registry, ServerAccess access, ServerNames names)
    : registry_(registry), access_(std::move(access)), names_(std::move(names)) {}

std::optional<HttpResponse> Api::RefuseHost(const HttpRequest& request) const {
  const auto it = request.headers.find("host");
  const std::string host = it == request.headers.end() ? std::string() : it->second;
  if (names_.AcceptsHost(host)) return std::nullopt;
  return ErrorResponse(403, "Host '" + Echo(host, 64) +
                                "' does not name this server; use its address, or start tune "
                                "serve with --allow-host NAME for another name of it");
}

Api::Caller Api::Identify(const HttpRequest& request) const {
  Caller caller;
  const auto it = request.headers.find("authorization");
  if (it == request.headers.end()) {
    if (access_.open_reads) caller.role = Role::kRead;
    return caller;
  }
  caller.presented = true;
  if (!it->second.starts_with("Bearer ")) return caller;
  const std::string_view token = std::string_view(it->second).substr(7);
  if (SameSecret(std::string(token), access_.owner_token)) {
    caller.name = "owner";
    caller.role = Role::kAdmin;
  } else if (const std::optional<TokenInfo> known = registry_.Authenticate(token)) {
    caller.name = known->name;
    caller.role = known->role;
  }
  return caller;
}

void Require(const Api::Caller& caller, Role needed) {
  if (!caller.role || *caller.role < needed) throw NotAllowed{needed};
}

size_t Api::BodyLimit(const HttpRequest& request) const {
  const std::optional<Role> role = Identify(request).role;
  if (!role || *role < Role::kWrite) return kMaxBodyBytes;
  if (request.method == "PUT" && request.path.starts_with("/api/objects/")) {
    return wire::kChunkBytes;
  }
  return wire::kMaxJsonBytes;
}

HttpResponse Api::Handle(const HttpRequest& request) const {
  if (std::optional<HttpResponse> refused = RefuseHost(request)) return *refused;
  if (!request.path.starts_with("/api/")) return ErrorResponse(404, "no such page");
  const std::vector<std::string> parts = Split(request.path.substr(4));
  const Caller caller = Identify(request);
  try {
    if (parts.size() == 1 && parts[0] == "health") {
      json health = {{"status", "ok"},
                     {"protocol", wire::kProtocol},
                     {"role", caller.role ? json(RoleName(*caller.role)) : json(nullptr)}};
      if (caller.role) health["registry"] = registry_.location();
      if (caller.role == Role::kAdmin) {
        health["object_bytes_received"] = object_bytes_received_.load();
      }
      return JsonResponse(health);
    }
    if (request.method == "GET" || request.method == "HEAD") {
      Require(caller, Role::kRead);
      return Get(request, parts, caller);
    }
    if (request.method == "POST" || request.method == "PUT") {
      if (std::optional<HttpResponse> refused = RefuseCrossOrigin(request)) return *refused;
      Require(caller, Role::kRead);  // no token: 401 before anything else is said
      return request.method == "POST" ? Post(request, parts, caller) : Put(request, parts, caller);
    }
    return ErrorResponse(405, "method " + Echo(request.method, 16) + " is not allowed");
  } catch (const NotAllowed& refused) {
    if (!caller.presented) {
      return ErrorResponse(401,
                           "this server needs a token: send it as Authorization: Bearer "
                           "TOKEN (the one tune serve printed, or one from `tune serve "
                           "token add`)");
    }
    if (!caller.role) {
      return ErrorResponse(401,
                           "the token is not one of this server's, or it was revoked; ask "
                           "the server's owner for one (`tune serve token add`)");
    }
    return ErrorResponse(403, "token '" + caller.name + "' has the role " +
                                  std::string(RoleName(*caller.role)) + "; this needs " +
                                  std::string(RoleName(refused.needed)));
  } catch (const AliasConflict& e) {
    return ErrorResponse(409, e.what());
  } catch (const PolicyRefused& e) {
    return JsonResponse({{"error", e.what()}, {"checks", wire::PolicyChecksToJson(e.checks())}},
                        400);
  } catch (const UploadOffsetConflict& e) {
    HttpResponse response = ErrorResponse(409, e.what());
    response.body = wire::Dump({{"error", e.what()}, {"received", e.received()}});
    return response;
  } catch (const RegistryBusy& e) {
    return ErrorResponse(503, e.what());
  } catch (const RegistryDamaged& e) {
    std::cerr << "error: " << e.what() << std::endl;  // the server's operator must know
    return ErrorResponse(500, e.what());
  } catch (const UserError& e) {
    return ErrorResponse(400, e.what());
  }
}

bool Api::HasAdapter(const std::string& name) const {
  const std::vector<std::string> names = registry_.Names();
  return std::binary_search(names.begin(), names.end(), name);  // Names() is sorted
}

HttpResponse Api::Get(const HttpRequest& request, const std::vector<std::string>& parts,
                      const Caller& caller) const {
  const auto not_found = [&] {
    return ErrorResponse(404, "no such resource: " + Echo(request.path));
  };
  if (std::optional<HttpResponse> answered = GetForClient(request, parts, caller)) {
    return *answered;
  }
  if (std::optional<HttpResponse> answered = GetForReviews(request, parts, caller)) {
    return *answered;
  }
  if (parts.size() == 1 && parts[0] == "adapters") {
    json adapters = json::array();
    for (const std::string& name : registry_.Names()) {
      const VersionRecord latest = registry_.Resolve(name);
      const std::map<std::string, int64_t> aliases = registry_.Aliases(name);
      adapters.push_back({{"name", name},
                          {"versions", latest.version},
                          {"latest", Summary(latest, aliases)},
                          {"aliases", aliases}});
    }
    return JsonResponse(adapters);
  }
  if (parts.size() == 1 && parts[0] == "versions") {
    ListOptions options;
    if (const auto it = request.query.find("name"); it != request.query.end()) {
      if (!IsValidName(it->second)) return ErrorResponse(400, "invalid adapter name");
      if (!HasAdapter(it->second)) return not_found();
      options.name = it->second;
    }
    if (const auto it = request.query.find("filter"); it != request.query.end()) {
      options.filter = it->second;
    }
    if (const auto it = request.query.find("sort"); it != request.query.end()) {
      options.sort = it->second;
    }
    const std::optional<int64_t> offset = QueryInt(request, "offset", 0, int64_t{1} << 40);
    const std::optional<int64_t> limit = QueryInt(request, "limit", 50, 1000);
    if (!offset || !limit) {
      return ErrorResponse(400, "offset and limit are whole numbers (limit at most 1000)");
    }
    const Registry::Page listed =
        registry_.ListPage(options, static_cast<size_t>(*offset), static_cast<size_t>(*limit));
    std::map<std::string, std::map<std::string, int64_t>> aliases;
    json page = json::array();
    for (const VersionRecord& record : listed.versions) {
      if (!aliases.count(record.name)) aliases[record.name] = registry_.Aliases(record.name);
      page.push_back(Summary(record, aliases[record.name]));
    }
    return JsonResponse({{"total", listed.total}, {"offset", *offset}, {"versions", page}});
  }
  if (parts.size() >= 2 && parts[0] == "adapters") {
    const std::string& name = parts[1];
    if (!IsValidName(name)) return ErrorResponse(400, "invalid adapter name");
    if (!HasAdapter(name)) return not_found();
    if (parts.size() == 3 && parts[2] == "history") {
      json moves = json::array();
      for (const AliasMove& move : registry_.History(name)) {
        moves.push_back(wire::AliasMoveToJson(move));
      }
      return JsonResponse(moves);
    }
    if (parts.size() >= 4 && parts[2] == "versions") {
      const std::optional<int64_t> version = ParseVersion(parts[3]);
      if (!version) return ErrorResponse(400, "invalid version: versions are 1, 2, 3, ...");
      const VersionRecord latest = registry_.Resolve(name);
      if (*version > latest.version) return not_found();
      const VersionRecord record = registry_.Get(name, *version);
      if (parts.size() == 4) {
        json full = VersionRecordJson(record);
        full["aliases"] = AliasesAt(registry_.Aliases(name), record.version);
        return JsonResponse(full);
      }
      if (parts.size() == 5 && parts[4] == "eval") {
        // The evaluation outputs, one object per example: line, prompt, reference, prediction.
        json samples = json::array();
        if (record.eval_samples) {
          std::istringstream in(registry_.ReadObject(
              *record.eval_samples, name + ":" + std::to_string(*version) + " eval_samples.jsonl"));
          for (std::string line; std::getline(in, line);) {
            json sample = json::parse(line, nullptr, /*allow_exceptions=*/false);
            if (sample.is_object()) samples.push_back(std::move(sample));
          }
        }
        return JsonResponse(samples);
      }
      if (parts.size() >= 6 && parts[4] == "files") {
        // The rest of the path names a file of the manifest, compared as text: it never
        // reaches the file system; the object is found by its digest.
        std::string file = parts[5];
        for (size_t i = 6; i < parts.size(); ++i) file += "/" + parts[i];
        for (const ManifestEntry& entry : record.files) {
          if (entry.path != file) continue;
          HttpResponse response;
          response.object =
              ObjectBody{registry_.ObjectPath(entry.digest), entry.digest, entry.size_bytes,
                         name + ":" + std::to_string(*version) + " " + file};
          response.content_type = "application/octet-stream";
          response.headers.push_back({"X-Content-SHA256", entry.digest});
          std::string base = file.substr(file.rfind('/') + 1);
          for (char& c : base) {
            if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';
          }
          response.headers.push_back(
              {"Content-Disposition", "attachment; filename=\"" + base + "\""});
          return response;
        }
        return not_found();
      }
    }
    return not_found();
  }
  if (parts.size() == 1 && parts[0] == "diff") {
    const auto from = request.query.find("from");
    const auto to = request.query.find("to");
    if (from == request.query.end() || to == request.query.end()) {
      return ErrorResponse(400, "diff needs from=REF and to=REF (NAME:N or NAME@ALIAS)");
    }
    const VersionDiff diff =
        DiffVersions(registry_.Resolve(from->second), registry_.Resolve(to->second));
    HttpResponse response;
    response.body = VersionDiffToJson(diff);
    return response;
  }
  if (parts[0] == "sweeps" && parts.size() <= 2) {
    if (parts.size() == 2 && !IsValidName(parts[1]))
      return ErrorResponse(400, "invalid sweep name");
    const json sweeps = Sweeps(parts.size() == 2 ? parts[1] : std::string());
    if (parts.size() == 1) return JsonResponse(sweeps);
    if (sweeps.empty()) return not_found();
    return JsonResponse(sweeps[0]);
  }
  return not_found();
}

json Api::Sweeps(const std::string& only) const {
  // A sweep, as the registry knows it: the runs of its trials (live: their metrics arrive every
  // 2 seconds) and the versions its finished trials became.
  struct SweepRows {
    std::map<int64_t, json> trials;    // trial -> its row
    std::map<int64_t, json> attempts;  // trial -> each of its runs, oldest first
    std::string objective, goal;       // from its runs (the sweep records them)
    std::map<std::string, ScoreScale> scales;
  };
  std::map<std::string, SweepRows> sweeps;
  for (const RunRecord& run : registry_.ListRuns()) {
    if (!run.info.sweep || !run.info.trial || (!only.empty() && *run.info.sweep != only)) continue;
    const auto [status, error] = ShownStatus(run);
    json row = {{"trial", *run.info.trial},
                {"run_id", run.id},
                {"status", status},
                {"started_ms", run.started_ms},
                {"finished_ms", run.finished_ms},
                {"error", error}};
    if (run.info.configuration) row["configuration"] = *run.info.configuration;
    if (run.info.seed) row["seed"] = *run.info.seed;
    // Where it runs or ran (a Slurm job's node and job id), and every attempt before this one.
    row["node"] = run.info.node;
    row["job"] = run.info.job;
    if (run.info.attempt) row["attempt"] = *run.info.attempt;
    json& attempts = sweeps[*run.info.sweep].attempts[*run.info.trial];
    attempts.push_back({{"attempt", run.info.attempt ? json(*run.info.attempt) : json(nullptr)},
                        {"node", run.info.node},
                        {"job", run.info.job},
                        {"status", status},
                        {"end_reason", run.end_reason},
                        {"error", error}});
    row["params"] = ParamsToJson(run.info.params);
    const std::vector<MetricsAtStep> metrics = registry_.GetRunMetrics(run.id);
    for (auto it = metrics.rbegin(); it != metrics.rend(); ++it) {
      if (const auto loss = it->values.find("loss"); loss != it->values.end()) {
        row["step"] = it->step;
        row["loss"] = loss->second;
        break;
      }
    }
    SweepRows& sweep = sweeps[*run.info.sweep];
    if (!run.info.objective.empty()) {
      sweep.objective = run.info.objective;
      sweep.goal = run.info.objective_goal;
    }
    // A resumed trial has a run per attempt: the latest one speaks for it.
    sweep.trials[*run.info.trial] = row;
  }
  ListOptions options;
  for (const VersionRecord& record : registry_.List(options)) {
    if (!record.sweep || !record.trial) continue;
    const auto sweep = sweeps.find(*record.sweep);
    if (sweep == sweeps.end()) continue;
    json& row = sweep->second.trials[*record.trial];
    // A version whose run the registry does not have (registered by an older tune) finished.
    if (!row.contains("trial")) row["trial"] = *record.trial;
    if (!row.contains("status")) row["status"] = "finished";
    row["version"] = record.name + ":" + std::to_string(record.version);
    if (record.configuration) row["configuration"] = *record.configuration;
    row["seed"] = record.seed;
    row["scores"] = record.scores;
    row["base_scores"] = record.base_scores;
    row["few_shot_scores"] = record.few_shot_scores;
    for (const auto& [metric, scale] : record.score_scales) sweep->second.scales[metric] = scale;
  }
  json out = json::array();
  for (const auto& [name, sweep] : sweeps) {
    json list = json::array();
    for (const auto& [trial, row] : sweep.trials) {
      list.push_back(row);
      const auto attempts = sweep.attempts.find(trial);
      list.back()["attempts"] = attempts == sweep.attempts.end() ? json::array() : attempts->second;
    }
    json scales = json::object();
    json intervals = json::object();
    for (const auto& [metric, scale] : sweep.scales) {
      scales[metric] = {{"goal", scale.goal},
                        {"min", scale.min ? json(*scale.min) : json(nullptr)},
                        {"max", scale.max ? json(*scale.max) : json(nullptr)}};
      intervals[metric] = "95% CI (" + IntervalName(BoundsOf(scale)) + ")";
    }
    out.push_back({{"name", name},
                   {"objective", sweep.objective.empty()
                                     ? json(nullptr)
                                     : json{{"metric", sweep.objective}, {"goal", sweep.goal}}},
                   {"score_scales", scales},
                   {"intervals", intervals},
                   {"configurations", Configurations(sweep.trials, sweep.scales)},
                   {"trials", list}});
  }
  return out;
}

std::optional<HttpResponse> Api::RefuseCrossOrigin(const HttpRequest& request) const {
  // Origin, when a browser sends one, is this server's (cross-site requests); Host was checked
  // for every request.
  const auto it = request.headers.find("origin");
  if (it != request.headers.end() && !it->second.empty() && !names_.AcceptsOrigin(it->second)) {
    return ErrorResponse(403, "Origin '" + Echo(it->second, 64) + "' is not this server");
  }
  return std::nullopt;
}

HttpResponse Api::Post(const HttpRequest& request, const std::vector<std::string>& parts,
                       const Caller& caller) const {
  if (std::optional<HttpResponse> answered = PostForClient(request, parts, caller)) {
    return *answered;
  }
  if (std::optional<HttpResponse> answered = PostForReviews(request, parts, caller)) {
    return *answered;
  }
  if (parts.size() != 4 || parts[0] != "adapters" || parts[2] != "aliases") {
    return ErrorResponse(404, "no such resource: " + Echo(request.path));
  }
  Require(caller, Role::kPromote);
  const std::string& name = parts[1];
  const std::string& alias = parts[3];
  if (!IsValidName(name)) return ErrorResponse(400, "invalid adapter name");
  if (!IsValidName(alias)) return ErrorResponse(400, "invalid alias");
  const json body = json::parse(request.body, nullptr, false);
  const std::optional<int64_t> version =
      body.is_object() && body.contains("version") ? WholeNumber(body["version"], 1) : std::nullopt;
  if (!version) {
    return ErrorResponse(400,
                         "the body is JSON {\"version\": N} (N a version, 1 or more) with an "
                         "optional \"expect_version\": M (0: the alias must be unset)");
  }
  std::optional<int64_t> expected;
  if (body.contains("expect_version")) {
    expected = WholeNumber(body["expect_version"], 0);
    if (!expected) return ErrorResponse(400, "expect_version is a version, or 0 for unset");
  }
  std::string override_reason;
  if (body.contains("override_reason")) {
    if (!body["override_reason"].is_string()) {
      return ErrorResponse(400, "override_reason is text: why the alias's policy is set aside");
    }
    override_reason = body["override_reason"].get<std::string>();
    if (!override_reason.empty()) Require(caller, Role::kAdmin);  // overriding a policy
  }
  if (!HasAdapter(name)) return ErrorResponse(404, "no adapter named '" + name + "'");
  const int64_t previous =
      registry_.Acting(caller.name)->MoveAlias(name, alias, *version, expected, override_reason);
  return JsonResponse(
      {{"name", name}, {"alias", alias}, {"version", *version}, {"previous", previous}});
}

}  // namespace tune

// Version records as JSON, adapter references, manifests.
#include <charconv>

#include <nlohmann/json.hpp>

#include "registry/record_json.h"
#include "registry/registry.h"
#include "util/echo.h"
#include "util/names.h"

namespace tune {
namespace {

using nlohmann::json;

// Reads `key` of `object` with `read`, turning a type error into a UserError naming the key.
// Missing keys leave `out` as it is: records written by older versions of tune still read.
template <typename T, typename Read>
void Field(const json& object, const char* key, T& out, Read read) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return;
  try {
    out = read(*it);
  } catch (const json::exception& e) {
    throw UserError(std::string("version record field '") + key + "' has the wrong type (" +
                    e.what() + "); the registry may be damaged: run `tune registry verify`");
  }
}

template <typename T>
void Field(const json& object, const char* key, T& out) {
  Field(object, key, out, [](const json& v) { return v.get<T>(); });
}

json ScalesJson(const std::map<std::string, ScoreScale>& scales) {
  json out = json::object();
  for (const auto& [metric, scale] : scales) {
    out[metric] = {{"goal", scale.goal},
                   {"min", scale.min ? json(*scale.min) : json(nullptr)},
                   {"max", scale.max ? json(*scale.max) : json(nullptr)}};
  }
  return out;
}

std::map<std::string, ScoreScale> ScalesFromJson(const json& object) {
  std::map<std::string, ScoreScale> scales;
  for (const auto& [metric, value] : object.items()) {
    ScoreScale& scale = scales[metric];
    scale.goal = value.at("goal").get<std::string>();
    if (value.contains("min") && !value["min"].is_null()) scale.min = value["min"].get<double>();
    if (value.contains("max") && !value["max"].is_null()) scale.max = value["max"].get<double>();
  }
  return scales;
}

json EntryJson(const ManifestEntry& e) {
  return {{"path", e.path}, {"digest", e.digest}, {"size_bytes", e.size_bytes}};
}

ManifestEntry EntryFromJson(const json& object) {
  ManifestEntry entry;
  Field(object, "path", entry.path);
  Field(object, "digest", entry.digest);
  Field(object, "size_bytes", entry.size_bytes);
  return entry;
}

// `text` as a JSON object; UserError naming the `kind` of record ("version") otherwise.
json ParseRecord(std::string_view text, const char* kind) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    throw UserError(std::string("a ") + kind +
                    " record is not a JSON object; the registry may be damaged: run `tune "
                    "registry verify`");
  }
  return j;
}

}  // namespace

json VersionRecordJson(const VersionRecord& r, RecordDetail detail) {
  const bool full = detail == RecordDetail::kFull;
  json params = ParamsToJson(r.params);
  json curve = json::array();
  if (full) {
    for (const CurvePoint& p : r.curve) {
      curve.push_back({{"step", p.step}, {"loss", p.loss}, {"lr", p.lr}});
    }
  }
  json plugins = json::array();
  for (const PluginRef& p : r.plugins) {
    plugins.push_back({{"kind", p.kind}, {"name", p.name}, {"version", p.version}});
  }
  json files = json::array();
  if (full) {
    for (const ManifestEntry& f : r.files) files.push_back(EntryJson(f));
  }
  json j = {
      {"name", r.name},
      {"version", r.version},
      {"created_ms", r.created_ms},
      {"method", r.method},
      {"params", std::move(params)},
      {"config_toml", full ? r.config_toml : std::string()},
      {"dataset",
       {{"hash", r.dataset_hash},
        {"train_examples", r.train_examples},
        {"eval_examples", r.eval_examples},
        {"quality", r.dataset_quality},
        {"dropped", r.dataset_dropped},
        {"name", r.dataset_name},
        {"version", r.dataset_version}}},
      {"base_model",
       {{"name", r.base_model_name}, {"path", r.base_model_path}, {"hash", r.base_model_hash}}},
      {"tokenizer_hash", r.tokenizer_hash},
      {"seed", r.seed},
      {"scores", r.scores},
      {"base_scores", r.base_scores},
      {"few_shot", r.few_shot},
      {"few_shot_scores", r.few_shot_scores},
      {"score_scales", ScalesJson(r.score_scales)},
      {"curve", std::move(curve)},
      {"wall_time_s", r.wall_time_s},
      {"trainable_parameters", r.trainable_parameters},
      {"peak_memory_bytes", r.peak_memory_bytes},
      {"peak_gpu_memory_bytes", r.peak_gpu_memory_bytes},
      {"tokens_per_second", r.tokens_per_second},
      {"plugins", std::move(plugins)},
      {"tune_version", r.tune_version},
      {"sweep", r.sweep ? json(*r.sweep) : json(nullptr)},
      {"trial", r.trial ? json(*r.trial) : json(nullptr)},
      {"configuration", r.configuration ? json(*r.configuration) : json(nullptr)},
      {"run_id", r.run_id},
      {"registered_by", r.registered_by},
      {"artifact",
       {{"digest", r.artifact_digest},
        {"size_bytes", r.artifact_size_bytes},
        {"files", std::move(files)}}},
      {"eval_samples", r.eval_samples ? EntryJson(*r.eval_samples) : json(nullptr)},
  };
  if (!full) {
    j.erase("config_toml");
    j.erase("curve");
    j["artifact"].erase("files");
  }
  return j;
}

namespace {

// A dataset's report as JSON inside its record: null when there is none, the text itself when it
// does not parse (a record is never refused for its report).
json ReportJson(const std::string& text) {
  if (text.empty()) return nullptr;
  json report = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return report.is_discarded() ? json(text) : report;
}

}  // namespace

std::string DatasetRecordToJson(const DatasetRecord& r, int indent) {
  return json{{"name", r.name},
              {"version", r.version},
              {"created_ms", r.created_ms},
              {"sha256", r.sha256},
              {"source", r.source},
              {"rows", r.rows},
              {"summary", r.summary},
              {"report", ReportJson(r.report_json)},
              {"rows_object", EntryJson(r.rows_object)},
              {"content", r.content ? EntryJson(*r.content) : json(nullptr)},
              {"registered_by", r.registered_by}}
      .dump(indent);
}

DatasetRecord DatasetRecordFromJson(std::string_view text) {
  const json j = ParseRecord(text, "dataset");
  DatasetRecord r;
  Field(j, "name", r.name);
  Field(j, "version", r.version);
  Field(j, "created_ms", r.created_ms);
  Field(j, "sha256", r.sha256);
  Field(j, "source", r.source);
  Field(j, "rows", r.rows);
  Field(j, "summary", r.summary);
  Field(j, "report", r.report_json, [](const json& v) { return v.dump(); });
  if (const auto it = j.find("rows_object"); it != j.end() && it->is_object()) {
    r.rows_object = EntryFromJson(*it);
  }
  if (const auto it = j.find("content"); it != j.end() && it->is_object()) {
    r.content = EntryFromJson(*it);
  }
  Field(j, "registered_by", r.registered_by);
  return r;
}

std::string VersionRecordToJson(const VersionRecord& r, int indent) {
  return VersionRecordJson(r).dump(indent);
}

VersionRecord VersionRecordFromJson(std::string_view text) {
  const json j = ParseRecord(text, "version");
  VersionRecord r;
  Field(j, "name", r.name);
  Field(j, "version", r.version);
  Field(j, "created_ms", r.created_ms);
  Field(j, "method", r.method);
  Field(j, "params", r.params, [](const json& v) { return ParamsFromJson(v); });
  Field(j, "config_toml", r.config_toml);
  if (const auto it = j.find("dataset"); it != j.end() && it->is_object()) {
    Field(*it, "hash", r.dataset_hash);
    Field(*it, "train_examples", r.train_examples);
    Field(*it, "eval_examples", r.eval_examples);
    Field(*it, "quality", r.dataset_quality);
    Field(*it, "dropped", r.dataset_dropped);
    Field(*it, "name", r.dataset_name);
    Field(*it, "version", r.dataset_version);
  }
  if (const auto it = j.find("base_model"); it != j.end() && it->is_object()) {
    Field(*it, "name", r.base_model_name);
    Field(*it, "path", r.base_model_path);
    Field(*it, "hash", r.base_model_hash);
  }
  Field(j, "tokenizer_hash", r.tokenizer_hash);
  Field(j, "seed", r.seed);
  Field(j, "scores", r.scores);
  Field(j, "base_scores", r.base_scores);
  Field(j, "few_shot", r.few_shot);
  Field(j, "few_shot_scores", r.few_shot_scores);
  Field(j, "score_scales", r.score_scales, ScalesFromJson);
  Field(j, "curve", r.curve, [](const json& v) {
    std::vector<CurvePoint> curve;
    for (const json& p : v) {
      curve.push_back(
          {p.at("step").get<int64_t>(), p.at("loss").get<double>(), p.at("lr").get<double>()});
    }
    return curve;
  });
  Field(j, "wall_time_s", r.wall_time_s);
  Field(j, "trainable_parameters", r.trainable_parameters);
  Field(j, "peak_memory_bytes", r.peak_memory_bytes);
  if (j.contains("peak_gpu_memory_bytes"))
    Field(j, "peak_gpu_memory_bytes", r.peak_gpu_memory_bytes);
  Field(j, "tokens_per_second", r.tokens_per_second);
  Field(j, "plugins", r.plugins, [](const json& v) {
    std::vector<PluginRef> plugins;
    for (const json& p : v) {
      plugins.push_back({p.at("kind").get<std::string>(), p.at("name").get<std::string>(),
                         p.at("version").get<std::string>()});
    }
    return plugins;
  });
  Field(j, "tune_version", r.tune_version);
  Field(j, "sweep", r.sweep, [](const json& v) { return std::optional(v.get<std::string>()); });
  Field(j, "trial", r.trial, [](const json& v) { return std::optional(v.get<int64_t>()); });
  Field(j, "configuration", r.configuration,
        [](const json& v) { return std::optional(v.get<int64_t>()); });
  Field(j, "run_id", r.run_id);
  Field(j, "registered_by", r.registered_by);
  if (const auto it = j.find("artifact"); it != j.end() && it->is_object()) {
    Field(*it, "digest", r.artifact_digest);
    Field(*it, "size_bytes", r.artifact_size_bytes);
    Field(*it, "files", r.files, [](const json& v) {
      std::vector<ManifestEntry> files;
      for (const json& f : v) {
        files.push_back({f.at("path").get<std::string>(), f.at("digest").get<std::string>(),
                         f.at("size_bytes").get<int64_t>()});
      }
      return files;
    });
  }
  if (const auto it = j.find("eval_samples"); it != j.end() && it->is_object()) {
    r.eval_samples = EntryFromJson(*it);
  }
  return r;
}

std::string ManifestText(const std::vector<ManifestEntry>& files) {
  std::vector<const ManifestEntry*> sorted;
  for (const ManifestEntry& f : files) sorted.push_back(&f);
  std::sort(sorted.begin(), sorted.end(),
            [](const ManifestEntry* a, const ManifestEntry* b) { return a->path < b->path; });
  std::string text;
  for (const ManifestEntry* f : sorted) {
    text += f->digest + " " + std::to_string(f->size_bytes) + " " + f->path + "\n";
  }
  return text;
}

namespace {

// NAME, NAME:N or NAME:vN (and NAME@ALIAS when `aliases`), for a reference to a `kind` ("adapter",
// "dataset"); `forms` is how the refusal says to write one.
AdapterRef ParseRef(std::string_view text, const char* kind, bool aliases, const char* forms) {
  const auto refuse = [&](const std::string& why) {
    throw UserError("invalid " + std::string(kind) + " reference '" + Echo(text) + "': " + why +
                    "; write " + forms);
  };
  const auto check_name = [&](std::string_view name, const char* what) {
    if (!IsValidName(name)) {
      refuse(std::string(what) + " '" + Echo(name, 40) +
             "' is not a valid name ([a-z0-9][a-z0-9._-]{0,63})");
    }
  };
  AdapterRef ref;
  const size_t at = text.find('@');
  const size_t colon = text.find(':');
  if (at != std::string_view::npos && !aliases) {
    refuse(std::string(kind) + "s have versions, not aliases");
  }
  if (at != std::string_view::npos && colon != std::string_view::npos) {
    refuse("it has both ':' and '@'");
  }
  if (at != std::string_view::npos) {
    ref.name = text.substr(0, at);
    check_name(ref.name, "name");
    const std::string_view alias = text.substr(at + 1);
    check_name(alias, "alias");
    ref.alias = std::string(alias);
    return ref;
  }
  if (colon != std::string_view::npos) {
    ref.name = text.substr(0, colon);
    check_name(ref.name, "name");
    std::string_view number = text.substr(colon + 1);
    if (!number.empty() && number[0] == 'v') number.remove_prefix(1);
    int64_t version = 0;
    const auto [end, error] =
        std::from_chars(number.data(), number.data() + number.size(), version);
    if (number.empty() || error != std::errc() || end != number.data() + number.size() ||
        version < 1) {
      refuse("the version '" + Echo(text.substr(colon + 1), 40) +
             "' is not a whole number from 1 (versions start at 1)");
    }
    ref.version = version;
    return ref;
  }
  ref.name = text;
  check_name(ref.name, "name");
  return ref;
}

}  // namespace

AdapterRef ParseAdapterRef(std::string_view text) {
  return ParseRef(text, "adapter", true, "NAME, NAME:VERSION (NAME:3 or NAME:v3) or NAME@ALIAS");
}

DatasetRef ParseDatasetRef(std::string_view text) {
  const AdapterRef ref =
      ParseRef(text, "dataset", false, "NAME (the latest version) or NAME:VERSION (NAME:3)");
  return {ref.name, ref.version};
}

std::optional<RunStatus> RunStatusFromName(std::string_view name) {
  for (const RunStatus status :
       {RunStatus::kRunning, RunStatus::kFinished, RunStatus::kFailed, RunStatus::kKilled}) {
    if (RunStatusName(status) == name) return status;
  }
  return std::nullopt;
}

std::string_view RunStatusName(RunStatus status) {
  switch (status) {
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kFinished:
      return "finished";
    case RunStatus::kFailed:
      return "failed";
    case RunStatus::kKilled:
      return "killed";
  }
  return "unknown";
}

nlohmann::json ParamsToJson(const std::map<std::string, ParamValue>& params) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : params) {
    out[key] = std::visit([](const auto& v) { return nlohmann::json(v); }, value);
  }
  return out;
}

std::map<std::string, ParamValue> ParamsFromJson(const nlohmann::json& object) {
  std::map<std::string, ParamValue> params;
  if (!object.is_object()) return params;
  for (const auto& [key, value] : object.items()) {
    if (value.is_boolean()) {
      params[key] = value.get<bool>();
    } else if (value.is_number_integer()) {
      params[key] = value.get<int64_t>();
    } else if (value.is_number_float()) {
      params[key] = value.get<double>();
    } else if (value.is_string()) {
      params[key] = value.get<std::string>();
    } else {
      params[key] = value.dump();  // arrays and tables keep their JSON text
    }
  }
  return params;
}

}  // namespace tune

#include "registry/wire.h"

#include <cmath>
#include <limits>

#include "util/error.h"

namespace tune::wire {

using nlohmann::json;

namespace {

json Optional(const std::optional<int64_t>& value) { return value ? json(*value) : json(nullptr); }

std::optional<int64_t> OptionalInt(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  return it->get<int64_t>();
}

}  // namespace

std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json RunToJson(const RunRecord& run) {
  return {{"id", run.id},
          {"name", run.info.name},
          {"sweep", run.info.sweep ? json(*run.info.sweep) : json(nullptr)},
          {"trial", Optional(run.info.trial)},
          {"configuration", Optional(run.info.configuration)},
          {"seed", Optional(run.info.seed)},
          {"objective", run.info.objective},
          {"objective_goal", run.info.objective_goal},
          {"node", run.info.node},
          {"job", run.info.job},
          {"attempt", Optional(run.info.attempt)},
          {"end_reason", run.end_reason},
          {"config_toml", run.info.config_toml},
          {"status", RunStatusName(run.status)},
          {"started_ms", run.started_ms},
          {"finished_ms", run.finished_ms},
          {"error", run.error},
          {"created_by", run.created_by},
          {"process",
           {{"pid", run.process.pid},
            {"start_ticks", run.process.start_ticks},
            {"boot_id", run.process.boot_id},
            {"machine_id", run.process.machine_id}}}};
}

RunRecord RunFromJson(const json& j) {
  RunRecord run;
  run.id = j.at("id").get<std::string>();
  run.info.name = j.at("name").get<std::string>();
  if (const auto it = j.find("sweep"); it != j.end() && !it->is_null()) {
    run.info.sweep = it->get<std::string>();
  }
  run.info.trial = OptionalInt(j, "trial");
  run.info.configuration = OptionalInt(j, "configuration");
  run.info.seed = OptionalInt(j, "seed");
  run.info.objective = j.value("objective", "");
  run.info.objective_goal = j.value("objective_goal", "");
  run.info.node = j.value("node", "");
  run.info.job = j.value("job", "");
  run.info.attempt = OptionalInt(j, "attempt");
  run.end_reason = j.value("end_reason", "");
  if (const auto it = j.find("process"); it != j.end() && it->is_object()) {
    run.process = {it->value("pid", int64_t{0}), it->value("start_ticks", int64_t{0}),
                   it->value("boot_id", ""), it->value("machine_id", "")};
  }
  run.info.config_toml = j.value("config_toml", "");
  if (const std::optional<RunStatus> status = RunStatusFromName(j.value("status", ""))) {
    run.status = *status;
  }
  run.started_ms = j.value("started_ms", int64_t{0});
  run.finished_ms = j.value("finished_ms", int64_t{0});
  run.error = j.value("error", "");
  run.created_by = j.value("created_by", "");
  return run;
}

json AliasMoveToJson(const AliasMove& move) {
  return {{"time_ms", move.time_ms},
          {"alias", move.alias},
          {"old_version", move.old_version},
          {"new_version", move.new_version},
          {"by", move.by}};
}

AliasMove AliasMoveFromJson(const json& j) {
  return {j.at("time_ms").get<int64_t>(), j.at("alias").get<std::string>(),
          j.at("old_version").get<int64_t>(), j.at("new_version").get<int64_t>(),
          j.value("by", "")};
}

json TokenToJson(const TokenInfo& token) {
  return {{"name", token.name},
          {"role", RoleName(token.role)},
          {"created_ms", token.created_ms},
          {"created_by", token.created_by},
          {"revoked_ms", token.revoked_ms},
          {"revoked_by", token.revoked_by}};
}

TokenInfo TokenFromJson(const json& j) {
  TokenInfo token;
  token.name = j.at("name").get<std::string>();
  token.role = RoleFromName(j.at("role").get<std::string>()).value_or(Role::kRead);
  token.created_ms = j.value("created_ms", int64_t{0});
  token.created_by = j.value("created_by", "");
  token.revoked_ms = j.value("revoked_ms", int64_t{0});
  token.revoked_by = j.value("revoked_by", "");
  return token;
}

json MetricValuesToJson(const std::map<std::string, double>& values) {
  json out = json::object();
  for (const auto& [metric, value] : values) {
    if (std::isnan(value)) {
      out[metric] = "nan";
    } else if (std::isinf(value)) {
      out[metric] = value > 0 ? "inf" : "-inf";
    } else {
      out[metric] = value;
    }
  }
  return out;
}

std::map<std::string, double> MetricValuesFromJson(const json& j) {
  if (!j.is_object()) throw UserError("metric values are an object {\"metric\": number}");
  std::map<std::string, double> values;
  for (const auto& [metric, value] : j.items()) {
    if (value.is_number()) {
      values[metric] = value.get<double>();
    } else if (value == "nan" || value.is_null()) {  // null: how an older tune kept NaN
      values[metric] = std::numeric_limits<double>::quiet_NaN();
    } else if (value == "inf" || value == "-inf") {
      values[metric] = value == "inf" ? std::numeric_limits<double>::infinity()
                                      : -std::numeric_limits<double>::infinity();
    } else {
      throw UserError("metric " + metric + " is " + value.dump() +
                      "; a metric's value is a number, \"nan\", \"inf\" or \"-inf\"");
    }
  }
  return values;
}

json MetricsToJson(const std::vector<MetricsAtStep>& metrics) {
  json out = json::array();
  for (const MetricsAtStep& at : metrics) {
    out.push_back({{"step", at.step}, {"values", MetricValuesToJson(at.values)}});
  }
  return out;
}

std::vector<MetricsAtStep> MetricsFromJson(const json& j) {
  std::vector<MetricsAtStep> metrics;
  for (const json& at : j) {
    metrics.push_back({at.at("step").get<int64_t>(), MetricValuesFromJson(at.at("values"))});
  }
  return metrics;
}

json VerifyReportToJson(const VerifyReport& report) {
  return {{"objects_checked", report.objects_checked},
          {"bytes_checked", report.bytes_checked},
          {"versions_checked", report.versions_checked},
          {"problems", report.problems}};
}

VerifyReport VerifyReportFromJson(const json& j) {
  return {j.at("objects_checked").get<int64_t>(), j.at("bytes_checked").get<int64_t>(),
          j.at("versions_checked").get<int64_t>(),
          j.at("problems").get<std::vector<std::string>>()};
}

json GcReportToJson(const GcReport& report) {
  return {{"objects_removed", report.objects_removed},
          {"bytes_removed", report.bytes_removed},
          {"temp_files_removed", report.temp_files_removed},
          {"objects_kept", report.objects_kept}};
}

GcReport GcReportFromJson(const json& j) {
  return {j.at("objects_removed").get<int64_t>(), j.at("bytes_removed").get<int64_t>(),
          j.at("temp_files_removed").get<int64_t>(), j.at("objects_kept").get<int64_t>()};
}

}  // namespace tune::wire

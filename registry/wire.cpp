#include "registry/wire.h"

#include <cmath>
#include <limits>

#include "registry/record_json.h"
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
          {"params", ParamsToJson(run.info.params)},
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
  run.info.params = ParamsFromJson(j.value("params", json::object()));
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
  return {
      {"time_ms", move.time_ms},         {"alias", move.alias}, {"old_version", move.old_version},
      {"new_version", move.new_version}, {"by", move.by},       {"reason", move.reason},
      {"overridden", move.overridden}};
}

AliasMove AliasMoveFromJson(const json& j) {
  return {j.at("time_ms").get<int64_t>(),
          j.at("alias").get<std::string>(),
          j.at("old_version").get<int64_t>(),
          j.at("new_version").get<int64_t>(),
          j.value("by", ""),
          j.value("reason", ""),
          j.value("overridden", false)};
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

namespace {

json EntryToJson(const ManifestEntry& entry) {
  return {{"path", entry.path}, {"digest", entry.digest}, {"size_bytes", entry.size_bytes}};
}

ManifestEntry EntryFromJson(const json& j) {
  return {j.value("path", ""), j.at("digest").get<std::string>(),
          j.at("size_bytes").get<int64_t>()};
}

json OptionalDouble(const std::optional<double>& value) {
  return value ? json(*value) : json(nullptr);
}

std::optional<double> OptionalDoubleFrom(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  return it->get<double>();
}

}  // namespace

json ReviewToJson(const ReviewRecord& review) {
  json outputs = json::array();
  for (const ReviewOutputs& o : review.outputs) {
    outputs.push_back({{"contestant", o.contestant},
                       {"object", EntryToJson(o.object)},
                       {"generation", o.generation},
                       {"created_ms", o.created_ms},
                       {"created_by", o.created_by}});
  }
  return {{"name", review.name},
          {"set", review.set},
          {"prompts", review.prompts},
          {"base_model_hash", review.base_model_hash},
          {"outputs", outputs},
          {"created_ms", review.created_ms},
          {"created_by", review.created_by},
          {"closed_ms", review.closed_ms},
          {"closed_by", review.closed_by}};
}

ReviewRecord ReviewFromJson(const json& j) {
  ReviewRecord review;
  review.name = j.at("name").get<std::string>();
  review.set = j.at("set").get<std::string>();
  review.prompts = j.value("prompts", int64_t{0});
  review.base_model_hash = j.value("base_model_hash", "");
  for (const json& o : j.value("outputs", json::array())) {
    // A rater is not told where an open review's outputs are (web/api_review.cpp).
    const auto object = o.find("object");
    review.outputs.push_back(
        {o.at("contestant").get<std::string>(),
         object != o.end() && object->is_object() ? EntryFromJson(*object) : ManifestEntry{},
         o.value("generation", ""), o.value("created_ms", int64_t{0}), o.value("created_by", "")});
  }
  review.created_ms = j.value("created_ms", int64_t{0});
  review.created_by = j.value("created_by", "");
  review.closed_ms = j.value("closed_ms", int64_t{0});
  review.closed_by = j.value("closed_by", "");
  return review;
}

json BlindPairToJson(const BlindPair& pair) {
  return {{"id", pair.id},
          {"prompt", pair.prompt},
          {"prompt_text", pair.prompt_text},
          {"reference", pair.reference},
          {"left", pair.left},
          {"right", pair.right},
          {"judged", pair.judged},
          {"remaining", pair.remaining}};
}

BlindPair BlindPairFromJson(const json& j) {
  return {j.at("id").get<int64_t>(),     j.at("prompt").get<int64_t>(),
          j.value("prompt_text", ""),    j.value("reference", ""),
          j.value("left", ""),           j.value("right", ""),
          j.value("judged", int64_t{0}), j.value("remaining", int64_t{0})};
}

json ShownPairToJson(const ShownPair& pair) {
  return {{"id", pair.id},
          {"rater", pair.rater},
          {"shown_ms", pair.shown_ms},
          {"prompt", pair.prompt},
          {"left", pair.left},
          {"right", pair.right},
          {"verdict", pair.verdict ? json(VerdictName(*pair.verdict)) : json(nullptr)},
          {"judged_ms", pair.judged_ms},
          {"reason", pair.reason}};
}

ShownPair ShownPairFromJson(const json& j) {
  ShownPair pair;
  pair.id = j.at("id").get<int64_t>();
  pair.rater = j.at("rater").get<std::string>();
  pair.shown_ms = j.value("shown_ms", int64_t{0});
  pair.prompt = j.at("prompt").get<int64_t>();
  pair.left = j.at("left").get<std::string>();
  pair.right = j.at("right").get<std::string>();
  if (const auto it = j.find("verdict"); it != j.end() && it->is_string()) {
    pair.verdict = VerdictFromName(it->get<std::string>());
  }
  pair.judged_ms = j.value("judged_ms", int64_t{0});
  pair.reason = j.value("reason", "");
  return pair;
}

json ResultsToJson(const ReviewResults& results) {
  json contestants = json::array();
  for (const ContestantResult& c : results.contestants) {
    json against = json::object();
    for (const auto& [other, rate] : c.against) {
      against[other] = {{"judgements", rate.judgements},
                        {"wins", rate.wins},
                        {"win_rate", OptionalDouble(rate.rate())}};
    }
    contestants.push_back({{"contestant", c.contestant},
                           {"rating", c.rating.rating},
                           {"ci95_low", c.rating.ci95_low},
                           {"ci95_high", c.rating.ci95_high},
                           {"judgements", c.judgements},
                           {"against", against}});
  }
  return {{"review", results.review},
          {"closed", results.closed},
          {"judgements", results.judgements},
          {"raters", results.raters},
          {"resamples", results.resamples},
          {"contestants", contestants},
          {"agreement",
           {{"measure", "Krippendorff's alpha (nominal)"},
            {"alpha", OptionalDouble(results.agreement.alpha)},
            {"items", results.agreement.items},
            {"judgements", results.agreement.judgements}}}};
}

ReviewResults ResultsFromJson(const json& j) {
  ReviewResults results;
  results.review = j.at("review").get<std::string>();
  results.closed = j.value("closed", false);
  results.judgements = j.value("judgements", int64_t{0});
  results.raters = j.value("raters", int64_t{0});
  results.resamples = j.value("resamples", int64_t{0});
  for (const json& c : j.value("contestants", json::array())) {
    ContestantResult result;
    result.contestant = c.at("contestant").get<std::string>();
    result.rating = {c.at("rating").get<double>(), c.at("ci95_low").get<double>(),
                     c.at("ci95_high").get<double>()};
    result.judgements = c.value("judgements", int64_t{0});
    const json against = c.value("against", json::object());
    for (const auto& [other, rate] : against.items()) {
      result.against[other] = {rate.value("judgements", int64_t{0}), rate.value("wins", 0.0)};
    }
    results.contestants.push_back(std::move(result));
  }
  if (const auto it = j.find("agreement"); it != j.end() && it->is_object()) {
    results.agreement.alpha = OptionalDoubleFrom(*it, "alpha");
    results.agreement.items = it->value("items", int64_t{0});
    results.agreement.judgements = it->value("judgements", int64_t{0});
  }
  return results;
}

json PolicyToJson(const AliasPolicy& policy) {
  return {{"name", policy.name},           {"alias", policy.alias},   {"require", policy.require},
          {"approvers", policy.approvers}, {"source", policy.source}, {"lines", policy.lines},
          {"set_ms", policy.set_ms},       {"set_by", policy.set_by}};
}

AliasPolicy PolicyFromJson(const json& j) {
  AliasPolicy policy;
  policy.name = j.at("name").get<std::string>();
  policy.alias = j.at("alias").get<std::string>();
  policy.require = j.value("require", std::vector<std::string>{});
  policy.approvers = j.value("approvers", int64_t{0});
  policy.source = j.value("source", "");
  policy.lines = j.value("lines", std::vector<int64_t>{});
  policy.set_ms = j.value("set_ms", int64_t{0});
  policy.set_by = j.value("set_by", "");
  return policy;
}

json PolicyChecksToJson(const std::vector<PolicyCheck>& checks) {
  json out = json::array();
  for (const PolicyCheck& check : checks) {
    out.push_back({{"condition", check.condition},
                   {"met", check.met},
                   {"value", OptionalDouble(check.value)},
                   {"detail", check.detail}});
  }
  return out;
}

std::vector<PolicyCheck> PolicyChecksFromJson(const json& j) {
  std::vector<PolicyCheck> checks;
  for (const json& c : j) {
    checks.push_back({c.at("condition").get<std::string>(), c.value("met", false),
                      OptionalDoubleFrom(c, "value"), c.value("detail", "")});
  }
  return checks;
}

json PromotionToJson(const PromotionRequest& request) {
  return {{"id", request.id},
          {"name", request.name},
          {"alias", request.alias},
          {"version", request.version},
          {"from_version", request.from_version},
          {"requested_by", request.requested_by},
          {"requested_ms", request.requested_ms},
          {"approvers", request.approvers},
          {"approved_by", request.approved_by},
          {"status", request.status},
          {"checks", PolicyChecksToJson(request.checks)}};
}

PromotionRequest PromotionFromJson(const json& j) {
  PromotionRequest request;
  request.id = j.at("id").get<int64_t>();
  request.name = j.at("name").get<std::string>();
  request.alias = j.at("alias").get<std::string>();
  request.version = j.at("version").get<int64_t>();
  request.from_version = j.value("from_version", int64_t{0});
  request.requested_by = j.value("requested_by", "");
  request.requested_ms = j.value("requested_ms", int64_t{0});
  request.approvers = j.value("approvers", int64_t{0});
  request.approved_by = j.value("approved_by", std::vector<std::string>{});
  request.status = j.value("status", "");
  request.checks = PolicyChecksFromJson(j.value("checks", json::array()));
  return request;
}

}  // namespace tune::wire

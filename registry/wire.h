// The registry server's protocol (DESIGN section 10): the paths, headers and JSON both the server
// (web/api.cpp) and its client (remote_registry.cpp) speak. One header both sides include; what
// a message holds is defined here and nowhere else.
//
//   GET  /api/health                                  {"status", "registry", "protocol", "role"}
//   GET  /api/names                                   ["name", ...] sorted
//   GET  /api/resolve?ref=REF                         a version record
//   GET  /api/versions?...&detail=full                a page of whole version records
//   GET  /api/adapters/NAME/aliases                   {"alias": version}
//   GET  /api/objects/DIGEST                          an object's bytes (Range), checked as sent
//   POST /api/objects/received  {"objects": [{"digest", "size_bytes"}]}
//                               -> {"received": [bytes that arrived of each, in order]}
//   PUT  /api/objects/DIGEST?size=S&offset=O          a chunk (at most kChunkBytes), its
//                                                     SHA-256 in kChunkShaHeader
//                               -> {"received": bytes that arrived}; 409 {"received"} for an
//                                  offset that is not that
//   POST /api/adapters/NAME/versions  {"record"}      -> {"version"}: the objects it names stored
//   GET  /api/datasets[?ref=REF]                      every dataset version, or one
//   POST /api/datasets/NAME      {"record"}           -> {"version"}
//   GET  /api/runs[/ID]                               every run, or one with its metrics
//   POST /api/runs               {"run": {...}}       -> {"id"}; the run's id, info and process
//   POST /api/runs/ID/metrics    {"metrics": [...]}   MetricsAtStep, merged
//   POST /api/runs/ID/finish     {"status", "error", "end_reason"}
//   POST /api/registry/verify | gc {"grace_seconds"} | backup {"dir"}   (admin)
//   GET  /api/tokens; POST /api/tokens {"name", "role"} -> {"token"};
//   POST /api/tokens/NAME/revoke                                        (admin)
// Promotions (a promote token; an override an admin's):
//   POST /api/adapters/NAME/aliases/ALIAS  {"version", "expect_version", "override_reason"}
//                               -> {"previous"}: MoveAlias; 400 {"error", "checks"} when refused
//   POST /api/adapters/NAME/promotions  {"alias", "version", "expect_version"} -> a request
//   POST /api/adapters/NAME/promotions/ID/approve                      -> the request
//   GET  /api/adapters/NAME/promotions                                 every request
//   GET  /api/adapters/NAME/policies; GET .../policies/ALIAS/check?version=N -> checks (write:
//                               human.* values come from open reviews, which raters must not see)
//   POST /api/adapters/NAME/policies {"policy"}; POST .../policies/ALIAS/remove    (admin)
// Reviews (read to look; write to create and record outputs; any named token to rate; promote
// to close):
//   GET  /api/reviews; GET /api/reviews/NAME          records (while open, without the outputs'
//                                                     objects for a token below write: a rater)
//   POST /api/reviews  {"name", "set"}
//   POST /api/reviews/NAME/outputs {"contestant", "object", "generation"}: the object stored
//   POST /api/reviews/NAME/next                        -> a blind pair, or {"done": true}
//   POST /api/reviews/NAME/judgements {"pair", "verdict", "reason"}
//   POST /api/reviews/NAME/close
//   GET  /api/reviews/NAME/results                    (while open, write and above: ratings that
//                                                     move after a rater's judgement would say
//                                                     who wrote what)
//   GET  /api/reviews/NAME/judgements                 (once closed)
// Errors are {"error": "one line"} with 400 (refused input; UserError), 401 (no token), 403 (a
// token without the role), 404, 409 (AliasConflict, an upload's offset), 413, 500
// (RegistryDamaged) or 503 (RegistryBusy).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "registry/registry.h"

namespace tune::wire {

constexpr int kProtocol = 1;
constexpr size_t kChunkBytes = size_t{8} << 20;
constexpr const char* kChunkShaHeader = "X-Chunk-SHA256";
// A request body the server reads whole (records, metrics); chunks have their own limit.
constexpr size_t kMaxJsonBytes = size_t{16} << 20;

nlohmann::json RunToJson(const RunRecord& run);
RunRecord RunFromJson(const nlohmann::json& json);
nlohmann::json AliasMoveToJson(const AliasMove& move);
AliasMove AliasMoveFromJson(const nlohmann::json& json);
nlohmann::json TokenToJson(const TokenInfo& token);
TokenInfo TokenFromJson(const nlohmann::json& json);
nlohmann::json MetricsToJson(const std::vector<MetricsAtStep>& metrics);
std::vector<MetricsAtStep> MetricsFromJson(const nlohmann::json& json);
// One step's {metric: value}. JSON has no NaN or infinity: those values are the strings "nan",
// "inf" and "-inf" (a diverged loss, an undefined score), read back as the numbers they were
// (null, which an older tune wrote for all three, reads as NaN). FromJson throws UserError on any
// other value.
nlohmann::json MetricValuesToJson(const std::map<std::string, double>& values);
std::map<std::string, double> MetricValuesFromJson(const nlohmann::json& json);
nlohmann::json VerifyReportToJson(const VerifyReport& report);
VerifyReport VerifyReportFromJson(const nlohmann::json& json);
nlohmann::json GcReportToJson(const GcReport& report);
GcReport GcReportFromJson(const nlohmann::json& json);
nlohmann::json ReviewToJson(const ReviewRecord& review);
ReviewRecord ReviewFromJson(const nlohmann::json& json);
nlohmann::json BlindPairToJson(const BlindPair& pair);
BlindPair BlindPairFromJson(const nlohmann::json& json);
nlohmann::json ShownPairToJson(const ShownPair& pair);
ShownPair ShownPairFromJson(const nlohmann::json& json);
nlohmann::json ResultsToJson(const ReviewResults& results);
ReviewResults ResultsFromJson(const nlohmann::json& json);
nlohmann::json PolicyToJson(const AliasPolicy& policy);
AliasPolicy PolicyFromJson(const nlohmann::json& json);
nlohmann::json PolicyChecksToJson(const std::vector<PolicyCheck>& checks);
std::vector<PolicyCheck> PolicyChecksFromJson(const nlohmann::json& json);
nlohmann::json PromotionToJson(const PromotionRequest& request);
PromotionRequest PromotionFromJson(const nlohmann::json& json);

// JSON text of any of these: bytes that are not UTF-8 (an error message, a model's output)
// become U+FFFD rather than failing.
std::string Dump(const nlohmann::json& value);

}  // namespace tune::wire

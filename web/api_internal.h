// What the parts of the API (api.cpp: the web view's reads and promotions; api_client.cpp: the
// registry's client protocol) share. Private to web/.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "registry/registry.h"
#include "web/api.h"

namespace tune::web_internal {

HttpResponse JsonResponse(const nlohmann::json& value, int status = 200);
// The request's JSON body as an object, or UserError saying it should be `shape`.
nlohmann::json Body(const HttpRequest& request, const char* shape);
// "/a/b" -> {"a", "b"}.
std::vector<std::string> Split(const std::string& path);
// A version number as a path segment or query value: 1 to 18 digits, no sign, no leading zero.
std::optional<int64_t> ParseVersion(const std::string& text);
// A query value as a whole number in [0, max]; `fallback` when absent, nullopt when malformed.
std::optional<int64_t> QueryInt(const HttpRequest& request, const std::string& key,
                                int64_t fallback, int64_t max);
// A JSON number as a whole number in [minimum, 2^53] (2^64 - 1 read as a signed number would be
// -1).
std::optional<int64_t> WholeNumber(const nlohmann::json& value, int64_t minimum);
bool IsRunId(const std::string& text);
// Compares in time that does not depend on where they differ.
bool SameSecret(const std::string& a, const std::string& b);
// A run's status as the web view shows it, with why: a run still marked running whose process
// has ended (its sweep was killed and not resumed, the machine rebooted) is killed.
std::pair<std::string, std::string> ShownStatus(const RunRecord& run);
// The query's ListOptions (name, filter, sort); UserError for an invalid name.
ListOptions ListOptionsOf(const HttpRequest& request);

}  // namespace tune::web_internal

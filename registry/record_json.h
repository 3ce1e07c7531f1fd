// A version record as a JSON value, for callers that add to it or embed it in a larger document
// (the CLI's --json output, tune serve's API) without printing and parsing it again.
// registry.h's VersionRecordToJson is the same value as text.
#pragma once

#include <nlohmann/json.hpp>

#include "registry/registry.h"

namespace tune {

enum class RecordDetail {
  kFull,     // every field: what the registry stores and `tune fetch` writes as tune.json
  kSummary,  // without config_toml, curve and artifact.files: a row of a version list
};

nlohmann::json VersionRecordJson(const VersionRecord& record,
                                 RecordDetail detail = RecordDetail::kFull);

// Parameters (a version's, a run's) as a JSON object and back; a value of another kind (an array,
// a table) reads back as its JSON text, and anything but an object as no parameters.
nlohmann::json ParamsToJson(const std::map<std::string, ParamValue>& params);
std::map<std::string, ParamValue> ParamsFromJson(const nlohmann::json& object);

}  // namespace tune

// DiffVersions: what changed between two versions' lineage, config and scores.
#include <set>
#include <sstream>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include "registry/registry.h"
#include "util/toml_text.h"

namespace tune {
namespace {

std::string ParamText(const ParamValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return "\"" + v + "\"";
        } else if constexpr (std::is_same_v<T, double>) {
          return TomlValueText(toml::value<double>(v));
        } else {
          return std::to_string(v);
        }
      },
      value);
}

// The leaves of a TOML document as "table.key" -> value text; arrays are one leaf.
void Flatten(const toml::table& table, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  for (const auto& [key, node] : table) {
    const std::string path =
        prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
    if (const toml::table* inner = node.as_table()) {
      Flatten(*inner, path, out);
    } else {
      out[path] = TomlValueText(node);  // 0.003 whichever tune wrote the record
    }
  }
}

std::map<std::string, std::string> ConfigLeaves(const std::string& config_toml) {
  std::map<std::string, std::string> leaves;
  if (config_toml.empty()) return leaves;
  try {
    Flatten(toml::parse(config_toml), "", leaves);
  } catch (const toml::parse_error&) {
    leaves["(config_toml)"] = config_toml;  // not TOML: compare it as one block of text
  }
  return leaves;
}

void Compare(const std::map<std::string, std::string>& from,
             const std::map<std::string, std::string>& to, std::vector<ValueChange>& out) {
  std::set<std::string> keys;
  for (const auto& [key, value] : from) keys.insert(key);
  for (const auto& [key, value] : to) keys.insert(key);
  for (const std::string& key : keys) {
    const auto a = from.find(key);
    const auto b = to.find(key);
    std::optional<std::string> va, vb;
    if (a != from.end()) va = a->second;
    if (b != to.end()) vb = b->second;
    if (va != vb) out.push_back({key, va, vb});
  }
}

std::map<std::string, std::string> Attributes(const VersionRecord& r) {
  std::map<std::string, std::string> a = {
      {"method", r.method},
      {"dataset.hash", r.dataset_hash},
      {"dataset.train_examples", std::to_string(r.train_examples)},
      {"dataset.eval_examples", std::to_string(r.eval_examples)},
      {"base_model.name", r.base_model_name},
      {"base_model.path", r.base_model_path},
      {"base_model.hash", r.base_model_hash},
      {"tokenizer_hash", r.tokenizer_hash},
      {"seed", std::to_string(r.seed)},
      {"tune_version", r.tune_version},
      {"run_id", r.run_id},
      {"artifact.digest", r.artifact_digest},
      {"artifact.size_bytes", std::to_string(r.artifact_size_bytes)},
  };
  if (r.sweep) a["sweep"] = *r.sweep;
  if (r.trial) a["trial"] = std::to_string(*r.trial);
  if (r.configuration) a["configuration"] = std::to_string(*r.configuration);
  for (const PluginRef& p : r.plugins) a["plugins." + p.kind + "." + p.name] = p.version;
  return a;
}

}  // namespace

VersionDiff DiffVersions(const VersionRecord& from, const VersionRecord& to) {
  VersionDiff diff;
  diff.from_ref = from.name + ":" + std::to_string(from.version);
  diff.to_ref = to.name + ":" + std::to_string(to.version);
  Compare(Attributes(from), Attributes(to), diff.attributes);

  std::map<std::string, std::string> from_params, to_params;
  for (const auto& [key, value] : from.params) from_params[key] = ParamText(value);
  for (const auto& [key, value] : to.params) to_params[key] = ParamText(value);
  Compare(from_params, to_params, diff.params);
  Compare(ConfigLeaves(from.config_toml), ConfigLeaves(to.config_toml), diff.config);

  std::set<std::string> metrics;
  for (const auto& [metric, value] : from.scores) metrics.insert(metric);
  for (const auto& [metric, value] : to.scores) metrics.insert(metric);
  for (const std::string& metric : metrics) {
    ScoreChange change{metric, std::nullopt, std::nullopt};
    if (const auto it = from.scores.find(metric); it != from.scores.end()) change.from = it->second;
    if (const auto it = to.scores.find(metric); it != to.scores.end()) change.to = it->second;
    diff.scores.push_back(change);
  }

  std::map<std::string, std::string> from_files, to_files;
  for (const ManifestEntry& f : from.files) from_files[f.path] = f.digest;
  for (const ManifestEntry& f : to.files) to_files[f.path] = f.digest;
  std::vector<ValueChange> file_changes;
  Compare(from_files, to_files, file_changes);
  for (const ValueChange& change : file_changes) diff.files_changed.push_back(change.key);
  return diff;
}

std::string VersionDiffToJson(const VersionDiff& diff, int indent) {
  using nlohmann::json;
  const auto changes = [](const std::vector<ValueChange>& list) {
    json out = json::array();
    for (const ValueChange& c : list) {
      out.push_back({{"key", c.key},
                     {"from", c.from ? json(*c.from) : json(nullptr)},
                     {"to", c.to ? json(*c.to) : json(nullptr)}});
    }
    return out;
  };
  json scores = json::array();
  for (const ScoreChange& c : diff.scores) {
    scores.push_back({{"metric", c.metric},
                      {"from", c.from ? json(*c.from) : json(nullptr)},
                      {"to", c.to ? json(*c.to) : json(nullptr)}});
  }
  return json{{"from", diff.from_ref},
              {"to", diff.to_ref},
              {"attributes", changes(diff.attributes)},
              {"params", changes(diff.params)},
              {"config", changes(diff.config)},
              {"scores", scores},
              {"files_changed", diff.files_changed}}
      .dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace tune

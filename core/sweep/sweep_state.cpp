#include "sweep/sweep_state.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

TrialStatus StatusFromName(const std::string& name) {
  if (name == "running") return TrialStatus::kRunning;
  if (name == "finished") return TrialStatus::kFinished;
  if (name == "failed") return TrialStatus::kFailed;
  if (name == "pruned") return TrialStatus::kPruned;
  return TrialStatus::kPending;
}

json AssignmentJson(const Assignment& assignment) {
  json out = json::object();
  for (const auto& [key, value] : assignment) {
    std::visit(
        [&](const auto& v) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(v)>, std::monostate>) out[key] = v;
        },
        value);
  }
  return out;
}

Assignment AssignmentFromJson(const json& j) {
  Assignment out;
  for (const auto& [key, value] : j.items()) {
    if (value.is_boolean()) {
      out[key] = value.get<bool>();
    } else if (value.is_number_integer()) {
      out[key] = value.get<int64_t>();
    } else if (value.is_number()) {
      out[key] = value.get<double>();
    } else if (value.is_string()) {
      out[key] = value.get<std::string>();
    } else if (value.is_array()) {
      out[key] = value.get<std::vector<std::string>>();
    }
  }
  return out;
}

json TrialJson(const Trial& t) {
  json rungs = json::object();
  for (const auto& [step, loss] : t.rung_losses) rungs[std::to_string(step)] = loss;
  json j = {{"number", t.number},
            {"configuration", t.configuration},
            {"repeat", t.repeat},
            {"parameters", AssignmentJson(t.assignment)},
            {"status", TrialStatusName(t.status)},
            {"version", t.version},
            {"wall_seconds", t.wall_seconds},
            {"error", t.error},
            {"pruned_at", t.pruned_at},
            {"rung_losses", rungs},
            {"scores", t.scores},
            {"run_id", t.run_id}};
  if (t.base_objective) j["base_objective"] = *t.base_objective;
  if (t.few_shot_objective) j["few_shot_objective"] = *t.few_shot_objective;
  json attempts = json::array();
  for (const Attempt& a : t.attempts) {
    attempts.push_back({{"job", a.job},
                        {"node", a.node},
                        {"end", a.end},
                        {"error", a.error},
                        {"run_id", a.run_id}});
  }
  j["attempts"] = attempts;
  return j;
}

Trial TrialFromJson(const json& j) {
  Trial t;
  t.number = j.at("number").get<int64_t>();
  t.configuration = j.value("configuration", t.number);
  t.repeat = j.value("repeat", int64_t{0});
  t.assignment = AssignmentFromJson(j.at("parameters"));
  t.status = StatusFromName(j.at("status").get<std::string>());
  t.version = j.at("version").get<int64_t>();
  t.wall_seconds = j.at("wall_seconds").get<double>();
  t.error = j.at("error").get<std::string>();
  t.pruned_at = j.value("pruned_at", int64_t{0});
  if (j.contains("rung_losses")) {
    for (const auto& [step, loss] : j["rung_losses"].items()) {
      t.rung_losses[std::stoll(step)] = loss.get<double>();
    }
  }
  if (j.contains("base_objective")) t.base_objective = j["base_objective"].get<double>();
  if (j.contains("few_shot_objective")) {
    t.few_shot_objective = j["few_shot_objective"].get<double>();
  }
  t.scores = j.value("scores", std::map<std::string, double>());
  t.run_id = j.value("run_id", "");
  for (const json& a : j.value("attempts", json::array())) {
    t.attempts.push_back({a.value("job", ""), a.value("node", ""), a.value("end", ""),
                          a.value("error", ""), a.value("run_id", "")});
  }
  return t;
}

}  // namespace

const char* TrialStatusName(TrialStatus status) {
  switch (status) {
    case TrialStatus::kPending:
      return "pending";
    case TrialStatus::kRunning:
      return "running";
    case TrialStatus::kFinished:
      return "finished";
    case TrialStatus::kFailed:
      return "failed";
    case TrialStatus::kPruned:
      return "pruned";
  }
  return "pending";
}

void SaveSweepState(const fs::path& dir, const SweepState& state) {
  json trials = json::array();
  for (const Trial& t : state.trials) trials.push_back(TrialJson(t));
  const json root = {{"name", state.name},
                     {"file", state.file},
                     {"overrides", state.overrides},
                     {"sweep_sha256", state.sweep_sha256},
                     {"dataset_sha256", state.dataset_sha256},
                     {"repeats", state.repeats},
                     {"finished", state.finished},
                     {"trials", trials}};
  const fs::path temp = dir / "sweep.json.tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << root.dump(1) << '\n';
    if (!out.flush()) throw UserError("cannot write " + temp.string() + " (disk full?)");
  }
  fs::rename(temp, dir / "sweep.json");
}

SweepState LoadSweepState(const fs::path& dir) {
  const fs::path path = dir / "sweep.json";
  try {
    const json root = json::parse(std::ifstream(path));
    SweepState state;
    state.name = root.at("name").get<std::string>();
    state.file = root.value("file", "");
    state.overrides = root.value("overrides", std::vector<std::string>());
    state.sweep_sha256 = root.at("sweep_sha256").get<std::string>();
    state.dataset_sha256 = root.at("dataset_sha256").get<std::string>();
    state.repeats = root.value("repeats", int64_t{1});
    state.finished = root.value("finished", false);
    for (const json& j : root.at("trials")) state.trials.push_back(TrialFromJson(j));
    return state;
  } catch (const json::exception& e) {
    throw UserError(path.string() + " is unreadable (" + e.what() +
                    "); start a new sweep without --resume");
  }
}

}  // namespace tune

#include "sweep/ranking.h"

#include <algorithm>

namespace tune {

std::vector<ConfigurationResult> RankConfigurations(const SweepState& state,
                                                    const std::string& objective, bool maximize,
                                                    const std::map<std::string, Bounds>& bounds) {
  std::map<int64_t, ConfigurationResult> by_number;
  for (const Trial& t : state.trials) {
    ConfigurationResult& c = by_number[t.configuration];
    c.configuration = t.configuration;
    c.assignment = t.assignment;
    c.trials.push_back(&t);
  }
  auto better = [&](double a, double b) { return maximize ? a > b : a < b; };
  std::vector<ConfigurationResult> ranked;
  for (auto& [number, c] : by_number) {
    std::map<std::string, std::vector<double>> values;
    std::vector<double> bases, few_shots;
    for (const Trial* t : c.trials) {
      if (t->status != TrialStatus::kFinished) continue;
      ++c.finished;
      c.wall_seconds += t->wall_seconds;
      for (const auto& [name, value] : t->scores) values[name].push_back(value);
      if (t->base_objective) bases.push_back(*t->base_objective);
      if (t->few_shot_objective) few_shots.push_back(*t->few_shot_objective);
      const auto score = t->scores.find(objective);
      if (score == t->scores.end()) continue;
      if (c.best_trial == nullptr || better(score->second, c.best_trial->scores.at(objective))) {
        c.best_trial = t;
      }
    }
    if (c.finished > 0) c.wall_seconds /= static_cast<double>(c.finished);
    for (const auto& [name, list] : values) {
      const auto range = bounds.find(name);
      c.scores[name] = SpreadOf(list, range == bounds.end() ? Bounds{} : range->second);
    }
    if (const auto it = c.scores.find(objective); it != c.scores.end()) c.objective = it->second;
    if (!bases.empty()) c.base_objective = SpreadOf(bases).mean;
    if (!few_shots.empty()) c.few_shot_objective = SpreadOf(few_shots).mean;
    ranked.push_back(std::move(c));
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [&](const ConfigurationResult& a, const ConfigurationResult& b) {
                     if (a.objective.has_value() != b.objective.has_value()) {
                       return a.objective.has_value();
                     }
                     return a.objective && better(a.objective->mean, b.objective->mean);
                   });
  return ranked;
}

}  // namespace tune

#include "sweep/report.h"

#include <algorithm>
#include <optional>
#include <set>

#include "config/run_config.h"
#include "sweep/ranking.h"
#include "util/duration.h"
#include "util/log.h"

namespace tune {
namespace {

std::string Number(double value) { return Format("%.4f", value); }

std::string Padded(const std::string& text, int width, bool left) {
  const int pad = std::max(0, width - static_cast<int>(text.size()));
  return left ? text + std::string(pad, ' ') : std::string(pad, ' ') + text;
}

// Every score a finished trial has but the objective, in name order.
std::set<std::string> OtherScores(const SweepState& state, const std::string& objective) {
  std::set<std::string> names;
  for (const Trial& t : state.trials) {
    for (const auto& [name, value] : t.scores) {
      if (name != objective) names.insert(name);
    }
  }
  return names;
}

// Appends a space and `text` padded to `width`: a table cell after the first.
void AddCell(std::string& line, const std::string& text, int width, bool left) {
  line += ' ';
  line += Padded(text, width, left);
}

int Column(const std::string& name) { return std::max(10, static_cast<int>(name.size())); }

// The gain over the prompted base model ([eval] few_shot), shown when a trial measured it.
constexpr const char* kFewShotGain = "vs few-shot";
constexpr int kFewShotWidth = 11;

bool HasFewShot(const SweepState& state) {
  return std::any_of(state.trials.begin(), state.trials.end(),
                     [](const Trial& t) { return t.few_shot_objective.has_value(); });
}

// `score` over `baseline`, signed; "-" when either is missing.
std::string Gain(std::optional<double> score, std::optional<double> baseline) {
  return score && baseline ? Format("%+.4f", *score - *baseline) : std::string("-");
}

std::string TrialTable(const SweepState& state, const ReportContext& context) {
  const std::vector<ConfigurationResult> ranked =
      RankConfigurations(state, context.objective, context.maximize, context.bounds);
  const std::set<std::string> others = OtherScores(state, context.objective);
  auto version_text = [&](const Trial& t) {
    return t.version > 0 ? context.adapter_name + ":v" + std::to_string(t.version)
                         : std::string("-");
  };
  int version_width = 7;
  for (const Trial& t : state.trials) {
    version_width = std::max(version_width, static_cast<int>(version_text(t).size()));
  }
  const int objective_width = Column(context.objective);
  std::string text = "\n";
  text += Padded("trial", 6, true);
  AddCell(text, "status", 9, true);
  AddCell(text, "version", version_width, true);
  AddCell(text, context.objective, objective_width, false);
  AddCell(text, "gain", 10, false);
  const bool few_shot = HasFewShot(state);
  if (few_shot) AddCell(text, kFewShotGain, kFewShotWidth, false);
  for (const std::string& name : others) AddCell(text, name, Column(name), false);
  AddCell(text, "wall", 9, false);
  text += "  parameters\n";
  for (const ConfigurationResult& c : ranked) {
    for (const Trial* t : c.trials) {
      std::string score = "-";
      std::optional<double> objective;
      if (const auto it = t->scores.find(context.objective); it != t->scores.end()) {
        score = Number(it->second);
        objective = it->second;
      }
      text += Padded(std::to_string(t->number), 6, true);
      AddCell(text, TrialStatusName(t->status), 9, true);
      AddCell(text, version_text(*t), version_width, true);
      AddCell(text, score, objective_width, false);
      AddCell(text, Gain(objective, t->base_objective), 10, false);
      if (few_shot) AddCell(text, Gain(objective, t->few_shot_objective), kFewShotWidth, false);
      for (const std::string& name : others) {
        const auto it = t->scores.find(name);
        AddCell(text, it == t->scores.end() ? "-" : Number(it->second), Column(name), false);
      }
      AddCell(text, FormatDuration(t->wall_seconds), 9, false);
      text += "  " + ParameterText(t->assignment) + "\n";
    }
  }
  if (!ranked.empty() && ranked.front().best_trial != nullptr) {
    const Trial& best = *ranked.front().best_trial;
    text += "\nbest: " + version_text(best) + " (trial " + std::to_string(best.number) + ", " +
            context.objective + " = " + Number(best.scores.at(context.objective)) + ")\n";
  }
  return text;
}

std::string ConfigurationTable(const SweepState& state, const ReportContext& context) {
  const std::vector<ConfigurationResult> ranked =
      RankConfigurations(state, context.objective, context.maximize, context.bounds);
  const std::set<std::string> others = OtherScores(state, context.objective);
  auto versions_text = [&](const ConfigurationResult& c) {
    std::string text;
    for (const Trial* t : c.trials) {
      if (t->version == 0) continue;
      text += text.empty() ? context.adapter_name + ":v" : ",v";
      text += std::to_string(t->version);
    }
    return text.empty() ? std::string("-") : text;
  };
  int versions_width = 8;
  for (const ConfigurationResult& c : ranked) {
    versions_width = std::max(versions_width, static_cast<int>(versions_text(c).size()));
  }
  const int objective_width = Column(context.objective);
  std::string text = "\n";
  text += Padded("config", 6, true);
  AddCell(text, "trials", 7, true);
  AddCell(text, "versions", versions_width, true);
  AddCell(text, context.objective, objective_width, false);
  AddCell(text, "sd", 8, false);
  const auto objective_bounds = context.bounds.find(context.objective);
  const std::string ci_header =
      "95% CI (" +
      IntervalName(objective_bounds == context.bounds.end() ? Bounds{} : objective_bounds->second) +
      ")";
  const int ci_width = std::max(17, static_cast<int>(ci_header.size()));
  AddCell(text, ci_header, ci_width, true);
  AddCell(text, "gain", 10, false);
  const bool few_shot = HasFewShot(state);
  if (few_shot) AddCell(text, kFewShotGain, kFewShotWidth, false);
  for (const std::string& name : others) AddCell(text, name, Column(name), false);
  AddCell(text, "wall", 9, false);
  text += "  parameters\n";
  for (const ConfigurationResult& c : ranked) {
    std::string mean = "-", sd = "-", ci = "-";
    std::optional<double> objective;
    if (c.objective) {
      mean = Number(c.objective->mean);
      objective = c.objective->mean;
      if (c.objective->count > 1) {
        sd = Number(c.objective->stddev);
        ci = Format("[%.4f, %.4f]", c.objective->ci95_low, c.objective->ci95_high);
      }
    }
    text += Padded(std::to_string(c.configuration), 6, true);
    AddCell(text, std::to_string(c.finished) + "/" + std::to_string(c.trials.size()), 7, true);
    AddCell(text, versions_text(c), versions_width, true);
    AddCell(text, mean, objective_width, false);
    AddCell(text, sd, 8, false);
    AddCell(text, ci, ci_width, true);
    AddCell(text, Gain(objective, c.base_objective), 10, false);
    if (few_shot) AddCell(text, Gain(objective, c.few_shot_objective), kFewShotWidth, false);
    for (const std::string& name : others) {
      const auto it = c.scores.find(name);
      AddCell(text, it == c.scores.end() ? "-" : Number(it->second.mean), Column(name), false);
    }
    AddCell(text, FormatDuration(c.wall_seconds), 9, false);
    text += "  " + ParameterText(c.assignment) + "\n";
  }
  // Trials that did not finish, and why.
  for (const Trial& t : state.trials) {
    if (t.status == TrialStatus::kFailed || t.status == TrialStatus::kPruned) {
      text += "trial " + std::to_string(t.number) + " (configuration " +
              std::to_string(t.configuration) + ", repeat " + std::to_string(t.repeat + 1) + ") " +
              TrialStatusName(t.status) + ": " + t.error + "\n";
    }
  }
  if (!ranked.empty() && ranked.front().best_trial != nullptr) {
    const ConfigurationResult& best = ranked.front();
    const Trial& trial = *best.best_trial;
    text += "\nbest: configuration " + std::to_string(best.configuration) + " (" +
            ParameterText(best.assignment) + "), " + context.objective + " " +
            Number(best.objective->mean);
    if (best.objective->count > 1) {
      text += " ± " + Number(best.objective->stddev) + " over " +
              std::to_string(best.objective->count) + " repeats (95% CI " +
              Number(best.objective->ci95_low) + " to " + Number(best.objective->ci95_high) + ")";
    } else {
      text += " from 1 repeat";
    }
    text += "; its best repeat " + context.adapter_name + ":v" + std::to_string(trial.version) +
            " (trial " + std::to_string(trial.number) + ", " + context.objective + " = " +
            Number(trial.scores.at(context.objective)) + ")\n";
  }
  return text;
}

// Every trial's attempts, when one ran under Slurm or more than once: where, and why each ended.
std::string AttemptLines(const SweepState& state) {
  const bool worth_it = std::any_of(state.trials.begin(), state.trials.end(), [](const Trial& t) {
    return t.attempts.size() > 1 || std::any_of(t.attempts.begin(), t.attempts.end(),
                                                [](const Attempt& a) { return !a.job.empty(); });
  });
  if (!worth_it) return "";
  std::string text = "\nwhere each trial ran, attempt by attempt:\n";
  for (const Trial& t : state.trials) {
    if (t.attempts.empty()) continue;
    text += "  trial " + std::to_string(t.number) + ":";
    for (size_t i = 0; i < t.attempts.size(); ++i) {
      const Attempt& a = t.attempts[i];
      const std::string place = PlaceText(a.node, a.job);
      text += (i == 0 ? " " : "; ") + std::to_string(i + 1) + ". " +
              (place.empty() ? "where unknown" : place) + " " + (a.end.empty() ? "running" : a.end);
      if (!a.error.empty() && a.end != "finished" && a.end != "pruned")
        text += " (" + a.error + ")";
    }
    text += "\n";
  }
  return text;
}

}  // namespace

std::string ParameterText(const Assignment& assignment) {
  std::string text;
  for (const auto& [key, value] : assignment) {
    if (!text.empty()) text += ' ';
    text += OverrideText(key, value);
  }
  return text;
}

std::string PlaceText(const std::string& node, const std::string& job) {
  if (job.empty()) return node;
  return (node.empty() ? "" : node + " ") + "(job " + job + ")";
}

std::string ProgressLine(const SweepState& state, const ReportContext& context,
                         int64_t total_trials, int64_t training, double elapsed_seconds,
                         int64_t queued) {
  int64_t finished = 0, failed = 0, pruned = 0;
  for (const Trial& t : state.trials) {
    finished += t.status == TrialStatus::kFinished;
    failed += t.status == TrialStatus::kFailed;
    pruned += t.status == TrialStatus::kPruned;
  }
  const int64_t done = finished + failed + pruned;
  std::string best = "-";
  const std::vector<ConfigurationResult> ranked =
      RankConfigurations(state, context.objective, context.maximize, context.bounds);
  if (!ranked.empty() && ranked.front().objective) {
    const ConfigurationResult& c = ranked.front();
    if (state.repeats > 1) {
      best = Number(c.objective->mean) +
             (c.objective->count > 1 ? " ± " + Number(c.objective->stddev) : std::string()) +
             " (configuration " + std::to_string(c.configuration) + ", " +
             std::to_string(c.objective->count) + " of " + std::to_string(c.trials.size()) +
             " repeats)";
    } else {
      best = Number(c.objective->mean) + " (trial " + std::to_string(c.best_trial->number) + ")";
    }
  }
  const double eta = done > 0 ? elapsed_seconds / static_cast<double>(done) *
                                    static_cast<double>(std::max<int64_t>(0, total_trials - done))
                              : 0.0;
  return "sweep " + state.name + ": " + std::to_string(done) + "/" + std::to_string(total_trials) +
         " done, " + std::to_string(training) + " running, " +
         (queued > 0 ? std::to_string(queued) + " queued, " : std::string()) +
         std::to_string(failed) + " failed, " + std::to_string(pruned) + " pruned, best " +
         context.objective + " " + best + ", elapsed " + FormatDuration(elapsed_seconds) +
         ", ETA " + (done > 0 ? FormatDuration(eta) : std::string("?"));
}

std::string RankingTable(const SweepState& state, const ReportContext& context) {
  std::string text =
      state.repeats > 1 ? ConfigurationTable(state, context) : TrialTable(state, context);
  return text + AttemptLines(state);
}

}  // namespace tune

#include "sweep/scheduler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "sweep/ranking.h"

namespace tune {

bool AshaKeeps(std::vector<double> means_at_rung, double mine, int64_t eta) {
  std::sort(means_at_rung.begin(), means_at_rung.end());
  const size_t kept = static_cast<size_t>(
      std::ceil(static_cast<double>(means_at_rung.size()) / static_cast<double>(eta)));
  return kept > 0 && mine <= means_at_rung[kept - 1];
}

SweepScheduler::SweepScheduler(SchedulePlan plan, SweepState& state, Propose propose)
    : plan_(std::move(plan)), state_(state), propose_(std::move(propose)) {}

Trial& SweepScheduler::trial(int64_t number) {
  return state_.trials.at(static_cast<size_t>(number - 1));
}

bool SweepScheduler::readied(int64_t number) const {
  const auto it = live_.find(number);
  return it != live_.end() && !it->second.training;
}

std::vector<int64_t> SweepScheduler::live() const {
  std::vector<int64_t> numbers;
  for (const auto& [number, live] : live_) numbers.push_back(number);
  return numbers;
}

int64_t SweepScheduler::configurations_made() const {
  return state_.trials.empty() ? 0 : state_.trials.back().configuration;
}

void SweepScheduler::AddConfiguration() {
  std::vector<FinishedTrial> finished;
  for (const ConfigurationResult& c : RankConfigurations(state_, plan_.objective, plan_.maximize)) {
    const bool settled = std::all_of(c.trials.begin(), c.trials.end(), [](const Trial* t) {
      return t->status == TrialStatus::kFinished || t->status == TrialStatus::kFailed ||
             t->status == TrialStatus::kPruned;
    });
    if (settled && c.objective) {
      finished.push_back({c.assignment, plan_.maximize ? c.objective->mean : -c.objective->mean});
    }
  }
  const int64_t configuration = configurations_made() + 1;
  const Assignment assignment = propose_(configuration - 1, finished);
  for (int64_t repeat = 0; repeat < plan_.repeats; ++repeat) {
    Trial t;
    t.number = static_cast<int64_t>(state_.trials.size()) + 1;
    t.configuration = configuration;
    t.repeat = repeat;
    t.assignment = assignment;
    state_.trials.push_back(std::move(t));
  }
}

Trial* SweepScheduler::NextCandidate() {
  for (Trial& t : state_.trials) {
    if (!live_.contains(t.number) &&
        (t.status == TrialStatus::kRunning || t.status == TrialStatus::kPending)) {
      return &t;
    }
  }
  if (configurations_made() >= plan_.configurations) return nullptr;
  AddConfiguration();
  return NextCandidate();
}

int SweepScheduler::FreeSlot() const {
  std::vector<bool> used(static_cast<size_t>(plan_.slots), false);
  for (const auto& [number, live] : live_) {
    if (live.slot >= 0) used[static_cast<size_t>(live.slot)] = true;
  }
  return static_cast<int>(std::find(used.begin(), used.end(), false) - used.begin());
}

SweepScheduler::Actions SweepScheduler::Next(bool room_to_ready) {
  Actions actions;
  int64_t training = 0;
  std::optional<int64_t> ready;
  for (const auto& [number, live] : live_) {
    training += live.training;
    if (!live.training) ready = number;
  }
  if (ready && training < plan_.slots) {
    Live& live = live_[*ready];
    live.training = true;
    live.slot = FreeSlot();
    trial(*ready).status = TrialStatus::kRunning;
    actions.go.push_back({*ready, live.slot});
    ready.reset();
    ++training;
  }
  while (training < plan_.slots) {
    Trial* t = NextCandidate();
    if (t == nullptr) break;
    const int slot = FreeSlot();
    live_[t->number] = {true, slot};
    t->status = TrialStatus::kRunning;
    t->attempts.emplace_back();
    actions.launch.push_back({t->number, false, slot});
    ++training;
  }
  if (!ready && training == plan_.slots && plan_.ready_ahead && room_to_ready) {
    if (Trial* t = NextCandidate()) {
      live_[t->number] = {false, -1};
      t->attempts.emplace_back();
      actions.launch.push_back({t->number, true, -1});
    }
  }
  return actions;
}

TrialVerdict SweepScheduler::Evaluated(int64_t number, int64_t step, double eval_loss) {
  Trial& t = trial(number);
  char reason[160];
  // A repeat still training when its configuration was pruned stops at its next eval.
  for (const Trial& other : state_.trials) {
    if (other.configuration == t.configuration && other.status == TrialStatus::kPruned) {
      t.status = TrialStatus::kPruned;
      t.pruned_at = step;
      t.error = other.error;
      return {false, t.error};
    }
  }
  if (!std::binary_search(plan_.rungs.begin(), plan_.rungs.end(), step)) return {true, ""};
  t.rung_losses[step] = eval_loss;
  // Each configuration's mean over its repeats that reached this rung.
  std::map<int64_t, std::vector<double>> losses;
  for (const Trial& other : state_.trials) {
    if (const auto it = other.rung_losses.find(step); it != other.rung_losses.end()) {
      losses[other.configuration].push_back(it->second);
    }
  }
  std::vector<double> means;
  double mine = 0.0;
  for (const auto& [configuration, list] : losses) {
    const double mean = SpreadOf(list).mean;
    means.push_back(mean);
    if (configuration == t.configuration) mine = mean;
  }
  if (AshaKeeps(means, mine, plan_.eta)) return {true, ""};
  if (plan_.repeats == 1) {
    std::snprintf(reason, sizeof(reason), "pruned at step %lld (eval_loss %.4f)",
                  static_cast<long long>(step), eval_loss);
  } else {
    std::snprintf(reason, sizeof(reason),
                  "pruned at step %lld (configuration %lld: mean eval_loss %.4f over %zu "
                  "repeats)",
                  static_cast<long long>(step), static_cast<long long>(t.configuration), mine,
                  losses[t.configuration].size());
  }
  // The configuration stops: this trial now, its repeats that have not started never, and those
  // still training at their next eval.
  for (Trial& other : state_.trials) {
    if (other.configuration != t.configuration) continue;
    const bool unstarted =
        !live_.contains(other.number) &&
        (other.status == TrialStatus::kPending || other.status == TrialStatus::kRunning);
    if (other.number == number || unstarted) {
      other.status = TrialStatus::kPruned;
      other.pruned_at = step;
      other.error = reason;
    }
  }
  return {false, reason};
}

void SweepScheduler::Finished(int64_t number, const TrialDone& done) {
  Trial& t = trial(number);
  t.status = TrialStatus::kFinished;
  t.version = done.version;
  t.scores = done.scores;
  t.wall_seconds = done.wall_seconds;
  t.error.clear();
  if (const auto it = done.base_scores.find(plan_.objective); it != done.base_scores.end()) {
    t.base_objective = it->second;
  }
  if (const auto it = done.few_shot_scores.find(plan_.objective);
      it != done.few_shot_scores.end()) {
    t.few_shot_objective = it->second;
  }
}

bool SweepScheduler::Ended(int64_t number, AttemptEnd end, const std::string& failure,
                           double wall_seconds) {
  live_.erase(number);
  Trial& t = trial(number);
  if (t.attempts.empty()) t.attempts.emplace_back();  // a sweep.json from before attempts
  Attempt& attempt = t.attempts.back();
  if (t.status == TrialStatus::kFinished || t.status == TrialStatus::kPruned) {
    attempt.end = AttemptEndName(t.status == TrialStatus::kFinished ? AttemptEnd::kFinished
                                                                    : AttemptEnd::kPruned);
    return false;
  }
  // A clean exit without a result is the trial's own failure; so is one that ran out of memory.
  if (end == AttemptEnd::kFinished || end == AttemptEnd::kPruned) end = AttemptEnd::kFailed;
  attempt.end = AttemptEndName(end);
  attempt.error = failure.empty() ? "ended without reporting a result" : failure;
  t.error = attempt.error;
  t.wall_seconds = wall_seconds;
  const auto attempts = static_cast<int64_t>(t.attempts.size());
  if (AttemptRetryable(end) && attempts <= plan_.max_retries) {
    t.status = TrialStatus::kPending;
    return true;
  }
  t.status = TrialStatus::kFailed;
  if (AttemptRetryable(end) && plan_.max_retries > 0) {
    t.error += " (attempt " + std::to_string(attempts) + " of " +
               std::to_string(1 + plan_.max_retries) + "; no retries left)";
  }
  return false;
}

void SweepScheduler::Adopt(int64_t number) {
  live_[number] = {true, FreeSlot()};
  Trial& t = trial(number);
  t.status = TrialStatus::kRunning;
  if (t.attempts.empty()) t.attempts.emplace_back();
}

bool SweepScheduler::done() const {
  if (!live_.empty()) return false;
  for (const Trial& t : state_.trials) {
    if (t.status == TrialStatus::kPending || t.status == TrialStatus::kRunning) return false;
  }
  return configurations_made() >= plan_.configurations;
}

}  // namespace tune

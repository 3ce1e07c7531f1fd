// What tune sweep prints about its trials: the progress line and the final ranking. Text, so the
// tests read it as a person would. No libtorch.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "sweep/sweep_state.h"
#include "util/spread.h"

namespace tune {

struct ReportContext {
  std::string adapter_name;  // versions are NAME:vN
  std::string objective;
  bool maximize = true;
  std::map<std::string, Bounds> bounds = {};  // each score's range, for its intervals
};

// "sweep s-1: 2/6 done, 1 running, 0 failed, 0 pruned, best eval_loss 1.2345 (trial 2), elapsed
// 0:00:10, ETA 0:00:20", where 6 is `total_trials` (the search's size times its repeats) and the
// best is a configuration's mean with its standard deviation when it has repeats. `queued`
// trials wait in a cluster's queue ("3 queued" follows "running" when there are any).
std::string ProgressLine(const SweepState& state, const ReportContext& context,
                         int64_t total_trials, int64_t training, double elapsed_seconds,
                         int64_t queued = 0);

// Where an attempt runs or ran: "node7 (job 1234_5)", "node7", "(job 1234_5)" while it waits, or
// "" when nothing is known.
std::string PlaceText(const std::string& node, const std::string& job);

// The ranking, best first, and the best version. One row per trial when each configuration runs
// once; with repeats, one row per configuration: its repeats finished, their versions, and each
// score's mean, the objective's standard deviation and 95% confidence interval too (the header
// names the interval: Student's t, cut at the objective's bounds when it has them). When a trial
// ran under Slurm or more than once, every trial's attempts follow: where each ran and why it
// ended.
std::string RankingTable(const SweepState& state, const ReportContext& context);

// "adapter.alpha=4 adapter.rank=2": the swept values as overrides.
std::string ParameterText(const Assignment& assignment);

}  // namespace tune

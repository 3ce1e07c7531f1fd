// SweepScheduler: which trial trains when, on which slot, and which stops early. It is a plain
// state machine over a SweepState: events in, decisions out, no processes and no clocks, so every
// decision is testable on its own (tests/core/sweep/scheduler_test.cpp). The driver (sweep.cpp)
// carries the decisions out with a TrialRunner and reports back what happened.
//
// Order: a free slot takes the trial readied ahead, then trials interrupted by a killed sweep
// (status running without a process), then pending ones, then the next configuration's repeats.
// Early stopping is ASHA (Li et al. 2020) over configurations: at each rung, a configuration goes
// on only if its mean eval loss over the repeats that reached the rung is among the best 1/eta of
// the configurations' means there; a pruned configuration's remaining repeats do not run.
//
// Retries: every launch is an attempt (Trial::attempts). An attempt that ends without a result and
// without the trial's fault (orchestrate/attempt.h: a lost node, a preemption, a cancellation, a
// trial that stopped reporting) puts the trial back among the pending ones, first in line, until
// it has had 1 + max_retries attempts; then it fails.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "orchestrate/attempt.h"
#include "orchestrate/trial_channel.h"
#include "sweep/search.h"
#include "sweep/sweep_state.h"

namespace tune {

struct SchedulePlan {
  int64_t configurations = 0;  // at most this many (a grid's size, capped by max_trials)
  int64_t repeats = 1;         // trials per configuration, seeds train.seed + 0 .. repeats - 1
  int64_t slots = 1;           // trials that train at once
  // Whether the next trial may load while every slot trains (it then waits for its go).
  bool ready_ahead = false;
  std::vector<int64_t> rungs;  // early-stopping steps, ascending; empty: none
  int64_t eta = 3;
  std::string objective;
  bool maximize = true;
  int64_t max_retries = 0;  // more attempts per trial after a retryable end
};

// Whether a configuration whose mean eval loss at a rung is `mine` goes on, given the means of
// every configuration that reached the rung (`mine` among them): it must be among the best
// ceil(n / eta), lower being better.
bool AshaKeeps(std::vector<double> means_at_rung, double mine, int64_t eta);

class SweepScheduler {
 public:
  // The swept values of configuration `index` (0-based), from the configurations finished so far
  // (objective larger is better; the mean over each one's finished repeats).
  using Propose =
      std::function<Assignment(int64_t index, const std::vector<FinishedTrial>& finished)>;

  // `state` may hold trials already (a resumed sweep); the scheduler adds and updates them.
  SweepScheduler(SchedulePlan plan, SweepState& state, Propose propose);

  struct Launch {
    int64_t trial = 0;
    bool ready_ahead = false;  // load now, go later; otherwise go at once
    int slot = -1;             // the slot it trains on; -1 until its go when readied ahead
  };
  struct Go {
    int64_t trial = 0;  // a trial readied ahead, to let train now
    int slot = -1;
  };
  struct Actions {
    std::vector<Go> go;
    std::vector<Launch> launch;
  };
  // What to do now. `room_to_ready`: memory holds one more loaded trial besides the running ones.
  Actions Next(bool room_to_ready);

  // A trial reported its eval loss at `step`; whether it goes on.
  TrialVerdict Evaluated(int64_t trial, int64_t step, double eval_loss);
  // A trial reported its registered version.
  void Finished(int64_t trial, const TrialDone& done);
  // A trial's attempt ended: `end` as its runner saw it, and `failure` its account when the trial
  // reported no result (empty: it exited cleanly without one). A finished or pruned trial stays
  // so whatever the end. Returns whether the trial will be attempted again.
  bool Ended(int64_t trial, AttemptEnd end, const std::string& failure, double wall_seconds);

  // A trial whose process outlived an earlier driver (a Slurm job) is live again, on a slot, as
  // the attempt it is on. Call before the first Next().
  void Adopt(int64_t trial);

  Trial& trial(int64_t number);
  bool readied(int64_t number) const;  // loaded ahead, waiting for its go
  std::vector<int64_t> live() const;   // trials with a process, by number

  // No trial has a process and none is left to start.
  bool done() const;
  // Every trial the sweep will run when nothing fails or is pruned: configurations x repeats.
  int64_t total_trials() const { return plan_.configurations * plan_.repeats; }

 private:
  struct Live {
    bool training = false;  // false: readied ahead, waiting for its go
    int slot = -1;
  };
  Trial* NextCandidate();
  int FreeSlot() const;
  void AddConfiguration();
  int64_t configurations_made() const;

  SchedulePlan plan_;
  SweepState& state_;
  Propose propose_;
  std::map<int64_t, Live> live_;
};

}  // namespace tune

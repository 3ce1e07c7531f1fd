// Attempts: a trial runs once, or again after an attempt that ended without its fault (its node
// failed, Slurm preempted or cancelled it, it stopped reporting). Why each attempt ended is one
// word, the same in sweep.json, the run's record (RunRecord::end_reason) and the web view. No
// libtorch, no processes: what is retried is decided here, on data.
#pragma once

#include <optional>
#include <string_view>

namespace tune {

enum class AttemptEnd {
  kFinished,     // exited cleanly (it registered, or was told to stop)
  kPruned,       // early stopping's verdict stopped it
  kFailed,       // its own error (bad input, a bug): another attempt would fail the same way
  kInterrupted,  // SIGTERM or SIGINT: it checkpointed and exited (a time limit or preemption near)
  kCancelled,    // scancel
  kPreempted,    // Slurm preempted it
  kRequeued,     // Slurm put it back in its queue (scontrol requeue, a node failure)
  kTimeLimit,    // killed at its time limit
  kNodeFailure,  // its node failed
  kOutOfMemory,  // killed for its memory: another attempt needs more (sweep.executor.mem)
  kKilled,       // a signal, with no scheduler's word for it
  kHeartbeatLost,  // it stopped reporting (sweep.executor.heartbeat_timeout_seconds)
  kLost,           // the scheduler forgot it and it did not say how it ended
};

// finished, pruned, failed, interrupted, cancelled, preempted, requeued, time_limit,
// node_failure, out_of_memory, killed, heartbeat_lost, lost
std::string_view AttemptEndName(AttemptEnd end);
std::optional<AttemptEnd> AttemptEndFromName(std::string_view name);

// Whether another attempt may succeed where this one ended: not after the trial's own error, nor
// after running out of memory (it would again), nor after a result.
bool AttemptRetryable(AttemptEnd end);

}  // namespace tune

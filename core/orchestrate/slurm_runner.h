// Trials as the tasks of Slurm job arrays; the driver stays where `tune sweep` runs (a login node,
// or a job of its own) and keeps every decision (scheduler.h), while Slurm keeps the machines.
//
// Start submits its trials as one array (slurm.h: the script is kept in <sweep>/slurm/), task N
// running trial N, at most array_parallelism at once. A task connects back over TCP
// (remote_channel.h, <sweep>/slurm/driver.json) and is then a trial like a local one. A trial run
// again (TrialLaunch::job: its previous task) is requeued in its array while Slurm still holds it
// (scontrol requeue), and submitted anew otherwise. What Slurm says of the tasks comes from one
// squeue or sacct call for all of them at a time, soon after something changed (a trial's channel
// closed) and then less and less often, up to every 30 s.
//
// An attempt ends (RunningTrial::Exited) when its channel has closed and Slurm says how the task
// ended; when Slurm runs it again (a node failure, scontrol requeue: requeued); when it has been
// silent, or running without ever connecting, for heartbeat_timeout_seconds (it is cancelled:
// heartbeat_lost); or when Slurm no longer knows it (lost). A trial a driver adopts that was
// already running trains alone (trial.h): it never connects, and nothing is expected of it.
//
// Threads: one. Destroying the runner leaves its trials to Slurm: they go on alone.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "config/run_config.h"
#include "orchestrate/slurm.h"
#include "orchestrate/trial_runner.h"

namespace tune {

struct SlurmRunnerSetup {
  ExecutorConfig executor;
  std::string sweep;          // <name>-<N>, for the job name
  std::filesystem::path dir;  // the sweep's folder; the runner writes <dir>/slurm/
  std::string tune;           // the tune executable the tasks run (on the shared filesystem)
  // The host name the nodes reach this process at; empty: executor.driver_address, else HostName().
  std::string host;
  // The clock heartbeats and the query back-off read; tests move their own.
  std::function<std::chrono::steady_clock::time_point()> now = std::chrono::steady_clock::now;
};

// The driver's connection file, <dir>/slurm/driver.json, which the tasks are given (--driver).
std::filesystem::path DriverFile(const std::filesystem::path& sweep_dir);

// Listens for the trials (a TCP port), writes the connection file with a new secret, and takes
// over from any earlier driver of the sweep: tasks that start from now on connect here. Throws
// UserError when it cannot listen or write.
std::unique_ptr<TrialRunner> MakeSlurmRunner(SlurmRunnerSetup setup,
                                             std::unique_ptr<SlurmCommands> slurm);

}  // namespace tune

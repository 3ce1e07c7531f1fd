// Slurm as tune uses it: trials submitted as job arrays with sbatch (one batch script, kept in the
// sweep folder, whose task N runs trial N), watched with one squeue or sacct call for all of them,
// run again with scontrol requeue, stopped with scancel. The script's options, the parsing of the
// tools' output and how a task's end reads as an attempt's end are plain functions, tested on
// text; SlurmCommands runs the tools themselves.
//
// Accounting: sacct answers where the cluster keeps accounts (slurmdbd). Where it does not, squeue
// answers for the jobs the controller still holds (MinJobAge after they end), and the job
// completion log (sacct --completion, with JobCompType=jobcomp/filetxt) for older ones, by the
// tasks' own job ids; past that, the trials' own reports are all there is.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/run_config.h"
#include "orchestrate/attempt.h"

namespace tune {

// One task of a job array (or a job of its own) as Slurm reports it.
struct SlurmTask {
  std::string id;      // "1234_5": task 5 of array 1234; a plain job's number otherwise
  std::string raw_id;  // the task's own job number ("1240"), once it has one
  std::string state;   // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, ...
  std::string node;    // where it runs or ran; empty while pending
  int exit_code = 0;   // its exit status
  int signal = 0;      // the signal that ended it, or 0
  bool operator==(const SlurmTask&) const = default;
};

// `sacct -X -n -P -o JobID,JobIDRaw,State,ExitCode,NodeList`: one task a line, and a range of
// tasks not yet started ("1234_[6-9%2]") as each of them, PENDING; "CANCELLED by 0" is CANCELLED.
std::vector<SlurmTask> ParseSacct(std::string_view text);
// `squeue -h -r -t all -O JobID:|,ArrayJobID:|,ArrayTaskID:|,State:|,NodeList:|,exit_code:|`,
// whose exit code is a wait status (768 is exit status 3).
std::vector<SlurmTask> ParseSqueue(std::string_view text);
// `sacct --completion -n -P -o JobID,State,ExitCode,NodeList`: the job completion log knows tasks
// by their own job ids (raw_id; id is left empty).
std::vector<SlurmTask> ParseJobCompletions(std::string_view text);

// Whether Slurm is done with the task (it will not run again unless requeued).
bool SlurmTaskEnded(const SlurmTask& task);
// Whether Slurm has put a task that ran back in its queue (REQUEUED, or pending again).
bool SlurmTaskRequeued(const SlurmTask& task);
// How an ended task reads as an attempt's end: COMPLETED is finished; FAILED is the trial's own
// failure, unless its status says it checkpointed on a signal (130, 143: interrupted) or a
// signal killed it; CANCELLED, PREEMPTED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY are what they say.
AttemptEnd SlurmAttemptEnd(const SlurmTask& task);

// The #SBATCH options of every trial task: the executor's keys, then its sbatch_args as they are.
// --requeue lets tune (scontrol requeue) and Slurm (after a node failure) run a task again;
// --signal asks for SIGTERM signal_seconds before the time limit.
std::vector<std::string> SbatchOptions(const ExecutorConfig& executor);

// A batch script of trials: task N runs trial N.
struct ArrayScript {
  std::string sweep;                 // the sweep's name, for the job name and comments
  std::vector<std::string> options;  // #SBATCH lines (SbatchOptions, then --array and --output)
  std::string tune;                  // the tune executable
  struct Task {
    int64_t trial = 0;
    std::vector<std::string> train_args;   // after the executable: {"train", FILE, ...}
    std::filesystem::path run_dir;         // where it continues from a checkpoint, if it has one
    std::vector<std::string> driver_args;  // how it reaches the driver
  };
  std::vector<Task> tasks;
};
// The script's text: bash, every argument single-quoted, readable and runnable by a person
// (`sbatch FILE` submits it again; `SLURM_ARRAY_TASK_ID=3 bash FILE` runs trial 3 here).
std::string RenderArrayScript(const ArrayScript& script);
// "3,5,8-11": the tasks of an array, for --array.
std::string ArrayIndices(std::vector<int64_t> trials);

// What tune asks of Slurm. One thread.
class SlurmCommands {
 public:
  virtual ~SlurmCommands() = default;
  // Submits a batch script; returns its job (array) id. Throws UserError with sbatch's complaint.
  virtual std::string Submit(const std::filesystem::path& script) = 0;
  // What Slurm knows of the tasks of `arrays` (job ids), and of the tasks that ran as `raw_ids`
  // (for the completion log, when the controller has forgotten them). One call each way at most.
  virtual std::vector<SlurmTask> Query(const std::vector<std::string>& arrays,
                                       const std::vector<std::string>& raw_ids) = 0;
  // Puts an ended (or running) task back in its queue (see Release). False when Slurm refuses (it
  // has forgotten the task, or the cluster does not allow requeueing).
  virtual bool Requeue(const std::string& task) = 0;
  // Lets a task that waits in the queue start now: Slurm holds a requeued job back for two minutes
  // (its credential's lifetime). Not in the second its last run ended: a node refuses the job
  // then ("Job credential revoked", and the job fails).
  virtual void Release(const std::string& task) = 0;
  virtual void Cancel(const std::string& task) = 0;
};

// The tools on PATH (SLURM_CONF, if set, names the cluster's configuration for them).
std::unique_ptr<SlurmCommands> MakeSlurmCommands();

// Checks before a sweep makes anything that Slurm would take its `trials`: sbatch is on PATH, the
// partition exists, `sbatch --test-only` accepts the options, and trial numbers fit the cluster's
// arrays (task N runs trial N; MaxArraySize). Each refusal is one line naming the executor's key
// where the file sets it (sweep.executor.partition at sweep.toml:14:13).
void CheckSlurmExecutor(const ExecutorConfig& executor, int64_t trials);

// "MaxArraySize = 1001" in `scontrol show config`: array tasks are numbered below it. nullopt
// when the text does not say.
std::optional<int64_t> ParseMaxArraySize(std::string_view show_config);

}  // namespace tune

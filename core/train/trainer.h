// The trainer: one trial, from a resolved run config to an evaluated adapter directory.
//
// Everything a trial writes lives in its run directory:
//   checkpoints/step-N/   trainable tensors, optimizer state, RNG and data position (atomic:
//                         written under a temporary name and renamed)
//   metrics.jsonl         one JSON object per step ({"step", "loss", "lr", ...}) and per eval
//   eval_samples.jsonl    prompt, reference, generated output and per-example scores of each
//                         eval example, with the base model's output and scores beside them
//   adapter/              the deployable result (Adapter::Save), written last
//   summary.json          scores, base scores, timings, lineage
//   dataset_rows.txt      the training file's rows as read (RowHashesText), and
//   data_quality.json     its `tune data inspect` report: what registers the dataset version
// and, with TrainOptions::base_scores_dir, the base model's scores and outputs shared between runs.
// On CPU, the same config and data give bit-identical results, and a run killed at any moment
// and resumed gives the same adapter as one that was never interrupted.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/run_config.h"
#include "registry/registry.h"  // CurvePoint

namespace tune {

class PluginHost;

struct StepReport {
  int64_t step = 0;  // 1-based: optimizer steps completed
  int64_t total_steps = 0;
  double loss = 0.0;  // mean over the step's target tokens
  double lr = 0.0;
  double grad_norm = 0.0;  // before clipping
  double tokens_per_second = 0.0;
  double elapsed_seconds = 0.0;  // training loop time of this process, resumed part included
  bool operator==(const StepReport&) const = default;
};

struct TrainSummary {
  std::map<std::string, double> scores;       // eval_loss, perplexity, each metric
  std::map<std::string, double> base_scores;  // the same for the base model without training
  // The generation metrics of the base model prompted with `few_shot` training examples
  // ([eval] few_shot); empty when it is 0.
  std::map<std::string, double> few_shot_scores;
  int64_t few_shot = 0;
  std::vector<CurvePoint> curve;
  std::string dataset_sha256;
  std::string eval_sha256;  // set when the eval split is its own file
  int64_t train_examples = 0;
  int64_t eval_examples = 0;
  int64_t skipped_rows = 0;
  std::string data_quality;                     // data/quality.h's summary of the training file
  std::map<std::string, int64_t> dropped_rows;  // by [dataset.quality], by reason
  double train_seconds = 0.0;                   // the training loop alone
  double wall_seconds = 0.0;                    // this process's whole trial
  double tokens_per_second = 0.0;
  int64_t trainable_parameters = 0;   // elements the optimizer updates (the adapter's, or all)
  int64_t peak_memory_bytes = 0;      // peak resident set of the process
  int64_t peak_gpu_memory_bytes = 0;  // peak of libtorch's CUDA allocator; 0 on the CPU
  std::filesystem::path adapter_dir;
};

struct TrainOptions {
  std::filesystem::path run_dir;
  bool resume = false;   // continue from the last checkpoint in run_dir
  bool restart = false;  // delete what run_dir holds and start over
  bool force = false;    // resume although the config or data changed
  // When set, runs share base-model scores through this folder: a run whose base model (files,
  // plugin, options, adapter method, device), eval examples, metrics and generation budget match
  // a stored measurement reads it instead of evaluating the base model again, and a run that
  // measures stores what it found. tune sweep gives all its trials one folder.
  std::filesystem::path base_scores_dir;
  // Called once the run is prepared (plugins, model and data loaded on the CPU) and before it
  // touches the device or evaluates anything; the run goes on when it returns. tune sweep starts
  // the next trial this way while the current one trains, so loading is off the critical path.
  // Its waiting time is not counted in the summary's wall_seconds.
  std::function<void()> wait_for_turn;
  // Called after every step and every intermediate eval (when train.eval_every is set).
  std::function<void(const StepReport&)> on_step;
  std::function<void(int64_t step, double eval_loss)> on_eval;
};

// The summary a finished run wrote to run_dir/summary.json. Throws UserError if there is none.
TrainSummary ReadSummary(const std::filesystem::path& run_dir);

// The resolved config a run folder holds (run.toml, written once the run is prepared); nullopt
// when it holds none.
std::optional<std::string> RunFolderConfig(const std::filesystem::path& run_dir);

// Whether the run folder's run.toml holds `config` (as this or an earlier tune wrote it).
bool RunFolderHoldsConfig(const std::filesystem::path& run_dir, const RunConfig& config);

// Runs the trial. Throws UserError with one line for anything the user can fix (bad data, a run
// directory that holds another run, a resume whose config or data changed, a plugin failure);
// what was written so far stays in run_dir for inspection.
TrainSummary Train(const RunConfig& config, const PluginHost& host, const TrainOptions& options);

}  // namespace tune

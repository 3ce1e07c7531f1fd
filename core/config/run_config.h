// RunConfig: a run or sweep file (DESIGN section 4), checked and typed.
//
// Reading happens in two steps because the file names its own plugin folders: RunFile::Read parses
// the TOML and applies command-line overrides; the caller loads plugins from PluginPaths(); then
// Resolve checks every section against tune's keys and each named plugin's declared options.
// Every refusal is a UserError of one line: file:line:column, the key, what was expected.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tune/metric.h"
#include "tune/options.h"

namespace tune {

class PluginHost;

// Relative paths are resolved against the directory of the file that contains them.
struct ModelConfig {
  std::string plugin;
  std::filesystem::path path;  // a model directory (HF layout)
  Options options;             // the model plugin's own options
};

// [dataset.quality]: filters applied to the training file before the eval split, and gates the
// rows kept must pass (data/quality.h defines what each finds).
struct DataQualityConfig {
  std::string dedup = "off";  // "off", "exact", or "near" (near-duplicates and exact ones)
  double near_threshold = 0.8;
  bool drop_conflicts = false;
  bool drop_empty = false;
  int64_t max_tokens = 0;               // 0: no limit (train.seq_len still refuses longer rows)
  double max_duplicate_fraction = 1.0;  // gate: 1 lets everything through
  int64_t max_conflicts = -1;           // gate: -1 lets everything through
};

struct DatasetConfig {
  std::string plugin;
  std::string name;  // the registry's name for the training file; empty: DatasetName(path)
  std::filesystem::path path;
  std::optional<std::filesystem::path> eval_path;  // explicit eval file; replaces eval_fraction
  double eval_fraction = 0.0;                      // share of examples held out, in [0, 1)
  bool skip_bad_rows = false;  // on_bad_row = "skip": count and skip them instead of stopping
  DataQualityConfig quality;
  Options options;
};

struct AdapterConfig {
  std::string method;  // the adapter plugin: lora, qlora, full, or a user's
  Options options;
};

struct OptimizerConfig {
  std::string plugin;
  double lr = 0.0;  // peak learning rate
  double weight_decay = 0.0;
  std::string schedule;  // constant | linear | cosine
  int64_t warmup_steps = 0;
  Options options;
};

struct TrainConfig {
  int64_t steps = 0;  // optimizer steps
  int64_t batch_size = 0;
  int64_t seq_len = 0;  // tokens per example, prompt and completion together
  int64_t seed = 0;
  std::string device;                   // auto | cpu | cuda
  int64_t gradient_accumulation = 1;    // micro-batches of batch_size per optimizer step
  double max_grad_norm = 0.0;           // 0: no clipping
  bool train_on_prompt = false;         // false: the loss covers completion tokens only
  bool gradient_checkpointing = false;  // Model::SetGradientCheckpointing
  int64_t checkpoint_every = 0;         // steps; 0: none
  int64_t eval_every = 0;               // steps between eval-loss checks; 0: only at the end
  int64_t eval_max_new_tokens = 0;      // generation budget per eval example
  int64_t eval_max_examples = 0;        // 0: the whole eval split
  // CPU threads the run computes with (SetComputeThreads); 0: one per core. Parallel trials
  // share the cores (tune sweep sets it per trial).
  int64_t threads = 0;
};

// [eval]: what a run's scores are compared with besides the base model alone.
struct EvalConfig {
  int64_t few_shot = 0;  // training examples in the prompted baseline's prompt; 0: no baseline
};

// How a metric's scores read: the plugin's goal and range (MetricPlugin); eval_loss and perplexity,
// which the trainer measures itself, are lower-is-better from 0 and from 1.
struct MetricTraits {
  MetricGoal goal = MetricGoal::kMaximize;
  MetricRange range;
};

struct MetricConfig {
  std::string plugin;
  Options options;
};

struct SweepParameter {
  enum class Kind { kValues, kExpression, kDistribution };
  std::string path;  // a key of the run config, e.g. "adapter.rank"
  Kind kind = Kind::kValues;
  std::vector<OptionValue> values;  // kValues, and kDistribution "categorical"
  std::string expression;           // kExpression, over other parameters: "2 * adapter.rank"
  std::string distribution;         // uniform | log_uniform | int_uniform | categorical
  double min = 0.0;
  double max = 0.0;
  std::optional<double> q;  // quantisation step
};

// [sweep.executor]: where a sweep's trials run. "local": child processes of `tune sweep` (the
// default); "slurm": Slurm job arrays, with the driver staying where `tune sweep` runs
// (orchestrate/slurm_runner.h). Every key but `kind` is Slurm's.
struct ExecutorConfig {
  std::string kind = "local";  // local | slurm
  std::string partition;       // empty: the cluster's default partition
  std::string gres;            // "gpu:1": generic resources per trial
  std::string time;            // Slurm's time limit per trial ("02:00:00"); empty: the partition's
  int64_t cpus_per_task = 1;
  std::string mem;                       // "64G"; empty: the partition's default
  int64_t array_parallelism = 0;         // trials at once (sbatch --array=...%N)
  int64_t max_retries = 2;               // more attempts per trial after failures and preemptions
  std::vector<std::string> sbatch_args;  // given to sbatch as they are
  // A running trial that reports nothing (heartbeats included) this long is failed and retried.
  int64_t heartbeat_timeout_seconds = 120;
  // Slurm sends SIGTERM this long before the time limit: the trial checkpoints and is requeued.
  int64_t signal_seconds = 120;
  std::string driver_address;  // the host name the nodes reach `tune sweep` at; empty: this host's
  // Where the file sets each key ("sweep.toml:14:13"), and the table itself under "", for errors
  // found only when Slurm is asked (a partition it does not have).
  std::map<std::string, std::string> wheres;
};

struct SweepConfig {
  std::string method;  // grid | random | tpe
  std::string objective_metric;
  MetricGoal objective_goal = MetricGoal::kMaximize;
  int64_t max_trials = 0;  // 0: not set (SweepConfigurations says what runs then)
  int64_t parallel = 0;
  int64_t repeats = 1;  // trials per configuration, seeds train.seed + 0 .. repeats - 1
  std::vector<SweepParameter> parameters;
  std::string early_stop;  // none | asha
  int64_t early_stop_min_steps = 0;
  int64_t early_stop_eta = 0;
  ExecutorConfig executor;
};

// Where a run's versions go ([registry]): a folder, or a `tune serve` registry server's URL with
// how to reach it.
struct RegistryConfig {
  std::string location;              // [registry] path: a folder or an http(s):// URL
  std::filesystem::path token_file;  // its first line is the token; empty: $TUNE_TOKEN
  std::filesystem::path ca_file;     // the CA of a self-signed server; empty: $TUNE_CA_FILE
  // How long a run that finished waits for a server it cannot reach before leaving its
  // registration to `tune registry push`.
  int64_t retry_seconds = 600;
};

struct RunConfig {
  std::filesystem::path file;
  std::string name;  // adapters register under this name
  ModelConfig model;
  DatasetConfig dataset;
  AdapterConfig adapter;
  OptimizerConfig optimizer;
  TrainConfig train;
  EvalConfig eval;
  std::vector<MetricConfig> metrics;
  std::map<std::string, MetricTraits> metric_traits;  // of every score the run records
  std::optional<SweepConfig> sweep;
  RegistryConfig registry;
  std::vector<std::filesystem::path> plugin_paths;
  // The whole configuration as TOML, overrides applied and every default filled in.
  std::string resolved_toml;
};

// Where adapters are stored unless [registry] path says otherwise: $TUNE_REGISTRY when set, else
// .tune/registry (relative to where tune runs); a folder or a server's URL. Every command that
// opens a registry defaults to it.
std::string DefaultRegistryPath();

// Whether two resolved configs (RunConfig::resolved_toml, as this or an earlier tune wrote it)
// hold the same values, whatever their layout or float formatting.
bool SameResolvedConfig(const std::string& a, const std::string& b);

// The range a numeric option takes, as errors state it: "[1, 65536]", "(0, 10]".
std::string RangeText(const OptionSpec& spec);

// Whether `dotted` ("dataset.path") holds a path: relative to the run file's folder when written
// in the file, to the current folder when given as key=value on the command line.
bool IsPathKey(std::string_view dotted);

// The "key=value" override that sets `value`, as RunFile::Read reads it back (TOML syntax:
// strings quoted, lists bracketed, floats with a point, doubles in their shortest exact form).
std::string OverrideText(const std::string& key, const OptionValue& value);

class RunFile {
 public:
  // Parses `file` and applies each "key=value" override (the value is read as TOML, or as a
  // string if it is not valid TOML). Throws UserError for malformed TOML or overrides.
  static RunFile Read(const std::filesystem::path& file, std::span<const std::string> overrides);

  // The [plugins] paths, resolved against the file's directory. Throws UserError if malformed.
  std::vector<std::filesystem::path> PluginPaths() const;

  // Checks everything and returns the typed configuration. Throws UserError.
  RunConfig Resolve(const PluginHost& plugins) const;

  struct Impl;

 private:
  explicit RunFile(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace tune

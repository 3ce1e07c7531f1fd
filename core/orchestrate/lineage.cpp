#include "orchestrate/lineage.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "plugin_host/plugin_host.h"
#include "runtime/runtime_info.h"
#include "util/names.h"
#include "util/sha256.h"

namespace tune {
namespace {

namespace fs = std::filesystem;

// The files of a model folder that make its tokenizer: the tokenizer files either plugin reads,
// the special tokens and chat template, and the template's own files.
bool IsTokenizerFile(const std::string& name) {
  return name == "tokenizer.json" || name == "tokenizer.model" || name == "tokenizer_config.json" ||
         name == "chat_template.jinja" || name == "chat_template.json";
}

// SHA-256 over the files of `dir` that `wanted` names, by name order: each file's name, a NUL,
// and its bytes.
std::string FilesSha256(const fs::path& dir,
                        const std::function<bool(const std::string&)>& wanted) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && wanted(entry.path().filename().string())) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  Sha256 sha;
  for (const fs::path& file : files) {
    sha.Update(file.filename().string());
    sha.Update(std::string_view("\0", 1));
    sha.UpdateFromFile(file);
  }
  return sha.FinishHex();
}

VersionRecord MakeVersionRecord(const RunConfig& config, const PluginHost& host,
                                const TrainSummary& summary, const std::string& run_id,
                                const std::string& base_model_sha256) {
  VersionRecord record;
  record.method = config.adapter.method;
  for (const auto& [key, value] : config.adapter.options.values()) {
    record.params["adapter." + key] = ToParam(value);
  }
  record.params["optimizer.plugin"] = config.optimizer.plugin;
  record.params["optimizer.lr"] = config.optimizer.lr;
  record.params["optimizer.weight_decay"] = config.optimizer.weight_decay;
  record.params["optimizer.schedule"] = config.optimizer.schedule;
  record.params["optimizer.warmup_steps"] = config.optimizer.warmup_steps;
  record.params["train.steps"] = config.train.steps;
  record.params["train.batch_size"] = config.train.batch_size;
  record.params["train.gradient_accumulation"] = config.train.gradient_accumulation;
  record.params["train.seq_len"] = config.train.seq_len;
  record.config_toml = config.resolved_toml;
  record.dataset_hash = summary.dataset_sha256;
  record.train_examples = summary.train_examples;
  record.eval_examples = summary.eval_examples;
  record.dataset_quality = summary.data_quality;
  record.dataset_dropped = summary.dropped_rows;
  record.base_model_name = config.model.path.filename().string();
  record.base_model_path = fs::absolute(config.model.path).lexically_normal().string();
  record.base_model_hash = base_model_sha256;
  record.tokenizer_hash = FilesSha256(config.model.path, IsTokenizerFile);
  record.seed = config.train.seed;
  record.scores = summary.scores;
  record.base_scores = summary.base_scores;
  record.few_shot_scores = summary.few_shot_scores;
  record.few_shot = summary.few_shot;
  for (const auto& [metric, traits] : config.metric_traits) {
    if (!record.scores.contains(metric) && !record.base_scores.contains(metric)) continue;
    ScoreScale& scale = record.score_scales[metric];
    scale.goal = traits.goal == MetricGoal::kMaximize ? "maximize" : "minimize";
    if (std::isfinite(traits.range.min)) scale.min = traits.range.min;
    if (std::isfinite(traits.range.max)) scale.max = traits.range.max;
  }
  record.curve = summary.curve;
  record.wall_time_s = summary.wall_seconds;
  record.trainable_parameters = summary.trainable_parameters;
  record.peak_memory_bytes = summary.peak_memory_bytes;
  record.peak_gpu_memory_bytes = summary.peak_gpu_memory_bytes;
  record.tokens_per_second = summary.tokens_per_second;
  auto add_plugin = [&](PluginKind kind, const std::string& name) {
    if (const LoadedPlugin* plugin = host.Find(kind, name)) {
      record.plugins.push_back(
          {std::string(PluginKindName(kind)), plugin->info().name, plugin->info().version});
    }
  };
  add_plugin(PluginKind::kModel, config.model.plugin);
  add_plugin(PluginKind::kDataset, config.dataset.plugin);
  add_plugin(PluginKind::kAdapter, config.adapter.method);
  add_plugin(PluginKind::kOptimizer, config.optimizer.plugin);
  for (const MetricConfig& metric : config.metrics) add_plugin(PluginKind::kMetric, metric.plugin);
  record.tune_version = DescribeRuntime().tune_version;
  record.run_id = run_id;
  return record;
}

// The run's evaluation outputs (eval_samples.jsonl beside the adapter folder), or an empty path
// when the run wrote none.
fs::path EvalSamplesFile(const TrainSummary& summary) {
  const std::filesystem::path file = summary.adapter_dir.parent_path() / "eval_samples.jsonl";
  std::error_code ec;
  return std::filesystem::is_regular_file(file, ec) ? file : std::filesystem::path();
}

// The training file as the run read it, for Registry::RegisterDataset; none for a run folder from
// before runs kept their rows (no dataset_rows.txt).
std::optional<TrackedDataset> RunDataset(const RunConfig& config, const TrainSummary& summary) {
  const fs::path run_dir = summary.adapter_dir.parent_path();
  const fs::path rows = run_dir / "dataset_rows.txt";
  std::ifstream report_file(run_dir / "data_quality.json");
  std::error_code ec;
  if (!fs::is_regular_file(rows, ec) || !report_file) return std::nullopt;
  std::stringstream report_text;
  report_text << report_file.rdbuf();
  const nlohmann::json report = nlohmann::json::parse(report_text.str(), nullptr, false);
  if (!report.is_object()) return std::nullopt;
  TrackedDataset dataset;
  dataset.name =
      config.dataset.name.empty() ? DatasetName(config.dataset.path) : config.dataset.name;
  dataset.record.sha256 = report.value("dataset_sha256", "");
  dataset.record.source = fs::absolute(config.dataset.path).lexically_normal().string();
  dataset.record.rows = report.value("rows", int64_t{0});
  dataset.record.summary = report.value("summary", "");
  dataset.record.report_json = report.dump();
  dataset.rows_file = rows;
  return dataset;
}

}  // namespace

std::string ModelDirectorySha256(const fs::path& dir) {
  return FilesSha256(dir, [](const std::string& name) {
    return name == "config.json" || name == "generation_config.json" || IsTokenizerFile(name) ||
           name.ends_with(".safetensors");
  });
}

std::string DatasetName(const std::filesystem::path& file) {
  const std::filesystem::path absolute = std::filesystem::absolute(file).lexically_normal();
  const std::string folder = absolute.parent_path().filename().string();
  std::string name;
  for (const char c : (folder.empty() ? "" : folder + "-") + absolute.stem().string()) {
    const auto u = static_cast<unsigned char>(c);
    const bool kept = std::isalnum(u) || c == '.' || c == '_' || c == '-';
    name += kept ? static_cast<char>(std::tolower(u)) : '-';
  }
  while (!name.empty() && !std::isalnum(static_cast<unsigned char>(name.front()))) name.erase(0, 1);
  if (name.size() > 64) name.resize(64);
  return IsValidName(name) ? name : "dataset";
}

TrackedVersion TrainedVersion(const RunConfig& config, const PluginHost& host,
                              const TrainSummary& summary, const std::string& run_id,
                              const std::string& base_model_sha256) {
  TrackedVersion version;
  version.name = config.name;
  version.record = MakeVersionRecord(config, host, summary, run_id, base_model_sha256);
  version.artifact_dir = summary.adapter_dir;
  version.eval_samples = EvalSamplesFile(summary);
  version.dataset = RunDataset(config, summary);
  return version;
}

ParamValue ToParam(const OptionValue& value) {
  return std::visit(
      [](const auto& v) -> ParamValue {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::string joined;
          for (const std::string& item : v) {
            if (!joined.empty()) joined += ',';
            joined += item;
          }
          return joined;
        } else if constexpr (std::is_same_v<T, std::monostate>) {
          return std::string();
        } else {
          return v;
        }
      },
      value);
}

}  // namespace tune

#include "cli/data_commands.h"

#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/option_checks.h"
#include "data/quality.h"
#include "plugin_host/plugin_host.h"
#include "util/log.h"

namespace tune {
namespace {

namespace fs = std::filesystem;

class DataCommandsImpl final : public DataCommands {
 public:
  explicit DataCommandsImpl(CLI::App& app) {
    data_ = app.add_subcommand("data", "Look at a dataset before training on it");
    data_->require_subcommand(1);
    inspect_ = data_->add_subcommand(
        "inspect",
        "Report a dataset file's lengths, duplicates, near-duplicates, conflicts, empty fields, "
        "format breaks and likely personal data, by line");
    inspect_->add_option("file", file_, "Dataset file")
        ->required()
        ->check(cli::ExistingFile("the dataset file"));
    inspect_->add_option("--plugin", plugin_, "Dataset plugin that reads the file")
        ->capture_default_str();
    inspect_
        ->add_option("--model", model_,
                     "Model folder whose tokenizer counts lengths in tokens (characters without)")
        ->check(cli::ExistingFolder("the model's folder (the one with config.json)"));
    inspect_
        ->add_option("--seq-len", options_.seq_len,
                     "Report rows whose prompt and completion together are longer than this")
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
    inspect_
        ->add_option("--near-threshold", options_.near_threshold,
                     "Jaccard similarity of word 3-shingles from which rows are near-duplicates")
        ->check(cli::FiniteIn(1e-9, 1.0))
        ->capture_default_str();
    inspect_->add_flag("--json", json_, "Print the report as JSON, every line listed");
  }

  std::optional<int> Run() override {
    if (!inspect_->parsed()) return std::nullopt;
    PluginHost host;
    host.Load(PluginSearchPathOfThisProcess({}));
    for (const PluginLoadFailure& failure : host.failures()) LogWarning(failure.message);
    const std::unique_ptr<Dataset> dataset = host.CreateDataset(
        plugin_, PluginHost::DefaultOptions(host.Require(PluginKind::kDataset, plugin_)));
    const DatasetRows rows = dataset->Read(file_);
    std::shared_ptr<const Tokenizer> tokenizer;
    if (!model_.empty()) tokenizer = host.LoadTokenizer(model_);
    const QualityReport report = InspectDataset(rows, tokenizer.get(), options_);
    if (json_) {
      std::cout << QualityReportJson(report) << "\n";
    } else {
      std::cout << file_.string() << " (" << plugin_ << ")\n" << QualityReportText(report);
      for (const BadRow& bad : rows.bad_rows) {
        std::cout << "unreadable: line " << bad.line << ": " << bad.reason << "\n";
      }
    }
    return 0;
  }

 private:
  CLI::App* data_ = nullptr;
  CLI::App* inspect_ = nullptr;
  fs::path file_;
  std::string plugin_ = "jsonl";
  fs::path model_;
  QualityOptions options_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<DataCommands> DataCommands::Add(CLI::App& app) {
  return std::make_unique<DataCommandsImpl>(app);
}

}  // namespace tune

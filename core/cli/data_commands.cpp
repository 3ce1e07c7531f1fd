#include "cli/data_commands.h"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "chat_template/chat_template.h"
#include "cli/option_checks.h"
#include "config/run_config.h"
#include "data/dataset_identity.h"
#include "data/quality.h"
#include "plugin_host/plugin_host.h"
#include "registry/registry.h"
#include "util/counted.h"
#include "util/echo.h"
#include "util/error.h"
#include "util/log.h"
#include "util/sha256.h"

namespace tune {
namespace {

namespace fs = std::filesystem;

// A file in the system's temporary folder holding `text`, removed with the object.
class TemporaryFile {
 public:
  explicit TemporaryFile(const std::string& text) {
    std::string name = (fs::temp_directory_path() / "tune-rows-XXXXXX").string();
    const int fd = ::mkstemp(name.data());
    if (fd < 0) {
      throw UserError("cannot create a temporary file in " + fs::temp_directory_path().string());
    }
    ::close(fd);
    path_ = name;
    std::ofstream out(path_, std::ios::binary);
    out << text;
    if (!out.flush()) throw UserError("cannot write " + path_.string() + "; is the disk full?");
  }
  ~TemporaryFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

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

    register_ = data_->add_subcommand(
        "register", "Record a dataset file's rows and quality report as the next version of NAME");
    register_->add_option("file", file_, "Dataset file")
        ->required()
        ->check(cli::ExistingFile("the dataset file"));
    register_->add_option("--name", name_, "Dataset name")->required();
    register_->add_option("--plugin", plugin_, "Dataset plugin that reads the file")
        ->capture_default_str();
    ls_ = data_->add_subcommand("ls", "List every dataset version: rows, hash, summary");
    show_ = data_->add_subcommand("show", "Show one dataset version and its quality report");
    show_->add_option("ref", ref_, "NAME (the latest version) or NAME:N")->required();
    show_->add_flag("--json", json_, "Print the record as JSON");
    diff_ = data_->add_subcommand("diff",
                                  "Rows added, removed and changed from one version to another");
    diff_->add_option("from", ref_, "NAME:N")->required();
    diff_->add_option("to", to_ref_, "NAME:N")->required();
    diff_->add_flag("--json", json_, "Print the lines as JSON");
    registry_path_ = DefaultRegistryPath();
    cli::AddRegistryOption({register_, ls_, show_, diff_}, registry_path_);
  }

  std::optional<int> Run() override {
    if (inspect_->parsed()) return Inspect();
    if (register_->parsed()) return Register();
    if (ls_->parsed()) return List();
    if (show_->parsed()) return Show();
    if (diff_->parsed()) return Diff();
    return std::nullopt;
  }

 private:
  using Mode = Registry::OpenMode;

  // The file's rows, read by --plugin.
  DatasetRows ReadRows(PluginHost& host) const {
    host.Load(PluginSearchPathOfThisProcess({}));
    for (const PluginLoadFailure& failure : host.failures()) LogWarning(failure.message);
    const std::unique_ptr<Dataset> dataset = host.CreateDataset(
        plugin_, PluginHost::DefaultOptions(host.Require(PluginKind::kDataset, plugin_)));
    return dataset->Read(file_);
  }

  // Conversations as training reads them with the model folder's chat template (when it has one):
  // prompt and completion from the template, not the plugin's own rendering; a conversation the
  // template refuses is a bad row, as in training.
  void RenderWithModelTemplate(DatasetRows& rows) const {
    const bool conversations =
        std::any_of(rows.examples.begin(), rows.examples.end(),
                    [](const TextExample& e) { return !e.messages.empty(); });
    if (!conversations) return;
    const std::optional<ChatTemplate> chat_template = ChatTemplate::Load(model_);
    if (!chat_template) return;
    std::erase_if(rows.examples, [&](TextExample& example) {
      if (example.messages.empty()) return false;
      try {
        std::tie(example.prompt, example.completion) =
            chat_template->PromptAndCompletion(example.messages);
        return false;
      } catch (const UserError& e) {
        rows.bad_rows.push_back({example.line, e.what()});
        return true;
      }
    });
    std::sort(rows.bad_rows.begin(), rows.bad_rows.end(),
              [](const BadRow& a, const BadRow& b) { return a.line < b.line; });
  }

  int Inspect() {
    PluginHost host;
    DatasetRows rows = ReadRows(host);
    std::shared_ptr<const Tokenizer> tokenizer;
    if (!model_.empty()) {
      tokenizer = host.LoadTokenizer(model_);
      RenderWithModelTemplate(rows);
    }
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

  // A version holds rows: an empty file, a binary one, or one whose every row is unreadable is
  // refused before anything is stored (it once registered as a version of 0 rows).
  void RequireRows(const DatasetRows& rows) const {
    std::ifstream in(file_, std::ios::binary);
    std::string head(8000, '\0');  // git's test for binary files: a NUL in the first 8000 bytes
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
    if (const size_t nul = head.find('\0'); nul != std::string::npos) {
      throw UserError(file_.string() + " is not text (a NUL byte at offset " + std::to_string(nul) +
                      "); give the dataset file, one row per line for " + plugin_ +
                      "; nothing registered");
    }
    if (!rows.examples.empty()) return;
    if (rows.bad_rows.empty()) {
      throw UserError(file_.string() + " holds no rows (" +
                      (head.empty() ? "it is empty" : "no record in it") + "); nothing registered");
    }
    const BadRow& first = rows.bad_rows.front();
    throw UserError(file_.string() + ": none of its " +
                    Counted(static_cast<int64_t>(rows.bad_rows.size()), "row") +
                    " could be read (line " + std::to_string(first.line) + ": " +
                    Echo(first.reason, 200) + "); is it a " + plugin_ +
                    " file? Choose the reader with --plugin; nothing registered");
  }

  int Register() {
    PluginHost host;
    const DatasetRows rows = ReadRows(host);
    RequireRows(rows);
    const QualityReport report = InspectDataset(rows, nullptr, QualityOptions{});
    DatasetRecord record;
    record.sha256 = report.dataset_sha256;
    record.source = fs::absolute(file_).lexically_normal().string();
    record.rows = report.rows;
    record.summary = QualitySummary(report);
    record.report_json = QualityReportJson(report, -1);
    const TemporaryFile rows_file(RowHashesText(rows.examples));
    const int64_t version = Registry::Open(registry_path_, Mode::kCreate)
                                ->RegisterDataset(name_, record, rows_file.path());
    std::cout << "dataset " << name_ << ":" << version << " (" << record.summary << ")\n";
    return 0;
  }

  int List() {
    const std::vector<DatasetRecord> records =
        Registry::Open(registry_path_, Mode::kReadOnly)->ListDatasets();
    if (records.empty()) {
      std::cout << "no datasets in " << registry_path_
                << "; runs register their training file, as does `tune data register`\n";
      return 0;
    }
    for (const DatasetRecord& r : records) {
      std::cout << r.name << ":" << r.version << "  " << r.sha256.substr(0, 12) << "  " << r.summary
                << "  " << r.source << "\n";
    }
    return 0;
  }

  int Show() {
    const DatasetRecord r = Registry::Open(registry_path_, Mode::kReadOnly)->GetDataset(ref_);
    if (json_) {
      std::cout << DatasetRecordToJson(r, 2) << "\n";
      return 0;
    }
    std::cout << "dataset  " << r.name << ":" << r.version << "\nsha256   " << r.sha256
              << "\nsource   " << r.source << "\nrows     " << r.rows << "\nquality  " << r.summary
              << "\n";
    return 0;
  }

  int Diff() {
    const std::unique_ptr<Registry> registry = Registry::Open(registry_path_, Mode::kReadOnly);
    const DatasetRecord from = registry->GetDataset(ref_), to = registry->GetDataset(to_ref_);
    const auto rows = [&](const DatasetRecord& record) {
      return registry->ReadObject(record.rows_object, "the rows of dataset " + record.name + ":" +
                                                          std::to_string(record.version));
    };
    const RowsDiff diff = DiffRows(rows(from), rows(to));
    if (json_) {
      std::cout << nlohmann::json{{"from", from.name + ":" + std::to_string(from.version)},
                                  {"to", to.name + ":" + std::to_string(to.version)},
                                  {"added", diff.added},
                                  {"removed", diff.removed},
                                  {"changed", diff.changed},
                                  {"unchanged", diff.unchanged}}
                       .dump(2)
                << "\n";
      return 0;
    }
    std::cout << from.name << ":" << from.version << " -> " << to.name << ":" << to.version << ": "
              << diff.added.size() << " added, " << diff.removed.size() << " removed, "
              << diff.changed.size() << " changed, " << diff.unchanged << " unchanged\n";
    const auto lines = [](const char* what, const std::vector<int64_t>& list, const char* of) {
      if (list.empty()) return;
      std::cout << "  " << what << " (lines of " << of << "):";
      for (size_t i = 0; i < list.size() && i < 20; ++i) std::cout << " " << list[i];
      if (list.size() > 20) std::cout << " ... (--json lists all)";
      std::cout << "\n";
    };
    lines("added", diff.added, "the second");
    lines("removed", diff.removed, "the first");
    lines("changed", diff.changed, "the second");
    return 0;
  }

  CLI::App* data_ = nullptr;
  CLI::App* inspect_ = nullptr;
  CLI::App* register_ = nullptr;
  CLI::App* ls_ = nullptr;
  CLI::App* show_ = nullptr;
  CLI::App* diff_ = nullptr;
  std::string name_, ref_, to_ref_, registry_path_;
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

#include "cli/registry_commands.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/option_checks.h"
#include "config/run_config.h"
#include "orchestrate/tracker.h"
#include "registry/local_registry.h"
#include "registry/record_json.h"
#include "registry/registry.h"
#include "util/counted.h"
#include "util/error.h"
#include "util/log.h"
#include "util/number_text.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Mode = Registry::OpenMode;

std::string FormatTime(int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &utc);
  return text;
}

std::string FormatParam(const ParamValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return v;
        } else if constexpr (std::is_same_v<T, double>) {
          return NumberText(v);
        } else {
          return std::to_string(v);
        }
      },
      value);
}

std::string FormatBytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  std::ostringstream out;
  out.precision(unit == 0 ? 0 : 1);
  out << std::fixed << value << " " << units[unit];
  return out.str();
}

std::string Ref(const VersionRecord& record) {
  return record.name + ":" + std::to_string(record.version);
}

// Aliases of every adapter in `records`, by version: "rank:3" -> "production, staging".
std::map<std::string, std::string> AliasesByRef(const Registry& registry,
                                                const std::vector<VersionRecord>& records) {
  std::map<std::string, std::string> by_ref;
  std::set<std::string> names;
  for (const VersionRecord& record : records) names.insert(record.name);
  for (const std::string& name : names) {
    for (const auto& [alias, version] : registry.Aliases(name)) {
      std::string& text = by_ref[name + ":" + std::to_string(version)];
      text += (text.empty() ? "" : ",") + alias;
    }
  }
  return by_ref;
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] + 2 - row[i].size(), ' ');
    }
    std::cout << line << "\n";
  }
}

class Commands : public RegistryCommands {
 public:
  explicit Commands(CLI::App& app) {
    CLI::App* adapters = app.add_subcommand("adapters",
                                            "List, inspect, compare and promote "
                                            "registered adapter versions");
    adapters->require_subcommand(1);

    ls_ = adapters->add_subcommand("ls", "List versions, filtered and sorted");
    ls_->add_option("name", ls_name_, "Only this adapter's versions");
    ls_->add_option("--filter", filter_,
                    "e.g. 'scores.exact_match > 0.8 and adapter.rank = 16' (= != < <= > >=, "
                    "and, or, not, parentheses)");
    ls_->add_option("--sort", sort_, "Key to sort by, '-' in front for descending");
    ls_->add_flag("--json", json_, "Print the full records as a JSON array");

    show_ = adapters->add_subcommand("show", "Show one version: lineage, scores, files");
    show_->add_option("ref", ref_, "NAME, NAME:VERSION or NAME@ALIAS")->required();
    show_->add_flag("--json", json_, "Print the record as JSON");

    diff_ = adapters->add_subcommand("diff", "What differs between two versions");
    diff_->add_option("from", ref_, "NAME, NAME:VERSION or NAME@ALIAS")->required();
    diff_->add_option("to", other_ref_, "NAME, NAME:VERSION or NAME@ALIAS")->required();
    diff_->add_flag("--json", json_, "Print the differences as JSON");

    promote_ = adapters->add_subcommand(
        "promote",
        "Point an alias at a version, atomically, as the alias's policy allows (at once, or as a "
        "request that waits for approvers)");
    promote_->add_option("ref", ref_, "The version: NAME:VERSION, NAME@ALIAS or NAME")->required();
    promote_->add_option("alias", alias_, "The alias to move, e.g. production")->required();
    expect_option_ = promote_->add_option(
        "--expect-version", expect_version_,
        "Move only if the alias points at this version now (0: only if unset)");
    promote_->add_option("--override", override_reason_,
                         "Set the alias's policy aside, saying why (kept in the alias's history; "
                         "an admin's on a server)");

    approve_ = adapters->add_subcommand(
        "approve", "Approve a waiting promotion request (not your own); the last approval moves");
    approve_->add_option("name", ls_name_, "Adapter name")->required();
    approve_->add_option("request", request_id_, "The request's number")
        ->required()
        ->check(CLI::PositiveNumber);
    requests_ = adapters->add_subcommand("requests", "Promotion requests, waiting and done");
    requests_->add_option("name", ls_name_, "Adapter name")->required();

    CLI::App* policy = adapters->add_subcommand(
        "policy", "Promotion policies: what an alias requires before it moves");
    policy->require_subcommand(1);
    policy_set_ = policy->add_subcommand(
        "set",
        "Set the policies of a TOML file ([policy.ALIAS] require = [\"exact_match >= 0.80\", "
        "\"human.win_rate_vs_current >= 0.55\", \"human.judgements >= 30\"], approvers = 1)");
    policy_set_->add_option("name", ls_name_, "Adapter name")->required();
    policy_set_->add_option("file", policy_file_, "Policy file (.toml)")
        ->required()
        ->check(cli::ExistingFile("the policy file"));
    policy_show_ = policy->add_subcommand(
        "show", "Each alias's policy, and how the latest version stands against it");
    policy_show_->add_option("name", ls_name_, "Adapter name")->required();
    policy_remove_ = policy->add_subcommand("remove", "Remove an alias's policy");
    policy_remove_->add_option("name", ls_name_, "Adapter name")->required();
    policy_remove_->add_option("alias", alias_, "The alias")->required();

    history_ = adapters->add_subcommand("history", "Every move of an adapter's aliases");
    history_->add_option("name", ls_name_, "Adapter name")->required();
    history_->add_flag("--json", json_, "Print the moves as JSON");

    fetch_ = app.add_subcommand(
        "fetch", "Write a version's files and tune.json (lineage) to a folder, verifying them");
    fetch_->add_option("ref", ref_, "NAME, NAME:VERSION or NAME@ALIAS")->required();
    fetch_->add_option("-o,--output", out_dir_, "Folder to create (must not exist or be empty)")
        ->required()
        ->check(cli::FolderToWrite());

    CLI::App* registry = app.add_subcommand("registry", "Check, clean and back up the registry");
    registry->require_subcommand(1);
    verify_ = registry->add_subcommand("verify", "Re-hash every stored file and check references");
    gc_ = registry->add_subcommand("gc", "Remove stored files no version refers to");
    gc_->add_option("--grace-hours", grace_hours_,
                    "Keep unreferenced files younger than this (a write may be in progress)")
        ->capture_default_str()
        ->check(cli::FiniteIn(0.0, 1e6));
    backup_ =
        registry->add_subcommand("backup", "Write a consistent copy that opens as a registry");
    backup_->add_option("dir", out_dir_, "Folder to create")
        ->required()
        ->check(cli::FolderToWrite());
    push_ = registry->add_subcommand(
        "push",
        "Record a run that finished without reaching its registry: its run, metrics, "
        "dataset and version (nothing twice)");
    push_->add_option("run_dir", out_dir_, "The run's folder (.tune/runs/NAME)")
        ->required()
        ->check(CLI::ExistingDirectory);
    recover_ = registry->add_subcommand(
        "recover",
        "Open a registry whose log is damaged, keeping every write before the damage (writes "
        "refuse such a registry until then)");

    // Every option after `serve` goes to tune-serve, which has its own --help.
    serve_ = app.add_subcommand(
        "serve",
        "Serve the registry in a browser: browse, compare, promote, download (tune serve --help "
        "lists its options)");
    serve_->fallthrough(false);
    serve_->prefix_command();
    serve_->set_help_flag();
    serve_->allow_extras();

    registry_path_ = DefaultRegistryPath();
    cli::AddRegistryOption(
        {ls_, show_, diff_, promote_, approve_, requests_, policy_set_, policy_show_,
         policy_remove_, history_, fetch_, verify_, gc_, backup_, push_, recover_},
        registry_path_);
  }

  std::optional<int> Run() override {
    if (ls_->parsed()) return List();
    if (show_->parsed()) return Show();
    if (diff_->parsed()) return Diff();
    if (promote_->parsed()) return Promote();
    if (approve_->parsed()) return Approve();
    if (requests_->parsed()) return Requests();
    if (policy_set_->parsed()) return SetPolicies();
    if (policy_show_->parsed()) return ShowPolicies();
    if (policy_remove_->parsed()) {
      Open(Mode::kReadWrite)->RemovePolicy(ls_name_, alias_);
      std::cout << ls_name_ << "@" << alias_ << " has no policy now\n";
      return 0;
    }
    if (history_->parsed()) return History();
    if (fetch_->parsed()) return Fetch();
    if (verify_->parsed()) return Verify();
    if (gc_->parsed()) return Gc();
    if (backup_->parsed()) return Backup();
    if (push_->parsed()) {
      const auto registry = Open(Mode::kCreate);
      const int64_t version = PushRunFolder(out_dir_, *registry);
      std::cout << "pushed " << out_dir_ << " to " << registry->location() << ": version "
                << version << "\n";
      return 0;
    }
    if (recover_->parsed()) {
      if (Registry::IsUrl(registry_path_)) {
        throw UserError(
            "tune registry recover works on a registry folder, on its machine: run it "
            "where `tune serve` runs, with the server stopped");
      }
      std::cout << LocalRegistry::Recover(registry_path_) << "\n";
      return 0;
    }
    if (serve_->parsed()) return Serve();
    return std::nullopt;
  }

 private:
  std::unique_ptr<Registry> Open(Mode mode) const { return Registry::Open(registry_path_, mode); }

  // The server is its own executable, tune-serve beside this one: libtorch's thread-local
  // storage does not fit in the small stacks CivetWeb gives its threads, and the web view needs
  // no libtorch. It replaces this process and runs until SIGINT or SIGTERM.
  int Serve() {
    char self[4096];
    const ssize_t length = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (length <= 0) throw UserError("cannot find the tune executable (/proc/self/exe)");
    const fs::path server =
        fs::path(std::string(self, static_cast<size_t>(length))).parent_path() / "tune-serve";
    std::vector<std::string> args = {server.string()};
    const std::vector<std::string> given = serve_->remaining();
    args.insert(args.end(), given.begin(), given.end());
    // The registry the other commands use, unless one was given.
    if (std::none_of(given.begin(), given.end(),
                     [](const std::string& arg) { return arg.starts_with("--registry"); })) {
      args.insert(args.end(), {"--registry", registry_path_});
    }
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    std::fflush(stdout);
    ::execv(server.c_str(), argv.data());
    throw UserError("cannot run " + server.string() + ": " + std::strerror(errno) +
                    "; tune serve needs tune-serve installed beside tune");
  }

  int List() {
    const auto registry = Open(Mode::kReadOnly);
    ListOptions options;
    if (!ls_name_.empty()) options.name = ls_name_;
    options.filter = filter_;
    options.sort = sort_;
    const std::vector<VersionRecord> records = registry->List(options);
    if (json_) {
      json out = json::array();
      for (const VersionRecord& record : records) out.push_back(VersionRecordJson(record));
      std::cout << out.dump(2) << "\n";
      return 0;
    }
    const std::map<std::string, std::string> aliases = AliasesByRef(*registry, records);
    std::vector<std::vector<std::string>> rows = {
        {"VERSION", "ALIASES", "CREATED (UTC)", "METHOD", "SIZE", "SCORES"}};
    for (const VersionRecord& record : records) {
      std::string scores;
      for (const auto& [metric, value] : record.scores) {
        scores += (scores.empty() ? "" : " ") + metric + "=" + NumberText(value);
      }
      const auto alias = aliases.find(Ref(record));
      rows.push_back({Ref(record), alias == aliases.end() ? "-" : alias->second,
                      FormatTime(record.created_ms), record.method.empty() ? "-" : record.method,
                      FormatBytes(record.artifact_size_bytes), scores.empty() ? "-" : scores});
    }
    PrintTable(rows);
    return 0;
  }

  int Show() {
    const auto registry = Open(Mode::kReadOnly);
    const VersionRecord r = registry->Resolve(ref_);
    if (json_) {
      std::cout << VersionRecordToJson(r, 2) << "\n";
      return 0;
    }
    std::string aliases;
    for (const auto& [alias, version] : registry->Aliases(r.name)) {
      if (version == r.version) aliases += (aliases.empty() ? "" : ", ") + alias;
    }
    std::vector<std::vector<std::string>> rows = {
        {"version", Ref(r)},
        {"aliases", aliases.empty() ? "-" : aliases},
        {"created", FormatTime(r.created_ms) + " UTC"},
        {"method", r.method},
    };
    for (const auto& [key, value] : r.params) rows.push_back({"  " + key, FormatParam(value)});
    rows.push_back({"dataset", r.dataset_hash + " (" + std::to_string(r.train_examples) +
                                   " train, " + std::to_string(r.eval_examples) + " eval)"});
    if (!r.dataset_name.empty()) {
      rows.push_back({"  version", r.dataset_name + ":" + std::to_string(r.dataset_version)});
    }
    if (!r.dataset_quality.empty()) rows.push_back({"  quality", r.dataset_quality});
    for (const auto& [reason, count] : r.dataset_dropped) {
      rows.push_back({"  dropped " + reason, std::to_string(count)});
    }
    rows.push_back(
        {"base model", r.base_model_name + " " + r.base_model_path + " " + r.base_model_hash});
    rows.push_back({"tokenizer", r.tokenizer_hash});
    rows.push_back({"seed", std::to_string(r.seed)});
    // Each score with the baselines it beat or not: the base model alone and prompted.
    for (const auto& [metric, value] : r.scores) {
      std::string against;
      const auto compare = [&](const std::map<std::string, double>& baseline,
                               const std::string& what) {
        const auto it = baseline.find(metric);
        if (it == baseline.end()) return;
        against += (against.empty() ? " (" : "; ") + what + " " + NumberText(it->second) +
                   ", gain " + Format("%+.4g", value - it->second);
      };
      compare(r.base_scores, "base model");
      compare(r.few_shot_scores, "base model with " + std::to_string(r.few_shot) + " shots");
      rows.push_back(
          {"score " + metric, NumberText(value) + against + (against.empty() ? "" : ")")});
    }
    // People's judgement: the version's rating in each review it is in.
    for (const ReviewRecord& review : registry->ListReviews()) {
      ReviewResults results;
      try {
        results = registry->Results(review.name);
      } catch (const RegistryDenied&) {
        continue;  // a rater's token, and the review is open: its results are not theirs to see
      }
      for (const ContestantResult& c : results.contestants) {
        if (c.contestant != Ref(r)) continue;
        std::string row = "rating " + std::to_string(std::lround(c.rating.rating)) + " (95% " +
                          std::to_string(std::lround(c.rating.ci95_low)) + " to " +
                          std::to_string(std::lround(c.rating.ci95_high)) + "), " +
                          Counted(c.judgements, "judgement");
        if (const auto base = c.against.find(std::string(kBaseContestant));
            base != c.against.end() && base->second.rate()) {
          row += ", wins " + std::to_string(std::lround(100 * *base->second.rate())) +
                 "% against the base model";
        }
        rows.push_back({"review " + review.name, row});
      }
    }
    if (!r.curve.empty()) {
      rows.push_back({"loss", NumberText(r.curve.front().loss) + " at step " +
                                  std::to_string(r.curve.front().step) + " -> " +
                                  NumberText(r.curve.back().loss) + " at step " +
                                  std::to_string(r.curve.back().step)});
    }
    rows.push_back({"wall time", NumberText(r.wall_time_s) + " s"});
    if (r.trainable_parameters > 0) {
      rows.push_back(
          {"trainable parameters", NumberText(static_cast<double>(r.trainable_parameters))});
    }
    rows.push_back({"peak memory", FormatBytes(r.peak_memory_bytes)});
    if (r.peak_gpu_memory_bytes > 0) {
      rows.push_back({"peak GPU memory", FormatBytes(r.peak_gpu_memory_bytes)});
    }
    rows.push_back({"tokens/s", NumberText(r.tokens_per_second)});
    for (const PluginRef& p : r.plugins) {
      rows.push_back({"plugin", p.kind + " " + p.name + " " + p.version});
    }
    rows.push_back({"tune", r.tune_version});
    if (r.sweep) {
      rows.push_back({"sweep", *r.sweep + (r.trial ? " trial " + std::to_string(*r.trial) : "") +
                                   (r.configuration ? " (configuration " +
                                                          std::to_string(*r.configuration) + ")"
                                                    : "")});
    }
    if (!r.run_id.empty()) rows.push_back({"run", r.run_id});
    rows.push_back({"artifact", "sha256:" + r.artifact_digest + " (" +
                                    FormatBytes(r.artifact_size_bytes) + ")"});
    for (const ManifestEntry& f : r.files) {
      rows.push_back(
          {"  " + f.path, "sha256:" + f.digest + " (" + FormatBytes(f.size_bytes) + ")"});
    }
    PrintTable(rows);
    return 0;
  }

  int Diff() {
    const auto registry = Open(Mode::kReadOnly);
    const VersionDiff diff = DiffVersions(registry->Resolve(ref_), registry->Resolve(other_ref_));
    if (json_) {
      std::cout << VersionDiffToJson(diff, 2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows = {{"", diff.from_ref, diff.to_ref}};
    const auto text = [](const std::optional<std::string>& v) { return v.value_or("-"); };
    for (const ValueChange& c : diff.attributes) rows.push_back({c.key, text(c.from), text(c.to)});
    for (const ValueChange& c : diff.params) rows.push_back({c.key, text(c.from), text(c.to)});
    // The resolved config repeats the parameters; its own prefix tells the two apart.
    for (const ValueChange& c : diff.config) {
      rows.push_back({"config." + c.key, text(c.from), text(c.to)});
    }
    for (const ScoreChange& s : diff.scores) {
      const auto number = [](const std::optional<double>& v) {
        return v ? NumberText(*v) : std::string("-");
      };
      std::string delta;
      if (s.from && s.to) {
        delta = (*s.to >= *s.from ? "+" : "") + NumberText(*s.to - *s.from);
      }
      rows.push_back({"scores." + s.metric, number(s.from), number(s.to), delta});
    }
    for (const std::string& file : diff.files_changed)
      rows.push_back({"file " + file, "", "differs"});
    PrintTable(rows);
    return 0;
  }

  static std::string Describe(int64_t version) {
    return version == 0 ? std::string("unset") : "version " + std::to_string(version);
  }

  void PrintRequest(const PromotionRequest& request) const {
    if (request.status == "moved") {
      std::cout << request.name << "@" << request.alias << ": " << Describe(request.from_version)
                << " -> version " << request.version << "\n";
      return;
    }
    std::cout << "request " << request.id << ": " << request.name << ":" << request.version
              << " to " << request.alias << " (asked by " << request.requested_by << ") is "
              << request.status;
    if (request.status == "waiting") {
      std::cout << " for "
                << Counted(request.approvers - static_cast<int64_t>(request.approved_by.size()),
                           "approver")
                << " with the promote role: `tune adapters approve " << request.name << " "
                << request.id << "`";
    }
    std::cout << "\n";
  }

  int Promote() {
    const auto registry = Open(Mode::kReadWrite);
    const VersionRecord record = registry->Resolve(ref_);
    const std::optional<int64_t> expected =
        expect_option_->count() > 0 ? std::optional(expect_version_) : std::nullopt;
    if (!override_reason_.empty()) {
      const int64_t before =
          registry->MoveAlias(record.name, alias_, record.version, expected, override_reason_);
      std::cout << record.name << "@" << alias_ << ": " << Describe(before) << " -> version "
                << record.version << " (policy overridden: " << override_reason_ << ")\n";
      return 0;
    }
    PrintRequest(registry->Promote(record.name, alias_, record.version, expected));
    return 0;
  }

  int Approve() {
    PrintRequest(Open(Mode::kReadWrite)->Approve(ls_name_, request_id_));
    return 0;
  }

  int Requests() {
    const std::vector<PromotionRequest> requests =
        Open(Mode::kReadOnly)->PromotionRequests(ls_name_);
    if (requests.empty()) std::cout << "no promotion requests for " << ls_name_ << "\n";
    for (const PromotionRequest& request : requests) {
      std::cout << request.id << "  " << FormatTime(request.requested_ms) << "  " << request.name
                << ":" << request.version << " -> " << request.alias << "  by "
                << request.requested_by << "  " << request.status;
      if (!request.approved_by.empty()) {
        std::string approvers;
        for (const std::string& who : request.approved_by) {
          approvers += (approvers.empty() ? "" : ", ") + who;
        }
        std::cout << "  approved by " << approvers;
      }
      std::cout << "\n";
    }
    return 0;
  }

  int SetPolicies() {
    std::ifstream in(policy_file_, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    const auto registry = Open(Mode::kReadWrite);
    const std::vector<AliasPolicy> policies =
        ParsePolicies(text.str(), policy_file_.string(), ls_name_);
    for (const AliasPolicy& policy : policies) registry->SetPolicy(policy);
    for (const AliasPolicy& policy : policies) {
      std::cout << ls_name_ << "@" << policy.alias << " requires "
                << (policy.require.empty() ? std::string("nothing") : "");
      for (size_t i = 0; i < policy.require.size(); ++i) {
        std::cout << (i == 0 ? "" : ", ") << policy.require[i];
      }
      std::cout << " and " << Counted(policy.approvers, "approver") << "\n";
    }
    return 0;
  }

  int ShowPolicies() {
    const auto registry = Open(Mode::kReadOnly);
    const std::vector<AliasPolicy> policies = registry->Policies(ls_name_);
    if (policies.empty()) {
      std::cout << ls_name_ << " has no policies: any alias moves with `tune adapters promote`\n";
      return 0;
    }
    const VersionRecord latest = registry->Resolve(ls_name_);
    for (const AliasPolicy& policy : policies) {
      std::cout << ls_name_ << "@" << policy.alias << " (set by " << policy.set_by << " from "
                << policy.source << "; " << Counted(policy.approvers, "approver") << ")\n";
      std::vector<PolicyCheck> checks;
      try {
        checks = registry->CheckPolicy(ls_name_, policy.alias, latest.version);
      } catch (const RegistryDenied&) {
        // A rater's token: the conditions, without how a version stands against them.
        for (const std::string& condition : policy.require) std::cout << "  " << condition << "\n";
      }
      for (const PolicyCheck& check : checks) {
        std::cout << "  " << check.condition << "  " << Ref(latest) << ": "
                  << (check.met ? "met, " : "not met, ") << check.detail << "\n";
      }
    }
    return 0;
  }

  int History() {
    const auto registry = Open(Mode::kReadOnly);
    const std::vector<AliasMove> moves = registry->History(ls_name_);
    if (json_) {
      json out = json::array();
      for (const AliasMove& m : moves) {
        out.push_back({{"time_ms", m.time_ms},
                       {"alias", m.alias},
                       {"old_version", m.old_version == 0 ? json(nullptr) : json(m.old_version)},
                       {"new_version", m.new_version},
                       {"by", m.by},
                       {"reason", m.reason},
                       {"overridden", m.overridden}});
      }
      std::cout << out.dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows = {
        {"TIME (UTC)", "ALIAS", "FROM", "TO", "BY", "WHY"}};
    for (const AliasMove& m : moves) {
      rows.push_back(
          {FormatTime(m.time_ms), m.alias, m.old_version == 0 ? "-" : std::to_string(m.old_version),
           std::to_string(m.new_version), m.by.empty() ? "-" : m.by,
           m.overridden ? "policy overridden: " + m.reason : (m.reason.empty() ? "-" : m.reason)});
    }
    PrintTable(rows);
    return 0;
  }

  int Fetch() {
    const auto registry = Open(Mode::kReadOnly);
    const VersionRecord record = registry->Fetch(ref_, out_dir_);
    std::cout << "fetched " << Ref(record) << " to " << out_dir_ << ": "
              << Counted(static_cast<int64_t>(record.files.size()), "file") << ", "
              << FormatBytes(record.artifact_size_bytes) << ", every byte matches its SHA-256\n";
    return 0;
  }

  int Verify() {
    const auto registry = Open(Mode::kReadOnly);
    const VerifyReport report = registry->Verify();
    for (const std::string& problem : report.problems) std::cerr << "error: " << problem << "\n";
    std::cout << "checked " << Counted(report.versions_checked, "version") << " and "
              << Counted(report.objects_checked, "file") << " ("
              << FormatBytes(report.bytes_checked) << "): "
              << (report.problems.empty()
                      ? std::string("sound")
                      : Counted(static_cast<int64_t>(report.problems.size()), "problem"))
              << "\n";
    return report.problems.empty() ? 0 : 1;
  }

  int Gc() {
    const auto registry = Open(Mode::kReadWrite);
    const GcReport report = registry->Gc(
        std::chrono::seconds(static_cast<int64_t>(std::llround(grace_hours_ * 3600.0))));
    std::cout << "removed " << Counted(report.objects_removed, "unreferenced file") << " ("
              << FormatBytes(report.bytes_removed) << ") and "
              << Counted(report.temp_files_removed, "interrupted write") << "; kept "
              << Counted(report.objects_kept, "file") << "\n";
    return 0;
  }

  int Backup() {
    const auto registry = Open(Mode::kReadWrite);
    registry->Backup(out_dir_);
    std::cout << "backed up " << registry_path_ << " to " << out_dir_ << "\n";
    return 0;
  }

  CLI::App* ls_ = nullptr;
  CLI::App* show_ = nullptr;
  CLI::App* diff_ = nullptr;
  CLI::App* promote_ = nullptr;
  CLI::App* approve_ = nullptr;
  CLI::App* requests_ = nullptr;
  CLI::App* policy_set_ = nullptr;
  CLI::App* policy_show_ = nullptr;
  CLI::App* policy_remove_ = nullptr;
  CLI::App* history_ = nullptr;
  CLI::App* fetch_ = nullptr;
  CLI::App* verify_ = nullptr;
  CLI::App* gc_ = nullptr;
  CLI::App* backup_ = nullptr;
  CLI::App* push_ = nullptr;
  CLI::App* recover_ = nullptr;
  CLI::App* serve_ = nullptr;

  std::string registry_path_;
  std::string ls_name_;
  std::string filter_;
  std::string sort_;
  bool json_ = false;
  std::string ref_;
  std::string other_ref_;
  std::string alias_;
  CLI::Option* expect_option_ = nullptr;
  int64_t expect_version_ = 0;
  std::string override_reason_;
  int64_t request_id_ = 0;
  fs::path policy_file_;
  std::string out_dir_;
  double grace_hours_ = 24.0;
};

}  // namespace

std::unique_ptr<RegistryCommands> RegistryCommands::Add(CLI::App& app) {
  return std::make_unique<Commands>(app);
}

}  // namespace tune

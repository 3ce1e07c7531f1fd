#include "cli/review_commands.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/option_checks.h"
#include "cli/review_generate.h"
#include "config/run_config.h"
#include "registry/registry.h"
#include "registry/wire.h"
#include "util/counted.h"
#include "util/error.h"
#include "util/sha256.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using Mode = Registry::OpenMode;

std::string ReadText(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw UserError("cannot read " + file.string() + "; check it exists and is readable");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Fixed(double value, int digits) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

class ReviewCommandsImpl final : public ReviewCommands {
 public:
  explicit ReviewCommandsImpl(CLI::App& app) {
    CLI::App* review = app.add_subcommand(
        "review", "Blind pairwise review of versions' outputs by people, and its results");
    review->require_subcommand(1);
    create_ = review->add_subcommand(
        "create", "Store a review set (prompts and optional references) and open a review of it");
    create_->add_option("name", name_, "The review's name (also the review set's)")->required();
    CLI::Option* prompts =
        create_
            ->add_option("--prompts", prompts_file_,
                         "JSONL: one {\"prompt\": TEXT, \"reference\": TEXT} per line, reference "
                         "optional")
            ->check(cli::ExistingFile("the review set"));
    CLI::Option* from_eval = create_->add_option(
        "--from-eval", from_eval_,
        "The prompts and references of a version's evaluation split (NAME:N), instead of a file");
    prompts->excludes(from_eval);
    generate_ = review->add_subcommand(
        "generate",
        "Record each version's outputs on the review's prompts, and the base model's (greedy, "
        "seed 0, the model's chat template where it has one); run it again to go on after a stop");
    generate_->add_option("name", name_, "The review")->required();
    generate_->add_option("versions", generation_.versions, "NAME:N, NAME@ALIAS or NAME, ...")
        ->required();
    generate_->add_option("--max-new-tokens", generation_.max_new_tokens, "Most tokens per output")
        ->capture_default_str()
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
    generate_
        ->add_option("--work-dir", generation_.work_dir,
                     "Where outputs are written as they are made (REVIEW/CONTESTANT.jsonl)")
        ->capture_default_str()
        ->check(cli::FolderToWrite());
    ls_ = review->add_subcommand("ls", "List the reviews: contestants, judgements, open or closed");
    results_ = review->add_subcommand(
        "results",
        "Per contestant: Bradley-Terry rating with 95% bootstrap interval, win rate against each "
        "other, judgements; and agreement between raters");
    results_->add_option("name", name_, "The review")->required();
    results_->add_flag("--json", json_, "Print the results as JSON");
    close_ = review->add_subcommand(
        "close", "End a review: no more judgements, and who wrote what is shown");
    close_->add_option("name", name_, "The review")->required();
    registry_path_ = DefaultRegistryPath();
    cli::AddRegistryOption({create_, generate_, ls_, results_, close_}, registry_path_);
  }

  std::optional<int> Run() override {
    if (create_->parsed()) return Create();
    if (generate_->parsed()) {
      generation_.review = name_;
      const std::vector<std::string> recorded =
          GenerateReviewOutputs(*Registry::Open(registry_path_, Mode::kReadWrite), generation_);
      std::cout << "review " << name_ << ": recorded the outputs of "
                << (recorded.empty() ? std::string("none (all were recorded before)") : "");
      for (size_t i = 0; i < recorded.size(); ++i) std::cout << (i == 0 ? "" : ", ") << recorded[i];
      std::cout << "; raters judge them at #/review/" << name_ << " in tune serve\n";
      return 0;
    }
    if (ls_->parsed()) return List();
    if (results_->parsed()) return Results();
    if (close_->parsed()) {
      Registry::Open(registry_path_, Mode::kReadWrite)->CloseReview(name_);
      std::cout << "closed review " << name_ << "; `tune review results " << name_
                << "` shows what it found\n";
      return 0;
    }
    return std::nullopt;
  }

 private:
  // The review set becomes a dataset version holding its rows (the file itself) beside the row
  // hashes every dataset version keeps; the review is opened on that version.
  int Create() {
    if (prompts_file_.empty() && from_eval_.empty()) {
      throw UserError("tune review create " + name_ +
                      " needs its prompts: --prompts FILE, or --from-eval NAME:N for a version's "
                      "evaluation split");
    }
    const auto registry = Registry::Open(registry_path_, Mode::kCreate);
    if (!from_eval_.empty()) {
      // The version's evaluation outputs hold its eval split's prompts and references.
      const VersionRecord version = registry->Resolve(from_eval_);
      const std::string ref = version.name + ":" + std::to_string(version.version);
      if (!version.eval_samples) {
        throw UserError(ref +
                        " has no stored evaluation outputs to take prompts from; give the "
                        "prompts with --prompts FILE");
      }
      std::istringstream samples(registry->ReadObject(*version.eval_samples, ref + " eval"));
      std::string set;
      for (std::string line; std::getline(samples, line);) {
        const nlohmann::json sample = nlohmann::json::parse(line, nullptr, false);
        if (!sample.is_object() || !sample.contains("prompt")) continue;
        set += nlohmann::json{{"prompt", sample["prompt"]},
                              {"reference", sample.value("reference", "")}}
                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
               "\n";
      }
      prompts_file_ = fs::temp_directory_path() /
                      ("tune-review-" + std::to_string(::getpid()) + "-prompts.jsonl");
      std::ofstream(prompts_file_, std::ios::binary) << set;
      struct Remove {
        fs::path file;
        ~Remove() {
          std::error_code ec;
          fs::remove(file, ec);
        }
      } remove{prompts_file_};
      return CreateFrom(*registry, ref + " eval split");
    }
    return CreateFrom(*registry, fs::absolute(prompts_file_).lexically_normal().string());
  }

  // `source`: where the prompts came from, as the review set's record says.
  int CreateFrom(Registry& registry, const std::string& source) {
    const std::string text = ReadText(prompts_file_);
    const std::vector<ReviewPrompt> prompts =
        ParseReviewSet(text, from_eval_.empty() ? prompts_file_.string() : source);
    std::string rows;
    int64_t line = 0;
    for (const ReviewPrompt& prompt : prompts) {
      const std::string canonical =
          nlohmann::json::array({prompt.prompt, prompt.reference}).dump() + "\n";
      rows += Sha256Hex(canonical) + " " + Sha256Hex(prompt.prompt) + " " + std::to_string(++line) +
              "\n";
    }
    DatasetRecord record;
    record.sha256 = Sha256Hex(text);
    record.source = source;
    record.rows = static_cast<int64_t>(prompts.size());
    record.summary = Counted(record.rows, "prompt") + " for review";
    const fs::path rows_file =
        fs::temp_directory_path() / ("tune-review-rows-" + std::to_string(::getpid()) + ".txt");
    std::ofstream(rows_file, std::ios::binary) << rows;
    int64_t version = 0;
    try {
      version = registry.RegisterDataset(name_, record, rows_file, prompts_file_);
    } catch (...) {
      fs::remove(rows_file);
      throw;
    }
    fs::remove(rows_file);
    const std::string set = name_ + ":" + std::to_string(version);
    registry.CreateReview(name_, set);
    std::cout << "review " << name_ << " of " << Counted(record.rows, "prompt") << " (review set "
              << set << "); record outputs with `tune review generate " << name_
              << " VERSION...`\n";
    return 0;
  }

  int List() {
    const auto registry = Registry::Open(registry_path_, Mode::kReadOnly);
    const std::vector<ReviewRecord> reviews = registry->ListReviews();
    if (reviews.empty()) {
      std::cout << "no reviews in " << registry_path_
                << "; `tune review create NAME --prompts FILE` opens one\n";
      return 0;
    }
    for (const ReviewRecord& review : reviews) {
      std::string contestants;
      for (const ReviewOutputs& outputs : review.outputs) {
        contestants += (contestants.empty() ? "" : ", ") + outputs.contestant;
      }
      std::string judgements;
      try {
        judgements = Counted(registry->Results(review.name).judgements, "judgement");
      } catch (const RegistryDenied&) {
        judgements = "judgements shown once it is closed";  // a rater's token
      }
      std::cout << review.name << "  " << review.set << "  " << Counted(review.prompts, "prompt")
                << "  " << (contestants.empty() ? std::string("no outputs yet") : contestants)
                << "  " << (review.closed_ms == 0 ? "open" : "closed") << "  " << judgements
                << "\n";
    }
    return 0;
  }

  int Results() {
    const ReviewResults results = Registry::Open(registry_path_, Mode::kReadOnly)->Results(name_);
    if (json_) {
      std::cout << wire::ResultsToJson(results).dump(2) << "\n";
      return 0;
    }
    std::cout << "review " << results.review << " (" << (results.closed ? "closed" : "open")
              << "): " << Counted(results.judgements, "judgement") << " by "
              << Counted(results.raters, "rater") << "\n";
    std::vector<std::string> names;
    for (const ContestantResult& c : results.contestants) names.push_back(c.contestant);
    size_t width = 10;
    for (const std::string& name : names) width = std::max(width, name.size());
    std::printf("%-*s  %6s  %-15s  %10s", static_cast<int>(width), "contestant", "rating",
                "95% interval", "judgements");
    for (const std::string& name : names)
      std::printf("  %*s", static_cast<int>(width), ("vs " + name).c_str());
    std::printf("\n");
    for (const ContestantResult& c : results.contestants) {
      std::printf("%-*s  %6.0f  %-15s  %10lld", static_cast<int>(width), c.contestant.c_str(),
                  c.rating.rating,
                  (Fixed(c.rating.ci95_low, 0) + " to " + Fixed(c.rating.ci95_high, 0)).c_str(),
                  static_cast<long long>(c.judgements));
      for (const std::string& name : names) {
        const auto it = c.against.find(name);
        const std::string cell = it == c.against.end() ? std::string("-")
                                 : !it->second.rate()
                                     ? std::string("-")
                                     : Fixed(100 * *it->second.rate(), 0) + "% of " +
                                           std::to_string(it->second.judgements);
        std::printf("  %*s", static_cast<int>(width), cell.c_str());
      }
      std::printf("\n");
    }
    std::cout << "ratings: Bradley-Terry on the Elo scale (ties and both-bad count half), "
              << results.resamples << " bootstrap resamples\n";
    if (results.agreement.alpha) {
      std::cout << "agreement: Krippendorff's alpha " << Fixed(*results.agreement.alpha, 2)
                << " over " << Counted(results.agreement.items, "pair")
                << " judged by two or more raters\n";
    } else {
      std::cout << "agreement: not measured (no pair judged by two raters with any variation)\n";
    }
    return 0;
  }

  CLI::App* create_ = nullptr;
  CLI::App* generate_ = nullptr;
  CLI::App* ls_ = nullptr;
  CLI::App* results_ = nullptr;
  CLI::App* close_ = nullptr;
  std::string registry_path_;
  std::string name_;
  fs::path prompts_file_;
  std::string from_eval_;
  bool json_ = false;
  ReviewGeneration generation_;
};

}  // namespace

std::unique_ptr<ReviewCommands> ReviewCommands::Add(CLI::App& app) {
  return std::make_unique<ReviewCommandsImpl>(app);
}

}  // namespace tune

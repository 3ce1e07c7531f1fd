// jsonl: one JSON object per line, each with a prompt and a completion field.
#include <memory>
#include <string>
#include <utility>

#include "../common/json_rows.h"
#include "tune/dataset.h"

namespace {

class JsonlDataset final : public tune::Dataset {
 public:
  JsonlDataset(std::string prompt_field, std::string completion_field)
      : prompt_field_(std::move(prompt_field)), completion_field_(std::move(completion_field)) {}

  tune::DatasetRows Read(const std::filesystem::path& path) const override {
    return tune::datasets::ReadJsonLines(
        tune::datasets::ReadFileText(path),
        [&](const nlohmann::json& row, std::string& reason) { return Parse(row, reason); });
  }

 private:
  std::optional<tune::TextExample> Parse(const nlohmann::json& row, std::string& reason) const {
    if (!row.is_object()) {
      reason = "not a JSON object";
      return std::nullopt;
    }
    const std::string* prompt = tune::datasets::StringField(row, prompt_field_, reason);
    if (prompt == nullptr) return std::nullopt;
    const std::string* completion = tune::datasets::StringField(row, completion_field_, reason);
    if (completion == nullptr) return std::nullopt;
    if (completion->empty()) {
      reason = "empty completion";
      return std::nullopt;
    }
    return tune::TextExample{.prompt = *prompt, .completion = *completion};
  }

  std::string prompt_field_;
  std::string completion_field_;
};

void Register(tune::Registrar& registrar) {
  registrar.Add(tune::DatasetPlugin{
      .info = {.name = "jsonl",
               .version = "1.0.0",
               .description = "One JSON object per line with a prompt and a completion field; "
                              "blank lines are ignored.",
               .options = {tune::OptionSpec::String("prompt_field", "prompt",
                                                    "Field that holds the prompt"),
                           tune::OptionSpec::String("completion_field", "completion",
                                                    "Field that holds the completion")}},
      .create = [](const tune::Options& options) -> std::unique_ptr<tune::Dataset> {
        return std::make_unique<JsonlDataset>(options.String("prompt_field"),
                                              options.String("completion_field"));
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

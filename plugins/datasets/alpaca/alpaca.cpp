// alpaca: Stanford Alpaca records {instruction, input, output}, as a JSON array or as JSONL.
// The prompt is the Alpaca training template (tatsu-lab/stanford_alpaca, train.py PROMPT_DICT),
// verbatim; the completion is the output.
#include <memory>
#include <string>
#include <utility>

#include "../common/json_rows.h"
#include "tune/dataset.h"

namespace {

constexpr std::string_view kPromptWithInput =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n";
constexpr std::string_view kPromptNoInput =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n"
    "### Instruction:\n";

std::optional<tune::TextExample> Parse(const nlohmann::json& row, std::string& reason) {
  if (!row.is_object()) {
    reason = "not a JSON object";
    return std::nullopt;
  }
  const std::string* instruction = tune::datasets::StringField(row, "instruction", reason);
  if (instruction == nullptr) return std::nullopt;
  const std::string* output = tune::datasets::StringField(row, "output", reason);
  if (output == nullptr) return std::nullopt;
  // "input" may be absent or empty: the no-input template is used then, as in Alpaca.
  std::string input;
  if (row.contains("input")) {
    const std::string* field = tune::datasets::StringField(row, "input", reason);
    if (field == nullptr) return std::nullopt;
    input = *field;
  }
  if (instruction->empty()) {
    reason = "empty instruction";
    return std::nullopt;
  }
  if (output->empty()) {
    reason = "empty completion";
    return std::nullopt;
  }
  tune::TextExample example;
  if (input.empty()) {
    example.prompt = kPromptNoInput;
    example.prompt += *instruction;
  } else {
    example.prompt = kPromptWithInput;
    example.prompt += *instruction;
    example.prompt += "\n\n### Input:\n";
    example.prompt += input;
  }
  example.prompt += "\n\n### Response:\n";
  example.completion = *output;
  return example;
}

class AlpacaDataset final : public tune::Dataset {
 public:
  tune::DatasetRows Read(const std::filesystem::path& path) const override {
    tune::DatasetRows rows;
    const std::string text = tune::datasets::ReadFileText(path);
    auto add = [&](int64_t line, const nlohmann::json& row, std::string reason) {
      if (std::optional<tune::TextExample> example = Parse(row, reason)) {
        example->line = line;
        rows.examples.push_back(std::move(*example));
      } else {
        rows.bad_rows.push_back({line, std::move(reason)});
      }
    };
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == '[') {
      // A JSON array (the format of alpaca_data.json): records are numbered from 1.
      nlohmann::json array;
      try {
        array = nlohmann::json::parse(text);
      } catch (const nlohmann::json::exception& e) {
        std::string message = path.string();
        message += ": ";
        message += tune::datasets::DescribeParseError(e);
        throw std::runtime_error(message);
      }
      int64_t record = 0;
      for (const nlohmann::json& row : array) add(++record, row, "");
      return rows;
    }
    tune::datasets::ForEachLine(text, [&](int64_t line, std::string_view line_text) {
      std::string reason;
      if (std::optional<nlohmann::json> row = tune::datasets::ParseLine(line_text, reason)) {
        add(line, *row, "");
      } else {
        rows.bad_rows.push_back({line, std::move(reason)});
      }
    });
    return rows;
  }
};

void Register(tune::Registrar& registrar) {
  registrar.Add(tune::DatasetPlugin{
      .info = {.name = "alpaca",
               .version = "1.0.0",
               .description = "Stanford Alpaca records {instruction, input, output} as a JSON "
                              "array or JSONL, rendered with the Alpaca prompt template."},
      .create = [](const tune::Options&) -> std::unique_ptr<tune::Dataset> {
        return std::make_unique<AlpacaDataset>();
      }});
}

}  // namespace

TUNE_PLUGIN(Register)

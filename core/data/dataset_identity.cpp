#include "data/dataset_identity.h"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/sha256.h"

namespace tune {

std::string CanonicalExample(const TextExample& example) {
  std::string canonical;
  try {
    canonical = nlohmann::json::array({example.prompt, example.completion}).dump();
  } catch (const nlohmann::json::exception&) {
    std::string message = "example at line ";
    message += std::to_string(example.line);
    message += " is not valid UTF-8; fix the dataset file's encoding";
    throw UserError(message);
  }
  canonical += '\n';
  return canonical;
}

std::string DatasetSha256(std::span<const TextExample> examples) {
  Sha256 sha;
  for (const TextExample& example : examples) sha.Update(CanonicalExample(example));
  return sha.FinishHex();
}

bool InEvalSplit(const TextExample& example, double eval_fraction) {
  Sha256 sha;
  sha.Update(CanonicalExample(example));
  const Sha256::Digest digest = sha.Finish();
  uint64_t prefix = 0;
  for (size_t i = 0; i < 8; ++i) prefix = (prefix << 8) | digest[i];
  if (!(eval_fraction > 0.0)) return false;
  if (eval_fraction >= 1.0) return true;
  // prefix / 2^64 < f  <=>  prefix < f * 2^64, which is exact in a double (a power-of-two scale)
  // and below 2^64, so the comparison is done exactly in integers.
  const double threshold = eval_fraction * 0x1p64;
  const auto whole = static_cast<uint64_t>(threshold);
  return static_cast<double>(whole) == threshold ? prefix < whole : prefix <= whole;
}

std::string RowHashesText(std::span<const TextExample> examples) {
  std::string text;
  for (const TextExample& example : examples) {
    text.append(Sha256Hex(CanonicalExample(example)))
        .append(" ")
        .append(Sha256Hex(example.prompt))
        .append(" ")
        .append(std::to_string(example.line))
        .append("\n");
  }
  return text;
}

namespace {

struct RowHashes {
  std::string row, prompt;
  int64_t line = 0;
};

std::vector<RowHashes> ParseRowHashes(std::string_view text) {
  std::vector<RowHashes> rows;
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    const size_t first = line.find(' '), second = line.find(' ', first + 1);
    RowHashes row;
    if (first == 64 && second == 129 && second + 1 < line.size()) {
      row.row = std::string(line.substr(0, 64));
      row.prompt = std::string(line.substr(65, 64));
      try {
        row.line = std::stoll(std::string(line.substr(second + 1)));
      } catch (const std::exception&) {
        row.line = 0;
      }
    }
    if (row.line <= 0) {
      throw UserError("row list line " + std::to_string(number) +
                      " is not 'ROW_SHA256 PROMPT_SHA256 LINE'; the registry may be damaged: run "
                      "`tune registry verify`");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

RowsDiff DiffRows(std::string_view from_text, std::string_view to_text) {
  const std::vector<RowHashes> from = ParseRowHashes(from_text), to = ParseRowHashes(to_text);
  std::map<std::string, std::vector<size_t>> unmatched_rows;  // row hash -> rows of `from`
  // Pushed last first, so that back() is the earliest row: equal rows pair up in file order.
  for (size_t i = from.size(); i-- > 0;) unmatched_rows[from[i].row].push_back(i);
  std::vector<bool> matched(from.size(), false);
  std::vector<size_t> rest;  // rows of `to` with no equal row left in `from`
  RowsDiff diff;
  for (size_t j = 0; j < to.size(); ++j) {
    auto it = unmatched_rows.find(to[j].row);
    if (it != unmatched_rows.end() && !it->second.empty()) {
      matched[it->second.back()] = true;
      it->second.pop_back();
      ++diff.unchanged;
    } else {
      rest.push_back(j);
    }
  }
  std::map<std::string, std::vector<size_t>> by_prompt;  // prompt hash -> unmatched `from` rows
  for (size_t i = from.size(); i-- > 0;) {
    if (!matched[i]) by_prompt[from[i].prompt].push_back(i);
  }
  for (const size_t j : rest) {
    auto it = by_prompt.find(to[j].prompt);
    if (it != by_prompt.end() && !it->second.empty()) {
      matched[it->second.back()] = true;
      it->second.pop_back();
      diff.changed.push_back(to[j].line);
    } else {
      diff.added.push_back(to[j].line);
    }
  }
  for (size_t i = 0; i < from.size(); ++i) {
    if (!matched[i]) diff.removed.push_back(from[i].line);
  }
  return diff;
}

}  // namespace tune

#include "train/examples.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <random>
#include <tuple>

#include <ATen/ATen.h>

#include "chat_template/chat_template.h"
#include "config/run_config.h"
#include "data/dataset_identity.h"
#include "data/quality.h"
#include "generate/generate.h"
#include "plugin_host/plugin_host.h"
#include "tune/tokenizer.h"
#include "util/counted.h"
#include "util/echo.h"
#include "util/error.h"
#include "util/log.h"
#include "util/number_text.h"

namespace tune {
namespace {

namespace fs = std::filesystem;

TokenizedExample Tokenize(const TextExample& example, const Tokenizer& tokenizer) {
  TokenizedExample out;
  out.line = example.line;
  out.ids = EncodeWithBos(tokenizer, example.prompt);
  const auto begin = static_cast<int64_t>(out.ids.size());
  const std::vector<int32_t> completion = tokenizer.Encode(example.completion);
  out.ids.insert(out.ids.end(), completion.begin(), completion.end());
  if (tokenizer.eos_id() >= 0) out.ids.push_back(tokenizer.eos_id());
  out.trained.emplace_back(begin, static_cast<int64_t>(out.ids.size()));
  return out;
}

// `example`'s conversation rendered with `chat_template`: the text between assistant turns and
// each turn encoded in order, the turns marked trained (the template writes the end of turn). The
// example's prompt and completion become the last turn's, for generation metrics.
TokenizedExample TokenizeChat(TextExample& example, const ChatTemplate& chat_template,
                              const Tokenizer& tokenizer) {
  const RenderedChat chat = chat_template.RenderWithAssistantSpans(example.messages);
  TokenizedExample out;
  out.line = example.line;
  size_t at = 0;
  const auto append = [&](size_t end) {
    const std::string_view text = std::string_view(chat.text).substr(at, end - at);
    const std::vector<int32_t> ids =
        out.ids.empty() ? EncodeWithBos(tokenizer, text) : tokenizer.Encode(text);
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    at = end;
  };
  for (const auto& [begin, end] : chat.assistant_spans) {
    append(begin);
    const auto first = static_cast<int64_t>(out.ids.size());
    append(end);
    out.trained.emplace_back(first, static_cast<int64_t>(out.ids.size()));
  }
  if (at < chat.text.size()) append(chat.text.size());
  std::tie(example.prompt, example.completion) =
      chat_template.PromptAndCompletion(example.messages);
  return out;
}

// More text bytes than `tokenizer` can cover with `seq_len` tokens: no token stands for more
// bytes than its longest vocabulary entry, and normalisation (NFKC) shrinks text at most 3-fold,
// so 4x leaves room. A row longer than this cannot fit and is refused without being tokenized (a
// 50 MB row would take seconds and gigabytes to find that out). What this cannot see: a
// normaliser that drops characters (long runs of whitespace) could make such a row fit.
int64_t MaxRowBytes(const Tokenizer& tokenizer, int64_t seq_len) {
  size_t longest = 1;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    longest = std::max(longest, tokenizer.TokenText(id).size());
  }
  return 4 * seq_len * static_cast<int64_t>(longest);
}

int64_t TextBytes(const TextExample& example) {
  size_t bytes = example.prompt.size() + example.completion.size();
  for (const ChatMessage& message : example.messages) bytes += message.content.size();
  return static_cast<int64_t>(bytes);
}

struct ReadFile {
  std::vector<TextExample> text;
  std::vector<TokenizedExample> tokens;
};

// Reads `path`, tokenizes, and appends every bad row to `bad` as "path:line: reason". The chat
// template of `model_dir` is read the first time a conversation needs it.
ReadFile ReadAndTokenize(DatasetRows rows, const fs::path& path, const Tokenizer& tokenizer,
                         const fs::path& model_dir, int64_t seq_len, int64_t max_row_bytes,
                         std::optional<std::optional<ChatTemplate>>& chat_template,
                         std::vector<std::string>& bad) {
  std::vector<std::pair<int64_t, std::string>> problems;
  // A plugin's reason may quote the row, which may be long or not UTF-8.
  for (const BadRow& row : rows.bad_rows) problems.emplace_back(row.line, Echo(row.reason, 200));
  ReadFile out;
  for (TextExample& example : rows.examples) {
    if (const int64_t bytes = TextBytes(example); bytes > max_row_bytes) {
      problems.emplace_back(example.line, Counted(bytes, "byte") + " of text, more than " +
                                              std::to_string(seq_len) +
                                              " tokens (train.seq_len) can hold");
      continue;
    }
    if (!example.messages.empty() && !chat_template) chat_template = ChatTemplate::Load(model_dir);
    TokenizedExample tokens;
    if (!example.messages.empty() && *chat_template) {
      try {
        tokens = TokenizeChat(example, **chat_template, tokenizer);
      } catch (const TemplateRefused&) {
        throw;                        // the template itself is at fault, and would be on every row
      } catch (const UserError& e) {  // the template refuses this conversation
        problems.emplace_back(example.line, e.what());
        continue;
      }
    } else {
      tokens = Tokenize(example, tokenizer);
    }
    const auto length = static_cast<int64_t>(tokens.ids.size());
    if (length > seq_len) {
      problems.emplace_back(
          example.line,
          std::to_string(length) + " tokens, more than train.seq_len = " + std::to_string(seq_len));
      continue;
    }
    out.text.push_back(std::move(example));
    out.tokens.push_back(std::move(tokens));
  }
  std::sort(problems.begin(), problems.end());
  for (const auto& [line, reason] : problems) {
    bad.push_back(path.string() + ":" + std::to_string(line) + ": " + reason);
  }
  return out;
}

// Duplicate rows among `report`'s: those beyond the first of each exact group and of each
// near-duplicate cluster.
int64_t DuplicateRows(const QualityReport& report) {
  int64_t rows = report.ExactDuplicateRows();
  for (const auto& cluster : report.near_duplicates)
    rows += static_cast<int64_t>(cluster.size()) - 1;
  return rows;
}

// Applies [dataset.quality]'s filters to the training file's rows: drops rows, counting them by
// reason (the first that applies, in the order empty, over_max_tokens, conflict,
// exact_duplicate, near_duplicate) into `dropped`. Checks the gates on the rows kept. Returns the
// report of the file as read.
QualityReport ApplyQuality(DatasetRows& rows, const DataQualityConfig& quality,
                           const Tokenizer& tokenizer, const fs::path& path, bool force,
                           std::map<std::string, int64_t>& dropped) {
  const QualityReport report = InspectDataset(rows, quality.max_tokens > 0 ? &tokenizer : nullptr,
                                              {quality.near_threshold, quality.max_tokens});
  std::map<int64_t, std::string> reason;  // line -> why it goes; the first reason stays
  const auto drop = [&](const std::vector<int64_t>& lines, const char* why, bool keep_first) {
    for (size_t i = keep_first ? 1 : 0; i < lines.size(); ++i) reason.emplace(lines[i], why);
  };
  if (quality.drop_empty) {
    drop(report.empty_prompts, "empty", false);
    drop(report.empty_completions, "empty", false);
  }
  if (quality.max_tokens > 0) drop(report.over_seq_len, "over_max_tokens", false);
  if (quality.drop_conflicts) {
    for (const auto& group : report.conflicts) drop(group, "conflict", false);
  }
  if (quality.dedup != "off") {
    for (const auto& group : report.exact_duplicates) drop(group, "exact_duplicate", true);
  }
  if (quality.dedup == "near") {
    for (const auto& cluster : report.near_duplicates) drop(cluster, "near_duplicate", true);
  }
  if (!reason.empty()) {
    std::erase_if(rows.examples, [&](const TextExample& example) {
      const auto it = reason.find(example.line);
      if (it == reason.end()) return false;
      ++dropped[it->second];
      return true;
    });
  }

  const bool gated = quality.max_duplicate_fraction < 1.0 || quality.max_conflicts >= 0;
  if (!gated || rows.examples.empty()) return report;
  const QualityReport kept =
      reason.empty() ? report : InspectDataset(rows, nullptr, {quality.near_threshold, 0});
  const double duplicates =
      static_cast<double>(DuplicateRows(kept)) / static_cast<double>(kept.rows);
  std::string failed;
  if (duplicates > quality.max_duplicate_fraction) {
    failed = NumberText(std::round(1000 * duplicates) / 10) +
             "% of the rows kept are duplicates, over dataset.quality.max_duplicate_fraction = " +
             NumberText(quality.max_duplicate_fraction) +
             " (set dataset.quality.dedup = \"exact\" or \"near\" to drop them)";
  } else if (quality.max_conflicts >= 0 &&
             static_cast<int64_t>(kept.conflicts.size()) > quality.max_conflicts) {
    failed = Counted(static_cast<int64_t>(kept.conflicts.size()), "conflict") +
             " among the rows kept, over dataset.quality.max_conflicts = " +
             std::to_string(quality.max_conflicts) +
             " (set dataset.quality.drop_conflicts = true to drop them)";
  }
  if (!failed.empty()) {
    const std::string message = path.string() + ": " + QualitySummary(kept) + "; " + failed +
                                "; `tune data inspect " + path.string() + "` lists the rows";
    if (!force) throw UserError(message + "; --force trains on it anyway");
    LogWarning(message + "; training anyway (--force)");
  }
  return report;
}

}  // namespace

PreparedData PrepareData(const DatasetConfig& config, const PluginHost& host,
                         const Tokenizer& tokenizer, const fs::path& model_dir, int64_t seq_len,
                         bool force) {
  const std::unique_ptr<Dataset> dataset = host.CreateDataset(config.plugin, config.options);
  std::vector<std::string> bad;
  std::optional<std::optional<ChatTemplate>> chat_template;  // outer: read yet; inner: has one
  const int64_t max_row_bytes = MaxRowBytes(tokenizer, seq_len);
  DatasetRows train_rows = dataset->Read(config.path);
  std::string rows_as_read = RowHashesText(train_rows.examples);
  std::map<std::string, int64_t> dropped;
  const QualityReport report =
      ApplyQuality(train_rows, config.quality, tokenizer, config.path, force, dropped);
  ReadFile train = ReadAndTokenize(std::move(train_rows), config.path, tokenizer, model_dir,
                                   seq_len, max_row_bytes, chat_template, bad);
  ReadFile eval;
  if (config.eval_path) {
    eval = ReadAndTokenize(dataset->Read(*config.eval_path), *config.eval_path, tokenizer,
                           model_dir, seq_len, max_row_bytes, chat_template, bad);
  }
  if (!bad.empty() && !config.skip_bad_rows) {
    std::string message = bad.front();
    if (bad.size() > 1) message += " (and " + std::to_string(bad.size() - 1) + " more bad rows)";
    message += "; fix the data, or set dataset.on_bad_row = \"skip\" to skip bad rows";
    throw UserError(message);
  }

  PreparedData data;
  data.skipped = std::move(bad);
  data.quality_summary = QualitySummary(report);
  data.quality_report_json = QualityReportJson(report, -1);
  data.dataset_rows = std::move(rows_as_read);
  data.dropped = std::move(dropped);
  data.dataset_sha256 = DatasetSha256(train.text);
  if (config.eval_path) {
    data.eval_sha256 = DatasetSha256(eval.text);
    data.train_text = std::move(train.text);
    data.train = std::move(train.tokens);
    data.eval_text = std::move(eval.text);
    data.eval = std::move(eval.tokens);
  } else {
    for (size_t i = 0; i < train.text.size(); ++i) {
      const bool held_out = InEvalSplit(train.text[i], config.eval_fraction);
      (held_out ? data.eval_text : data.train_text).push_back(std::move(train.text[i]));
      (held_out ? data.eval : data.train).push_back(std::move(train.tokens[i]));
    }
  }
  if (data.train.empty()) {
    throw UserError(config.path.string() + ": no training examples remain after the eval split" +
                    (data.skipped.empty() ? "" : " and skipping bad rows"));
  }
  if (data.eval.empty() && (config.eval_path || config.eval_fraction > 0)) {
    throw UserError((config.eval_path ? *config.eval_path : config.path).string() +
                    ": the eval split is empty; raise dataset.eval_fraction or add examples");
  }
  return data;
}

Batch MakeBatch(const std::vector<const TokenizedExample*>& examples, bool train_on_prompt) {
  int64_t longest = 2;
  for (const TokenizedExample* example : examples) {
    longest = std::max<int64_t>(longest, static_cast<int64_t>(example->ids.size()));
  }
  const auto rows = static_cast<int64_t>(examples.size());
  const int64_t width = longest - 1;
  at::Tensor inputs = at::zeros({rows, width}, at::kLong);
  at::Tensor targets = at::full({rows, width}, -100, at::kLong);
  auto in = inputs.accessor<int64_t, 2>();
  auto out = targets.accessor<int64_t, 2>();
  Batch batch;
  for (int64_t b = 0; b < rows; ++b) {
    const std::vector<int32_t>& ids = examples[b]->ids;
    const auto n = static_cast<int64_t>(ids.size());
    const auto& trained = examples[b]->trained;
    for (int64_t t = 0; t + 1 < n; ++t) {
      in[b][t] = ids[t];
      const bool learned = std::any_of(trained.begin(), trained.end(), [&](const auto& span) {
        return t + 1 >= span.first && t + 1 < span.second;
      });
      if (train_on_prompt || learned) {
        out[b][t] = ids[t + 1];
        ++batch.target_tokens;
      }
    }
    batch.tokens += std::max<int64_t>(n - 1, 0);
  }
  batch.inputs = inputs;
  batch.targets = targets;
  return batch;
}

ExampleStream::ExampleStream(int64_t num_examples, uint64_t seed)
    : num_examples_(num_examples), seed_(seed) {}

int64_t ExampleStream::At(int64_t k) {
  const int64_t epoch = k / num_examples_;
  if (epoch != epoch_) {
    order_.resize(num_examples_);
    std::iota(order_.begin(), order_.end(), 0);
    std::seed_seq seq{static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32),
                      static_cast<uint32_t>(epoch), static_cast<uint32_t>(epoch >> 32)};
    std::mt19937_64 rng(seq);
    // Fisher-Yates by hand: std::shuffle's use of the generator is the library's choice.
    for (int64_t i = num_examples_ - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
      std::swap(order_[i], order_[j]);
    }
    epoch_ = epoch;
  }
  return order_[k % num_examples_];
}

}  // namespace tune

// Training examples as token ids, the train/eval split, and the batches the trainer feeds.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "tune/dataset.h"

namespace tune {

struct DatasetConfig;
class PluginHost;
class Tokenizer;

// One example as the model sees it: BOS (when the model has one), the prompt's tokens, the
// completion's tokens, EOS; or a conversation rendered with the model's chat template, its text
// and assistant turns encoded in turn. Prompt and completion (each assistant turn) are encoded
// separately, as at generation time, where the prompt is encoded alone and the model continues it.
struct TokenizedExample {
  std::vector<int32_t> ids;
  // [begin, end) ranges of `ids` the model learns to produce: the completion with EOS, or each
  // assistant turn up to the template's end of turn. The rest is prompt, left out of the loss
  // unless train.train_on_prompt.
  std::vector<std::pair<int64_t, int64_t>> trained;
  int64_t line = 0;  // in the source file
};

// The data of one run: text for generation-based metrics, tokens for loss, identity for lineage.
struct PreparedData {
  std::vector<TextExample> train_text, eval_text;
  std::vector<TokenizedExample> train, eval;  // same order as the text
  std::string dataset_sha256;                 // of every good example of dataset.path
  std::string eval_sha256;                    // of dataset.eval_path's examples, when set
  std::vector<std::string> skipped;           // "file:line: reason", when skipping bad rows
  std::string quality_summary;                // data/quality.h's summary of dataset.path as read
  std::string quality_report_json;            // and its whole report
  std::string dataset_rows;                   // RowHashesText of dataset.path as read
  std::map<std::string, int64_t> dropped;     // rows [dataset.quality] dropped, by reason
};

// Reads, tokenizes and splits the run's data. Conversations (TextExample::messages) are rendered
// with the chat template of `model_dir` when it has one (ChatTemplate); the example's prompt then
// becomes the conversation before its last assistant message, with the generation prompt, and its
// completion that message, for generation metrics. Rows the plugin refuses, conversations the
// template refuses and examples longer than `seq_len` tokens are bad rows: each is reported by
// file and line, and the run stops (UserError naming the first and counting the rest) unless
// config.skip_bad_rows. A template past a limit (TemplateRefused) is no bad row: it stops the run
// at once, whatever skip_bad_rows says. Before any of that, config.quality's filters drop rows of
// dataset.path (not of eval_path), and its gates check the rows kept: a failed gate is a UserError,
// or with `force` a warning. Throws UserError if no training example remains, or no eval example
// when the split is by fraction > 0.
PreparedData PrepareData(const DatasetConfig& config, const PluginHost& host,
                         const Tokenizer& tokenizer, const std::filesystem::path& model_dir,
                         int64_t seq_len, bool force);

// Next-token inputs and targets for `examples`, right-padded to the longest: inputs[b, t] is
// ids[t], targets[b, t] is ids[t + 1], or -100 (ignored) past the end and, unless
// `train_on_prompt`, where ids[t + 1] is a prompt token.
struct Batch {
  at::Tensor inputs;          // int64 [batch, longest - 1]
  at::Tensor targets;         // int64 [batch, longest - 1]
  int64_t tokens = 0;         // real (unpadded) input tokens
  int64_t target_tokens = 0;  // targets that count in the loss
};
Batch MakeBatch(const std::vector<const TokenizedExample*>& examples, bool train_on_prompt);

// The training stream: example `k` (counted from 0 over the whole run) is example
// Order(epoch = k / n)[k % n], where each epoch is a fresh shuffle determined by `seed` and the
// epoch alone, so a run resumed at any k sees exactly the examples it would have.
class ExampleStream {
 public:
  ExampleStream(int64_t num_examples, uint64_t seed);
  int64_t At(int64_t k);

 private:
  int64_t num_examples_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
};

}  // namespace tune

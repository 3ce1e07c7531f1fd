// Dataset plugins: read a file of training examples into text pairs.
//
// The host does everything after reading: tokenization, the eval split, hashing, batching, and
// deciding whether bad rows stop the run or are skipped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tune/chat.h"
#include "tune/plugin.h"

namespace tune {

struct TextExample {
  std::string prompt;      // context the model is given; masked out of the loss by default
  std::string completion;  // what the model should learn to produce
  int64_t line = 0;        // 1-based line (or record) in the source file, for error messages
  // The conversation itself, from datasets that read conversations, ending with an assistant
  // message. When set and the model folder has a chat template, the host renders the
  // conversation with that template and trains on every assistant turn; prompt and completion
  // (the dataset's own rendering) are used only when the folder has none.
  std::vector<ChatMessage> messages = {};
};

// A record the plugin could not turn into an example.
struct BadRow {
  int64_t line = 0;    // 1-based line (or record) in the source file
  std::string reason;  // one line, no path: "missing field 'completion'", "not JSON: ..."
};

// Everything one file holds: the good examples and the bad rows, each in file order.
struct DatasetRows {
  std::vector<TextExample> examples;
  std::vector<BadRow> bad_rows;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  // Reads every record of `path`. A malformed record becomes a BadRow and reading goes on. A
  // file that cannot be read at all (missing, unreadable, malformed as a whole) throws an
  // exception naming the file, which the host reports as a UserError naming the plugin.
  virtual DatasetRows Read(const std::filesystem::path& path) const = 0;
};

}  // namespace tune

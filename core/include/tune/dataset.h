// Dataset plugins: read a file of training examples into text pairs.
//
// The host does everything after reading: tokenization, the eval split, hashing, batching.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tune/plugin.h"

namespace tune {

struct TextExample {
  std::string prompt;      // context the model is given; masked out of the loss by default
  std::string completion;  // what the model should learn to produce
  int64_t line = 0;        // 1-based line (or record) in the source file, for error messages
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  // Reads every example of `path`. A malformed record throws an error naming path:line.
  virtual std::vector<TextExample> Read(const std::filesystem::path& path) const = 0;
};

}  // namespace tune

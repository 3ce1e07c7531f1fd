// A fixture for tests of a built-in dataset plugin, loaded from the build's plugin folder through
// the real host, exactly as tune loads it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "plugin_host/plugin_host.h"
#include "support/test_support.h"
#include "tune/dataset.h"

namespace tune::testing {

class BuiltinDataset : public ::testing::Test {
 protected:
  explicit BuiltinDataset(std::string name) : name_(std::move(name)) {}

  void SetUp() override {
    host_.Load({TUNE_BUILTIN_PLUGIN_DIR});
    loaded_ = host_.Find(PluginKind::kDataset, name_);
    ASSERT_NE(loaded_, nullptr) << name_ << " is not in " << TUNE_BUILTIN_PLUGIN_DIR;
  }

  // Writes `content` to a file named `file_name` and reads it with every declared option at its
  // default, then `overrides`.
  DatasetRows Read(const std::string& content,
                   const std::map<std::string, std::string>& overrides = {},
                   const std::string& file_name = "data.jsonl") const {
    return host_.CreateDataset(name_, WithOverrides(overrides))
        ->Read(dir_.Write(file_name, content));
  }

  Options WithOverrides(const std::map<std::string, std::string>& overrides) const {
    Options options = PluginHost::DefaultOptions(*loaded_);
    for (const auto& [name, value] : overrides) {
      EXPECT_TRUE(options.values().contains(name)) << name_ << " declares no '" << name << "'";
      options.Set(name, value);
    }
    return options;
  }

  std::string name_;
  PluginHost host_;
  const LoadedPlugin* loaded_ = nullptr;
  TempDir dir_;
};

// "line: reason" for each bad row, for compact expectations.
inline std::vector<std::string> Describe(const std::vector<BadRow>& bad_rows) {
  std::vector<std::string> lines;
  for (const BadRow& row : bad_rows) lines.push_back(std::to_string(row.line) + ": " + row.reason);
  return lines;
}

}  // namespace tune::testing

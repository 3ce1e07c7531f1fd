// A fixture for tests of a built-in metric plugin, loaded from the build's plugin folder through
// the real host, exactly as tune loads it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "plugin_host/plugin_host.h"
#include "tune/metric.h"

namespace tune::testing {

inline MetricExample Example(std::string prediction, std::vector<std::string> references) {
  return {.prompt = "Q:", .prediction = std::move(prediction), .references = std::move(references)};
}

class BuiltinMetric : public ::testing::Test {
 protected:
  explicit BuiltinMetric(std::string name) : name_(std::move(name)) {}

  void SetUp() override {
    host_.Load({TUNE_BUILTIN_PLUGIN_DIR});
    loaded_ = host_.Find(PluginKind::kMetric, name_);
    ASSERT_NE(loaded_, nullptr) << name_ << " is not in " << TUNE_BUILTIN_PLUGIN_DIR;
  }

  // Scores `examples` with every declared option at its default, then `overrides`.
  MetricScore Score(const std::vector<MetricExample>& examples,
                    const std::map<std::string, bool>& overrides = {}) const {
    Options options = PluginHost::DefaultOptions(*loaded_);
    for (const auto& [name, value] : overrides) {
      EXPECT_TRUE(options.values().contains(name)) << name_ << " declares no '" << name << "'";
      options.Set(name, value);
    }
    return host_.CreateMetric(name_, options)->Score(examples);
  }

  std::string name_;
  PluginHost host_;
  const LoadedPlugin* loaded_ = nullptr;
};

}  // namespace tune::testing

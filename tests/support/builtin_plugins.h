// A test suite's plugin host with tune's built-in plugins, and a scratch folder, both made once
// for the suite (loading the plugins takes a moment) and shared by its tests.
#pragma once

#include <gtest/gtest.h>

#include "plugin_host/plugin_host.h"
#include "support/test_support.h"

namespace tune::testing {

// Derive a suite from WithBuiltinPlugins<> (or WithBuiltinPlugins<::testing::TestWithParam<P>>);
// a suite that prepares more calls this SetUpTestSuite first and TearDownTestSuite last.
template <typename Base = ::testing::Test>
class WithBuiltinPlugins : public Base {
 protected:
  static void SetUpTestSuite() {
    host_ = new PluginHost();
    host_->Load({TUNE_BUILTIN_PLUGIN_DIR});
    dir_ = new TempDir();
  }
  static void TearDownTestSuite() {
    delete host_;
    delete dir_;
    host_ = nullptr;
    dir_ = nullptr;
  }

  static inline PluginHost* host_ = nullptr;
  static inline TempDir* dir_ = nullptr;
};

}  // namespace tune::testing

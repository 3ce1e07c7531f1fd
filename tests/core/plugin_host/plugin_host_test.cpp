#include "plugin_host/plugin_host.h"

#include <gtest/gtest.h>

#include "support/test_support.h"
#include "tune/metric.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const fs::path kBuiltins = TUNE_BUILTIN_PLUGIN_DIR;
const fs::path kFixtures = TUNE_FIXTURE_DIR;

fs::path Fixture(const std::string& name) { return kFixtures / (name + ".so"); }

// A folder holding copies of the named fixtures, as a user's plugin folder would.
fs::path PluginFolder(const TempDir& dir, const std::vector<std::string>& fixtures) {
  for (const std::string& name : fixtures) {
    fs::copy_file(Fixture(name), dir.path() / (name + ".so"));
  }
  return dir.path();
}

// The one failure for `file`; fails the test if there is not exactly one.
std::string FailureFor(const PluginHost& host, const fs::path& file) {
  std::vector<std::string> messages;
  for (const PluginLoadFailure& failure : host.failures()) {
    if (failure.file == file) messages.push_back(failure.message);
  }
  EXPECT_EQ(messages.size(), 1u) << "failures for " << file;
  return messages.empty() ? "" : messages.front();
}

TEST(PluginHost, LoadsBuiltinMetricsFromTheirOwnLibraries) {
  PluginHost host;
  host.Load({kBuiltins});
  EXPECT_TRUE(host.failures().empty());
  const LoadedPlugin* exact = host.Find(PluginKind::kMetric, "exact_match");
  const LoadedPlugin* f1 = host.Find(PluginKind::kMetric, "token_f1");
  ASSERT_NE(exact, nullptr);
  ASSERT_NE(f1, nullptr);
  EXPECT_NE(exact->file, f1->file);
  EXPECT_EQ(exact->file.parent_path(), kBuiltins);
}

TEST(PluginHost, RefusesAFileThatIsNotASharedLibrary) {
  TempDir dir;
  const fs::path junk = dir.Write("junk.so", "this is a README, not a library\n");
  PluginHost host;
  host.Load({kBuiltins, dir.path()});
  const std::string message = FailureFor(host, junk);
  EXPECT_NE(message.find("plugin " + junk.string() + " is not a loadable shared library"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("remove it from the plugin path"), std::string::npos) << message;
  EXPECT_NE(host.Find(PluginKind::kMetric, "exact_match"), nullptr);
}

TEST(PluginHost, RefusesALibraryWithoutTheEntry) {
  TempDir dir;
  PluginHost host;
  host.Load({PluginFolder(dir, {"no_entry"})});
  const std::string message = FailureFor(host, dir.path() / "no_entry.so");
  EXPECT_NE(message.find("has no 'tune_plugin' entry"), std::string::npos) << message;
  EXPECT_NE(message.find("TUNE_PLUGIN("), std::string::npos) << message;
}

TEST(PluginHost, RefusesAnAbiMismatchNamingBothVersions) {
  TempDir dir;
  PluginHost host;
  host.Load({PluginFolder(dir, {"abi_mismatch"})});
  const std::string message = FailureFor(host, dir.path() / "abi_mismatch.so");
  EXPECT_NE(message.find("was built for tune plugin ABI " + std::to_string(TUNE_ABI_MAJOR + 1) +
                         "; this tune uses ABI " + std::to_string(TUNE_ABI_MAJOR)),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("rebuild it"), std::string::npos) << message;
}

TEST(PluginHost, RefusesALibtorchMismatchNamingBothVersions) {
  TempDir dir;
  PluginHost host;
  host.Load({PluginFolder(dir, {"torch_mismatch"})});
  const std::string message = FailureFor(host, dir.path() / "torch_mismatch.so");
  EXPECT_NE(message.find(std::string("was built for libtorch 2.1.0; this tune uses libtorch ") +
                         TORCH_VERSION),
            std::string::npos)
      << message;
}

TEST(PluginHost, RefusesACompilerMismatchNamingBoth) {
  TempDir dir;
  PluginHost host;
  host.Load({PluginFolder(dir, {"compiler_mismatch"})});
  const std::string message = FailureFor(host, dir.path() / "compiler_mismatch.so");
  EXPECT_NE(message.find(std::string("was built with msvc 19; this tune was built with ") +
                         TUNE_COMPILER_ID),
            std::string::npos)
      << message;
}

TEST(PluginHost, RefusesASecondPluginOfTheSameKindAndNameNamingBothFiles) {
  TempDir dir;
  const fs::path copy = dir.path() / "my_exact_match.so";
  fs::copy_file(kBuiltins / "libtune_metric_exact_match.so", copy);
  PluginHost host;
  host.Load({kBuiltins, dir.path()});
  const std::string message = FailureFor(host, copy);
  EXPECT_NE(
      message.find("plugin " + copy.string() + " registers metric 'exact_match', which " +
                   (kBuiltins / "libtune_metric_exact_match.so").string() + " already provides"),
      std::string::npos)
      << message;
  EXPECT_EQ(host.Find(PluginKind::kMetric, "exact_match")->file.parent_path(), kBuiltins);
}

TEST(PluginHost, KeepsNothingFromALibraryThatThrowsWhileRegistering) {
  TempDir dir;
  PluginHost host;
  host.Load({PluginFolder(dir, {"throws_on_register"})});
  const std::string message = FailureFor(host, dir.path() / "throws_on_register.so");
  EXPECT_NE(message.find("failed while registering: cannot open my vocabulary file"),
            std::string::npos)
      << message;
  EXPECT_EQ(host.Find(PluginKind::kMetric, "half_registered"), nullptr);
}

TEST(PluginHost, RefusesAnInvalidPluginName) {
  TempDir dir;
  PluginHost host;
  host.Load({PluginFolder(dir, {"invalid_name"})});
  const std::string message = FailureFor(host, dir.path() / "invalid_name.so");
  EXPECT_NE(message.find("registers a metric named 'Bad Name', which is not a valid name"),
            std::string::npos)
      << message;
}

TEST(PluginHost, LoadsEveryGoodPluginWhenOthersAreBadAndReportsEachOnOneLine) {
  TempDir dir;
  dir.Write("junk.so", "not a library");
  PluginFolder(dir, {"good_metric", "no_entry", "abi_mismatch", "torch_mismatch",
                     "compiler_mismatch", "throws_on_register", "invalid_name"});
  PluginHost host;
  host.Load({kBuiltins, dir.path()});
  EXPECT_EQ(host.failures().size(), 7u);
  for (const PluginLoadFailure& failure : host.failures()) {
    EXPECT_EQ(failure.message.find('\n'), std::string::npos) << failure.message;
    EXPECT_NE(failure.message.find(failure.file.string()), std::string::npos) << failure.message;
  }
  EXPECT_EQ(
      host.Names(PluginKind::kMetric),
      (std::vector<std::string>{"bleu", "exact_match", "fixture_good", "rouge_l", "token_f1"}));
}

TEST(PluginHost, LoadsAFolderListedTwiceOnlyOnce) {
  PluginHost host;
  host.Load({kBuiltins, kBuiltins / ".", kBuiltins / "libtune_metric_token_f1.so"});
  EXPECT_TRUE(host.failures().empty());
  EXPECT_EQ(host.plugins().size(), 15u);  // 3 datasets, llama, 3 adapters (lora, qlora, full),
                                          // 2 optimizers, 4 metrics, 2 tokenizers
}

TEST(PluginHost, ReportsASearchPathEntryThatDoesNotExist) {
  PluginHost host;
  host.Load({kBuiltins, "/nonexistent/tune-plugins"});
  ASSERT_EQ(host.failures().size(), 1u);
  EXPECT_NE(host.failures()[0].message.find("/nonexistent/tune-plugins does not exist"),
            std::string::npos);
  EXPECT_EQ(host.plugins().size(), 15u);  // 3 datasets, llama, 3 adapters (lora, qlora, full),
                                          // 2 optimizers, 4 metrics, 2 tokenizers
}

TEST(PluginHost, ReportsAnExceptionFromPluginCodeWithThePluginsNameAndFile) {
  TempDir dir;
  PluginHost host;
  host.Load({PluginFolder(dir, {"good_metric"})});
  std::unique_ptr<Metric> metric = host.CreateMetric("fixture_good", Options());
  const std::vector<MetricExample> fine = {{"p", "ok", {"ok"}}, {"p", "ok", {"ok"}}};
  EXPECT_EQ(metric->Score(fine).value, 2.0);
  const std::vector<MetricExample> bad = {{"p", "throw", {"ok"}}};
  try {
    metric->Score(bad);
    FAIL() << "expected an error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "metric plugin 'fixture_good' (" +
                                         (dir.path() / "good_metric.so").string() +
                                         ") failed while scoring: fixture was told to throw");
  }
}

TEST(PluginHost, CreatingAnUnknownPluginListsTheLoadedOnes) {
  PluginHost host;
  host.Load({kBuiltins});
  try {
    host.CreateMetric("chrf", Options());
    FAIL() << "expected an error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "metric plugin 'chrf' is not loaded (loaded: bleu, exact_match, rouge_l, token_f1)");
  }
}

TEST(PluginSearchPath, IsBuiltinsThenEnvironmentThenConfig) {
  EXPECT_EQ(PluginSearchPath("/b", "/e1::/e2", {"/c1", "/c2"}),
            (std::vector<fs::path>{"/b", "/e1", "/e2", "/c1", "/c2"}));
  EXPECT_EQ(PluginSearchPath("/b", "", {}), (std::vector<fs::path>{"/b"}));
}

}  // namespace
}  // namespace tune

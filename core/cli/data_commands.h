// The dataset commands: `tune data inspect FILE` (data/quality.h's report of a dataset file), and
// the registry's datasets: `tune data register|ls|show|diff`, which take --registry PATH
// (default: $TUNE_REGISTRY, else .tune/registry).
#pragma once

#include <memory>
#include <optional>

namespace CLI {
class App;
}

namespace tune {

class DataCommands {
 public:
  // Adds the subcommands to `app`, which must outlive this object. Call before parsing.
  static std::unique_ptr<DataCommands> Add(CLI::App& app);
  virtual ~DataCommands() = default;

  // After parsing: runs the data command that was given and returns its exit code, or nullopt
  // when none was. Refusals are thrown as UserError, for RunCli to report.
  virtual std::optional<int> Run() = 0;
};

}  // namespace tune

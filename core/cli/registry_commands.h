// The registry's commands: `tune adapters ls|show|diff|promote|history`, `tune fetch`,
// `tune registry verify|gc|backup`. Each takes --registry PATH (default: $TUNE_REGISTRY, else
// .tune/registry).
#pragma once

#include <memory>
#include <optional>

namespace CLI {
class App;
}

namespace tune {

class RegistryCommands {
 public:
  // Adds the subcommands to `app`, which must outlive this object. Call before parsing.
  static std::unique_ptr<RegistryCommands> Add(CLI::App& app);
  virtual ~RegistryCommands() = default;

  // After parsing: runs the registry command that was given and returns its exit code, or
  // nullopt when none was. Refusals are thrown as UserError, for RunCli to report.
  virtual std::optional<int> Run() = 0;
};

}  // namespace tune

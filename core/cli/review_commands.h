// The review commands (DESIGN section 11): `tune review create NAME --prompts FILE`, `tune review
// generate NAME VERSION...` (review_generate.h), `tune review ls|results|close`. Each takes
// --registry PATH (default: $TUNE_REGISTRY, else .tune/registry).
#pragma once

#include <memory>
#include <optional>

namespace CLI {
class App;
}

namespace tune {

class ReviewCommands {
 public:
  // Adds the subcommands to `app`, which must outlive this object. Call before parsing.
  static std::unique_ptr<ReviewCommands> Add(CLI::App& app);
  virtual ~ReviewCommands() = default;

  // After parsing: runs the review command that was given and returns its exit code, or nullopt
  // when none was. Refusals are thrown as UserError, for RunCli to report.
  virtual std::optional<int> Run() = 0;
};

}  // namespace tune

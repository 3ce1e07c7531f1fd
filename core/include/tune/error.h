// The error a plugin throws when the user can fix what went wrong.
#pragma once

#include <stdexcept>

namespace tune {

// A refusal caused by the user's input or environment (bad config, missing file, incompatible
// plugin). what() is one line: what is wrong, where (file:line, key, name), and how to fix it,
// without the "error: " prefix. The host reports it with the plugin's name and stops the run
// (the CLI prints it and exits 1); any other exception from a plugin is reported as a bug in the
// plugin. Throw it, or a class derived from it, from any plugin call.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace tune

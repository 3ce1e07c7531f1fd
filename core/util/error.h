// Errors a person can act on.
#pragma once

#include <stdexcept>
#include <string>

namespace tune {

// A refusal caused by the user's input or environment (bad config, missing file, incompatible
// plugin). what() is one line: what is wrong, where (file:line, key, name), and how to fix it,
// without the "error: " prefix. The CLI prints it and exits 1. Any other exception that reaches
// the CLI is a bug in tune and exits 2.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Memory ran out (an allocation failed) while doing what the message says. Callers that know
// which setting decides the memory use add it to the message.
class OutOfMemory : public UserError {
 public:
  using UserError::UserError;
};

}  // namespace tune

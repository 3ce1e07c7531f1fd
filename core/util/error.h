// Errors a person can act on.
#pragma once

#include <string>

#include "tune/error.h"  // UserError, which plugins throw too

namespace tune {

// Memory ran out (an allocation failed) while doing what the message says. Callers that know
// which setting decides the memory use add it to the message.
class OutOfMemory : public UserError {
 public:
  using UserError::UserError;
};

}  // namespace tune

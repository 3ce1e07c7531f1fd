// One message of a conversation, as chat datasets read them and chat templates render them.
#pragma once

#include <string>

namespace tune {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

}  // namespace tune

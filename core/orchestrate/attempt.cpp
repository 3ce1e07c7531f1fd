#include "orchestrate/attempt.h"

#include <array>
#include <utility>

namespace tune {
namespace {

constexpr std::array<std::pair<AttemptEnd, std::string_view>, 13> kNames = {{
    {AttemptEnd::kFinished, "finished"},
    {AttemptEnd::kPruned, "pruned"},
    {AttemptEnd::kFailed, "failed"},
    {AttemptEnd::kInterrupted, "interrupted"},
    {AttemptEnd::kCancelled, "cancelled"},
    {AttemptEnd::kPreempted, "preempted"},
    {AttemptEnd::kRequeued, "requeued"},
    {AttemptEnd::kTimeLimit, "time_limit"},
    {AttemptEnd::kNodeFailure, "node_failure"},
    {AttemptEnd::kOutOfMemory, "out_of_memory"},
    {AttemptEnd::kKilled, "killed"},
    {AttemptEnd::kHeartbeatLost, "heartbeat_lost"},
    {AttemptEnd::kLost, "lost"},
}};

}  // namespace

std::string_view AttemptEndName(AttemptEnd end) {
  for (const auto& [value, name] : kNames) {
    if (value == end) return name;
  }
  return "lost";
}

std::optional<AttemptEnd> AttemptEndFromName(std::string_view name) {
  for (const auto& [value, known] : kNames) {
    if (known == name) return value;
  }
  return std::nullopt;
}

bool AttemptRetryable(AttemptEnd end) {
  switch (end) {
    case AttemptEnd::kFinished:
    case AttemptEnd::kPruned:
    case AttemptEnd::kFailed:
    case AttemptEnd::kOutOfMemory:
      return false;
    default:
      return true;
  }
}

}  // namespace tune

#include "util/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <vector>

namespace tune {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

void Write(LogLevel level, const char* prefix, const std::string& message) {
  if (!LogEnabled(level)) return;
  const std::string line = std::string(prefix) + ": " + message + "\n";
  std::fputs(line.c_str(), stderr);
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) <= g_level.load(); }

void LogWarning(const std::string& message) { Write(LogLevel::kWarning, "warning", message); }
void LogInfo(const std::string& message) { Write(LogLevel::kInfo, "info", message); }
void LogDebug(const std::string& message) { Write(LogLevel::kDebug, "debug", message); }

std::string Format(const char* format, ...) {
  va_list args;
  va_start(args, format);
  va_list again;
  va_copy(again, args);
  const int size = std::vsnprintf(nullptr, 0, format, args);
  va_end(args);
  std::string text;
  if (size > 0) {
    std::vector<char> buffer(static_cast<size_t>(size) + 1);
    std::vsnprintf(buffer.data(), buffer.size(), format, again);
    text.assign(buffer.data(), static_cast<size_t>(size));
  }
  va_end(again);
  return text;
}

}  // namespace tune

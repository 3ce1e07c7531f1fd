// Diagnostics on stderr, one line each: "warning: ...", "info: ...", "debug: ...".
//
// The CLI sets the level once at start; any thread may log after that. Lines are written whole
// (one fputs per line), so lines from two threads do not interleave within a line. Errors are
// not logged here: the CLI prints them as "error: ..." and exits.
//
// tune once used spdlog for this. libtorch 2.x ships its own fmt headers, and Debian's spdlog is
// built against Debian's fmt: a translation unit that sees both mixes two fmt versions. These
// few lines need neither.
#pragma once

#include <string>

namespace tune {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

// Lines above `level` are dropped. The default is kInfo.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

void LogWarning(const std::string& message);
void LogInfo(const std::string& message);
void LogDebug(const std::string& message);

// printf-style formatting into a std::string, for log lines with numbers.
[[gnu::format(printf, 1, 2)]] std::string Format(const char* format, ...);

}  // namespace tune

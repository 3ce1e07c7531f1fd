// Checks of command-line values, as CLI11 validators: each returns "" for a good value and
// otherwise the reason, which CLI11 prefixes with the option's name ("--model: ..."); and the
// defaults options share. Header-only; used by the command files in core/cli.
#pragma once

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>

#include <CLI/CLI.hpp>

#include "util/echo.h"

namespace tune::cli {

// A number in [low, high]; NaN and infinities are refused (CLI::Range lets NaN through).
inline CLI::Validator FiniteIn(double low, double high) {
  return CLI::Validator(
      [low, high](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value) || !std::isfinite(value) || value < low ||
            value > high) {
          return "'" + Echo(text, 40) + "' is not a number in [" + CLI::detail::to_string(low) +
                 ", " + CLI::detail::to_string(high) + "]";
        }
        return "";
      },
      "FINITE in [" + CLI::detail::to_string(low) + ", " + CLI::detail::to_string(high) + "]");
}

// Why `text` does not name an existing path ("" when it does): `what` names what to give.
inline std::string MissingPath(const std::string& text, const std::string& what) {
  if (text.empty()) return "empty path; give " + what;
  std::error_code ec;
  if (!std::filesystem::exists(text, ec)) return Echo(text) + " does not exist; give " + what;
  return "";
}

// A folder that exists: `what` names it in the message ("the model's folder").
inline CLI::Validator ExistingFolder(const std::string& what) {
  return CLI::Validator(
      [what](std::string& text) -> std::string {
        if (std::string missing = MissingPath(text, what); !missing.empty()) return missing;
        std::error_code ec;
        if (!std::filesystem::is_directory(text, ec)) {
          const std::string parent = std::filesystem::path(text).parent_path().string();
          return Echo(text) + " is a file" +
                 (parent.empty() ? std::string() : " (did you mean '" + Echo(parent) + "'?)") +
                 "; give " + what;
        }
        return "";
      },
      "FOLDER");
}

// A file that exists: `what` names it in the message ("the dataset file").
inline CLI::Validator ExistingFile(const std::string& what) {
  return CLI::Validator(
      [what](std::string& text) -> std::string {
        if (std::string missing = MissingPath(text, what); !missing.empty()) return missing;
        std::error_code ec;
        if (std::filesystem::is_directory(text, ec))
          return Echo(text) + " is a folder; give " + what;
        return "";
      },
      "FILE");
}

// A folder tune will create or write into: not empty, and not an existing file.
inline CLI::Validator FolderToWrite() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        namespace fs = std::filesystem;
        if (text.empty()) return "empty path; give a folder";
        std::error_code ec;
        if (fs::exists(text, ec) && !fs::is_directory(text, ec)) {
          return Echo(text) + " is a file; give a folder";
        }
        return "";
      },
      "FOLDER");
}

// Where a registry is: a folder (as FolderToWrite) or a registry server's http(s):// URL.
inline CLI::Validator RegistryLocation() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (text.starts_with("http://") || text.starts_with("https://")) return "";
        return FolderToWrite().operator()(text);
      },
      "FOLDER|URL");
}

// --registry on each of `commands`, into `path` (set to DefaultRegistryPath() first by the caller).
inline void AddRegistryOption(std::initializer_list<CLI::App*> commands, std::string& path) {
  for (CLI::App* command : commands) {
    command
        ->add_option("--registry", path,
                     "Registry folder, or registry server URL with $TUNE_TOKEN (default: "
                     "$TUNE_REGISTRY, else .tune/registry)")
        ->check(RegistryLocation());
  }
}

}  // namespace tune::cli

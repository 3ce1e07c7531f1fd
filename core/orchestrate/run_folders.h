// Numbered folders of one name: a run or sweep started again gets a new folder, and --resume
// takes the newest. .tune/runs/NAME, NAME-2, NAME-3 for tune train (its first run keeps the bare
// name); .tune/sweeps/NAME-1, NAME-2 for tune sweep.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace tune {

// The folders under `root` named `name` (number 1) or `name`-N (number N), by number.
std::map<int64_t, std::filesystem::path> NumberedFolders(const std::filesystem::path& root,
                                                         const std::string& name);

}  // namespace tune

// What both registries (local_registry.cpp, remote_registry.cpp) do the same way. Private to the
// registry.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "registry/registry.h"

namespace tune::registry_internal {

int64_t NowMs();           // unix time, milliseconds
RunProcess ThisProcess();  // this process, as a run records the one that finishes it
std::string RandomHex(size_t digits);
// USER@HOST of this process: who a write made here is recorded as having made.
std::string LocalUser();
bool IsRunId(std::string_view text);  // 16 lowercase hex digits

// The files of an adapter folder to register, (relative path, path) sorted by relative path.
// Throws UserError for a folder that is missing or empty, or that holds something other than
// regular files, or tune.json (the name `tune fetch` writes the lineage to).
std::vector<std::pair<std::string, std::filesystem::path>> ArtifactFiles(
    const std::filesystem::path& artifact_dir);

// The adapter name check Register makes; throws UserError.
void RequireAdapterName(std::string_view name);

// Writes `record`'s files and its tune.json to `out_dir` (which must not exist or be empty),
// each file by `copy(entry, destination)`, which must check every byte: everything goes to a
// hidden sibling first and appears at `out_dir` in one rename, so a failure leaves nothing.
// `registry` is how errors name where the record came from.
void WriteFetched(const VersionRecord& record, const std::filesystem::path& out_dir,
                  const std::string& registry,
                  const std::function<void(const ManifestEntry& entry,
                                           const std::filesystem::path& destination)>& copy);

}  // namespace tune::registry_internal

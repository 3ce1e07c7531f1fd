#include "orchestrate/run_folders.h"

namespace tune {

std::map<int64_t, std::filesystem::path> NumberedFolders(const std::filesystem::path& root,
                                                         const std::string& name) {
  std::map<int64_t, std::filesystem::path> found;
  std::error_code error;
  if (!std::filesystem::is_directory(root, error)) return found;
  for (const auto& entry : std::filesystem::directory_iterator(root, error)) {
    if (!entry.is_directory(error)) continue;
    const std::string folder = entry.path().filename().string();
    if (folder == name) {
      found[1] = entry.path();
      continue;
    }
    if (!folder.starts_with(name + "-")) continue;
    const std::string suffix = folder.substr(name.size() + 1);
    if (suffix.empty() || suffix.size() > 9 ||
        suffix.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    found[std::stoll(suffix)] = entry.path();
  }
  return found;
}

}  // namespace tune

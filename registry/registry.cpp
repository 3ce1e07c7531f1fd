#include "registry/registry.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "registry/common.h"
#include "registry/local_registry.h"
#include "registry/object_store.h"
#include "registry/remote_registry.h"
#include "util/names.h"

namespace tune {

namespace fs = std::filesystem;

bool Registry::IsUrl(std::string_view location) {
  return location.starts_with("http://") || location.starts_with("https://");
}

std::unique_ptr<Registry> Registry::Open(const std::string& location, OpenMode mode,
                                         const OpenOptions& options) {
  if (IsUrl(location)) return RemoteRegistry::Open(location, mode, options.access);
  return LocalRegistry::Open(location, mode, options.write_wait);
}

std::unique_ptr<Registry> Registry::Open(const std::string& location, OpenMode mode) {
  return Open(location, mode, OpenOptions{});
}

std::vector<VersionRecord> Registry::List(const ListOptions& options) const {
  return ListPage(options, 0, SIZE_MAX).versions;
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kRead:
      return "read";
    case Role::kWrite:
      return "write";
    case Role::kPromote:
      return "promote";
    case Role::kAdmin:
      return "admin";
  }
  return "read";
}

std::optional<Role> RoleFromName(std::string_view name) {
  for (const Role role : {Role::kRead, Role::kWrite, Role::kPromote, Role::kAdmin}) {
    if (RoleName(role) == name) return role;
  }
  return std::nullopt;
}

PolicyRefused::PolicyRefused(const std::string& message, std::vector<PolicyCheck> checks)
    : UserError(message), checks_(std::move(checks)) {}
PolicyRefused::~PolicyRefused() = default;

std::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kLeft:
      return "left";
    case Verdict::kRight:
      return "right";
    case Verdict::kTie:
      return "tie";
    case Verdict::kBothBad:
      return "both_bad";
  }
  return "tie";
}

std::optional<Verdict> VerdictFromName(std::string_view name) {
  for (const Verdict verdict :
       {Verdict::kLeft, Verdict::kRight, Verdict::kTie, Verdict::kBothBad}) {
    if (VerdictName(verdict) == name) return verdict;
  }
  return std::nullopt;
}

namespace {

// The first line of a /proc (or /etc) file, or "" when it cannot be read.
std::string FirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// Field 22 of /proc/PID/stat (starttime), counted after the ')' that ends the command name, which
// may itself hold spaces and parentheses; -1 when there is no such process.
int64_t StartTicks(const std::string& pid) {
  const std::string stat = FirstLine("/proc/" + pid + "/stat");
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));  // field 3 (state) on
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::strtoll(field.c_str(), nullptr, 10);
  }
  return -1;
}

}  // namespace

bool RunProcessEnded(const RunRecord& run) {
  if (run.status != RunStatus::kRunning || run.process.pid <= 0) return false;
  if (!run.info.job.empty()) return false;  // Slurm's: its trial may outlive the run's creator
  // A run made on another machine (through a server) is not this machine's to judge.
  const std::string machine = FirstLine("/etc/machine-id");
  if (!run.process.machine_id.empty() && run.process.machine_id != machine) return false;
  const std::string boot_id = FirstLine("/proc/sys/kernel/random/boot_id");
  if (boot_id.empty() || run.process.boot_id.empty()) return false;
  if (boot_id != run.process.boot_id) return true;  // rebooted since
  return StartTicks(std::to_string(run.process.pid)) != run.process.start_ticks;
}

namespace registry_internal {

RunProcess ThisProcess() {
  return {static_cast<int64_t>(::getpid()), StartTicks("self"),
          FirstLine("/proc/sys/kernel/random/boot_id"), FirstLine("/etc/machine-id")};
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RandomHex(size_t digits) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  while (hex.size() < digits) {
    uint64_t bits = random();
    for (int i = 0; i < 16 && hex.size() < digits; ++i, bits >>= 4) hex += kHex[bits & 15];
  }
  return hex;
}

std::string LocalUser() {
  std::string user;
  if (const passwd* entry = ::getpwuid(::geteuid()); entry != nullptr) user = entry->pw_name;
  if (user.empty()) user = "uid" + std::to_string(::geteuid());
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  // Appended, not user + "@" + host: GCC 12 reports a false -Wrestrict for that.
  user.append("@").append(host);
  return user;
}

bool IsRunId(std::string_view text) {
  return text.size() == 16 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

void RequireAdapterName(std::string_view name) {
  if (!IsValidName(name)) {
    throw UserError("invalid adapter name '" + std::string(name) +
                    "': names are 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit");
  }
}

std::vector<std::pair<std::string, fs::path>> ArtifactFiles(const fs::path& artifact_dir) {
  std::error_code ec;
  if (!fs::is_directory(artifact_dir, ec)) {
    throw UserError("adapter folder " + artifact_dir.string() +
                    " does not exist or is not a folder; pass the folder the trainer wrote");
  }
  std::vector<std::pair<std::string, fs::path>> files;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(artifact_dir)) {
    if (entry.is_directory()) continue;
    const std::string relative = fs::relative(entry.path(), artifact_dir).generic_string();
    if (!entry.is_regular_file()) {
      throw UserError("adapter folder " + artifact_dir.string() + " holds " + relative +
                      ", which is not a regular file; remove it");
    }
    if (relative == "tune.json") {
      throw UserError("adapter folder " + artifact_dir.string() +
                      " holds tune.json, the name `tune fetch` writes the lineage to; rename it");
    }
    files.emplace_back(relative, entry.path());
  }
  if (files.empty()) {
    throw UserError("adapter folder " + artifact_dir.string() +
                    " is empty; pass the folder with adapter_config.json and the weights");
  }
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

// A relative path with no '..', '.' or empty parts: safe to join under a fetch directory.
bool IsSafeRelativePath(std::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

void WriteFetched(const VersionRecord& record, const fs::path& out_dir, const std::string& registry,
                  const std::function<void(const ManifestEntry&, const fs::path&)>& copy) {
  const std::string label = record.name + ":" + std::to_string(record.version);
  std::error_code ec;
  if (fs::exists(out_dir, ec) && !(fs::is_directory(out_dir, ec) && fs::is_empty(out_dir, ec))) {
    throw UserError("output folder " + out_dir.string() +
                    " exists and is not empty; choose another with -o or remove it");
  }
  for (const ManifestEntry& file : record.files) {
    if (!IsSafeRelativePath(file.path) || !IsHexDigest(file.digest)) {
      throw RegistryDamaged("version " + label + " in registry " + registry + " lists a file '" +
                            file.path + "' with digest '" + file.digest +
                            "' that cannot be fetched; the registry is damaged: run `tune "
                            "registry verify`");
    }
  }
  const fs::path target = fs::absolute(out_dir).lexically_normal();
  const fs::path parent = target.parent_path();
  try {
    fs::create_directories(parent);
  } catch (const fs::filesystem_error& e) {
    throw UserError("cannot create " + parent.string() + ": " + e.code().message() +
                    "; choose a writable folder with -o");
  }
  // Everything goes to a hidden sibling first. (Appended: GCC 12 reports a false -Wrestrict for
  // "." + name + ...)
  std::string hidden = ".";
  hidden.append(target.filename().string()).append(".fetch-").append(RandomHex(8));
  const fs::path temp = parent / hidden;
  try {
    fs::create_directory(temp);
    for (const ManifestEntry& file : record.files) {
      const fs::path destination = temp / file.path;
      fs::create_directories(destination.parent_path());
      copy(file, destination);
    }
    std::ofstream lineage(temp / "tune.json", std::ios::binary);
    lineage << VersionRecordToJson(record, 2) << "\n";
    lineage.close();
    if (!lineage) throw UserError("cannot write " + (temp / "tune.json").string());
    if (fs::exists(target, ec)) fs::remove(target);  // empty, checked above
    fs::rename(temp, target);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(temp, ec);
    throw UserError("cannot write " + target.string() + ": " + e.code().message() +
                    "; check that folder is writable and has space");
  } catch (...) {
    fs::remove_all(temp, ec);
    throw;
  }
}

}  // namespace registry_internal
}  // namespace tune

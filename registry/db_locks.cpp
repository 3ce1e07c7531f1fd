#include "registry/db_locks.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "registry/registry.h"
#include "util/counted.h"

namespace tune::registry_internal {
namespace {

namespace fs = std::filesystem;

std::string ReadSmallFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string CommandLineOfThisProcess() {
  std::string cmdline = ReadSmallFile("/proc/self/cmdline");
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  while (!cmdline.empty() && cmdline.back() == ' ') cmdline.pop_back();
  if (cmdline.size() > 120) cmdline = cmdline.substr(0, 117) + "...";
  return cmdline;
}

std::string FormatWait(std::chrono::milliseconds wait) {
  if (wait.count() % 1000 == 0) return Counted(wait.count() / 1000, "second");
  return std::to_string(wait.count()) + " ms";
}

// F_SETLK on the whole file, as RocksDB locks db/LOCK.
bool TryLockWhole(int fd) {
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;
  return ::fcntl(fd, F_SETLK, &lock) == 0;
}

// What a write needs free beyond the logs it flushes: a new log, manifest and options file
// (about 40 KiB for the registry's seven column families), with room to spare.
constexpr uint64_t kWriteHeadroomBytes = uint64_t{4} << 20;

std::string MiB(uint64_t bytes) {
  const uint64_t mib = (bytes + (uint64_t{1} << 20) - 1) >> 20;
  return std::to_string(std::max<uint64_t>(mib, 1)) + " MiB";
}

// The db/LOCK files (by device and inode) a WriteLock of this process holds.
class HeldInThisProcess {
 public:
  // False when another WriteLock of this process still holds `file` at `deadline`.
  bool Take(std::pair<dev_t, ino_t> file, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return released_.wait_until(lock, deadline, [&] { return held_.insert(file).second; });
  }
  void Give(std::pair<dev_t, ino_t> file) {
    {
      std::lock_guard lock(mutex_);
      held_.erase(file);
    }
    released_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  std::set<std::pair<dev_t, ino_t>> held_;
};

HeldInThisProcess& Held() {
  static HeldInThisProcess* held = new HeldInThisProcess;  // never destroyed: used at exit
  return *held;
}

[[noreturn]] void ThrowBusy(const fs::path& db_dir, const std::string& registry_name,
                            std::chrono::milliseconds wait) {
  const auto [pid, command] = LockHolder(db_dir);
  const std::string holder =
      pid > 0 ? "PID " + std::to_string(pid) + (command.empty() ? "" : " (" + command + ")")
              : std::string("another process (PID unknown)");
  throw RegistryBusy("registry at " + registry_name + " is in use by " + holder +
                         ", which has held it for a write for more than " + FormatWait(wait) +
                         "; if it is stuck, stop it (read-only commands such as `tune adapters "
                         "ls` still work)",
                     pid);
}

}  // namespace

FilesLock::FilesLock(const fs::path& db_dir, Kind kind) {
  const fs::path file = db_dir / "FILES.lock";
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return;  // a folder nobody can write to: nothing changes its files
  const int operation = kind == Kind::kExclusive ? LOCK_EX : LOCK_SH;
  while (::flock(fd_, operation) != 0 && errno == EINTR) {
  }
}

FilesLock::~FilesLock() {
  if (fd_ >= 0) ::close(fd_);
}

WriteLock::WriteLock(const fs::path& db_dir, const std::string& registry_name,
                     std::chrono::milliseconds wait)
    : db_dir_(db_dir) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  const fs::path file = db_dir / "LOCK";
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  struct stat status {};
  if (fd_ < 0 || ::fstat(fd_, &status) != 0) {
    const int error = errno;
    if (fd_ >= 0) ::close(fd_);
    throw UserError("cannot open " + file.string() + " to write to registry " + registry_name +
                    ": " + std::strerror(error) +
                    "; fix its permissions, or use read-only commands such as `tune adapters ls`");
  }
  file_id_ = {status.st_dev, status.st_ino};
  if (!Held().Take(file_id_, deadline)) {
    ::close(fd_);
    ThrowBusy(db_dir, registry_name, wait);
  }
  auto pause = std::chrono::milliseconds(1);
  while (!TryLockWhole(fd_)) {
    const int error = errno;
    const auto now = std::chrono::steady_clock::now();
    if ((error != EAGAIN && error != EACCES && error != EINTR) || now >= deadline) {
      ::close(fd_);
      Held().Give(file_id_);
      if (now >= deadline) ThrowBusy(db_dir, registry_name, wait);
      throw UserError("cannot lock " + file.string() + " to write to registry " + registry_name +
                      ": " + std::strerror(error) + "; check the file system supports locks");
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  std::ofstream(db_dir / "LOCK.pid", std::ios::trunc) << ::getpid() << "\n"
                                                      << CommandLineOfThisProcess() << "\n";
}

WriteLock::~WriteLock() {
  // A RocksDB handle opened for writing under this lock has released it when it closed; another
  // writer may have written its own note since.
  if (LockHolder(db_dir_).first == ::getpid()) {
    std::error_code ec;
    fs::remove(db_dir_ / "LOCK.pid", ec);
  }
  ::close(fd_);
  Held().Give(file_id_);
}

std::pair<pid_t, std::string> LockHolder(const fs::path& db_dir) {
  const std::string text = ReadSmallFile(db_dir / "LOCK.pid");
  const size_t newline = text.find('\n');
  pid_t pid = 0;
  try {
    pid = static_cast<pid_t>(std::stol(text.substr(0, newline)));
  } catch (const std::exception&) {
    return {0, ""};
  }
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH)) return {0, ""};
  std::string command = newline == std::string::npos ? "" : text.substr(newline + 1);
  while (!command.empty() && command.back() == '\n') command.pop_back();
  return {pid, command};
}

std::optional<uint64_t> ReadWriteStamp(const fs::path& db_dir) {
  const std::string text = ReadSmallFile(db_dir / "LAST_WRITE.seq");
  uint64_t sequence = 0;
  size_t digits = 0;
  for (; digits < text.size() && text[digits] >= '0' && text[digits] <= '9'; ++digits) {
    if (digits >= 19) return std::nullopt;
    sequence = sequence * 10 + static_cast<uint64_t>(text[digits] - '0');
  }
  if (digits == 0 || text.substr(digits) != "\n") return std::nullopt;
  return sequence;
}

void WriteWriteStamp(const fs::path& db_dir, uint64_t sequence) {
  const fs::path stamp = db_dir / "LAST_WRITE.seq";
  const fs::path temp = db_dir / "LAST_WRITE.seq.tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << sequence << "\n";
    if (!out.flush()) return;
  }
  std::error_code ec;
  fs::rename(temp, stamp, ec);
}

uint64_t FreeBytes(const fs::path& path) {
  struct statvfs space {};
  if (::statvfs(path.c_str(), &space) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(space.f_bavail) * space.f_frsize;
}

void RequireRoomToWrite(const fs::path& db_dir, const std::string& registry_name) {
  const uint64_t free_bytes = FreeBytes(db_dir);
  uint64_t needed = kWriteHeadroomBytes;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(db_dir, ec)) {
    if (entry.path().extension() == ".log") needed += entry.file_size(ec);
  }
  if (free_bytes >= needed) return;
  throw UserError("registry " + registry_name + ": the disk is full (" +
                  std::to_string(free_bytes >> 10) + " KiB free on the file system of " +
                  db_dir.string() + "); free " + MiB(needed - free_bytes) +
                  " and retry; nothing already stored was changed (`tune registry gc` works on a "
                  "full disk)");
}

void RemoveInterruptedOpenFiles(const fs::path& db_dir) {
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(db_dir, ec)) {
    if (entry.path().extension() == ".dbtmp") fs::remove(entry.path(), ec);
  }
}

}  // namespace tune::registry_internal

#include "registry/object_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "registry/registry.h"
#include "util/error.h"

namespace tune::registry_internal {
namespace {

namespace fs = std::filesystem;

constexpr size_t kBufferBytes = size_t{1} << 20;

// A file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports close's error (NFS and some file systems report write errors here).
  int Close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

bool IsDiskFull(int error) { return error == ENOSPC || error == EDQUOT || error == EFBIG; }

std::string ErrnoText(int error) {
  if (error == EFBIG) return "file size limit exceeded (EFBIG)";
  return std::strerror(error);
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string suffix;
  uint64_t bits = random();
  for (int i = 0; i < 16; ++i, bits >>= 4) suffix += kHex[bits & 15];
  return suffix;
}

// Reads up to `size` bytes, retrying on EINTR; returns 0 at end of file, -1 on error.
ssize_t ReadSome(int fd, char* buffer, size_t size) {
  for (;;) {
    const ssize_t n = ::read(fd, buffer, size);
    if (n >= 0 || errno != EINTR) return n;
  }
}

// Reads `fd` to its end in chunks, hashing every byte and handing each chunk to `each` (which
// may be empty). A read error throws the UserError `read_error` makes of errno's text. Returns
// the number of bytes read.
int64_t HashAll(int fd, Sha256& hash,
                const std::function<std::string(const std::string& reason)>& read_error,
                const std::function<void(const char* data, size_t size)>& each) {
  std::vector<char> buffer(kBufferBytes);
  int64_t size = 0;
  for (;;) {
    const ssize_t n = ReadSome(fd, buffer.data(), buffer.size());
    if (n < 0) throw UserError(read_error(ErrnoText(errno)));
    if (n == 0) return size;
    hash.Update(std::string_view(buffer.data(), static_cast<size_t>(n)));
    if (each) each(buffer.data(), static_cast<size_t>(n));
    size += n;
  }
}

// Writes all of `size` bytes; returns 0 or an errno value.
int WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

bool IsHexDigest(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void SyncDirectory(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) {
    const int error = errno;
    throw UserError("cannot sync directory " + dir.string() + ": " + ErrnoText(error) +
                    "; check the file system is writable and healthy");
  }
}

ObjectStore::ObjectStore(fs::path objects_dir, std::string registry_name)
    : dir_(std::move(objects_dir)), registry_name_(std::move(registry_name)) {}

void ObjectStore::CreateLayout() const {
  fs::create_directories(dir_ / "sha256");
  fs::create_directories(TempDir());
  fs::create_directories(UploadsDir());
}

fs::path ObjectStore::UploadPath(std::string_view digest) const {
  return UploadsDir() / std::string(digest);
}

void ObjectStore::Adopt(const fs::path& file, std::string_view digest) const {
  const auto fail = [&](const std::string& doing, int error) {
    throw UserError("cannot store " + file.string() + " in registry " + registry_name_ + ": " +
                    doing + ": " + ErrnoText(error) +
                    (IsDiskFull(error) ? "; free space on that disk and retry"
                                       : "; check the permissions and health of that file system"));
  };
  {
    Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0 || ::fsync(fd.get()) != 0) fail("syncing", errno);
  }
  const fs::path target = PathOf(digest);
  const fs::path shard = target.parent_path();
  if (!fs::exists(shard)) {
    if (::mkdir(shard.c_str(), 0755) != 0 && errno != EEXIST)
      fail("creating " + shard.string(), errno);
    SyncDirectory(shard.parent_path());
  }
  ::chmod(file.c_str(), 0444);
  if (::rename(file.c_str(), target.c_str()) != 0) fail("renaming to " + target.string(), errno);
  SyncDirectory(shard);
}

fs::path ObjectStore::PathOf(std::string_view digest) const {
  return dir_ / "sha256" / std::string(digest.substr(0, 2)) / std::string(digest);
}

StoredObject ObjectStore::Store(const fs::path& file) const {
  const auto fail = [&](const std::string& doing, int error) {
    std::string fix = IsDiskFull(error)
                          ? "free space on that disk and retry; nothing already stored was changed"
                          : "check the permissions and health of that file system";
    throw UserError("cannot store " + file.string() + " in registry " + registry_name_ + ": " +
                    doing + ": " + ErrnoText(error) + "; " + fix);
  };

  Fd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) {
    const int error = errno;
    throw UserError("cannot read " + file.string() + ": " + ErrnoText(error) +
                    "; check it exists and is readable");
  }
  const fs::path temp = TempDir() / ("object-" + RandomSuffix());
  Fd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (out.get() < 0) fail("creating " + temp.string(), errno);
  // Locked through its own file description until the rename, so RemoveUnusedTemp leaves it be.
  Fd in_use(::open(temp.c_str(), O_RDONLY | O_CLOEXEC));
  if (in_use.get() < 0 || ::flock(in_use.get(), LOCK_EX) != 0)
    fail("locking " + temp.string(), errno);
  bool keep_temp = false;
  struct RemoveTemp {
    const fs::path& path;
    const bool& keep;
    ~RemoveTemp() {
      if (!keep) ::unlink(path.c_str());
    }
  } remove_temp{temp, keep_temp};

  Sha256 hash;
  const int64_t size = HashAll(
      in.get(), hash,
      [&](const std::string& reason) {
        return "cannot read " + file.string() + ": " + reason + "; check the file is readable";
      },
      [&](const char* data, size_t n) {
        if (const int error = WriteAll(out.get(), data, n)) fail("writing " + temp.string(), error);
      });
  if (::fsync(out.get()) != 0) fail("syncing " + temp.string(), errno);
  if (out.Close() != 0) fail("closing " + temp.string(), errno);

  StoredObject object{hash.FinishHex(), size, false};
  const fs::path target = PathOf(object.digest);
  std::error_code ec;
  if (fs::exists(target, ec)) {
    object.existed = true;
    return object;  // the temp file goes; identical bytes are kept once
  }
  const fs::path shard = target.parent_path();
  if (!fs::exists(shard)) {
    if (::mkdir(shard.c_str(), 0755) != 0 && errno != EEXIST)
      fail("creating " + shard.string(), errno);
    SyncDirectory(shard.parent_path());
  }
  if (::rename(temp.c_str(), target.c_str()) != 0) fail("renaming to " + target.string(), errno);
  keep_temp = true;  // it is the object now
  SyncDirectory(shard);
  return object;
}

bool ObjectStore::RemoveUnusedTemp(const fs::path& temp) const {
  Fd file(::open(temp.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (file.get() >= 0 && ::flock(file.get(), LOCK_EX | LOCK_NB) != 0)
    return false;  // being written
  return ::unlink(temp.c_str()) == 0;
}

namespace {

// Reads the object `digest` in chunks, handing each to `each`, and throws RegistryDamaged when it
// is missing, unreadable, or its size or bytes are not what the record says.
void ReadChecked(const fs::path& source, std::string_view digest, int64_t size_bytes,
                 const std::string& object_name,
                 const std::function<void(const char* data, size_t size)>& each) {
  const std::string fix = "; run `tune registry verify` and restore the registry from a backup";
  Fd in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) {
    const int error = errno;
    throw RegistryDamaged(object_name + " cannot be read: " + ErrnoText(error) + fix);
  }
  Sha256 hash;
  int64_t size = 0;
  try {
    size = HashAll(
        in.get(), hash,
        [&](const std::string& reason) { return object_name + " cannot be read: " + reason + fix; },
        each);
  } catch (const RegistryDamaged&) {
    throw;
  } catch (const UserError& e) {
    // HashAll's read errors; a write error from `each` passes as it is.
    if (std::string_view(e.what()).starts_with(object_name)) throw RegistryDamaged(e.what());
    throw;
  }
  if (size != size_bytes) {
    throw RegistryDamaged(object_name + " is corrupted: it has " + std::to_string(size) +
                          " bytes, the record says " + std::to_string(size_bytes) + fix);
  }
  const std::string actual = hash.FinishHex();
  if (actual != digest) {
    throw RegistryDamaged(object_name + " is corrupted: its bytes hash to sha256:" + actual + fix);
  }
}

}  // namespace

void ObjectStore::CopyVerified(std::string_view digest, int64_t size_bytes, const fs::path& out,
                               std::string_view what) const {
  const std::string object_name = "object sha256:" + std::string(digest) + " (" +
                                  std::string(what) + ") in registry " + registry_name_;
  Fd dest(::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (dest.get() < 0) {
    const int error = errno;
    throw UserError("cannot create " + out.string() + ": " + ErrnoText(error) +
                    "; check that folder is writable");
  }
  ReadChecked(PathOf(digest), digest, size_bytes, object_name, [&](const char* data, size_t n) {
    if (const int error = WriteAll(dest.get(), data, n)) {
      throw UserError("cannot write " + out.string() + ": " + ErrnoText(error) +
                      (IsDiskFull(error) ? "; free space on that disk and retry"
                                         : "; check that folder is writable"));
    }
  });
  if (dest.Close() != 0) {
    const int error = errno;
    throw UserError("cannot write " + out.string() + ": " + ErrnoText(error) +
                    "; check that folder is writable");
  }
}

std::string ObjectStore::ReadVerified(std::string_view digest, int64_t size_bytes,
                                      std::string_view what) const {
  const std::string object_name = "object sha256:" + std::string(digest) + " (" +
                                  std::string(what) + ") in registry " + registry_name_;
  std::string bytes;
  ReadChecked(PathOf(digest), digest, size_bytes, object_name,
              [&](const char* data, size_t n) { bytes.append(data, n); });
  return bytes;
}

StoredObject ObjectStore::HashFile(const fs::path& file) {
  Fd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) {
    const int error = errno;
    throw UserError("cannot read " + file.string() + ": " + ErrnoText(error) +
                    "; check it exists and is readable");
  }
  Sha256 hash;
  const int64_t size = HashAll(in.get(), hash,
                               [&](const std::string& reason) {
                                 return "cannot read " + file.string() + ": " + reason +
                                        "; check the file is readable";
                               },
                               {});
  return {hash.FinishHex(), size, true};
}

void ObjectStore::ForEachObject(
    const std::function<void(const fs::path&, const std::string&)>& visit) const {
  const fs::path root = dir_ / "sha256";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return;
  for (const fs::directory_entry& shard : fs::directory_iterator(root)) {
    if (!shard.is_directory()) {
      visit(shard.path(), "");
      continue;
    }
    const std::string prefix = shard.path().filename().string();
    for (const fs::directory_entry& entry : fs::directory_iterator(shard.path())) {
      const std::string name = entry.path().filename().string();
      const bool valid = IsHexDigest(name) && name.compare(0, 2, prefix) == 0;
      visit(entry.path(), valid ? name : "");
    }
  }
}

}  // namespace tune::registry_internal

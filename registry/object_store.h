// Content-addressed files: objects/sha256/ab/<hex>, written so that a crash at any moment leaves
// either the whole object under its name or nothing there (an orphan in objects/tmp at worst).
// Private to the registry.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "util/sha256.h"

namespace tune::registry_internal {

using tune::Sha256;
using tune::Sha256Hex;

bool IsHexDigest(std::string_view text);  // 64 lowercase hex digits

struct StoredObject {
  std::string digest;
  int64_t size_bytes = 0;
  bool existed = false;  // identical bytes were already stored
};

class ObjectStore {
 public:
  // `objects_dir` is <registry>/objects; `registry_name` is how errors name the registry.
  ObjectStore(std::filesystem::path objects_dir, std::string registry_name);

  void CreateLayout() const;
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path PathOf(std::string_view digest) const;
  std::filesystem::path TempDir() const { return dir_ / "tmp"; }
  // Where a server keeps the objects it receives in chunks until they are whole.
  std::filesystem::path UploadsDir() const { return dir_ / "uploads"; }
  std::filesystem::path UploadPath(std::string_view digest) const;

  // Copies `file` in: into a temp file while hashing, fsync, rename to its digest, fsync the
  // directory. Throws UserError (naming `file` and the registry) when it cannot, for example on a
  // full disk; the temp file is removed then.
  StoredObject Store(const std::filesystem::path& file) const;

  // Moves `file`, whose bytes the caller has checked hash to `digest`, into the store under its
  // digest, durably (fsync of the file and of the folders). Throws UserError when it cannot.
  void Adopt(const std::filesystem::path& file, std::string_view digest) const;

  // Removes a file of TempDir() unless a Store is still writing it. True when it was removed.
  bool RemoveUnusedTemp(const std::filesystem::path& temp) const;

  // Copies the object to `out` (which must not exist), hashing every byte. Throws
  // RegistryDamaged naming the digest and `what` when the object is missing, has another size,
  // or other bytes; UserError when `out` cannot be written.
  void CopyVerified(std::string_view digest, int64_t size_bytes, const std::filesystem::path& out,
                    std::string_view what) const;
  // The object's bytes, checked the same way.
  std::string ReadVerified(std::string_view digest, int64_t size_bytes,
                           std::string_view what) const;

  // The SHA-256 and size of a file's bytes, as they are now. Throws UserError when unreadable.
  static StoredObject HashFile(const std::filesystem::path& file);

  // Every file under objects/sha256, with the digest its name claims ("" when the name is not a
  // digest or is in the wrong shard folder).
  void ForEachObject(
      const std::function<void(const std::filesystem::path&, const std::string&)>& visit) const;

 private:
  std::filesystem::path dir_;
  std::string registry_name_;
};

// Opens a directory and fsyncs it, so a rename or a new entry in it survives a crash.
void SyncDirectory(const std::filesystem::path& dir);

}  // namespace tune::registry_internal

// How processes share one registry's RocksDB folder (db/): who may write, when a reader may open
// it, and how a reader knows its view holds every write that returned. Private to the registry.
//
//   db/LOCK            RocksDB's own lock file. A writer holds a POSIX record lock on it (fcntl,
//                      as RocksDB takes it) for its whole write, with or without opening RocksDB
//                      for writing: Gc and Recover hold it without writing to the database, so
//                      that they work on a full disk.
//   db/LOCK.pid        PID and command line of the process holding db/LOCK, for the error another
//                      would-be writer gets.
//   db/FILES.lock      Held exclusively (flock) while a writer changes which files make up the
//                      database, and shared by a read-only open. A writable open flushes the last
//                      writer's log into tables and deletes the log, a compaction replaces
//                      tables, a checkpoint flushes: a read-only open that read the table list
//                      before such a change and listed the logs after it would see neither the log
//                      nor its tables, so a write that returned would be missing without an error.
//   db/LAST_WRITE.seq  The RocksDB sequence number after the last write that returned, replaced
//                      atomically. A reader's view must reach it: one that does not is stale (and
//                      is opened again) or the log is damaged.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace tune::registry_internal {

// An exclusive or shared flock on db/FILES.lock, held for the object's life. Blocks until it is
// granted: every holder holds it for milliseconds. Where the file cannot be created (a registry
// on a read-only mount) a shared lock is not taken: no writer can change that folder either.
class FilesLock {
 public:
  enum class Kind { kShared, kExclusive };
  FilesLock(const std::filesystem::path& db_dir, Kind kind);
  ~FilesLock();
  FilesLock(const FilesLock&) = delete;
  FilesLock& operator=(const FilesLock&) = delete;

 private:
  int fd_ = -1;
};

// The writer's lock on db/LOCK, taken with the same kind of lock RocksDB takes (a POSIX record
// lock), so a RocksDB writable open in another process fails while it is held, and held by one
// WriteLock of this process at a time (record locks do not exclude the threads of one process;
// a table of the files this process holds does). A RocksDB handle opened for writing under it
// releases the record lock when it closes: close it last.
class WriteLock {
 public:
  // Waits up to `wait` for another writer (of any process) to finish; throws RegistryBusy
  // (naming the PID in db/LOCK.pid) after that, UserError when db/LOCK cannot be opened.
  WriteLock(const std::filesystem::path& db_dir, const std::string& registry_name,
            std::chrono::milliseconds wait);
  ~WriteLock();  // removes db/LOCK.pid if it names this process, then releases the lock
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

 private:
  std::filesystem::path db_dir_;
  int fd_ = -1;
  std::pair<dev_t, ino_t> file_id_{};
};

// The process named in db/LOCK.pid and its command line, if it is still alive; {0, ""} otherwise.
std::pair<pid_t, std::string> LockHolder(const std::filesystem::path& db_dir);

// LAST_WRITE.seq: nullopt when there is none or it cannot be read as a number.
std::optional<uint64_t> ReadWriteStamp(const std::filesystem::path& db_dir);
// Replaces it atomically (a temporary file renamed over it). Best effort: a reader that misses a
// stamp only opens a view it could have reused.
void WriteWriteStamp(const std::filesystem::path& db_dir, uint64_t sequence);

// Bytes free to this user on the file system holding `path`; UINT64_MAX when it cannot be told.
uint64_t FreeBytes(const std::filesystem::path& path);

// Throws UserError ("the disk is full: free N MiB") when the file system holding `db_dir` has
// less than a writable open needs: room for the logs it flushes into tables, a new log, manifest
// and options file. RocksDB fails in ways it cannot report cleanly below that.
void RequireRoomToWrite(const std::filesystem::path& db_dir, const std::string& registry_name);

// Removes what an interrupted RocksDB open leaves (OPTIONS-*.dbtmp). Call with db/LOCK held.
void RemoveInterruptedOpenFiles(const std::filesystem::path& db_dir);

}  // namespace tune::registry_internal

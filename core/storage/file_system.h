// core/storage/file_system: the small file-system interface under the WAL and snapshots.
//
// core/ does no I/O itself: the node passes a FileSystem. net/posix_file_system.cc is the
// real one (open/pwrite/fdatasync/rename/fsync of the directory); core/storage/fault_file_system.h
// is an in-memory one for tests that can drop every write not yet synced ("crash"), tear
// the last unsynced write, and fail writes or syncs on demand (full disk).
//
// Ownership: objects returned through unique_ptr belong to the caller. Thread-compatible.
#ifndef LOCKMESH_CORE_STORAGE_FILE_SYSTEM_H_
#define LOCKMESH_CORE_STORAGE_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mesh/status.h"

namespace mesh::core {

/// The text every "no space left" error carries in its message (ENOSPC, and EDQUOT too):
/// IsNoSpace() looks for it. A FileSystem reports running out of space with NoSpaceError.
inline constexpr std::string_view kNoSpaceText = "No space left on device";

/// An IOError "<what>: No space left on device" (`what` names the path and the call).
inline Status NoSpaceError(const std::string& what) {
  return Status::IOError(what + ": " + std::string(kNoSpaceText));
}

/// True if `s` is an IOError for want of space (see kNoSpaceText), also once annotated.
/// Such a failure changed nothing that was durable, and retrying the write later, once
/// space returns, is safe; every other write or sync failure leaves the file in an unknown
/// state.
inline bool IsNoSpace(const Status& s) {
  return s.IsIOError() && s.message().find(kNoSpaceText) != std::string::npos;
}

/// A file opened for writing at arbitrary offsets (WAL segments are extended with zeros
/// ahead of their records, see Allocate, and then overwritten in place, which makes
/// fdatasync cheaper than appends).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  /// Writes `data` at `offset`, growing the file if needed. Not durable until Sync().
  /// Fails with NoSpaceError (and may have written a prefix) when the disk is full.
  virtual Status WriteAt(uint64_t offset, std::string_view data) = 0;
  /// Extends the file with zeros to at least `size` bytes and makes the extension durable
  /// (fsync); ok and nothing done if the file is already that long. On NoSpaceError the
  /// file may have grown by a part of the extension (zeros), nothing else changed.
  virtual Status Allocate(uint64_t size) = 0;
  /// Makes every earlier write durable (fdatasync).
  virtual Status Sync() = 0;
  /// Closes the file; unsynced data may still be lost by a crash.
  virtual Status Close() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  /// Opens `path` for writing, creating it if missing. If `preallocate` > 0 and the file is
  /// shorter, extends it with zeros to that size and syncs that extension (as Allocate).
  virtual Status OpenWritable(const std::string& path, uint64_t preallocate,
                              std::unique_ptr<WritableFile>* out) = 0;
  /// Reads a whole file.
  virtual Status ReadFile(const std::string& path, std::string* out) = 0;
  /// Writes a whole file atomically and durably: write to path.tmp, sync, rename, sync dir.
  /// On NoSpaceError the old file is intact and path.tmp is removed.
  virtual Status WriteFileAtomic(const std::string& path, std::string_view data) = 0;
  /// Names (not paths) of the entries of a directory, sorted.
  virtual Status ListDir(const std::string& dir, std::vector<std::string>* names) = 0;
  /// Creates a directory and its parents (mode 0700); ok if it exists.
  virtual Status CreateDirs(const std::string& dir) = 0;
  virtual Status Remove(const std::string& path) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  /// Truncates (or extends with zeros) a file to `size`; durable after return.
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  /// Makes the directory's entries (creations, renames, removals) durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual bool Exists(const std::string& path) = 0;
};

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_STORAGE_FILE_SYSTEM_H_

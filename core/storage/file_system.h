// core/storage/file_system: the small file-system interface under the WAL and snapshots.
//
// core/ does no I/O itself: the node passes a FileSystem. net/support/posix_file_system.cc is the
// real one (open/pwrite/fdatasync/rename/fsync of the directory); core/storage/fault_file_system.h
// is an in-memory one for tests that can drop every write not yet synced ("crash"), tear
// the last unsynced write, and fail writes or syncs on demand (full disk).
// FileSystemWrapper (below) forwards every call to another FileSystem, so a test file
// system that changes one call overrides that call only (LevelDB's EnvWrapper).
//
// Ownership: objects returned through unique_ptr belong to the caller. Thread-compatible.
#ifndef LOCKMESH_CORE_STORAGE_FILE_SYSTEM_H_
#define LOCKMESH_CORE_STORAGE_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
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

/// A lock held on a file (FileSystem::LockFile); destroying it releases the lock. It must
/// not outlive the FileSystem that made it.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

/// Whether FileSystem::LockFile waits for a lock another holder has.
enum class LockWait {
  kTry,   // Busy at once
  kWait,  // blocks until the other holder releases it
};

/// How FileSystem::WriteFileAtomic creates the file. The defaults suit a file that only
/// its owner reads and that one writer at a time replaces (snapshots, known peers).
struct AtomicWriteOptions {
  /// The exact permission bits of the new file (the umask does not narrow them; the file
  /// is never wider than 0600 before they are set).
  uint32_t mode = 0600;
  /// true: replace `path` if it exists. false: AlreadyExists if it does, also if it
  /// appears while the data is written (the new file is linked into place, never renamed).
  bool overwrite = true;
  /// false: the temporary file is "<path>.tmp", which the next write replaces (writers of
  /// one path must take turns, e.g. under a LockFile). true: "<path>.tmp.<pid>", for files
  /// that several processes may write at once without a lock (certificates, keys).
  bool unique_temp = false;
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
  /// Writes a whole file atomically and durably: write to a temporary file beside it (see
  /// AtomicWriteOptions; created exclusively, never through a symbolic link), sync it,
  /// rename (or link) it to `path`, sync the directory. On failure, NoSpaceError included,
  /// the old file is intact and the temporary file is removed.
  virtual Status WriteFileAtomic(const std::string& path, std::string_view data,
                                 const AtomicWriteOptions& options) = 0;
  /// The same with the default AtomicWriteOptions (mode 0600, replacing, "<path>.tmp").
  Status WriteFileAtomic(const std::string& path, std::string_view data) {
    return WriteFileAtomic(path, data, AtomicWriteOptions());
  }
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
  /// Takes an exclusive lock on the file `path` for as long as `*lock` lives: the lock file
  /// is created (mode 0600) if missing, never through a symbolic link (PermissionDenied).
  /// The POSIX file system uses flock(2): advisory, held by the open file, released when
  /// the process ends. With kTry, Busy if another holder has the lock. The caller owns
  /// `*lock`; the lock file is left in place when it is released.
  virtual Status LockFile(const std::string& path, LockWait wait,
                          std::unique_ptr<FileLock>* lock) = 0;
};

/// A WritableFile that forwards every call to `target` (which it owns): derive from it and
/// override only what a test changes.
class WritableFileWrapper : public WritableFile {
 public:
  explicit WritableFileWrapper(std::unique_ptr<WritableFile> target) : target_(std::move(target)) {}

  Status WriteAt(uint64_t offset, std::string_view data) override {
    return target_->WriteAt(offset, data);
  }
  Status Allocate(uint64_t size) override { return target_->Allocate(size); }
  Status Sync() override { return target_->Sync(); }
  Status Close() override { return target_->Close(); }

  /// The wrapped file, owned by this wrapper.
  WritableFile* target() const { return target_.get(); }

 private:
  std::unique_ptr<WritableFile> target_;
};

/// A FileSystem that forwards every call to `target` (LevelDB's EnvWrapper): derive from it
/// and override only what a test file system changes. `target` is not owned and must
/// outlive the wrapper. As thread-safe as `target` plus what the derived class adds.
class FileSystemWrapper : public FileSystem {
 public:
  explicit FileSystemWrapper(FileSystem* target) : target_(target) {}

  /// The wrapped file system (not owned).
  FileSystem* target() const { return target_; }

  Status OpenWritable(const std::string& path, uint64_t preallocate,
                      std::unique_ptr<WritableFile>* out) override {
    return target_->OpenWritable(path, preallocate, out);
  }
  Status ReadFile(const std::string& path, std::string* out) override {
    return target_->ReadFile(path, out);
  }
  using FileSystem::WriteFileAtomic;
  Status WriteFileAtomic(const std::string& path, std::string_view data,
                         const AtomicWriteOptions& options) override {
    return target_->WriteFileAtomic(path, data, options);
  }
  Status ListDir(const std::string& dir, std::vector<std::string>* names) override {
    return target_->ListDir(dir, names);
  }
  Status CreateDirs(const std::string& dir) override { return target_->CreateDirs(dir); }
  Status Remove(const std::string& path) override { return target_->Remove(path); }
  Status Rename(const std::string& from, const std::string& to) override {
    return target_->Rename(from, to);
  }
  Status Truncate(const std::string& path, uint64_t size) override {
    return target_->Truncate(path, size);
  }
  Status SyncDir(const std::string& dir) override { return target_->SyncDir(dir); }
  bool Exists(const std::string& path) override { return target_->Exists(path); }
  Status LockFile(const std::string& path, LockWait wait,
                  std::unique_ptr<FileLock>* lock) override {
    return target_->LockFile(path, wait, lock);
  }

 private:
  FileSystem* target_;
};

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_STORAGE_FILE_SYSTEM_H_

// core/storage/fault_file_system: an in-memory FileSystem for tests that simulates what a
// crash, a torn write and a full disk do to files. Pure C++: no I/O, no clocks, no threads;
// randomness only from the seed given to the constructor.
//
// Model. Every file is an inode with two contents: `durable` (what survives a crash) and
// `current` (what reads see: durable plus the writes since the last Sync of that file).
// Names live in two namespaces: the current one and the durable one. Creations, renames
// and removals change the current namespace only; SyncDir(dir) copies the current entries
// of `dir` (its direct children) into the durable namespace. Crash() then:
//   * replaces the current namespace by the durable one (files created but never
//     dir-synced disappear, renames and removals not dir-synced are undone), and
//   * sets every inode's current content back to its durable content.
// Crash(kTearLastWrite) / Crash(kGarbleLastWrite) first let every unsynced write except the
// globally last one land in full, and the last one land as a random (seeded) prefix —
// or as that prefix followed by random bytes for the rest of the write — which is what a
// power cut in the middle of writeback does to an in-place WAL.
// Directories are durable as soon as CreateDirs returns (a simplification).
// WriteFileAtomic, Truncate and OpenWritable's preallocation are durable after return,
// as the FileSystem contract says. WriteFileAtomic's mode is not modelled and its
// temporary file is always "<path>.tmp". LockFile locks are a set of held paths: one test
// thread cannot wait for itself, so a held lock is Busy for kWait too.
//
// Fault injection: FailNextWrites / FailNextSyncs make upcoming writes or syncs fail with an
// IOError (nothing of a failed write is applied); SetSpaceLimit makes any operation that
// would grow the total bytes of all files past the limit fail with NoSpaceError (see
// file_system.h; writes over existing bytes, e.g. into allocated segments, still succeed).
// WritableFile::Allocate is a durable extension (like the preallocation), and a sync of the
// whole file: it makes the file's earlier writes durable too, as fsync does.
//
// Ownership: the WritableFile objects it returns keep their inode alive; they must not
// outlive the FaultFileSystem. Thread-compatible (tests drive it from one thread).
#ifndef LOCKMESH_CORE_STORAGE_FAULT_FILE_SYSTEM_H_
#define LOCKMESH_CORE_STORAGE_FAULT_FILE_SYSTEM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/storage/file_system.h"
#include "mesh/status.h"

namespace mesh::core {

class FaultFileSystem : public FileSystem {
 public:
  /// How Crash() treats writes that were not synced.
  enum class TearMode {
    kDropUnsynced,     // every unsynced write is lost
    kTearLastWrite,    // all but the last land; the last lands as a random prefix
    kGarbleLastWrite,  // as kTearLastWrite, then the rest of the last write is random bytes
  };

  /// `seed` drives the tear positions and garbage bytes, so runs are reproducible.
  explicit FaultFileSystem(uint64_t seed = 1);
  ~FaultFileSystem() override;

  // FileSystem. Paths are plain strings; "a/b/../c" is not normalised (use clean paths).
  Status OpenWritable(const std::string& path, uint64_t preallocate,
                      std::unique_ptr<WritableFile>* out) override;
  Status ReadFile(const std::string& path, std::string* out) override;
  using FileSystem::WriteFileAtomic;
  Status WriteFileAtomic(const std::string& path, std::string_view data,
                         const AtomicWriteOptions& options) override;
  Status ListDir(const std::string& dir, std::vector<std::string>* names) override;
  Status CreateDirs(const std::string& dir) override;
  Status Remove(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Truncate(const std::string& path, uint64_t size) override;
  Status SyncDir(const std::string& dir) override;
  bool Exists(const std::string& path) override;
  Status LockFile(const std::string& path, LockWait wait, std::unique_ptr<FileLock>* lock) override;

  /// Simulates a power cut (see the model above). Open WritableFiles stay usable but write
  /// to inodes that may no longer be named; tests normally destroy the store first.
  void Crash(TearMode mode = TearMode::kDropUnsynced);

  /// After `after` more successful writes, the next `n` writes (WriteAt, WriteFileAtomic,
  /// preallocation, Allocate) fail with IOError and change nothing.
  void FailNextWrites(int n, int after = 0);
  /// After `after` more successful syncs, the next `n` syncs (WritableFile::Sync, SyncDir,
  /// the syncs inside WriteFileAtomic / Truncate / preallocation / Allocate) fail with
  /// IOError. A failed file sync leaves the file's writes unsynced.
  void FailNextSyncs(int n, int after = 0);
  /// Limits the total size of all files (current and durable contents of every inode,
  /// counted once each at their larger size). UINT64_MAX (the default) means no limit.
  void SetSpaceLimit(uint64_t bytes);
  /// Total bytes currently used, as counted by the space limit.
  uint64_t UsedBytes() const;

  /// Number of writes not yet synced, for tests of the model itself.
  size_t UnsyncedWriteCount() const { return unsynced_.size(); }

 private:
  struct Inode {
    std::string durable;
    std::string current;
  };
  struct PendingWrite {
    std::shared_ptr<Inode> inode;
    uint64_t offset;
    std::string data;
  };
  class File;
  friend class File;
  class Lock;
  friend class Lock;

  Status CheckWrite(const std::string& path);
  Status CheckSync(const std::string& path);
  Status CheckSpace(const std::string& path, uint64_t extra);
  Status FileWriteAt(const std::shared_ptr<Inode>& inode, const std::string& path, uint64_t offset,
                     std::string_view data);
  Status FileSync(const std::shared_ptr<Inode>& inode, const std::string& path);
  Status FileAllocate(const std::shared_ptr<Inode>& inode, const std::string& path, uint64_t size);
  // Makes the inode's content durable: by copying it whole, or (cheaper, valid when only
  // WriteAt changed it since the last sync) by replaying its pending writes.
  void MakeDurable(const std::shared_ptr<Inode>& inode, bool whole);
  bool DirExists(const std::string& dir) const;
  static std::string Parent(const std::string& path);

  std::mt19937_64 rng_;
  std::map<std::string, std::shared_ptr<Inode>> current_names_;
  std::map<std::string, std::shared_ptr<Inode>> durable_names_;
  std::set<std::string> dirs_;
  std::set<std::string> locked_;        // paths with a live FileLock
  std::vector<PendingWrite> unsynced_;  // in issue order
  int fail_writes_after_ = 0;
  int fail_writes_ = 0;
  int fail_syncs_after_ = 0;
  int fail_syncs_ = 0;
  uint64_t space_limit_ = UINT64_MAX;
};

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_STORAGE_FAULT_FILE_SYSTEM_H_

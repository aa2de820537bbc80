// core/storage/log_store: the durable log of DESIGN.md §8 — hard state (term, vote),
// log entries and the latest snapshot — on a write-ahead log of checksummed records.
//
// Layout of the data dir: `wal/<seq:016x>.wal` segments (preallocated, records overwrite
// zeros in place), `snapshot` (one file, replaced atomically). Each record is
// [crc32c of type+payload : 4][length : 4][type : 1][payload], little endian.
//
// Recovery reads every segment in order. A record that fails its checksum or length check
// is a torn tail if nothing but zeros follows it in the last segment: it and the rest are
// discarded (and overwritten by later appends). Anywhere else it is corruption: Open fails
// with Status::Corruption naming the file and offset, and nothing is discarded.
//
// Writes are group-committed: Append*/SetHardState only buffer; Sync() writes everything
// buffered and fsyncs once. Nothing is durable — and nothing may be acknowledged — until
// Sync() returns ok. After a failed write or sync the store refuses further writes
// (the state of the file is unknown); reopen to recover.
//
// Threading: not thread-safe; one owner thread.
#ifndef LOCKMESH_CORE_STORAGE_LOG_STORE_H_
#define LOCKMESH_CORE_STORAGE_LOG_STORE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/storage/file_system.h"
#include "mesh/status.h"

namespace mesh::core {

struct LogEntry {
  uint64_t index = 0;
  uint64_t term = 0;
  std::string data;  // an encoded pb::Command (or a Raft configuration entry later)
};

struct HardState {
  uint64_t term = 0;
  std::string vote;    // node id voted for in `term`, "" if none
  uint64_t commit = 0; // highest index known committed (a hint; may lag)
};

struct SnapshotData {
  uint64_t index = 0;  // last entry covered by the snapshot; 0 = no snapshot
  uint64_t term = 0;
  std::string data;    // encoded state machine (pb::LockTableSnapshot) and config
};

struct LogStoreOptions {
  uint64_t segment_bytes = 64ull << 20;  // preallocated size of one WAL segment
};

class LogStore {
 public:
  /// Opens (creating if empty) the store in `dir`, recovering what is there. `fs` must
  /// outlive the store.
  static Status Open(FileSystem* fs, const std::string& dir, const LogStoreOptions& options,
                     std::unique_ptr<LogStore>* out);
  ~LogStore();

  const HardState& hard_state() const;
  const SnapshotData& snapshot() const;
  /// First index held in the log (snapshot().index + 1), and last (snapshot().index if none).
  uint64_t first_index() const;
  uint64_t last_index() const;
  /// The entry at `index`, first_index() <= index <= last_index().
  const LogEntry& entry(uint64_t index) const;
  /// Term of `index`; also answers snapshot().index. NotFound outside the range.
  Status Term(uint64_t index, uint64_t* term) const;

  /// Buffers `entries` (contiguous). If the first index is <= last_index(), every entry
  /// from that index on is discarded first (Raft conflict resolution). The first index
  /// must be <= last_index() + 1 and > snapshot().index.
  Status Append(const std::vector<LogEntry>& entries);
  /// Buffers a new hard state.
  Status SetHardState(const HardState& hs);
  /// Writes everything buffered and fsyncs once (group commit).
  Status Sync();
  /// True if there is buffered data that Sync() would write.
  bool HasPending() const;

  /// Durably installs a snapshot and drops the entries it covers; segments wholly below it
  /// are deleted. Entries after snapshot.index are kept if their term matches, else all
  /// entries are dropped (snapshot install from a leader).
  Status SaveSnapshot(const SnapshotData& snapshot);

  /// Bytes of WAL on disk, for status and compaction decisions.
  uint64_t wal_bytes() const;

 private:
  LogStore();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_STORAGE_LOG_STORE_H_

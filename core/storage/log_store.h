// core/storage/log_store: the durable log of docs/design.md §8 — hard state (term, vote),
// log entries and the latest snapshot — on a write-ahead log of checksummed records.
//
// Layout of the data dir: `wal/<seq:016x>.wal` segments, `snapshot` (one file, replaced
// atomically). A segment file grows in steps of options.allocate_bytes of zeros (each
// extension synced before records are written into it, so that a record's fdatasync
// changes no file size) up to options.segment_bytes, where the next segment begins: an
// idle node's WAL is one step (1 MiB), and recovery reads at most one step of zeros. Each record is
// [crc32c of type+payload : 4][length of payload : 4][type : 1][payload], little endian:
//   type 1, entry:           [index : 8][term : 8][data : rest]
//   type 2, hard state:      [term : 8][commit : 8][vote : rest]
//   type 3, snapshot marker: [index : 8][term : 8][flags : 1] (bit 0: entries after index kept)
// Records never straddle segments: a record that does not fit in the active segment starts a
// new one (a record larger than options.segment_bytes gets a segment of its own size), and
// the rest of the old segment stays zero. Replay applies records in order: an entry whose
// index is <= the last replayed index first discards the replayed suffix from that index
// (Raft conflict resolution is recorded by re-appending, there is no truncate record); a
// snapshot marker drops the entries it covers (all entries when flag bit 0 is clear); the
// last hard state wins.
// The `snapshot` file is ["LMSNAP01" : 8][crc32c of the rest : 4][index : 8][term : 8][data].
//
// Recovery reads the snapshot (a checksum failure is Corruption), then every segment in
// order. A record that fails its checksum or length check is a torn tail if it is in the
// last segment and no valid record follows it there (only zeros, or the garbage of a write
// cut short): it and the rest are discarded — zeroed on disk during Open, so later appends
// overwrite clean space. Anywhere else (a non-last segment, or a valid record follows) it is
// corruption: Open fails with Status::Corruption naming the file and offset, and nothing is
// discarded. Every torn tail discarded is reported, with its file and offset, in
// recovery_notes() (the node logs them). The last segment is cut back to one allocation
// step past its records if it is longer (older versions preallocated 64 MiB). Missing segments
// between the first and the last are corruption too. A damaged *last* record cannot be told from a
// torn write and is discarded like one. Open ends by syncing every segment and the directory, so
// whatever it recovered is durable before the caller acts on it.
//
// Writes are group-committed: Append*/SetHardState only buffer; Sync() writes everything
// buffered and fsyncs once (when a segment fills up, the full one is synced before the next
// is created, and the directory is synced after each creation). Nothing is durable — and
// nothing may be acknowledged — until Sync() returns ok. After a failed write or sync the
// store refuses further writes with that same error (the state of the file is unknown);
// reopen to recover. The exception is a write refused for want of space (IsNoSpace, see
// file_system.h: a segment's allocation, a new segment, a write, the snapshot file): it
// changes nothing durable, so it is not sticky — the buffered records stay buffered and
// the next Sync (or SaveSnapshot) resumes where the failed one stopped, once there is
// space again. A failed *sync* is always sticky. The accessors reflect buffered (not yet
// durable) changes.
//
// Snapshots: SaveSnapshot syncs what is buffered, writes `snapshot` atomically, then logs the
// current hard state and a snapshot marker and syncs, then deletes the oldest segments as
// long as every entry in them is <= the snapshot index (never the active segment). If a crash
// hits between the snapshot file and its marker, Open applies the snapshot to the recovered
// log itself (the same keep-or-drop rule) and logs the marker.
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

/// One Raft log entry, as stored and returned by LogStore (a plain value).
struct LogEntry {
  uint64_t index = 0;
  uint64_t term = 0;
  std::string data;  // an encoded pb::Command (or a Raft configuration entry later)
};

/// Raft's persistent per-node state, logged with SetHardState (a plain value).
struct HardState {
  uint64_t term = 0;
  std::string vote;     // node id voted for in `term`, "" if none
  uint64_t commit = 0;  // highest index known committed (a hint; may lag)
};

/// A state-machine snapshot covering the log up to `index` (a plain value).
struct SnapshotData {
  uint64_t index = 0;  // last entry covered by the snapshot; 0 = no snapshot
  uint64_t term = 0;
  std::string data;  // encoded state machine (pb::LockTableSnapshot) and config
};

/// Tuning for LogStore::Open.
struct LogStoreOptions {
  /// A segment's records end at or before this size; a record that does not fit starts
  /// the next segment.
  uint64_t segment_bytes = 64ull << 20;
  /// A segment file grows by this many bytes of zeros at a time (at most to segment_bytes).
  uint64_t allocate_bytes = 1ull << 20;
};

class LogStore {
 public:
  /// Opens (creating `dir` and `dir`/wal if missing) the store in `dir`, recovering what is
  /// there (see above). `fs` must outlive the store; `*out` is owned by the caller. Fails
  /// with Corruption (file and offset in the message) or the file system's error.
  static Status Open(FileSystem* fs, const std::string& dir, const LogStoreOptions& options,
                     std::unique_ptr<LogStore>* out);
  /// Closes the active segment. Buffered records not yet synced are discarded.
  ~LogStore();

  /// The latest hard state (buffered or durable); all zero/empty on a fresh store.
  const HardState& hard_state() const;
  /// The index and term of the latest snapshot (index 0 if there is none). Its `data` is
  /// always empty: a snapshot's data is not kept in memory (a table of a million locks
  /// makes hundreds of MB); ReadSnapshot reads it.
  const SnapshotData& snapshot() const;
  /// Reads the latest snapshot, data included, from its file (index 0 and no data if there
  /// is none). Corruption if the file does not check out. Uses only the file system, not
  /// the store's state, so it may run while the owner thread's Sync runs elsewhere.
  Status ReadSnapshot(SnapshotData* out) const;
  /// ReadSnapshot of the store in `dir` through `fs`, without a store object.
  static Status ReadSnapshotFile(FileSystem* fs, const std::string& dir, SnapshotData* out);
  /// First index held in the log: snapshot().index + 1.
  uint64_t first_index() const;
  /// Last index held in the log, including buffered entries; snapshot().index if none.
  uint64_t last_index() const;
  /// The entry at `index`; requires first_index() <= index <= last_index() (asserted in
  /// debug builds). The reference is valid until the next Append or SaveSnapshot. Its data
  /// is empty after DropEntryData.
  const LogEntry& entry(uint64_t index) const;
  /// Term of `index`; also answers snapshot().index. NotFound outside the range.
  Status Term(uint64_t index, uint64_t* term) const;
  /// Frees the data of every entry held and keeps none of the entries appended from now
  /// on: entry() then returns their index and term with empty data. For an owner that has
  /// read the recovered entries (raft_storage's LoadPersistentState) and keeps its own copy
  /// of the log (Raft does): the store needs only the terms, and a second copy of each
  /// entry's data cost ~200 bytes per entry of a 100-byte-name lock.
  void DropEntryData();

  /// Buffers `entries` (contiguous). If the first index is <= last_index(), every entry
  /// from that index on is discarded first (Raft conflict resolution). The first index
  /// must be <= last_index() + 1 and > snapshot().index, else InvalidArgument (not sticky).
  /// Returns the sticky error, if any. The new entries are readable at once.
  Status Append(const std::vector<LogEntry>& entries);
  /// Buffers a new hard state. Returns the sticky error, if any.
  Status SetHardState(const HardState& hs);
  /// Writes everything buffered and fsyncs once (group commit). Ok with nothing buffered.
  /// On failure the error becomes sticky (see write_error()), unless IsNoSpace(error):
  /// then what is not yet written stays buffered for the next call.
  Status Sync();
  /// True if there is buffered data that Sync() would write.
  bool HasPending() const;

  /// Durably installs a snapshot and drops the entries it covers; segments wholly below it
  /// are deleted. Entries after snapshot.index are kept if their term matches, else all
  /// entries are dropped (snapshot install from a leader). snapshot.index must be > 0 and
  /// >= snapshot().index (equal only with the same term: re-saving new data for the same
  /// point), else InvalidArgument. Syncs anything buffered first. Failures are sticky but
  /// for want of space: then call it again with the same snapshot (it is idempotent).
  Status SaveSnapshot(const SnapshotData& snapshot);

  /// Bytes of records in the live WAL segments as of the last successful Sync (excluding
  /// the preallocated zero space), for status and compaction decisions.
  uint64_t wal_bytes() const;
  /// Number of live WAL segment files.
  size_t segment_count() const;
  /// The sticky error: ok until a write or sync fails (other than for want of space), then
  /// that failure forever.
  const Status& write_error() const;
  /// What Open repaired, one line each (a torn tail discarded: file, offset, bytes, why).
  const std::vector<std::string>& recovery_notes() const;
  /// Bytes of the live WAL segment files on disk (records and the zeros allocated ahead).
  uint64_t allocated_bytes() const;

 private:
  LogStore();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_STORAGE_LOG_STORE_H_

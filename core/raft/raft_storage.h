// core/raft/raft_storage: Raft's durable state on a core::LogStore — the persist step of a
// Batch, and the PersistentState a restarted node opens Raft with. Shared by the simulator
// (LogStore over FaultFileSystem) and the node driver (LogStore over PosixFileSystem).
//
// Encoding: a pb::Entry is a core::LogEntry with the same index and term and
// data = [EntryType : 1 byte][payload]. A snapshot is core::SnapshotData with the same index
// and term and data = an encoded pb::StoredSnapshot (metadata with the configuration, and
// the state machine's data).
//
// Threading: as LogStore (one owner thread).
#ifndef LOCKMESH_CORE_RAFT_RAFT_STORAGE_H_
#define LOCKMESH_CORE_RAFT_RAFT_STORAGE_H_

#include <vector>

#include "core/raft/raft.h"
#include "core/storage/log_store.h"
#include "mesh/status.h"

namespace mesh::core::raft {

/// Executes the persist step of `batch` (raft.h) on `store` and makes it durable before
/// returning: installs batch.snapshot (SaveSnapshot, which drops the log it replaces),
/// appends batch.entries (replacing a conflicting suffix), sets batch.hard_state, syncs
/// once, then saves batch.compacted. After an ok return the driver may Advance(batch). On
/// error the batch must not be advanced (the store's error is sticky: the driver stops the
/// node or reopens the store).
Status PersistBatch(LogStore* store, const Batch& batch);

/// True if persisting `batch` writes to disk (PersistBatch) rather than only buffering it
/// (BufferBatch): it must_sync, or saves a snapshot. A batch that only moves the commit hint
/// is buffered and rides along with the next sync.
bool NeedsDisk(const Batch& batch);

/// Buffers batch.entries and batch.hard_state without syncing (the pieces of PersistBatch
/// between the snapshot install and the sync): for a batch that need not sync (not
/// Batch::must_sync: its buffered hard state rides along with the next sync), or for a
/// driver that group-commits several batches with one LogStore::Sync. batch.snapshot and
/// batch.compacted are not handled here.
Status BufferBatch(LogStore* store, const Batch& batch);

/// Executes the persist step of several batches, in the order taken, as PersistBatch would
/// one after the other, but with one sync for all (more only around a compacted snapshot,
/// which must follow its own batch's sync): for a driver that persists off its loop what it
/// buffered meanwhile, snapshots included. On error, as PersistBatch.
Status PersistBatches(LogStore* store, const std::vector<const Batch*>& batches);

/// Reads what `store` recovered into `*out`, for Raft::Open. Corruption if an entry or the
/// snapshot does not decode.
Status LoadPersistentState(const LogStore& store, PersistentState* out);

/// Reads the latest snapshot `store` persisted (SaveSnapshot of a batch's snapshot or
/// compacted) back from its file, data included, into `*out`; out->meta.index() is 0 if
/// there is none. Corruption if it does not decode. Touches only the snapshot file
/// (LogStore::ReadSnapshot), not the store's state, so a SnapshotLoader may call it while
/// another thread persists a batch; the caller checks that it is the snapshot it wants.
Status ReadSnapshot(const LogStore& store, Snapshot* out);

/// The LogEntry encoding of `entry` (see the file comment).
LogEntry EncodeEntry(const pb::Entry& entry);
/// Decodes a LogEntry written by EncodeEntry; Corruption if its data has no valid type byte.
Status DecodeEntry(const LogEntry& stored, pb::Entry* entry);

}  // namespace mesh::core::raft

#endif  // LOCKMESH_CORE_RAFT_RAFT_STORAGE_H_

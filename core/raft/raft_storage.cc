// core/raft/raft_storage: see raft_storage.h.
#include "core/raft/raft_storage.h"

#include <string>
#include <vector>

namespace mesh::core::raft {
namespace {

Status SaveSnapshot(LogStore* store, const Snapshot& snapshot) {
  pb::StoredSnapshot stored;
  *stored.mutable_meta() = snapshot.meta;
  stored.set_data(snapshot.data);
  SnapshotData data;
  data.index = snapshot.meta.index();
  data.term = snapshot.meta.term();
  data.data = stored.SerializeAsString();
  return store->SaveSnapshot(data);
}

}  // namespace

LogEntry EncodeEntry(const pb::Entry& entry) {
  LogEntry out;
  out.index = entry.index();
  out.term = entry.term();
  out.data.reserve(1 + entry.data().size());
  out.data.push_back(static_cast<char>(entry.type()));
  out.data.append(entry.data());
  return out;
}

Status DecodeEntry(const LogEntry& stored, pb::Entry* entry) {
  if (stored.data.empty()) {
    return Status::Corruption("raft log entry " + std::to_string(stored.index) +
                              " has no type byte");
  }
  auto type = static_cast<unsigned char>(stored.data[0]);
  if (!pb::EntryType_IsValid(type)) {
    return Status::Corruption("raft log entry " + std::to_string(stored.index) +
                              " has unknown type " + std::to_string(type));
  }
  entry->set_index(stored.index);
  entry->set_term(stored.term);
  entry->set_type(static_cast<pb::EntryType>(type));
  entry->set_data(stored.data.data() + 1, stored.data.size() - 1);
  return Status::OK();
}

bool NeedsDisk(const Batch& batch) { return batch.must_sync || batch.snapshot || batch.compacted; }

Status BufferBatch(LogStore* store, const Batch& batch) {
  if (!batch.entries.empty()) {
    std::vector<LogEntry> entries;
    entries.reserve(batch.entries.size());
    for (const pb::Entry& e : batch.entries) entries.push_back(EncodeEntry(e));
    MESH_RETURN_IF_ERROR(store->Append(entries));
  }
  if (batch.hard_state) MESH_RETURN_IF_ERROR(store->SetHardState(*batch.hard_state));
  return Status::OK();
}

Status PersistBatch(LogStore* store, const Batch& batch) {
  if (batch.snapshot) MESH_RETURN_IF_ERROR(SaveSnapshot(store, *batch.snapshot));
  MESH_RETURN_IF_ERROR(BufferBatch(store, batch));
  MESH_RETURN_IF_ERROR(store->Sync());
  if (batch.compacted) MESH_RETURN_IF_ERROR(SaveSnapshot(store, *batch.compacted));
  return Status::OK();
}

Status PersistBatches(LogStore* store, const std::vector<const Batch*>& batches) {
  bool synced = true;
  for (const Batch* batch : batches) {
    if (batch->snapshot) MESH_RETURN_IF_ERROR(SaveSnapshot(store, *batch->snapshot));
    MESH_RETURN_IF_ERROR(BufferBatch(store, *batch));
    synced = false;
    if (batch->compacted) {
      MESH_RETURN_IF_ERROR(store->Sync());
      MESH_RETURN_IF_ERROR(SaveSnapshot(store, *batch->compacted));
      synced = true;
    }
  }
  if (!synced) MESH_RETURN_IF_ERROR(store->Sync());
  return Status::OK();
}

Status ReadSnapshot(const LogStore& store, Snapshot* out) {
  *out = Snapshot();
  SnapshotData snap;
  // The file only, not the store's state: a loader reads it while the pool thread may be
  // persisting a batch (a newer snapshot replaces the file atomically: either is whole).
  MESH_RETURN_IF_ERROR(store.ReadSnapshot(&snap));
  if (snap.index == 0) return Status::OK();
  pb::StoredSnapshot stored;
  if (!stored.ParseFromString(snap.data)) {
    return Status::Corruption("raft snapshot at index " + std::to_string(snap.index) +
                              " does not decode");
  }
  if (stored.meta().index() != snap.index || stored.meta().term() != snap.term) {
    return Status::Corruption("raft snapshot metadata (" + std::to_string(stored.meta().index()) +
                              ", " + std::to_string(stored.meta().term()) +
                              ") disagrees with the store's (" + std::to_string(snap.index) + ", " +
                              std::to_string(snap.term) + ")");
  }
  out->meta = std::move(*stored.mutable_meta());
  out->data = std::move(*stored.mutable_data());
  return Status::OK();
}

Status LoadPersistentState(const LogStore& store, PersistentState* out) {
  PersistentState state;
  state.hard_state = store.hard_state();
  Snapshot snap;
  MESH_RETURN_IF_ERROR(ReadSnapshot(store, &snap));
  if (snap.meta.index() != store.snapshot().index || snap.meta.term() != store.snapshot().term) {
    return Status::Corruption("the snapshot file (index " + std::to_string(snap.meta.index()) +
                              ") is not the one the log records (index " +
                              std::to_string(store.snapshot().index) + ")");
  }
  state.snapshot = std::move(snap.meta);
  state.snapshot_data = std::move(snap.data);
  state.entries.reserve(store.last_index() - store.snapshot().index);
  for (uint64_t i = store.first_index(); i <= store.last_index(); ++i) {
    pb::Entry entry;
    MESH_RETURN_IF_ERROR(DecodeEntry(store.entry(i), &entry));
    state.entries.push_back(std::move(entry));
  }
  *out = std::move(state);
  return Status::OK();
}

}  // namespace mesh::core::raft

#include "sim/support/sim_storage.h"

namespace mesh::sim {
namespace {

// LogEntry::data = [EntryType : 1][entry data].
core::LogEntry Encode(const pb::Entry& e) {
  core::LogEntry out;
  out.index = e.index();
  out.term = e.term();
  out.data.reserve(e.data().size() + 1);
  out.data.push_back(static_cast<char>(e.type()));
  out.data.append(e.data());
  return out;
}

Status SaveSnapshot(core::LogStore* store, const core::raft::Snapshot& snapshot) {
  pb::StoredSnapshot stored;
  *stored.mutable_meta() = snapshot.meta;
  stored.set_data(snapshot.data);
  core::SnapshotData data;
  data.index = snapshot.meta.index();
  data.term = snapshot.meta.term();
  data.data = stored.SerializeAsString();
  return store->SaveSnapshot(data);
}

}  // namespace

Status PersistBatch(core::LogStore* store, const core::raft::Batch& batch) {
  if (batch.snapshot) MESH_RETURN_IF_ERROR(SaveSnapshot(store, *batch.snapshot));
  if (!batch.entries.empty()) {
    std::vector<core::LogEntry> entries;
    entries.reserve(batch.entries.size());
    for (const pb::Entry& e : batch.entries) entries.push_back(Encode(e));
    MESH_RETURN_IF_ERROR(store->Append(entries));
  }
  if (batch.hard_state) MESH_RETURN_IF_ERROR(store->SetHardState(*batch.hard_state));
  if (batch.compacted && batch.compacted->meta.index() > store->snapshot().index) {
    MESH_RETURN_IF_ERROR(SaveSnapshot(store, *batch.compacted));
  }
  return store->Sync();
}

Status LoadPersistentState(const core::LogStore& store, core::raft::PersistentState* state) {
  *state = core::raft::PersistentState();
  state->hard_state = store.hard_state();
  if (store.snapshot().index > 0) {
    pb::StoredSnapshot stored;
    if (!stored.ParseFromString(store.snapshot().data)) {
      return Status::Corruption("snapshot: unparsable StoredSnapshot");
    }
    state->snapshot = stored.meta();
    state->snapshot_data = stored.data();
  }
  for (uint64_t i = store.first_index(); i <= store.last_index(); ++i) {
    const core::LogEntry& le = store.entry(i);
    if (le.data.empty()) return Status::Corruption("entry without a type byte");
    pb::Entry e;
    e.set_index(le.index);
    e.set_term(le.term);
    e.set_type(static_cast<pb::EntryType>(static_cast<unsigned char>(le.data[0])));
    e.set_data(le.data.substr(1));
    state->entries.push_back(std::move(e));
  }
  return Status::OK();
}

}  // namespace mesh::sim

// tests/sim/support/sim_storage: step 1 of a raft::Batch (persist + fsync) on a
// core::LogStore, and loading a raft::PersistentState back. A thin forwarder to
// core/raft/raft_storage when it exists (LOCKMESH_SIM_HAVE_RAFT_STORAGE), so the simulator
// runs the node's real recovery code; a local stand-in with the same encoding otherwise.
#ifndef LOCKMESH_TESTS_SIM_SUPPORT_SIM_STORAGE_H_
#define LOCKMESH_TESTS_SIM_SUPPORT_SIM_STORAGE_H_

#include "core/raft/raft.h"
#include "core/storage/log_store.h"
#include "mesh/status.h"

namespace mesh::sim {

/// Persists the snapshot, entries, hard state and compacted snapshot of `batch` and syncs.
Status PersistBatch(core::LogStore* store, const core::raft::Batch& batch);

/// What `store` holds, as raft::Raft::Open wants it.
Status LoadPersistentState(const core::LogStore& store, core::raft::PersistentState* state);

}  // namespace mesh::sim

#endif  // LOCKMESH_TESTS_SIM_SUPPORT_SIM_STORAGE_H_

// A full disk in the simulator (sim_cluster.h FillDisk): the node's FaultFileSystem refuses
// growth past a limit, and the driver model runs core::DiskFullPolicy the way
// net/node/command_log executes it: a persist that fails for want of space makes the node full;
// the batches it could not persist are held, in order, before every batch taken since, and
// persisted again (in the loop) when the policy's retry is due; Raft is not advanced past
// them, so nothing they carry is acknowledged; new lock requests are refused meanwhile.
#include <iterator>
#include <string>
#include <vector>

#include "core/storage/file_system.h"
#include "sim/support/sim_cluster.h"
#include "sim/support/sim_cluster_internal.h"

namespace mesh::sim {

void Cluster::FillDisk(int i, uint64_t slack) {
  Node& n = *nodes_[i];
  ++stats_.faults;
  ++stats_.disk_fills;
  n.disk_limited = true;
  n.fs->SetSpaceLimit(n.fs->UsedBytes() + slack);
  Trace(i, "disk fills: " + std::to_string(slack) + " bytes left");
}

void Cluster::FreeDisk(int i) {
  Node& n = *nodes_[i];
  if (!n.disk_limited) return;
  ++stats_.faults;
  n.disk_limited = false;
  n.fs->SetSpaceLimit(UINT64_MAX);
  Trace(i, "disk has room again");
  if (n.start_when_space && !n.up && !n.decommissioned) {
    n.start_when_space = false;
    Restart(i);
  }
}

bool Cluster::DiskFull(int i) const {
  const Node& n = *nodes_[i];
  return n.up && n.disk.full();
}

bool Cluster::PersistWaitsForSpace(const Node& n) const {
  return n.disk.full() && !n.disk.RetryDue(Local(n));
}

void Cluster::HoldForSpace(Node& n, const Status& error, std::vector<core::raft::Batch>* batches,
                           size_t from) {
  const core::DiskFullPolicy::Verdict verdict = n.disk.OnPersistFailed(error, Local(n));
  if (verdict == core::DiskFullPolicy::Verdict::kFatal) {
    checker_.Fail(now_, n.id + ": persist failed: " + error.ToString());
    return;
  }
  // Persisting again is idempotent (core/raft/raft_storage.h), so each held batch is
  // persisted whole at the retry, before those taken since.
  stats_.disk_held_batches += batches->size() - from;
  n.unpersisted.insert(n.unpersisted.begin(),
                       std::make_move_iterator(batches->begin() + static_cast<ptrdiff_t>(from)),
                       std::make_move_iterator(batches->end()));
  batches->clear();
  if (verdict == core::DiskFullPolicy::Verdict::kBecameFull) {
    ++stats_.disk_full_periods;
    Trace(n.index, n.disk.Describe());
  }
}

int Cluster::GrantsTo(int i, Time after) const {
  int grants = 0;
  for (const auto& [at, node, resource] : grant_log_) grants += node == i && at > after ? 1 : 0;
  return grants;
}

}  // namespace mesh::sim

// A full disk in the simulator (sim_cluster.h FillDisk): the node's FaultFileSystem refuses
// growth past a limit, and the driver model executes core::raft::PersistQueue (with
// core::DiskFullPolicy) as net/node/command_log does: the queue decides what a persist that
// fails for want of space holds, how far Raft is advanced, when to retry and what to refuse
// meanwhile; this only counts and traces it.
#include <algorithm>
#include <string>
#include <vector>

#include "core/raft/persist_queue.h"
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
  return n.up && n.persist.retrying();
}

void Cluster::SettlePersist(Node& n, std::vector<core::raft::Batch> batches, size_t persisted,
                            const Status& error) {
  using Outcome = core::raft::PersistQueue::Outcome;
  const size_t held = batches.size() - std::min(persisted, batches.size());
  const Outcome outcome =
      n.persist.Settle(std::move(batches), persisted, error, Local(n),
                       [&n](const core::raft::Batch& b) { n.raft->Advance(b); });
  switch (outcome) {
    case Outcome::kPersisted:
      break;
    case Outcome::kSpaceReturned:
      Trace(n.index, "disk: the held batches are persisted; new locks are taken again");
      break;
    case Outcome::kBecameFull:
      ++stats_.disk_full_periods;
      Trace(n.index, n.persist.disk().Describe());
      stats_.disk_held_batches += held;
      break;
    case Outcome::kStillFull:
      stats_.disk_held_batches += held;
      break;
    case Outcome::kFatal:
      checker_.Fail(now_, n.id + ": persist failed: " + error.ToString());
      break;
  }
}

int Cluster::GrantsTo(int i, Time after) const {
  int grants = 0;
  for (const auto& [at, node, resource] : grant_log_) grants += node == i && at > after ? 1 : 0;
  return grants;
}

}  // namespace mesh::sim

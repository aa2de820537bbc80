// `lockmesh status --check`: whether the node at the socket serves locks now, judged from one
// status reply (mesh::NodeStatus), with the reason in words. The docker health check and
// systemd-style supervisors run it; an operator reads its one line.
//
// Healthy (H1-H4, all of them):
//  H1 the node answered (else `status` exits 94 before any judgement);
//  H2 a local node (no mesh) serves on its own: healthy once it answers;
//  H3 a mesh node belongs to a cluster (a cluster id) and is a member (not `joining`), and
//     knows a leader;
//  H4 a mesh node holds a valid session lease (lease_ms > 0): without one it hands out no
//     locks, so a node cut off from the leader for longer than its lease is unhealthy even
//     if it still names the old leader.
// Warnings (a second cluster of the same name, a certificate about to expire, a full disk)
// are printed but do not fail the check, except a full disk: a node whose log cannot be
// written refuses new locks.
//
// Pure function; thread-safe.
#ifndef LOCKMESH_APPS_LOCKMESH_HEALTH_CHECK_H_
#define LOCKMESH_APPS_LOCKMESH_HEALTH_CHECK_H_

#include <string>

#include "mesh/client.h"

namespace lockmesh::cli {

/// The verdict on one status reply.
struct HealthVerdict {
  bool healthy = false;
  /// One line: what the node is and, when unhealthy, why (e.g. "node n1 (follower) of
  /// cluster 5f..: no leader known").
  std::string line;
};

/// Judges `status` by H2-H4 (above).
HealthVerdict JudgeHealth(const mesh::NodeStatus& status);

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_HEALTH_CHECK_H_

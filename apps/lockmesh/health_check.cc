#include "health_check.h"

namespace lockmesh::cli {
namespace {

// core::DiskFullPolicy::Describe's words, which the node puts in its status warnings while
// its disk is full (tests/net/health_check_test.cc holds the two together).
constexpr const char* kDiskFullPrefix = "disk full: ";

}  // namespace

HealthVerdict JudgeHealth(const mesh::NodeStatus& s) {
  HealthVerdict v;
  const std::string role = s.role.empty() ? "?" : s.role;
  std::string what = "node " + s.node_id + " (" + role + ")";
  for (const std::string& w : s.warnings) {
    if (w.rfind(kDiskFullPrefix, 0) == 0) {
      v.line = what + ": " + w;
      return v;
    }
  }
  if (!s.mesh) {  // H2
    v.healthy = true;
    v.line = what + ": local node, serving";
    return v;
  }
  if (s.cluster_id.empty()) {  // H3
    v.line = what + ": not in a cluster yet";
    return v;
  }
  what += " of cluster " + s.cluster_id;
  if (s.role == "joining") {
    v.line = what + ": still joining (not a member yet)";
    return v;
  }
  if (s.leader_id.empty()) {
    v.line = what + ": no leader known (no quorum?)";
    return v;
  }
  if (s.lease_ms <= 0) {  // H4
    v.line = what + ", leader " + s.leader_id +
             ": no valid session lease (locks are not handed out: the leader has not heard "
             "from this node recently)";
    return v;
  }
  v.healthy = true;
  v.line = what + ", leader " + s.leader_id + ", lease " + std::to_string(s.lease_ms) + " ms";
  return v;
}

}  // namespace lockmesh::cli

// core/formation_plan: how a node enters a mesh and leaves it (docs/design.md §2,
// "Bootstrap"; docs/mesh.md, "Formation"), as pure functions of what the node sees, so that
// the simulator and unit tests run the rules the node runs (net/node/cluster.cc gathers the view,
// then bootstraps, sends, trusts or hands over as told).
//
// A node with empty state (no configuration):
//  F1 Listens first: until `formation_wait_ms` has passed since it started (a discovery burst)
//     it decides nothing, so that it does not bootstrap beside a cluster it has not heard yet.
//  F2 A cluster in view: if any connected peer's gossip names a cluster id (or two clusters tie),
//     the node never bootstraps. It joins through the peer core::ChooseJoin picks (rules C1-C3,
//     core/join_choice.h): that peer alone is trusted for leader traffic (core/admission.h R3a),
//     and a JoinRequest goes to it at most once every kJoinIntervalMs, until the node is in the
//     configuration. No target (a tie, an election): wait, trusting nobody.
//  F3 No cluster in view: the node bootstraps a cluster with itself as the only voter once
//     it is connected to at least expect - 1 other fresh nodes (peers that gossiped no cluster
//     id) and no fresh peer in view has a lower id than its own (Consul's bootstrap_expect).
//     The others then see the new cluster id in its gossip and join it (F2). Peers that have
//     not gossiped yet count for nothing.
// A node that has a configuration but is not in it (removed, or added nowhere yet):
//  F4 Asks again, at most once every kJoinIntervalMs: to the leader if it knows one and is
//     connected to it, else to the highest-id connected peer that gossips our cluster id and
//     says it is a member (it forwards the request, R5); nobody such: it waits for the next
//     interval.
// A node that leaves gracefully:
//  F5 A leader hands leadership to the connected voter with the highest match index (the first
//     in the order given on a tie); none connected: it hands over to nobody.
//  F6 Leaving is done once every command proposed before it is applied and the node is not
//     the leader of a cluster of more than one member — or at the deadline, whatever holds.
//
// Threading: pure functions of plain values.
#ifndef LOCKMESH_CORE_FORMATION_PLAN_H_
#define LOCKMESH_CORE_FORMATION_PLAN_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/join_choice.h"

namespace mesh::core {

/// The least time between two JoinRequests of one node (F2, F4), ms.
inline constexpr uint64_t kJoinIntervalMs = 1000;

/// True if a JoinRequest may be sent at `now_ms`, the last one having gone at `last_join_ms`
/// (0 = never): kJoinIntervalMs or more have passed (unsigned difference, as a loop clock
/// that starts near 0 makes the first request due at once once F1 has passed).
bool JoinDue(uint64_t now_ms, uint64_t last_join_ms);

/// What a fresh node (no configuration) sees at one tick. Pointers are borrowed for the call.
struct FormationView {
  std::string self_id;
  /// --expect: nodes (this one included) that must be in view before a cluster is made.
  int expect = 1;
  /// The driver's loop clock now, when the node started, and the time it listens first (F1).
  uint64_t now_ms = 0;
  uint64_t start_ms = 0;
  uint64_t formation_wait_ms = 1000;
  /// When the last JoinRequest was sent (0 = never).
  uint64_t last_join_ms = 0;
  /// The latest gossip of every connected peer that has gossiped, by authenticated link id.
  const std::map<std::string, JoinGossip>* peers = nullptr;
  /// The cluster chosen at the previous tick ("" if none): ChooseJoin's previous_cluster_id.
  std::string joining_cluster_id;
};

/// The decision for one tick (kind kListen: nothing changes, choice is empty).
struct FormationStep {
  enum class Kind {
    kListen,     // F1: still inside the formation wait
    kJoin,       // F2: a cluster (or a tie) is in view: join, or wait for a target
    kWait,       // F3: no cluster in view, but not enough fresh nodes or not the lowest id
    kBootstrap,  // F3: make a cluster with this node as its only voter
  };
  Kind kind = Kind::kListen;
  /// kJoin: core::ChooseJoin's answer. choice.cluster_id, if not "", becomes the next
  /// joining_cluster_id; choice.target ("" = nobody) is the only peer trusted for leader
  /// traffic (R3a); choice.reason is what to log when it changes.
  JoinChoice choice;
  /// kJoin: a JoinRequest goes to choice.target now (a target, and JoinDue).
  bool send_join = false;
  /// kWait, kBootstrap: the fresh peers in view (this node not counted).
  size_t fresh_peers = 0;
  /// kWait: why, in words (for a status line or a debug log).
  std::string why;
};

/// Rules F1-F3.
FormationStep PlanFormation(const FormationView& view);

/// One connected peer, as F4 looks at it.
struct RejoinPeer {
  /// The cluster id it gossips ("" if fresh or not gossiped yet) and whether it says it is
  /// a member of that cluster.
  std::string cluster_id;
  bool member = false;
};

/// Rule F4's target: `leader` (the leader this node's Raft knows, "" if none) if
/// `leader_connected`, else the highest-id peer of `peers` gossiping `cluster_id` (this node's
/// configuration's) as a member; "" if none. Pacing is the caller's: JoinDue.
std::string RejoinTarget(const std::string& leader, bool leader_connected,
                         const std::map<std::string, RejoinPeer>& peers,
                         const std::string& cluster_id);

/// One follower, as F5 looks at it.
struct HandOverCandidate {
  std::string id;
  bool voter = false;
  /// A live link to it now.
  bool connected = false;
  /// Raft's match index for it.
  uint64_t match = 0;
};

/// Rule F5: the voter to hand leadership to, from the leader's progress list (in Raft's
/// order); "" if no voter is connected.
std::string ChooseHandOver(const std::vector<HandOverCandidate>& followers);

/// Rule F6. `leader`: this node leads now; `members`: the configuration's size; `unapplied`:
/// proposals of this node not applied yet; `deadline_ms`: when leaving gives up waiting.
bool LeaveComplete(bool leader, int members, uint64_t unapplied, uint64_t now_ms,
                   uint64_t deadline_ms);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_FORMATION_PLAN_H_

// core/membership_plan: what a leader changes in the cluster's membership next (docs/mesh.md,
// "Membership"), as a pure function of what it sees, so that the simulator and unit tests
// run the same rules as the node (net/node/cluster.cc only gathers the view and proposes).
//
// One change at a time (raft allows one in flight), in this order of priority:
//   M1 A join request from a node the configuration already holds, whose log ends before
//      what the leader knows it had (its match): it lost its data (a wiped data dir, a
//      restore from an old backup). Its acknowledgements are void — raft assumes a durable
//      log — so it is removed; it then joins again as a learner (M2) and is promoted once
//      caught up (M4). Until it holds the removal in its log it votes for nobody (a node
//      without a configuration takes no vote requests, core/admission.h R3); after, only for
//      candidates whose log holds the removal. A voter that lost its vote can therefore not
//      vote twice in one term.
//   M2 A join request from a non-member: it is added as a learner.
//   M3 A failed voter (below) is removed once a caught-up learner can take its place.
//   M4 Learners that are caught up are promoted while the voters are fewer than the target.
//   M5 A failed learner is removed (if it comes back, it asks to join again).
// A member has failed when, with this leader in office for dead_after, it has not been heard
// for dead_after (crashed, partitioned) or has made no progress for dead_after though
// connected (CatchUpTracker: stuck behind a snapshot it cannot take, a full disk, a frozen
// apply loop).
//
// Threading: plain values and functions; no shared state.
#ifndef LOCKMESH_CORE_MEMBERSHIP_PLAN_H_
#define LOCKMESH_CORE_MEMBERSHIP_PLAN_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "raft.pb.h"

namespace mesh::core {

/// Whether each follower keeps up, by the leader's clock: a follower is stuck when for
/// dead_after it neither reached the commit index the leader had at the start of that time
/// nor advanced a snapshot transfer. Fed by the leader (Observe at every membership round);
/// Forget on a change of leader. Not thread-safe: one owner.
class CatchUpTracker {
 public:
  /// Records what the leader sees of `id` at `now_us`: its match index, the bytes of a
  /// snapshot transfer it acknowledged (0 if none), and the leader's commit index.
  void Observe(const std::string& id, uint64_t now_us, uint64_t match, uint64_t snapshot_acked,
               uint64_t commit);
  /// Microseconds since `id` last made progress (0 if never observed).
  uint64_t BehindFor(const std::string& id, uint64_t now_us) const;
  /// Forgets every follower (a new term of office starts from scratch).
  void Forget() { peers_.clear(); }
  /// Forgets followers not in `keep`.
  void Retain(const std::vector<std::string>& keep);

 private:
  struct Peer {
    uint64_t target = 0;  // the commit index to reach
    uint64_t since = 0;   // when target was set (progress was last seen)
    uint64_t snapshot_acked = 0;
  };
  std::map<std::string, Peer> peers_;
};

/// One follower as the leader sees it.
struct FollowerView {
  std::string id;
  bool voter = false;
  /// Raft's match index for it.
  uint64_t match = 0;
  /// Leader's clock at the last message from it (raft or lease), 0 = never.
  uint64_t last_heard_us = 0;
  /// A live link to it right now.
  bool connected = false;
  /// CatchUpTracker::BehindFor.
  uint64_t behind_for_us = 0;
};

/// A node asking to join (JoinRequest).
struct JoinAsk {
  /// host:port others dial to reach it.
  std::string address;
  /// The last index of its log when it asked (0: empty).
  uint64_t last_index = 0;
};

/// Everything the plan looks at. Pointers are borrowed for the call.
struct MembershipView {
  uint64_t now_us = 0;
  /// When this node became leader.
  uint64_t leader_since_us = 0;
  /// --dead-after.
  uint64_t dead_after_us = 30'000'000;
  /// --voters: how many voters the cluster aims for.
  int voters_target = 3;
  uint64_t commit_index = 0;
  /// The current configuration (this leader included).
  const pb::ClusterConfig* config = nullptr;
  /// Every member but this leader.
  std::vector<FollowerView> followers;
  /// Pending join requests, by node id.
  const std::map<std::string, JoinAsk>* joins = nullptr;
};

/// The next change (kind kNone: nothing to do).
struct MembershipStep {
  enum class Kind { kNone, kAddLearner, kRemove, kPromote };
  Kind kind = Kind::kNone;
  std::string id;
  /// kAddLearner: the address to record.
  std::string address;
  /// A sentence for the log: what and why.
  std::string why;
  /// Join requests that are answered (or void) and may be dropped; the one that caused an
  /// M1 removal stays pending (the node joins again once removed).
  std::vector<std::string> drop_joins;
};

/// Applies M1-M5 above to `view`.
MembershipStep PlanMembership(const MembershipView& view);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_MEMBERSHIP_PLAN_H_

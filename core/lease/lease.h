// core/lease: the session leases of docs/design.md §4, as two pure state machines.
//
//  * LeaderLeases runs on the Raft leader. It remembers, per node that may hold a lease (a
//    member of the leader's configuration or a node with sessions in its lock table; any
//    other node's keepalive is ignored), the local time of the last Keepalive it received;
//    it acknowledges a Keepalive only while Raft says it holds a leader lease
//    (Raft::HasLeaderLease); and it reports, once per silence, every node that
//    has been silent for session_ttl, so that the driver proposes ExpireNode for it. When the
//    node becomes leader every node's clock starts at that moment (BecomeLeader), so a leader
//    change only ever extends a lease.
//  * NodeLease runs on every node (the leader included, which acknowledges its own
//    keepalives without the network). It records the local send time s of each Keepalive;
//    an acknowledgement makes the node's sessions valid until
//        s + session_ttl * (1 - drift) - margin                  (local clock)
//    where drift is RaftOptions::max_drift, the bound on the rate difference between any two
//    nodes' clocks. When that deadline passes without a fresher acknowledgement the node
//    tells its clients that their locks are lost (Lapsed()).
//
// Nothing here reads a clock: every time is passed in, in microseconds of the calling node's
// own monotonic clock (core::raft::Time). Times of two nodes are never compared.
//
// Safety argument. The drift bound means: over any stretch of real time, any clock advances
// at least (1 - drift) times as much as any other clock. (Clocks whose rates lie within
// [1 - d, 1 + d] of real time satisfy it with drift = 2d / (1 + d).) Let a node send a
// Keepalive at real time S (its local s) and a leader L receive it at real R >= S and
// acknowledge it at real A >= R.
//  1. The node gives up at real G, when its own clock reads s + ttl(1 - drift) - margin.
//  2. Over [S, G] the node's clock advanced ttl(1 - drift) - margin, so L's clock advanced at
//     most (ttl(1 - drift) - margin) / (1 - drift) = ttl - margin / (1 - drift) < ttl. L
//     received the keepalive at R >= S and expires the node only after ttl of its own clock
//     without a newer one: strictly after G. The ExpireNode entry is proposed after that,
//     and no other node can be granted the node's locks before that entry is applied.
//  3. Another leader L' (a later term) starts the node's clock at its own election, real E.
//     L acknowledged only while holding a leader lease, which Raft guarantees ends before
//     another leader can be elected: A < E. So S <= A < E, and by the argument of 2 with E
//     in place of R, L' expires the node strictly after G too.
//  4. ExpireNode proposals of earlier leaders: an acknowledgement carries the leader's last
//     log index (required_index), and the node uses it only once it has applied that far.
//     Every ExpireNode committed before the acknowledgement is in the leader's log (leader
//     completeness), so the node has applied it — and seen its sessions end — before the
//     acknowledgement extends anything. A lock granted to a session that an earlier expiry
//     closed is therefore never counted as held.
//  The margin absorbs what the argument leaves out: the time between a timer firing and the
//  node telling its clients, and the granularity of timers. It must be positive.
//
// Clock jumps and pauses. A leader whose own time advances by more than
// LeaseOptions::election_timeout between two calls (its process was frozen — GC pause, swap,
// SIGSTOP, VM steal — or its monotonic clock jumped forward) cannot tell whether the other
// nodes were silent during the gap or merely unheard by a leader that was not running: their
// keepalives may be queued unread. LeaderLeases treats every such gap as a pause of the
// leader: each tracked node counts as heard from at the new time, as at BecomeLeader, and
// nothing is reported expired for the gap. That is the safe direction:
//  - Expiring later is always safe: the argument above only needs the leader's expiry to come
//    after the node gave up on its own clock, and moving last_heard forward only delays it.
//  - It extends nothing on the node side: after a gap longer than the election timeout, Raft's
//    leader lease has lapsed (HasLeaderLease counts acknowledgements of messages sent within
//    the election timeout, and the leader sent nothing during the gap; check-quorum steps the
//    leader down if its next Tick comes before it hears from a quorum), so OnKeepalive acknowledges
//    nothing until a quorum has been heard again. A node whose lease ran out meanwhile has already
//    told its clients.
// Without the rule, a leader whose monotonic clock jumped 10 s would expire every other node
// at once, though none of them had been silent. The rule needs the driver to call in at least
// once per election timeout while leader (a node ticks every 50 ms); a driver that calls less
// often only ever expires later.
//
// Threading: not thread-safe; each object belongs to one node's loop thread.
#ifndef LOCKMESH_CORE_LEASE_LEASE_H_
#define LOCKMESH_CORE_LEASE_LEASE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "lease.pb.h"

namespace mesh::core::lease {

/// Microseconds of one node's own monotonic clock (the same unit as core::raft::Time).
using Time = uint64_t;

/// Lease tuning, identical on every node of a cluster.
struct LeaseOptions {
  /// Silence after which the leader expires a node's sessions (--session-ttl).
  Time session_ttl = 10'000'000;
  /// Bound on the rate difference between any two nodes' clocks (0.01 = 1%), as in
  /// RaftOptions::max_drift; must be the same value (the leader lease depends on it).
  double max_drift = 0.01;
  /// Subtracted from every node-side lease (see the header comment); > 0.
  Time margin = 100'000;
  /// How often a node sends a Keepalive. Several must fit in one lease for an occasional
  /// lost message not to cost the locks: session_ttl / 10 is a sensible choice.
  Time keepalive_interval = 1'000'000;
  /// Raft's election timeout (RaftOptions::election_timeout). A leader whose time advances
  /// by more than this between two calls treats the gap as a pause of its own (see the
  /// header comment). 0 (the default, for drivers that call in sparsely) turns the rule
  /// off; net/node/cluster.cc sets it.
  Time election_timeout = 0;
};

/// Leader side. Owned by the node driver; used only while the node is Raft leader.
class LeaderLeases {
 public:
  explicit LeaderLeases(const LeaseOptions& options);

  /// The node has just become leader at `now`: every node in `nodes` (the members of the
  /// configuration and every node that has sessions) is considered heard from at `now`.
  /// Forgets everything from an earlier leadership.
  void BecomeLeader(Time now, const std::vector<std::string>& nodes);
  /// The node is no longer leader: forgets every node; acknowledges nothing until the
  /// next BecomeLeader.
  void StepDown();
  /// True between BecomeLeader and StepDown.
  bool is_leader() const { return leader_; }

  /// Starts tracking `node` as heard from at `now` if it is not tracked yet (a node that
  /// opened sessions, a new member). No effect when not leader.
  void Track(Time now, const std::string& node);
  /// Stops tracking `node` (its sessions are gone and it left the configuration).
  void Forget(const std::string& node);

  /// A Keepalive from `keepalive.node_id()` arrived at `now`. `known` says whether that
  /// node may hold a lease (core::MayHoldLease: a member of this leader's configuration, or
  /// a node with sessions in its lock table). A known node's keepalive is recorded (also
  /// when not acknowledged: a later expiry is always the safe direction), and true is
  /// returned if it must be acknowledged, i.e. if this node is leader and
  /// `has_leader_lease` (Raft's HasLeaderLease(now)). On true, `*ack` is the
  /// acknowledgement to send back; `last_log_index` is this leader's last log index
  /// (KeepaliveAck::required_index).
  /// The keepalive of an unknown node is ignored: not tracked (it was forgotten if it was),
  /// so never expired, and not acknowledged. Such a node has no session to keep alive and
  /// cannot open one (only members propose, core/admission.h R4); without the rule any id a
  /// peer makes up under --security none or tofu would be tracked forever, and each would
  /// cost an ExpireNode entry. A removed member that still has sessions stays known.
  bool OnKeepalive(Time now, const pb::Keepalive& keepalive, bool known, bool has_leader_lease,
                   const std::string& leader_id, uint64_t last_log_index, pb::KeepaliveAck* ack);
  /// The same with `known` true, for drivers that do not tell yet (the simulator,
  /// tests/sim/support/sim_driver.cc). To be removed once they pass `known`.
  bool OnKeepalive(Time now, const pb::Keepalive& keepalive, bool has_leader_lease,
                   const std::string& leader_id, uint64_t last_log_index, pb::KeepaliveAck* ack) {
    return OnKeepalive(now, keepalive, /*known=*/true, has_leader_lease, leader_id, last_log_index,
                       ack);
  }

  /// Number of nodes tracked (for tests: it is bounded by the members and the nodes with
  /// sessions, plus nodes that were one of those since they were last heard from).
  size_t tracked_count() const { return nodes_.size(); }

  /// Nodes silent for at least session_ttl at `now` that were not reported since they were
  /// last heard from, in id order. Each is reported once: the driver proposes one
  /// ExpireNode per node returned. A later Keepalive re-arms the node.
  std::vector<std::string> TakeExpired(Time now);

  /// Earliest time at which TakeExpired may report something new; UINT64_MAX if never.
  Time NextDeadline() const;

  /// Local time of the last Keepalive from `node` (or of BecomeLeader); false if untracked.
  bool LastHeard(const std::string& node, Time* when) const;

  /// How many gaps longer than the election timeout were treated as pauses (for logs and
  /// tests).
  uint64_t pauses() const { return pauses_; }

 private:
  struct Tracked {
    Time last_heard = 0;
    bool reported = false;
  };
  /// Every call that passes a time goes through here first: a gap longer than the election
  /// timeout since the previous call is a pause (see the header comment).
  void Observe(Time now);

  LeaseOptions options_;
  bool leader_ = false;
  std::map<std::string, Tracked> nodes_;
  Time last_call_ = 0;  // the latest time passed in while leader
  uint64_t pauses_ = 0;
};

/// Node side. Owned by the node driver for the life of one incarnation of the node (a
/// restarted node starts with no lease).
class NodeLease {
 public:
  explicit NodeLease(const LeaseOptions& options);

  /// Builds the next Keepalive, sent at local time `now`, and remembers `now` as its send
  /// time. Only the most recent 64 unacknowledged send times are kept.
  pb::Keepalive MakeKeepalive(Time now, const std::string& node_id);

  /// An acknowledgement arrived. It is used (extends the lease) once `applied_index` reaches
  /// ack.required_index — at once if it already has, else at a later OnApplied. Unknown
  /// sequence numbers (another incarnation, forgotten sends) are ignored.
  void OnAck(const pb::KeepaliveAck& ack, uint64_t applied_index);
  /// The node has applied the log through `applied_index`: pending acknowledgements that
  /// required no more than that now extend the lease.
  void OnApplied(uint64_t applied_index);

  /// True if the lease is valid at `now`: the sessions' locks may be used.
  bool Valid(Time now) const { return valid_until_ > now; }
  /// Local time until which the lease is valid (0: never acknowledged).
  Time valid_until() const { return valid_until_; }

  /// True once per lease end: an acknowledgement set one and `now` is past it. The driver
  /// then tells every client holding a lock that it is lost, and stops counting those locks.
  /// (An acknowledgement that arrives so late that its lease has already ended reports
  /// one more lapse; nothing can be held then, so that is harmless.)
  bool Lapsed(Time now);

  /// Local time at which Lapsed() will next report, for the driver's timer; UINT64_MAX if
  /// it has nothing to report.
  Time NextDeadline() const;

  /// The lease end that an acknowledgement of a Keepalive sent at `sent` grants.
  Time LeaseEnd(Time sent) const;

 private:
  struct PendingAck {
    Time sent = 0;
    uint64_t required_index = 0;
  };
  void Extend(Time sent);

  LeaseOptions options_;
  uint64_t next_seq_ = 1;
  std::map<uint64_t, Time> sent_;      // seq -> local send time, unacknowledged
  std::deque<PendingAck> pending_;     // acknowledged, waiting for the log to be applied
  Time valid_until_ = 0;
  Time reported_end_ = 0;  // the lease end that Lapsed() last reported
};

}  // namespace mesh::core::lease

#endif  // LOCKMESH_CORE_LEASE_LEASE_H_

// core/admission: who may speak to this node, and what they may say (docs/design.md §5)
// — the members-only rule of the mesh, as pure decisions (no I/O, no clock).
//
// The peer transport authenticates a link: with --security mutual the certificate's CN is the
// node id the peer claims (net/peer/peer_transport.h), so the link's id is an identity; with tofu
// it is pinned to a fingerprint; with encrypt and none it is only a claim (see "Who may
// speak" in docs/mesh.md). What the link's owner may then do is decided here, from this
// node's Raft configuration — never from what the peer says about itself in gossip (a cluster
// id or "member: true" in pb::MeshGossip is a hint for formation, not an authority).
//
// The rules. `link` is the authenticated id of the link a message arrived on; "member" means
// "in this node's configuration": the latest one appended to its log (Raft::config()), voter
// or learner.
//  R1 A Raft message is considered only if its `from` is `link` (a peer speaks for itself).
//  R2 Raft traffic from a voter is stepped (PROPOSE also passes R4). A learner is a member
//     too, but membership is automatic (a peer that asks is added as a learner): from a
//     learner only APPEND_RESPONSE and HEARTBEAT_RESPONSE in no term above this node's, and
//     proposals (R4), are stepped; its leader traffic only as R3b takes a non-member's (it
//     was promoted and elected since our configuration), and nothing else.
//  R3 Raft traffic from a non-member is refused, except leader traffic (APPEND, SNAPSHOT,
//     HEARTBEAT) in the two cases that liveness needs, where someone this node trusts vouches
//     for the sender:
//     (a) Joining: this node has no configuration at all (fresh). It accepts leader traffic
//         from its join target (AdmissionView::join_targets: the peer core/join_choice.h
//         chose, never one that merely claims to lead), or from the leader that target names
//         in its gossip in a term >= the message's term. A fresh node trusts the cluster it
//         chose to join; nobody else.
//     (b) Lagging: this node's configuration is older than the sender's (the sender was added
//         by entries this node has not received, and then elected). It accepts leader traffic
//         from L when another member M of its configuration, a voter (M is neither this node nor L)
//         names L as leader, in gossip over M's own authenticated link, in a term >= the
//         message's term. Members are trusted (a member can do anything Raft lets it do
//         anyway); a member names L only after its own Raft accepted L's leadership, which
//         under these rules means L is in M's configuration or was vouched for in turn, so
//         L really led that term, and a leader of term T sends nothing in a later term.
//     Worked cases: a new voter elected leader — members that already have its
//     configuration follow it and vouch for it to the ones that lag (b). A node removed and
//     re-added — while removed, its configuration still holds the leader (who is a member),
//     so R2 applies; the re-add arrives as an APPEND from that member. A leader that removed
//     this node — it is a member of every configuration this node has, R2. An uncommitted
//     removal of L that L's election later overwrites — the other members, whose logs elected
//     L, follow it and vouch (b). Votes are never vouched for: a candidate outside this
//     node's configuration gets no vote and no pre-vote; a candidate that is in it (and has
//     the newer configuration) can win, and its log then brings this node up to date.
//     Limit: a node that missed the replacement of every other member of its configuration,
//     with none of those members still running, has nobody to vouch; it stays behind until
//     its data dir is wiped and it joins afresh (docs/mesh.md, "Who may speak").
//  R4 A PROPOSE is taken only from a member (R2), and only if every entry is a COMMAND whose
//     pb::Command is on the allow-list below and concerns the proposer's own node:
//       open_session, acquire, release, cancel, close_session: session.node_id == link;
//       expire_node: never. Expiring a node is the leader's own decision (net/node/cluster.cc
//         proposes it locally, never through PROPOSE); a restarting node ends its earlier
//         runs' sessions with claim_client_ids instead;
//       claim_client_ids: node_id == link only (a node claims its own client ids, and
//         with them ends its earlier runs' sessions, net/node/session_router.cc);
//       any other kind, an unset body or bytes that do not parse: refused. A command kind
//       added later is refused until it is added to the allow-list (AdmitCommand).
//     One bad entry refuses the whole message.
//  R5 A JoinRequest is the one thing a non-member may send: taken when its node_id is `link`
//     (the joiner itself), or from a voter (a follower forwarding a joiner's request to the
//     leader, net/node/cluster_messages.cc OnJoinRequest). Not from a learner: membership is
//     automatic, so a learner may be anyone who asked, and would otherwise fill the
//     configuration with made-up learners; a learner does not forward (the joiner retries,
//     preferring the leader its gossip names).
//  R6 A Keepalive is taken only for the link's own node id (node_id == link); it concerns
//     only the sender's own sessions, so a non-member (a removed node rejoining) may send it.
//     The leader then tracks and acknowledges it only if the node may hold a lease
//     (MayHoldLease: a member, or a node with sessions in the lock table); any other id's
//     keepalive is ignored (core/lease/lease.h), so made-up ids cost the leader nothing.
//  R7 A KeepaliveAck is taken only if it is for this node, this node is not the leader (a
//     leader acknowledges itself without the network), and it comes from the link of the
//     leader this node knows, which is a member (or, as in R3a/R3b, the leader of the
//     cluster a fresh node joins, or one a member vouches for in any term), and names that
//     leader (leader_id == link).
//     An ack extends this node's session lease: from anyone else it would keep the node's
//     clients' locks alive while the real leader expires them.
//
// Every refusal carries a stable `rule` key and the kind of message (`what`; the pair keys the
// rate-limited logging, RefusalLimiter) and words for the log. The driver (net/node/cluster.cc) logs
// them with the peer's id, address and certificate fingerprint.
//
// Threading: the functions are pure; a RefusalLimiter belongs to one thread.
#ifndef LOCKMESH_CORE_ADMISSION_H_
#define LOCKMESH_CORE_ADMISSION_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "core/lock_table.h"
#include "lease.pb.h"
#include "lockmesh.pb.h"
#include "peer.pb.h"
#include "raft.pb.h"

namespace mesh::core {

/// What one connected peer last said in its gossip (pb::MeshGossip): the leader it follows
/// and that leader's term. Recorded by the driver per authenticated link id.
struct GossipClaim {
  std::string leader_id;
  uint64_t term = 0;
};

/// What this node knows when a message arrives. Every pointer is borrowed from the caller and
/// must stay valid for the call; null pointers read as empty.
struct AdmissionView {
  /// This node's id.
  std::string self_id;
  /// The latest configuration appended to this node's log (Raft::config()); null or no
  /// members: this node has none yet (fresh).
  const pb::ClusterConfig* config = nullptr;
  /// True if this node is the Raft leader.
  bool leader = false;
  /// The leader of the current term as this node's Raft knows it ("" if none).
  std::string leader_id;
  /// This node's current Raft term (a learner may not push it up, R2).
  uint64_t term = 0;
  /// Fresh only: the current join target (core::ChooseJoin's JoinChoice::target; empty while
  /// it waits), rule R3a.
  const std::set<std::string>* join_targets = nullptr;
  /// The latest gossip of each connected peer, by authenticated link id (rules R3a, R3b).
  const std::map<std::string, GossipClaim>* gossip = nullptr;
};

/// The outcome of one decision. Plain data.
struct Admission {
  bool accepted = true;
  /// Refused only: a short stable key of the rule ("not-a-member", "from-mismatch", ...).
  std::string rule;
  /// Refused only: the kind of message refused ("HEARTBEAT", "KeepaliveAck", ...).
  std::string what;
  /// Refused only: what was refused and why, in words.
  std::string detail;

  static Admission Accept() { return Admission{}; }
  static Admission Refuse(std::string rule, std::string what, std::string detail) {
    return Admission{false, std::move(rule), std::move(what), PrintableDetail(detail)};
  }
  /// `detail` as it may go into a log line: it quotes what a peer sent (ids, leader names),
  /// so control characters (a newline would forge a log line of its own) become \xNN and
  /// it is cut at kMaxDetail bytes.
  static std::string PrintableDetail(const std::string& detail);
  static constexpr size_t kMaxDetail = 1024;
};

/// True if `id` is in `config` (voter or learner). A null config has no members.
bool IsMemberOf(const pb::ClusterConfig* config, const std::string& id);
/// True if `id` is a voter of `config`. A null config has no voters.
bool IsVoterOf(const pb::ClusterConfig* config, const std::string& id);

/// Rules R1-R4 for a Raft message that arrived on the link authenticated as `link`.
Admission AdmitRaft(const AdmissionView& view, const std::string& link,
                    const pb::RaftMessage& message);

/// Rule R4's check of one proposed command: may the node `proposer` propose it? (The
/// allow-list; AdmitRaft calls it for every entry of a PROPOSE from a member.)
Admission AdmitCommand(const std::string& proposer, const pb::Command& command);

/// Rule R5.
Admission AdmitJoinRequest(const AdmissionView& view, const std::string& link,
                           const pb::JoinRequest& request);

/// Rule R6.
Admission AdmitKeepalive(const std::string& link, const pb::Keepalive& keepalive);

/// Rule R6, second half: whether the leader tracks and acknowledges keepalives of `node`
/// (core::lease::LeaderLeases::OnKeepalive's `known`): true if `node` is a member of
/// `config` (voter or learner) or has a session in `table`.
bool MayHoldLease(const pb::ClusterConfig* config, const LockTable& table, const std::string& node);

/// Rule R7.
Admission AdmitKeepaliveAck(const AdmissionView& view, const std::string& link,
                            const pb::KeepaliveAck& ack);

/// Rate limit for refusal log lines: at most one line per (peer, rule) per `interval`, and
/// the count of the refusals not logged since. Times are the caller's monotonic clock in
/// microseconds (core::raft::Time). Remembers at most max_keys pairs (the stalest are
/// forgotten first), so a flood of made-up ids cannot grow it without bound.
class RefusalLimiter {
 public:
  explicit RefusalLimiter(uint64_t interval = 10'000'000, size_t max_keys = 1024);

  /// A refusal by `rule` of a message from `peer` at `now`. True: log it now, and
  /// `*suppressed` (if non-null) receives how many of the same pair were not logged since
  /// the last line. False: count it, log nothing.
  bool ShouldLog(uint64_t now, const std::string& peer, const std::string& rule,
                 uint64_t* suppressed);

 private:
  struct Entry {
    uint64_t last_logged = 0;
    uint64_t suppressed = 0;
  };
  uint64_t interval_;
  size_t max_keys_;
  std::map<std::pair<std::string, std::string>, Entry> entries_;
};

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_ADMISSION_H_

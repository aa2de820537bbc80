// net/node/cluster: a node's life in a mesh (docs/design.md §2, §4, §5) — everything between the
// peer links and the replicated log.
//
// A Cluster owns the peer transport (net/peer/peer_transport.h) and multicast discovery
// (net/discovery/discovery.h), and drives the node's CommandLog (net/node/command_log.h) as one member of
// a Raft cluster:
//  * Links: every beacon or --join address heard is dialled; so is every member address in
//    the configuration. The secure link decides who is let in; a beacon only suggests.
//  * Gossip: on every link, right when it comes up and then every kGossipIntervalMs, each side
//    says which cluster it belongs to (the configuration's cluster id), whom it follows and
//    whether it is a member (pb::MeshGossip). Raft messages are taken only from peers of our
//    own cluster id (or, while joining, of the cluster being joined): two clusters of one
//    name never exchange a log entry, and each reports the other loudly (warnings()).
//  * Admission (core/admission.h): gossip is no authority. Every Raft message, proposal,
//    join request, keepalive and keepalive acknowledgement is first judged by the
//    members-only rules against our configuration and the link's authenticated id; a refusal
//    is dropped and logged (at most one line per peer and rule per 10 s, with a count) with
//    the peer's id, address and certificate fingerprint.
//  * Formation (rules F1-F6 of core/formation_plan.h; this file only executes them): a node
//    with empty state waits for formation_wait_ms (a discovery burst), then: if a peer
//    belongs to a cluster, it asks to join it as a learner (pb::JoinRequest,
//    repeated until it is in the configuration), through the peer core::ChooseJoin picks
//    from the gossip (a claim to lead oneself counts for nothing; ties wait), and takes
//    leader traffic only from that peer and the leader it names; else, once it is connected
//    to expect - 1 other fresh nodes and its id is the lowest of them all, it bootstraps a
//    new cluster with itself as the only voter and a random cluster id. The others then see
//    that id and join.
//  * Half-open links: a link silent for max(4 gossip intervals, 2 election timeouts) is closed
//    and redialled, a stall of this node's own loop not counted against it (core/link_health.h).
//  * Membership (leader only, one change at a time; core/membership_plan.h): join requests
//    become learners; caught-up, connected learners are promoted until there are `voters`
//    voters; a voter not heard from for dead_after is removed once a caught-up learner can
//    take its place (and that learner is then promoted); a learner not heard from for
//    dead_after is removed.
//  * Leases (core/lease): every node sends a Keepalive to the leader every keepalive
//    interval; the leader acknowledges while it holds a leader lease and proposes ExpireNode
//    for a node silent for session_ttl. The node side's lease gates the node's clients:
//    LeaseValid() says whether grants may be handed out, and on_lease_lapsed runs when the
//    lease ends without a fresher acknowledgement — before any other node can be granted
//    those locks (see core/lease/lease.h for the argument).
//
// Lifetime and threading: the loop's thread only. Start, then Stop(done) and wait for
// `done` before destroying it; libuv handles are freed in their close callbacks. The
// CommandLog must outlive the Cluster.
//
// Defined in two files by job: cluster.cc (start, formation, membership, the tick, leave, stop,
// reload, status) and cluster_messages.cc (links, gossip, admission, join requests, leases).
#ifndef LOCKMESH_NET_NODE_CLUSTER_H_
#define LOCKMESH_NET_NODE_CLUSTER_H_

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/admission.h"
#include "core/lease/lease.h"
#include "core/link_health.h"
#include "core/membership_plan.h"
#include "mesh/client.h"
#include "mesh/status.h"
#include "net/discovery/discovery.h"
#include "net/node/command_log.h"
#include "net/peer/peer_transport.h"

namespace mesh::net {

/// How a node takes part in its mesh. Plain data.
struct ClusterOptions {
  /// Cluster name (--cluster) and this node's unique id.
  std::string cluster = "lockmesh";
  std::string node_id;
  /// The node's data dir (tofu's known_peers lives there).
  std::string data_dir;
  /// --expect: nodes (this one included) a fresh node must see before a cluster is made.
  int expect = 1;
  /// --voters: voting members the leader aims for.
  int voters = 3;
  /// --listen HOST:PORT for peer links ("" = [::]:28017, else 0.0.0.0:28017).
  std::string listen;
  /// --advertise HOST:PORT: the address written in the configuration for this node.
  std::string advertise;
  /// --join HOST:PORT,...
  std::vector<std::string> join;
  /// --security and --tls-* (node_id is filled in), --trusted-fingerprints.
  TlsOptions tls;
  std::string trusted_fingerprints_file;
  /// Discovery: multicast on/off, port, groups, interface, TTL.
  bool multicast = true;
  uint16_t discovery_port = kDefaultDiscoveryPort;
  std::string discovery_group4 = kDefaultDiscoveryGroup4;
  std::string discovery_group6 = kDefaultDiscoveryGroup6;
  std::string discovery_interface;
  int discovery_ttl = 1;
  /// --session-ttl, --dead-after, Raft's election timeout and the clock-drift bound (the
  /// same on every node), microseconds.
  uint64_t session_ttl_us = 10'000'000;
  uint64_t dead_after_us = 30'000'000;
  uint64_t election_timeout_us = 1'000'000;
  double max_drift = 0.01;
  /// Peer connections before their link is up: MeshOptions::handshake_timeout_ms,
  /// max_pending_per_source, max_pending_connections.
  uint64_t handshake_timeout_ms = 10000;
  core::ConnectionLimitsOptions pending_limits;
  /// How long a fresh node listens before it makes or joins a cluster.
  uint64_t formation_wait_ms = 1000;
  /// Log lines (no newline).
  std::function<void(const std::string& line)> log;
};

class Cluster {
 public:
  /// What the node hears. On the loop thread.
  struct Callbacks {
    /// The session lease ended: every lock of this node's clients must be reported lost.
    std::function<void()> on_lease_lapsed;
    /// The lease is valid again (grants held back meanwhile may be delivered).
    std::function<void()> on_lease_valid;
  };

  /// `log` is not owned and must outlive the Cluster; it must have been opened with
  /// CommandLog::Options::standalone = false.
  Cluster(uv_loop_t* loop, ClusterOptions options, CommandLog* log, Callbacks callbacks);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  /// Starts the peer listener, discovery and the timers. Errors say what to fix (a port in
  /// use, a bad certificate, a CN that is not our id, ...); on error nothing runs (Stop
  /// must still be called).
  Status Start();

  /// Graceful leave before Stop: a leader hands leadership to the most up-to-date connected
  /// voter and waits (at most two election timeouts) until another leader is known. `done`
  /// runs once, on the loop thread.
  void Leave(std::function<void()> done);

  /// Closes links, discovery and timers; `done` runs once every handle is closed.
  void Stop(std::function<void()> done);

  /// To be called after every applied batch (the node's BatchDoneHandler).
  void OnApplied();

  /// True if this node's clients may be told of grants now: the lease holds.
  bool LeaseValid() const;
  /// A grant waits for the lease: send a keepalive now rather than at the next interval.
  void RequestLease();
  /// This node's lease (times in us of net/support/lease_clock.h) and its tuning, for the clients' own
  /// leases (core/lease/client_lease.h).
  const core::lease::NodeLease& node_lease() const { return node_lease_; }
  const core::lease::LeaseOptions& lease_options() const { return lease_options_; }

  /// Re-reads the TLS files (SIGHUP); see PeerTransport::Reload.
  Status Reload(size_t* cut_off);

  /// Adds the mesh's part of `lockmesh status` (members, cluster id, lease, warnings).
  void FillStatus(NodeStatus* status) const;

 private:
  struct Peer {
    PeerInfo info;
    std::string cluster_id;  // from its gossip
    std::string leader_id;
    uint64_t term = 0;  // of leader_id, from its gossip
    bool member = false;
    bool gossiped = false;
  };

  void Log(const std::string& line) const;
  static void OnTick(uv_timer_t* t);
  static void OnLapseTimer(uv_timer_t* t);
  static void OnHandleClosed(uv_handle_t* h);
  // One of Stop's asynchronous closes finished; the last runs stop_done_.
  void StopStep();
  void Tick();
  void Gossip(const std::string& to);
  void OnPeerUp(const PeerInfo& info);
  void OnPeerDown(const std::string& node_id, const Status& why);
  void OnMessage(const std::string& from, pb::PeerEnvelope& env);
  void OnGossip(const std::string& from, const pb::MeshGossip& g);
  void OnJoinRequest(const std::string& from, pb::JoinRequest req);
  void OnKeepalive(const std::string& from, const pb::Keepalive& ka);
  void OnKeepaliveAck(const std::string& from, const pb::KeepaliveAck& ack);
  /// What core::Admit* needs to know, borrowed from this object (valid until it changes).
  core::AdmissionView View() const;
  /// Logs (rate limited) a refusal of something `from` sent, with its address and
  /// certificate fingerprint.
  void Refused(const std::string& from, const core::Admission& refusal);
  void SendRaft(pb::RaftMessage&& m);
  /// Asks `to` (a member of `cluster_id`) to add this node as a learner.
  void SendJoinRequest(const std::string& to, const std::string& cluster_id);
  /// Fresh node: join a cluster a peer belongs to, or bootstrap one.
  void Form();
  /// Leader: joins, promotions, replacements (at most one change per call).
  void ManageMembership();
  void ManageMembershipOnce();
  /// Leader: leases, expiries.
  void LeaderLeaseDuties(uint64_t now);
  void SendKeepalive(uint64_t now);
  void ArmLapseTimer();
  void CheckLapse();
  void DialMembers();
  const std::string& ClusterId() const;
  bool InConfig() const;
  bool IsMember(const std::string& id) const;
  std::string AddressOf(const PeerInfo& info, const std::string& claimed) const;
  /// HOST:PORT written in the configuration for this node: --advertise, else a specific
  /// --listen host, else this host's first global address (IPv4 first), with the listener's
  /// port; "" if there is none.
  std::string SelfAddress() const;

  uv_loop_t* loop_;
  ClusterOptions options_;
  CommandLog* log_;
  Callbacks callbacks_;
  std::unique_ptr<PeerTransport> transport_;
  std::unique_ptr<PeerTransport> failed_transport_;  // [::] refused: stopped at Stop()
  std::unique_ptr<Discovery> discovery_;
  core::lease::LeaseOptions lease_options_;
  core::lease::LeaderLeases leader_leases_;
  core::lease::NodeLease node_lease_;
  uv_timer_t tick_timer_;
  uv_timer_t lapse_timer_;
  bool started_ = false;
  bool stopping_ = false;
  int stop_waits_ = 0;
  std::function<void()> stop_done_;
  std::function<void()> leave_done_;
  uint64_t leave_deadline_ms_ = 0;
  uint64_t start_ms_ = 0;
  uint64_t last_gossip_ms_ = 0;
  uint64_t last_keepalive_us_ = 0;
  uint64_t last_join_ms_ = 0;
  uint64_t leader_since_us_ = 0;
  bool was_leader_ = false;
  bool lease_was_valid_ = false;
  bool in_membership_ = false;  // ManageMembership is on the stack (it drives the log)
  std::string joining_cluster_id_;
  std::string advertised_cluster_id_;
  std::map<std::string, Peer> peers_;  // connected, by node id
  core::LinkWatch links_;  // when each connected peer was last heard (core/link_health.h)
  std::map<std::string, core::JoinAsk> pending_joins_;  // leader: by node id
  core::CatchUpTracker catch_up_;                       // leader: who keeps up
  std::map<std::string, uint64_t> last_heard_us_;       // leader: member -> last message
  std::set<std::string> warned_;                        // second-cluster reports made
  std::set<std::string> join_targets_;    // fresh: the current join target (core/join_choice.h)
  std::string join_reason_;               // fresh: the last JoinChoice::reason logged
  std::set<std::string> join_addresses_;  // resolved --join addresses: dialled for good
  std::map<std::string, core::GossipClaim> gossip_claims_;  // connected peers' gossip
  core::RefusalLimiter refusals_;
  std::vector<std::string> warnings_;
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_NODE_CLUSTER_H_

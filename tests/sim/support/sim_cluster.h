// tests/sim/support/sim_cluster: a deterministic simulation of a lockmesh cluster over core/
// only (docs/simulation.md).
//
// One virtual real-time clock orders every event; each node sees it through its own clock,
// local = offset + rate * real, with rate drawn in [1 - drift, 1 + drift] per node. Nodes
// run the real core: raft::Raft on a core::LogStore on a core::FaultFileSystem (a crash
// drops every unsynced write, optionally tearing the last one), a core::LockTable applied
// from the committed log, and the leases of core/lease. Around them, a model of the node
// driver of net/: it executes each Batch as core/raft/raft.h says and net/node/command_log does
// (send and apply when taken; persist in order, one sync at a time on a model of libuv's
// thread pool that completes later in virtual time; Advance after it), opens client sessions, proposes client commands and retries them until they are
// applied (exactly-once by (session, seq)), cancels requests whose deadline passed, sends
// keepalives, proposes ExpireNode when the leader says a node went silent, compacts the log,
// and tells clients their locks are lost when its lease lapses.
// Messages travel through a network with per-link delay, drop, duplication and reordering,
// and partitions (symmetric or one-way). A Checker (sim_checker.h) sees every step.
// Real deployments' faults: frozen nodes whose clients keep running (with the client library's own
// lease, sim_client_lease.cc), monotonic jumps and wall-clock steps, and a rogue process
// (sim_rogue.cc) whose forgeries arrive on its own authenticated link; every node judges
// what it receives with core/admission, and claims its client ids from the log.
//
// Everything random comes from SimOptions::seed: one seed, one schedule.
#ifndef LOCKMESH_TESTS_SIM_SUPPORT_SIM_CLUSTER_H_
#define LOCKMESH_TESTS_SIM_SUPPORT_SIM_CLUSTER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/admission.h"
#include "core/join_choice.h"
#include "core/lease/client_lease.h"
#include "core/lease/lease.h"
#include "core/lock_table.h"
#include "core/raft/raft.h"
#include "core/storage/fault_file_system.h"
#include "core/storage/log_store.h"
#include "sim/support/sim_checker.h"
#include "sim/support/sim_random.h"

namespace mesh::sim {

/// Virtual real time, microseconds since the start of the simulation.
using Time = uint64_t;

/// True if core/admission accepts a PROPOSE of a node's own ClaimClientIds (the claim path
/// needs it: a follower's claim is forwarded to the leader).
bool AdmissionTakesClaims();

struct SimOptions {
  uint64_t seed = 1;
  /// Voters of the initial configuration (3 or 5).
  int voters = 3;
  /// Nodes that start outside the configuration (joined later as learners).
  int spares = 1;
  /// Each node's clock runs at a rate within [1 - clock_drift, 1 + clock_drift].
  double clock_drift = 0.004;
  /// Clocks are drawn at the extremes of the drift bound (scenarios with worst drift).
  bool extreme_drift = false;
  Time election_timeout = 1'000'000;
  Time heartbeat_interval = 100'000;
  /// RaftOptions::max_append_bytes and max_inflight (1 byte: one entry per APPEND).
  uint64_t max_append_bytes = 1 << 20;
  size_t max_inflight = 256;
  /// RaftOptions::max_snapshot_chunk_bytes and max_snapshot_chunks_inflight (small chunks:
  /// every snapshot transfer is many messages, some lost, reordered or from a deposed leader).
  uint64_t max_snapshot_chunk_bytes = 1 << 20;
  size_t max_snapshot_chunks_inflight = 4;
  Time session_ttl = 3'000'000;
  Time keepalive_interval = 300'000;
  Time lease_margin = 20'000;
  /// Model the client library's own lease (core/lease/client_lease.h): a client counts a
  /// lock as held only while its ClientLease is valid, renewed by a LeaseRequest to its
  /// node every client_lease_interval while it holds or waits for a lock. Off: the client's
  /// view is its node's lease (what clients did before the client lease).
  bool client_lease = true;
  /// Client ids from the log: each run of a node claims an epoch with ClaimClientIds
  /// (expire_older), as net/node/node.cc. Off: ids (incarnation << 32) | k and the node closes
  /// its earlier incarnations' sessions itself (the simulator before the id claims). On by default
  /// once core/admission lets a node forward its own ClaimClientIds (AdmissionTakesClaims).
  bool claim_client_ids = AdmissionTakesClaims();
  Time client_lease_interval = 300'000;
  /// One-way delay of the local socket between a client and its node.
  Time local_min_delay = 20;
  Time local_max_delay = 200;
  /// Clients per node, each with its own session, on `resources` simple resources.
  int clients_per_node = 2;
  int resources = 3;
  /// An idle client issues its next request after a time uniform in [10 ms, this].
  Time client_think_max = 400'000;
  /// One-way delay of a message, uniform in [min_delay, max_delay] (reordering follows).
  Time min_delay = 300;
  Time max_delay = 6'000;
  double drop = 0.01;
  double duplicate = 0.01;
  /// A client's proposal is proposed again after this long without being applied.
  Time retry_interval = 400'000;
  /// Persistence (the model of libuv's thread pool running net/node/command_log's syncs): a sync
  /// takes a time uniform in [sync_min, sync_max], or with probability slow_sync one uniform
  /// in [sync_max, slow_sync_max] (a slow disk: several batches pile up behind it). Each run
  /// of a node persists in its loop instead (a sync completes at once, as for a node alone
  /// in its configuration) with probability sync_in_loop.
  Time sync_min = 100;
  Time sync_max = 3'000;
  double slow_sync = 0.05;
  Time slow_sync_max = 40'000;
  double sync_in_loop = 0.2;
  /// A node compacts its log once this many entries are applied past its snapshot.
  uint64_t compact_every = 64;
  /// Bytes of one WAL segment (small: the file system lives in memory).
  uint64_t segment_bytes = 256 << 10;
  /// Events kept for the trace printed with a violation.
  size_t trace_capacity = 400;
  /// Print every event to stderr as it happens (replay a seed with --verbose).
  bool verbose = false;
};

/// Counters of one run (also printed by the soak runner).
struct SimStats {
  uint64_t events = 0;
  uint64_t messages = 0;
  uint64_t client_ops = 0;  // Acquire (lock, try, timed) and Release requests issued
  uint64_t grants = 0;      // locks handed to clients
  uint64_t lost = 0;        // locks declared lost by a node (lease lapse or expiry)
  uint64_t timeouts = 0;    // lock requests cancelled at their deadline
  uint64_t faults = 0;      // partitions, heals, crashes, restarts, loss bursts, membership
  uint64_t crashes = 0;
  uint64_t snapshots_installed = 0;
  uint64_t expirations = 0;  // ExpireNode proposed
  uint64_t membership_changes = 0;
  uint64_t freezes = 0;           // nodes frozen (SIGSTOP) for a while
  uint64_t clock_steps = 0;       // monotonic jumps and wall-clock steps
  uint64_t rogue_messages = 0;    // messages sent by the rogue process
  uint64_t refused = 0;           // messages refused by core/admission
  uint64_t sessions_refused = 0;  // OpenSession of a client refused by the lock table
  // The ordering of core/raft/raft.h at work:
  uint64_t syncs = 0;             // syncs on the pool model (completing later)
  uint64_t behind_sync = 0;       // batches taken (sent, applied) while a sync was in flight
  uint64_t applied_unsynced = 0;  // entries applied before this node's copy was written
  uint64_t mid_sync_crashes = 0;  // crashes while a sync was in flight
  // Full disks (FillDisk; core::DiskFullPolicy):
  uint64_t disk_fills = 0;          // FillDisk faults
  uint64_t disk_full_periods = 0;   // a node became full (a persist failed for want of space)
  uint64_t disk_held_batches = 0;   // batches held back for a retry
  uint64_t disk_refused = 0;        // lock requests refused by DiskFullPolicy::Admit
};

class Cluster {
 public:
  explicit Cluster(const SimOptions& options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  /// Bootstraps the voters (all with the same configuration), starts the spares empty.
  void Start();
  /// Runs events until virtual time now() + d or a violation.
  void RunFor(Time d);
  /// Runs until `done()` holds (checked after every event) or `limit` passes; true if done.
  bool RunUntil(const std::function<bool()>& done, Time limit);

  Time now() const { return now_; }
  int size() const { return static_cast<int>(nodes_.size()); }

  // ---- faults (each counts in stats().faults)
  /// Cuts every link between different groups (both directions). Nodes not listed form
  /// one more group.
  void Partition(const std::vector<std::vector<int>>& groups);
  /// Cuts (or restores) the one-way link from -> to.
  void SetLink(int from, int to, bool up);
  /// Restores every link and the normal loss rate.
  void Heal();
  /// Drop probability on every link until Heal (a loss burst).
  void SetLoss(double drop);
  /// Power cut on node i: unsynced writes lost (torn per `mode`), clients gone.
  void Crash(int i, core::FaultFileSystem::TearMode mode);
  /// Arms a power cut on node i at the worst moment: when it starts the sync of batches
  /// that write entries or a hard state, whose messages it has sent and whose committed
  /// entries it has applied (a crash mid-sync). Disarmed by Restart(i) if it has not fired.
  void CrashAfterNextWrite(int i, core::FaultFileSystem::TearMode mode);
  /// Restarts a crashed node from its storage. A node whose disk is full when it starts
  /// (its store cannot open for want of space) stays down and starts at FreeDisk.
  void Restart(int i);
  /// Node i's disk fills: from now on any write that grows its files by more than `slack`
  /// bytes in all fails for want of space (writes into already allocated space go on), as
  /// core/storage/fault_file_system.h SetSpaceLimit. The node runs core::raft::PersistQueue
  /// as net/node/command_log does (sim_disk_full.cc): it holds the batches it cannot persist,
  /// acks nothing they carry, retries with backoff, and refuses new locks meanwhile.
  void FillDisk(int i, uint64_t slack);
  /// Node i's disk has room again (its next retry persists what it holds); a node that could
  /// not start for want of space starts now.
  void FreeDisk(int i);
  /// True while node i's PersistQueue says its disk is full (a persist failed for want of space
  /// and no retry has succeeded since).
  bool DiskFull(int i) const;
  /// Node i's process stops for `d` (SIGSTOP, a GC pause, VM steal): it handles no timer
  /// and no message (deliveries queue and are handled after the freeze, timers first as in
  /// libuv) and sends nothing, but its monotonic clock runs on. Its clients are separate
  /// processes: they keep running on the host's clock (they release when their hold ends,
  /// and their own client lease lapses). A crash ends the freeze.
  void Freeze(int i, Time d);
  /// Node i's monotonic clock jumps forward by `d` (real time does not): the host's clock
  /// seen by the node and its clients.
  void JumpClock(int i, Time d);
  /// Node i's wall clock is stepped by `delta` microseconds (back if negative).
  void StepWall(int i, int64_t delta);
  /// The rogue process (a non-member with its own authenticated link, "rogue") sends
  /// `count` forged peer and Raft messages to up nodes: PROPOSE of ExpireNode and of
  /// commands for other nodes' sessions, HEARTBEAT/APPEND/VOTE/PRE_VOTE with high terms and
  /// forged entries, KeepaliveAck and Keepalive for members. With `as_member` each message
  /// claims a member's id (the leader's, mostly) on the rogue's own link; otherwise its own.
  /// Once the rogue has joined (RogueJoin) it is a learner: its own-id messages are then a
  /// member's (PROPOSE of ExpireNode and of other nodes' session commands, leader traffic,
  /// votes), and it also forges APPEND_RESPONSE/HEARTBEAT_RESPONSE for voters to the leader,
  /// and a share of its messages are RogueVouch's. To nodes without a configuration (spares)
  /// it claims in its gossip, from its first burst on, to lead the cluster in a term above
  /// every node's (rogue_lead_term_), and its HEARTBEATs and APPENDs to them (a forged entry
  /// at index 1, committed at once) come in that term or above: it wants to be their join
  /// target (core/join_choice.h).
  void RogueBurst(int count, bool as_member);
  /// The rogue vouches for its accomplice: a second rogue process with its own link
  /// ("rogue-b", a certificate of its own), never a member. The rogue's gossip names the
  /// accomplice as the leader of a high term, and the accomplice sends `count` HEARTBEATs
  /// and APPENDs (a forged entry right after the target's log, committed at once) in that
  /// term to up nodes. Only a voter's gossip lets a non-member lead (R3b); the rogue is at
  /// most a learner, so every message is refused (with learners vouching, the rogue that
  /// joined makes them leader traffic of a vouched-for leader).
  void RogueVouch(int count);
  /// The rogue asks the leader to join, as a spare does (a JoinRequest on its own link,
  /// judged by core/admission R5), and the leader adds it as a learner like any spare
  /// (membership is automatic). It stays a learner: the schedules promote and remove
  /// simulated nodes only, and it never answers the leader, so it never catches up. Error:
  /// no leader, the JoinRequest refused, or the change refused by the leader's Raft.
  Status RogueJoin();
  /// True if the rogue is in the leader's (or, without one, any up node's) configuration.
  bool RogueIsMember() const;
  /// The peer node i asks to join (its join target, core::ChooseJoin of the gossip it sees:
  /// a simulated node's id, or the rogue's), "" while it waits or has none; frozen once
  /// node i has a configuration.
  std::string JoinTarget(int i) const;
  /// At the current leader: add spare i as learner / promote learner i / remove member i.
  /// A removed node stops and comes back later as a fresh spare with a new id.
  Status AddLearner(int i);
  Status Promote(int i);
  Status Remove(int i);
  /// At the current leader: hand leadership to node i.
  Status TransferLeadership(int i);
  /// Clients on node i stop issuing new operations (they finish what they started).
  void PauseClients(int i, bool paused);
  /// All of node i's clients' sessions keep a lock: the next operation each client issues
  /// is an EX lock on `resource`, held until `hold` passes (used by scenarios).
  void ForceHold(int i, const std::string& resource, Time hold);

  // ---- observation
  /// Index of the node that is leader in the highest term, -1 if none.
  int Leader() const;
  bool up(int i) const;
  const std::string& id(int i) const;
  /// The node's Raft (nullptr while down).
  const core::raft::Raft* raft(int i) const;
  /// The node's lock table (nullptr while down).
  const core::LockTable* table(int i) const;
  /// True if node i is a voter / learner / member in the leader's (or its own) config.
  bool IsVoter(int i) const;
  bool IsMember(int i) const;
  /// Number of nodes currently voters.
  int VoterCount() const;
  /// Node i's local (monotonic) clock now.
  Time LocalNow(int i) const;
  /// Node i's wall clock now (microseconds).
  int64_t WallNow(int i) const;
  /// True while node i is frozen.
  bool frozen(int i) const;
  /// Node i's lease validity (local time) and whether its clients hold locks now.
  Time LeaseUntil(int i) const;
  int HeldBy(int i) const;
  /// True if every running member node that follows a running leader serves clients: its
  /// client ids are ready and one of its clients has an open session (a node whose new
  /// sessions are all refused does not).
  /// Names the first node that does not in `*why`.
  bool AllMembersServe(std::string* why) const;
  /// Virtual time at which node i last declared its clients' locks lost (0: never).
  Time LastLostAt(int i) const;
  /// Virtual time of the first grant of `resource` to a client of a node other than i
  /// after `after` (0: none yet).
  Time FirstGrantElsewhere(int i, const std::string& resource, Time after) const;
  /// Number of locks handed to clients of node i after virtual time `after`.
  int GrantsTo(int i, Time after) const;

  const Checker& checker() const { return checker_; }
  Checker& mutable_checker() { return checker_; }
  const SimStats& stats() const { return stats_; }
  bool failed() const { return checker_.failed(); }
  /// The violation, the seed, the replay command and the last trace events.
  std::string Report() const;
  /// Appends a line to the trace (and stderr when verbose).
  void Trace(int node, const std::string& text);

  SimRandom& fault_random() { return fault_rng_; }

 private:
  struct Node;
  struct Client;
  struct Event {
    Time at;
    uint64_t seq;
    std::function<void()> fn;
  };
  struct Envelope;

  void Schedule(Time at, std::function<void()> fn);
  bool Step();  // one event; false if none
  void NewIdentity(Node& n);
  void OpenNode(Node& n, bool bootstrap);
  Time Local(const Node& n) const;
  Time RealAt(const Node& n, Time local) const;
  void Wake(Node& n);
  void ScheduleWake(Node& n);
  Time NodeDeadline(const Node& n) const;    // local time of the node's next timer
  Time FrozenDeadline(const Node& n) const;  // ... of its clients' while it is frozen
  void OnWake(Node& n);
  void OnFrozenWake(Node& n);
  void Thaw(Node& n);
  /// Sends `env` from the rogue process on its link `link` (kRogueId or kAccompliceId).
  void SendRogue(int to, std::shared_ptr<Envelope> env, const char* link);
  /// One message of the accomplice to node `to` (RogueVouch), with the rogue's gossip
  /// naming the accomplice as leader of its term; the forged entry carries `cmd`.
  void SendAccomplice(int to, const pb::Command& cmd);
  /// Executes Raft's batches (sends, applies) and starts persisting them, until Raft has
  /// nothing more for now (sim_driver.cc).
  void Pump(Node& n);
  /// Sends, applies and queues one batch for persisting; false if the node went down.
  bool ExecuteBatch(Node& n, core::raft::Batch* batch);
  /// Persists what is queued: in the loop, or by a sync that completes later (CompleteSync).
  void StartPersist(Node& n);
  /// The sync in flight is done: its batches are persisted (written and synced), Advance.
  void CompleteSync(Node& n);
  /// The completion event of sync `id` of node i's run (stale events do nothing).
  void OnSyncDone(int i, uint64_t incarnation, const std::string& node_id, uint64_t id);
  /// Writes (and syncs where they must) `batches` in order, up to the first error (in
  /// `*error`); returns how many were persisted.
  size_t PersistInOrder(Node& n, const std::vector<core::raft::Batch>& batches, Status* error);
  /// Hands a persist's result to n.persist (sim_disk_full.cc; core::raft::PersistQueue::
  /// Settle: Raft advanced through `persisted` of `batches`, the rest held for the retry if
  /// `error` is for want of space) and counts and traces what it decided; any other error
  /// fails the run (net/ would stop the node).
  void SettlePersist(Node& n, std::vector<core::raft::Batch> batches, size_t persisted,
                     const Status& error);
  Time SyncDelay();
  void ApplyEntry(Node& n, const pb::Entry& e);
  void AfterApply(Node& n);
  void ObserveRole(Node& n);
  void Send(Node& from, int to, std::shared_ptr<Envelope> env);
  void Deliver(int to, const std::shared_ptr<Envelope>& env);
  /// core/admission's decision on `env` at node n, as net/node/cluster.cc makes it.
  bool Admit(Node& n, const Envelope& env);
  /// The latest gossip of every peer node n is connected to, by link id (net/ keeps each
  /// connected peer's latest pb::MeshGossip; the simulator has it now, without delay):
  /// every other running, unfrozen node whose link to n is up, and the rogue's processes
  /// (see rogue_gossip_ and rogue_lead_term_). For admission (R3) and ChooseJoinTarget.
  std::map<std::string, core::JoinGossip> GossipSeenBy(const Node& n) const;
  /// A node without configuration chooses whom to join from the gossip it sees, as the
  /// production driver does at every formation tick: n.join_targets = {ChooseJoin's target}.
  void ChooseJoinTarget(Node& n);
  /// The rogue shows up (its first burst or vouch): from now on it tells nodes without a
  /// configuration that it leads a term above every node's.
  void RogueClaimsToLead();
  void SendKeepalive(Node& n);
  void HandleKeepalive(Node& leader, const pb::Keepalive& k, int from);
  void HandleAck(Node& n, const pb::KeepaliveAck& ack);
  void ClientAct(Node& n, Client& c);
  void ProposeFor(Node& n, Client& c, pb::Command cmd);
  void Propose(Node& n, const pb::Command& cmd);
  void GrantTo(Node& n, Client& c, uint64_t lock_id, uint64_t token);
  void Deliver(Node& n, Client& c);
  // The client lease (sim_client_lease.cc).
  core::lease::ClientLeaseOptions ClientLeaseOpts() const;
  void NewClientLease(Node& n, Client& c);
  void ClientLeaseDuties(Node& n, Client& c);
  uint64_t SendLeaseRequest(Node& n, Client& c);
  void AnswerLeaseRequest(Node& n, int k, uint64_t conn, uint64_t seq);
  void OnLeaseReply(Node& n, Client& c, uint64_t seq, Time remaining);
  Time ClientDeadline(const Node& n, const Client& c) const;
  void EndHold(Node& n, Client& c, const char* why);
  void ResetClient(Node& n, Client& c, bool close_session, const char* why);
  void DeclareLost(Node& n, const char* why);
  void LearnEpoch(Node& n);
  void CleanupStaleSessions(Node& n);
  void ResyncClients(Node& n);
  Client* FindClient(Node& n, const pb::SessionKey& s);
  int IndexOf(const std::string& id) const;
  Status AtLeader(const core::raft::MembershipChange& change);
  std::string ClientName(const Node& n, const Client& c) const;

  SimOptions options_;
  SimRandom seed_rng_;
  SimRandom net_rng_;
  SimRandom fault_rng_;
  SimRandom client_rng_;
  SimRandom disk_rng_;  // sync delays, persistence modes, what a crash mid-sync wrote
  Time now_ = 0;
  uint64_t event_seq_ = 0;
  std::vector<Event> queue_;  // a binary heap on (at, seq)
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::vector<bool>> link_up_;
  double drop_;
  int next_id_ = 1;
  Checker checker_;
  SimStats stats_;
  std::deque<std::string> trace_;
  // The rogue's latest gossip (pb::MeshGossip over its own link, to every node): the leader
  // it claims to follow ("" until RogueVouch), and that leader's term.
  core::GossipClaim rogue_gossip_;
  // What the rogue (and, once it vouches for it, its accomplice) gossips to a node without
  // a configuration: the real cluster's id, and that it leads itself in this term (0 until
  // the rogue's first burst: it gossips nothing before). The modelled limit (C3 of
  // core/join_choice.h: a fresh node whose only peer of the cluster in view is the rogue
  // trusts it on first sight): this gossip reaches a node only while the gossip of at
  // least one real node of the cluster does (GossipSeenBy).
  uint64_t rogue_lead_term_ = 0;
  // Grants handed to clients: (virtual time, node index, resource), for scenarios.
  std::vector<std::tuple<Time, int, std::string>> grant_log_;
};

}  // namespace mesh::sim

#endif  // LOCKMESH_TESTS_SIM_SUPPORT_SIM_CLUSTER_H_

// tests/sim/support/sim_cluster_internal: the per-node and per-client state of the
// simulated cluster, shared by sim_cluster.cc (events, network, faults, observation) and
// sim_driver.cc (the model of the node driver). Not for tests.
#ifndef LOCKMESH_TESTS_SIM_SUPPORT_SIM_CLUSTER_INTERNAL_H_
#define LOCKMESH_TESTS_SIM_SUPPORT_SIM_CLUSTER_INTERNAL_H_

#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/raft/persist_queue.h"
#include "sim/support/sim_cluster.h"

namespace mesh::sim {

inline constexpr const char* kDataDir = "/data";
inline constexpr Time kNever = UINT64_MAX;
/// Envelope::from of messages sent by the rogue process (not a node index).
inline constexpr int kRogue = -2;
/// The link ids of the rogue process (it may join as a learner) and of its accomplice, a
/// second rogue process with its own link that never joins (sim_rogue.cc).
inline constexpr const char* kRogueId = "rogue";
inline constexpr const char* kAccompliceId = "rogue-b";
/// The cluster id of the simulated cluster's configuration (pb::ClusterConfig::cluster_id),
/// which its nodes gossip and the rogue repeats to nodes without a configuration.
inline constexpr const char* kClusterId = "sim-cluster";

/// "12.345" (milliseconds with microseconds) for traces.
inline std::string Ms(Time t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llu.%03llu", static_cast<unsigned long long>(t / 1000),
                static_cast<unsigned long long>(t % 1000));
  return buf;
}


struct Cluster::Client {
  enum class State { kNoSession, kOpening, kIdle, kRequesting, kQueued, kHolding, kCancelling,
                     kReleasing };
  int k = 0;
  State state = State::kNoSession;
  uint64_t client_id = 0;
  uint64_t seq = 0;
  std::string inflight;     // encoded command proposed until applied ("" = none)
  Time retry_at = kNever;   // local
  Time next_action = 0;     // local: idle -> next request; holding -> release
  Time deadline = 0;        // local: deadline of a timed request (0 = none)
  bool deadline_passed = false;
  std::string resource;
  pb::LockMode mode = pb::EX;
  uint64_t lock_id = 0;
  uint64_t token = 0;
  bool delivered = false;   // the client was told it holds the lock (checker hold open)
  std::string forced_resource;
  Time forced_hold = 0;
  // The client library's own lease (core/lease/client_lease.h), on the host's clock. The
  // client counts a delivered lock as held only while it is valid.
  core::lease::ClientLease lease{core::lease::ClientLeaseOptions{}};
  uint64_t conn = 0;        // connection number: replies to an earlier one are ignored
  Time lease_renew_at = 0;  // local: next LeaseRequest (while it may hold or get a lock)
  uint64_t await_seq = 0;   // a grant waits for the reply to this LeaseRequest (0: none)
  /// Holds or waits for a lock: renews its client lease.
  bool may_hold() const {
    return state == State::kRequesting || state == State::kQueued || state == State::kCancelling ||
           state == State::kHolding;
  }
};

struct Cluster::Node {
  int index = 0;
  std::string id;
  bool up = false;
  bool decommissioned = false;
  double rate = 1.0;
  Time offset = 0;
  std::unique_ptr<core::FaultFileSystem> fs;
  std::unique_ptr<core::LogStore> store;
  std::unique_ptr<SimRandom> raft_rng;
  std::unique_ptr<core::raft::Raft> raft;
  std::unique_ptr<core::LockTable> table;
  std::unique_ptr<core::lease::NodeLease> lease;
  std::unique_ptr<core::lease::LeaderLeases> leader_leases;
  uint64_t incarnation = 0;
  // Client ids come from the log (ClaimClientIds, as net/node/node.cc): each run claims an epoch
  // E with expire_older (ending every session of its earlier runs) and hands out
  // (E << 32) | k. Until its claim is applied (epoch 0) the node opens no session.
  // Without SimOptions::claim_client_ids: the epoch is the incarnation (ids ready at once)
  // and the node closes its earlier incarnations' sessions itself (stale_scan).
  uint64_t epoch = 0;
  bool ids_ready = false;
  bool stale_scan = false;
  uint64_t claim_nonce = 0;
  std::string claim;             // the encoded claim, proposed until applied ("": none)
  Time claim_retry_at = kNever;  // local
  uint64_t next_client = 0;      // k of the last id handed out in `epoch`
  std::vector<Client> clients;
  bool paused = false;
  Time keepalive_at = 0;       // local
  Time wake_at = kNever;       // virtual real time of the earliest pending wake event
  std::map<uint64_t, std::string> closing;  // client id -> encoded CloseSession
  Time closing_retry_at = kNever;
  std::set<std::string> session_nodes;      // nodes with open sessions (applied log)
  Time lost_at = 0;                         // virtual time of the last DeclareLost
  // Persistence, as net/node/command_log executes it (core decides, the driver executes; see
  // core/raft/raft.h and core/raft/persist_queue.h): a batch's messages are sent and its
  // committed entries applied when it is taken; it is then queued in `persist` and persisted
  // in order, one sync at a time. In the loop (sync_in_loop, as a node alone in its
  // configuration does) a sync completes at once; on the thread pool (the mesh default) it
  // completes at a later virtual time, while the node goes on taking batches, which wait in
  // `persist` for the next sync. The queue advances Raft after each completed sync. A crash
  // while a sync is in flight loses what it had not synced.
  // A full disk (FillDisk): `persist` holds what it could not persist, says when to retry and
  // what to refuse meanwhile, for this run of the node (a restart starts afresh, as a process
  // does).
  bool sync_in_loop = false;
  core::raft::PersistQueue persist;        // taken, not yet handed to a sync; held ones
  std::vector<core::raft::Batch> syncing;  // the sync in flight
  uint64_t sync_id = 0;                    // the sync in flight (0: none)
  uint64_t syncs_started = 0;
  // Armed by CrashAfterNextWrite: crash at the next sync of a batch with entries or a hard
  // state, once its messages are sent and its committed entries applied, before it is done.
  bool crash_armed = false;
  // `start_when_space`: a restart found the disk too full to open the store; FreeDisk starts
  // the node.
  bool disk_limited = false;
  bool start_when_space = false;
  core::FaultFileSystem::TearMode crash_mode = core::FaultFileSystem::TearMode::kDropUnsynced;
  // Frozen (SIGSTOP) until this virtual time (0: running). A frozen node handles no timer
  // and no message: deliveries queue in `inbox` and are handled after the thaw. Its clients
  // are separate processes and keep running (OnFrozenWake).
  Time frozen_until = 0;
  std::vector<std::shared_ptr<Envelope>> inbox;
  // The node's wall clock: wall = wall_offset + rate * real (stepped by StepWall); the
  // monotonic clock is `offset + rate * real` (stepped forward by JumpClock).
  int64_t wall_offset = 0;
  // Sequence number of the last Keepalive this node sent (a sniffing rogue forges acks).
  uint64_t last_keepalive_seq = 0;
  // While the node has no configuration: the peer it asks to join, as core::ChooseJoin
  // chose it from the gossip in view (ChooseJoinTarget, at every wake), and so the only
  // one it takes leader traffic from (with the leader that peer names):
  // AdmissionView::join_targets, `{target}` or empty while it waits. With the cluster and
  // the reason of that choice (previous_cluster_id of the next; the reason is traced when
  // it changes). Driver state: lost at a restart.
  std::set<std::string> join_targets;
  std::string join_cluster_id;
  std::string join_reason;
  // LeaseRequests of its clients that arrived while it was frozen: (client, conn, seq).
  std::vector<std::tuple<int, uint64_t, uint64_t>> lease_inbox;
  uint64_t next_conn = 0;
  bool frozen() const { return frozen_until != 0; }
};

struct Cluster::Envelope {
  enum class Kind { kRaft, kKeepalive, kAck } kind = Kind::kRaft;
  int from = 0;  // sender's node index; kRogue for the rogue process
  // The id the sender's link authenticated (its certificate): a node's own id, the rogue's
  // id for everything the rogue sends, whatever `from` field the message claims.
  std::string link;
  pb::RaftMessage raft;
  pb::Keepalive keepalive;
  pb::KeepaliveAck ack;
};

}  // namespace mesh::sim

#endif  // LOCKMESH_TESTS_SIM_SUPPORT_SIM_CLUSTER_INTERNAL_H_

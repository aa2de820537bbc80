// core/raft/raft: the consensus core of docs/design.md §2 — Raft (Ongaro's thesis) as an I/O-free
// state machine in the style of etcd's raft.
//
// Inputs are events stamped with the node's own monotonic time (Tick, Step, Propose, ...);
// every output of the state machine is gathered in one Batch, which the driver takes with
// TakeBatch(). Core decides what may happen when (as etcd's raft does with Ready.MustSync
// and its messages-after-append); the driver only executes, in any order among these:
//   - send `messages` at once (delivery is best effort: raft retries whatever matters).
//     Nothing in them waits for any persistence still to be done: messages whose content
//     claims durable state are held inside raft until that state is durable (below), then
//     come out in a later batch;
//   - apply `snapshot` (restore the state machine from it), then `committed` in order, at
//     once (COMMAND entries to the lock table; CONFIG and NOOP entries consume an index
//     only), even before this node's own copy of them is durable (see Batch::committed);
//   - persist: `snapshot` (install), then `entries` (append; an entry whose index is <= the
//     last persisted index replaces that suffix), then `hard_state`, then `compacted` (save
//     the local snapshot); fsync if `must_sync` (otherwise what it wrote may ride along with
//     a later sync). Batches are persisted in the order they were taken, in the driver's
//     thread or another one, one at a time or several together;
//   - once a batch is persisted (synced if it must be), and every batch taken before it is
//     too, call Advance(batch): the input event "persisted through batch.seq". Only from it
//     does a leader count its own copy of an entry toward commit, and only from it are the
//     held messages released. Advance may skip batches (Advance of a later one covers the
//     earlier ones) and may come any time later: a pipelining driver may take and execute
//     further batches meanwhile.
// The held messages (Batch::messages says which): an APPEND_RESPONSE (it acknowledges
// entries or a snapshot as durable, and the leader counts them toward commit) goes out only
// once every batch taken up to the one it was produced in that must_sync is persisted; and
// any message produced while a change of term or vote is not yet persisted (a vote granted,
// a campaign's VOTE requests, anything sent in the new term) only once that change is.
// Everything else may leave before the sync — a leader's APPENDs and HEARTBEATs to its
// followers (its own fsync then overlaps theirs; the thesis, §10.2.1), snapshot chunks,
// pre-votes, heartbeat responses, forwarded proposals — because none of it claims anything
// about this node's disk: a leader counts its own copy only from Advance, so a crash before
// its sync loses only entries nobody was told are committed.
// Batch::next_deadline says when to call Tick() next. core/raft/raft_storage.h executes the
// persist step on a core::LogStore.
//
// Features: leader election with pre-vote and check-quorum, log replication with batching
// (all proposals made between two TakeBatch calls go out in one APPEND per follower, up to
// max_append_bytes) and pipelining (up to max_inflight unacknowledged APPENDs per follower),
// fast conflict backtracking (reject_hint), the commit rule of §3.6 (only entries of the
// current term are committed by counting; a new leader appends a NOOP), proposals forwarded
// from any node to the leader, learners, one-at-a-time membership changes, leadership
// transfer, snapshots with log compaction and snapshot install, and the leader lease of
// docs/design.md §4 (HasLeaderLease).
//
// Snapshot transfer is streamed: the leader sends the snapshot it holds in SNAPSHOT chunks
// of max_snapshot_chunk_bytes, at most max_snapshot_chunks_inflight unacknowledged; the
// follower collects them in order (a chunk that does not start where its copy ends is
// answered with the offset it wants) and installs the snapshot when the last byte arrives.
// A transfer keeps the snapshot it started with even if the leader compacts again
// meanwhile (shared, not copied), and resumes from the acknowledged offset after a stall
// of election_timeout; a follower that lost its partial copy asks again from its offset.
//
// Learners replicate the log and never campaign; they are never counted in an election or
// a commit quorum. A learner does answer a vote request (it may already be a voter in the
// candidate's newer configuration; refusing could leave the cluster without a possible
// leader) — the candidate counts only the voters of its own configuration.
//
// Hostile input: Step never crashes or asserts on a message from the network. A message
// that is not addressed to this node, has an unknown type, comes from nobody, carries
// indexes or terms that make no sense (entries that are not contiguous, an entry term above
// the message term, a snapshot of index 0, a response about an index this leader never
// had, ...), or is a response from a node that is not in the configuration, is dropped.
//
// Time: `Time` is microseconds of the node's own monotonic clock; raft never compares the
// times of two nodes (send_time is echoed back to its own author only). Randomness: only
// from the injected Random (election jitter).
//
// Threading: a Raft object is not thread-safe; one owner thread drives it.
#ifndef LOCKMESH_CORE_RAFT_RAFT_H_
#define LOCKMESH_CORE_RAFT_RAFT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/storage/log_store.h"
#include "mesh/status.h"
#include "raft.pb.h"

namespace mesh::core::raft {

/// Microseconds of the node's own monotonic clock (virtual in the simulator).
using Time = uint64_t;

/// The only source of randomness of a Raft node (election jitter). Injected so that the
/// simulator can seed it; owned by the caller, must outlive the Raft object.
class Random {
 public:
  virtual ~Random();
  /// A uniformly distributed 64-bit value.
  virtual uint64_t Next() = 0;
};

struct Snapshot;

/// Where raft reads back the latest snapshot it handed to the driver to persist (the
/// driver's storage), so that it need not keep a snapshot's data in memory between
/// transfers (a table of a million locks makes hundreds of MB). Owned by the driver, must
/// outlive the Raft object; called on the Raft owner's thread, from Step or Tick, when a
/// transfer to a follower starts.
class SnapshotLoader {
 public:
  virtual ~SnapshotLoader();
  /// The persisted snapshot whose metadata is `meta` (same index and term), data
  /// included; null if it cannot be read now (raft tries again at the next heartbeat).
  virtual std::shared_ptr<const Snapshot> Load(const pb::SnapshotMeta& meta) = 0;
};

/// Tuning of one node. All nodes of a cluster should use the same timing values.
struct RaftOptions {
  /// This node's unique id (non-empty).
  std::string id;
  /// A follower that hears nothing from a leader for a random time in
  /// [election_timeout, 2 * election_timeout) starts an election. A voter that heard from
  /// a leader less than election_timeout ago ignores (pre-)vote requests (with
  /// check_quorum), which is what makes the leader lease sound.
  Time election_timeout = 1'000'000;
  /// How often a leader sends heartbeats to every follower (must be < election_timeout).
  Time heartbeat_interval = 100'000;
  /// Campaign in two phases (a pre-vote first), so a partitioned node that comes back
  /// does not depose a working leader by bumping the term.
  bool pre_vote = true;
  /// A leader that has not heard from a quorum within election_timeout steps down; voters
  /// refuse votes while they hear from a leader. Required for HasLeaderLease.
  bool check_quorum = true;
  /// Upper bound on the entry bytes (data sizes) in one APPEND (at least one entry is
  /// always sent).
  uint64_t max_append_bytes = 1 << 20;
  /// Upper bound on unacknowledged APPEND messages to one follower (pipelining window).
  size_t max_inflight = 256;
  /// A snapshot goes to a follower in SNAPSHOT chunks of at most this many data bytes, so
  /// that no message grows with the lock table (the peer frame limit stays fixed).
  uint64_t max_snapshot_chunk_bytes = 1 << 20;
  /// Flow control of a snapshot transfer: at most this many chunks sent to one follower and
  /// not yet acknowledged (its SNAPSHOT_RESPONSE says how much it holds).
  size_t max_snapshot_chunks_inflight = 4;
  /// Bound on the rate difference between any two nodes' clocks (0.01 = 1%); shortens the
  /// leader lease accordingly.
  double max_drift = 0.01;
  /// Null: raft keeps the latest snapshot's data in memory for as long as it is the latest.
  /// Set: raft holds it only while something else does too (the batch that persists it, a
  /// transfer in progress) and reads it back through the loader when a transfer starts.
  SnapshotLoader* snapshot_loader = nullptr;
};

/// What the driver recovered from durable storage, given to Open (a plain value).
struct PersistentState {
  /// Term, vote and commit hint (commit may lag; it is clamped to the log).
  HardState hard_state;
  /// The latest snapshot's metadata; index 0 = no snapshot.
  pb::SnapshotMeta snapshot;
  /// The snapshot's state-machine data (sent to followers that fall behind it; not kept
  /// with a snapshot_loader).
  std::string snapshot_data;
  /// The log after snapshot.index, contiguous, starting at snapshot.index + 1.
  std::vector<pb::Entry> entries;
};

/// A snapshot to persist (Batch::snapshot, Batch::compacted); also what a leader streams
/// to a follower that needs it.
struct Snapshot {
  pb::SnapshotMeta meta;
  std::string data;
};

/// One output of the state machine; see the file comment for what the driver does with it.
struct Batch {
  /// This batch's number: 1 for the first batch a Raft object hands out, then 2, 3, ...
  /// Advance(batch) reports every batch up to this one persisted.
  uint64_t seq = 0;
  /// A snapshot received from the leader: persist it (it replaces the whole log) and
  /// restore the state machine from `data` before applying `committed`. Shared, not
  /// copied: raft may stream the same object to followers.
  std::shared_ptr<const Snapshot> snapshot;
  /// Entries to append durably, contiguous and ascending. The first may be <= the last
  /// persisted index: the persisted suffix from that index on is replaced.
  std::vector<pb::Entry> entries;
  /// The hard state to persist, if it changed.
  std::optional<HardState> hard_state;
  /// True if this batch counts as persisted only once fsynced: it installs a snapshot,
  /// appends entries, or changes the term or the vote. False: whatever it holds (a hard
  /// state that only moves the commit index, a hint raft recovers after a restart; a
  /// compacted snapshot, which LogStore::SaveSnapshot makes durable itself) may be written
  /// without a sync of its own and is persisted once written.
  bool must_sync = false;
  /// A local snapshot made by Compact(): persist it (the state machine already has it);
  /// entries after meta.index stay. Shared, as `snapshot`.
  std::shared_ptr<const Snapshot> compacted;
  /// Messages to send now, before or while this batch is persisted: raft holds back every
  /// message that depends on persistence not yet reported by Advance (see the file
  /// comment) and hands it out, in the order produced, in the first batch taken after it.
  std::vector<pb::RaftMessage> messages;
  /// Committed entries to apply now, in order (contiguous, ascending), before or while this
  /// batch is persisted. Each is committed: a quorum of voters holds it durably. A leader
  /// counts its own copy only through its last Advance, the followers' only from their
  /// APPEND_RESPONSEs (held until their copies are durable); a follower applies what the
  /// leader's commit index covers of the entries that match the leader's log. This node's
  /// own copy may not be durable yet (it may come in this very batch's `entries`); that is
  /// safe: a committed entry survives in every future leader's log, so the effect of
  /// applying it (a client's answer) is never undone, and a node that crashes before its
  /// copy is durable rebuilds its state machine from its durable snapshot and log and is
  /// handed the entry again once it has it back from the leader.
  std::vector<pb::Entry> committed;
  /// When to call Tick() next (absolute, this node's clock).
  Time next_deadline = 0;

  /// True if the batch holds anything to persist, send or apply.
  bool empty() const {
    return !snapshot && entries.empty() && !hard_state && !compacted && messages.empty() &&
           committed.empty();
  }
};

/// The role of a node. A node that is not in its own configuration (a new node that has
/// not received it yet, or a removed node) is a follower that never campaigns — except a
/// voter whose own removal is the latest configuration entry and not yet committed (a
/// leader that removed itself and lost its quorum before the change committed): it may
/// still be needed to commit it, so it campaigns, counting only the new configuration's
/// voters, not itself (the dissertation's §4.2.2; see RemovalPending in raft.cc).
enum class Role { kFollower, kPreCandidate, kCandidate, kLeader, kLearner };

/// "follower", "pre-candidate", "candidate", "leader", "learner".
const char* RoleName(Role role);

/// One membership change (ProposeMembership).
struct MembershipChange {
  enum class Kind {
    kAddLearner,  // add `id` (not yet a member) as a learner at `address`
    kPromote,     // make learner `id` a voter (only once it has caught up)
    kRemove,      // remove member `id` (voter or learner; may be the leader itself)
  };
  Kind kind = Kind::kAddLearner;
  std::string id;
  std::string address;  // kAddLearner only
};

/// The leader's view of one peer's replication (Raft::progress()).
struct PeerProgress {
  std::string id;
  bool voter = false;
  /// Highest index known to be replicated on the peer.
  uint64_t match = 0;
  /// Next index to send.
  uint64_t next = 0;
  /// "probe", "replicate" or "snapshot".
  const char* state = "probe";
  /// This leader's clock when it last received a message from the peer (0 = never).
  Time last_contact = 0;
  /// state "snapshot": the size of the snapshot being sent and how many of its bytes the
  /// peer acknowledged (both 0 otherwise).
  uint64_t snapshot_size = 0;
  uint64_t snapshot_acked = 0;
};

class Raft {
 public:
  /// Creates a node from what the driver recovered (`state`; all empty for a fresh node).
  /// `random` must outlive the Raft object. A node whose configuration makes it the only
  /// voter campaigns at once (the first batch carries its election). Fails with
  /// InvalidArgument for bad options (empty id, heartbeat_interval >= election_timeout,
  /// zero max_inflight) and Corruption for an inconsistent state (entries not contiguous
  /// after the snapshot, entry terms decreasing or above the hard state's term).
  static Status Open(const RaftOptions& options, const PersistentState& state, Random* random,
                     Time now, std::unique_ptr<Raft>* out);
  ~Raft();
  Raft(const Raft&) = delete;
  Raft& operator=(const Raft&) = delete;

  /// Fresh node only (no term, no log, no snapshot): writes `config` as entry 1 (term 1,
  /// committed). Either exactly one node bootstraps with itself as the only voter and the
  /// others join as learners, or every initial voter bootstraps with the same config.
  /// `config` must contain this node as a voter, unique non-empty ids. Fails with
  /// Unavailable if the node is not fresh, InvalidArgument for a bad config.
  Status Bootstrap(Time now, const pb::ClusterConfig& config);

  /// Timers: election (or pre-vote) start, heartbeats, check-quorum, transfer timeout.
  /// Call at Batch::next_deadline (earlier or later is harmless).
  void Tick(Time now);

  /// A message from a peer. Never fails: a message that makes no sense is dropped.
  void Step(Time now, const pb::RaftMessage& message);
  /// The same, taking the message's entries instead of copying them (added after the first
  /// version of this header; prefer it when the driver no longer needs the message).
  void Step(Time now, pb::RaftMessage&& message);

  /// Proposes a command (an encoded pb::Command). On the leader it is appended at once; a
  /// follower or learner forwards it to the leader it knows (PROPOSE). Unavailable if no
  /// leader is known or a leadership transfer is in progress. Acceptance does not promise
  /// commit: the proposer retries until it sees the command applied (commands are
  /// idempotent by (session, seq)). `*index`, if given, receives the entry's index on the
  /// leader (0 when forwarded).
  Status Propose(Time now, std::string data, uint64_t* index = nullptr);

  /// Leader only: proposes one membership change as a CONFIG entry; the new configuration
  /// takes effect on every node as soon as it is appended to its log. Unavailable if this
  /// node is not the leader, a configuration change is still uncommitted, the leader has
  /// not committed an entry of its term yet, or (kPromote) the learner has not caught up
  /// (its match is below the commit index). InvalidArgument for a change that makes no
  /// sense (adding a member, promoting a non-learner, removing a non-member or the last
  /// voter). A leader that removes itself steps down once the change is committed; if it
  /// loses its quorum first (check-quorum), it campaigns again while the change is
  /// uncommitted in its log (see Role), so that the remaining voters, which may lack the
  /// change and need its vote, are not left without a possible leader.
  Status ProposeMembership(Time now, const MembershipChange& change);

  /// Leader only: hands leadership to voter `to`: stops accepting proposals, brings `to`
  /// up to date and sends it TIMEOUT_NOW, upon which it campaigns at once (voters answer
  /// it even within a leader's lease). Aborted after election_timeout. From the moment
  /// TIMEOUT_NOW is sent, this leader holds no lease; if the transfer is then aborted it
  /// steps down (a late TIMEOUT_NOW may still elect `to`). Unavailable if not leader or a
  /// transfer is in progress; InvalidArgument if `to` is not another voter.
  Status TransferLeadership(Time now, const std::string& to);

  /// Takes a local snapshot: the driver has applied every entry through `index` and
  /// `data` is its state machine at that point. Log entries <= index are dropped from
  /// memory, the snapshot is sent to followers that need entries before it, and the next
  /// batch carries it in `compacted` to persist. InvalidArgument unless
  /// snapshot index < index <= applied index (the last committed entry handed out).
  Status Compact(uint64_t index, std::string data);

  /// True if TakeBatch() would return a non-empty batch.
  bool HasBatch() const;
  /// Everything produced since the last TakeBatch, with the held messages that Advance has
  /// released since (see Batch).
  Batch TakeBatch();
  /// The input event "persisted": `batch` and every batch taken before it are persisted
  /// (synced where they must_sync) — see the file comment. Raises this node's durable log
  /// index (a leader may commit) and releases the messages held for it. It may come late
  /// (the driver goes on taking batches meanwhile); a batch at or below one already
  /// advanced changes nothing. Advancing a batch before it and every earlier batch are
  /// persisted is the one thing a driver must never do.
  void Advance(const Batch& batch);

  /// When Tick() should be called next.
  Time next_deadline() const;

  const std::string& id() const;
  Role role() const;
  uint64_t term() const;
  /// The leader of the current term as far as this node knows; "" if none.
  const std::string& leader() const;
  /// Highest index known committed.
  uint64_t commit_index() const;
  /// Highest index handed out in Batch::committed (or covered by a snapshot).
  uint64_t applied_index() const;
  /// Last index in the log (persisted or not).
  uint64_t last_index() const;
  /// The snapshot currently held (index 0 if none).
  const pb::SnapshotMeta& snapshot_meta() const;
  /// The latest configuration appended to the log (the one in effect).
  const pb::ClusterConfig& config() const;
  /// Leader only: every other member's replication progress (empty otherwise).
  std::vector<PeerProgress> progress() const;

  /// True if this node is the leader and holds a lease at `now`: a quorum of voters
  /// (itself included) acknowledged messages this leader sent after
  /// now - election_timeout * (1 - max_drift), and no leadership transfer has reached the
  /// TIMEOUT_NOW stage. While the lease holds, no other leader can exist (voters refuse
  /// votes for election_timeout after hearing from a leader). Always false without
  /// check_quorum.
  bool HasLeaderLease(Time now) const;

 private:
  Raft();
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mesh::core::raft

#endif  // LOCKMESH_CORE_RAFT_RAFT_H_

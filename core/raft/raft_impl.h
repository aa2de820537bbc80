// core/raft/raft_impl: the private state and methods of Raft (raft.h), shared by its
// implementation files: raft.cc (set-up, roles, timers, messages, replication, the public
// wrappers) and raft_proposals.cc (proposals, membership, transfer, compaction, batches).
// Not part of the API: include raft.h.
#ifndef LOCKMESH_CORE_RAFT_RAFT_IMPL_H_
#define LOCKMESH_CORE_RAFT_RAFT_IMPL_H_

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/raft/progress.h"
#include "core/raft/raft.h"
#include "core/raft/raft_log.h"
#include "core/raft/raft_validate.h"

namespace mesh::core::raft {

class Raft::Impl {
 public:
  Impl(const RaftOptions& options, Random* random) : opt_(options), random_(random) {}

  Status Load(const PersistentState& state, Time now);
  Status Bootstrap(Time now, const pb::ClusterConfig& config);
  void Tick(Time now);
  void Step(Time now, const pb::RaftMessage& m);
  Status Propose(Time now, std::string data, uint64_t* index);
  Status ProposeMembership(Time now, const MembershipChange& change);
  Status TransferLeadership(Time now, const std::string& to);
  Status Compact(uint64_t index, std::string data);
  bool HasBatch();
  Batch TakeBatch();
  void Advance(const Batch& batch);
  Time NextDeadline() const;
  bool HasLeaderLease(Time now) const;
  Role role() const;
  std::vector<PeerProgress> progress() const;

  const RaftOptions opt_;
  Random* const random_;
  RaftLog log_;
  uint64_t term_ = 0;
  std::string vote_;
  std::string lead_;
  Role role_ = Role::kFollower;  // never kLearner: that is derived from the config
  uint64_t commit_ = 0;
  uint64_t applied_ = 0;

 private:
  enum class CampaignKind { kPreVote, kElection, kTransfer };

  bool IsVoter(const std::string& id) const { return FindVoter(log_.config(), id); }
  // True if this node counts itself in election and commit quorums.
  bool Promotable() const { return IsVoter(opt_.id); }
  // True if this node's own removal (it was a voter) is the latest configuration entry and
  // is not known committed: it still campaigns, without counting itself (raft.cc).
  bool RemovalPending() const;
  // True if this node may start an election: a voter, or a voter whose removal is pending.
  bool MayCampaign() const { return Promotable() || RemovalPending(); }
  size_t Quorum() const;
  void ResetElectionDeadline(Time now);
  void SetLead(const std::string& lead);
  void BecomeFollower(Time now, uint64_t term, const std::string& lead);
  void BecomeLeader(Time now);
  void Campaign(Time now, CampaignKind kind);
  void Tally(Time now);
  pb::RaftMessage NewMessage(pb::RaftMessageType type, const std::string& to) const;

  void HandleVoteRequest(Time now, const pb::RaftMessage& m);
  void StepLeader(Time now, const pb::RaftMessage& m);
  void StepCandidate(Time now, const pb::RaftMessage& m);
  void StepFollower(Time now, const pb::RaftMessage& m);
  void HandlePropose(const pb::RaftMessage& m);
  void HandleAppend(const pb::RaftMessage& m);
  void HandleHeartbeat(const pb::RaftMessage& m);
  void HandleSnapshot(const pb::RaftMessage& m);
  void HandleSnapshotResponse(const std::string& from, Progress* pr, const pb::RaftMessage& m);
  void HandleAppendResponse(const std::string& from, Progress* pr, const pb::RaftMessage& m);
  void HandleHeartbeatResponse(Time now, const std::string& from, Progress* pr);

  void AppendOwn(pb::EntryType type, std::string data, const pb::ClusterConfig* config);
  void SyncProgressWithConfig();
  bool SendAppend(const std::string& to, Progress* pr, bool allow_empty);
  void SendSnapshot(const std::string& to, Progress* pr);
  // Sends the chunks of pr->snapshot from pr->snapshot_next while the window allows.
  void SendSnapshotChunks(const std::string& to, Progress* pr);
  void AnswerSnapshot(const pb::RaftMessage& m, pb::RaftMessageType type, uint64_t index,
                      uint64_t offset, bool reject = false);
  void SendHeartbeat(const std::string& to, Progress* pr);
  void SendTimeoutNow(const std::string& to);
  bool MaybeCommit();
  void StepDownIfRemoved();
  bool QuorumActive(Time now) const;
  void AbortTransfer();
  void Flush();

  std::map<std::string, Progress> progress_;  // leader: every member but this node
  std::map<std::string, bool> votes_;         // (pre-)candidate: answers so far
  Time now_ = 0;                              // time of the event being handled
  Time election_deadline_ = 0;
  Time heartbeat_deadline_ = 0;
  Time vote_guard_until_ = 0;  // refuse (pre-)votes before this (heard from a leader)
  Time leader_since_ = 0;
  uint64_t term_start_index_ = 0;  // index of this leader's NOOP
  std::string transfer_target_;
  Time transfer_deadline_ = 0;
  bool timeout_now_sent_ = false;
  // The latest snapshot (meta and state-machine data; null before the first), shared with
  // the transfers that stream it. With opt_.snapshot_loader it is held only weakly (in
  // snapshot_weak_): alive while a batch or a transfer holds it, read back otherwise.
  std::shared_ptr<const Snapshot> snapshot_;
  std::weak_ptr<const Snapshot> snapshot_weak_;
  // Makes `s` the latest snapshot (held as the options say).
  void KeepSnapshot(std::shared_ptr<const Snapshot> s);
  // The latest snapshot with its data, for a transfer: held, still alive, or loaded; null
  // if the loader cannot read it now.
  std::shared_ptr<const Snapshot> SnapshotForTransfer();
  // Follower: the snapshot being received in chunks, from the leader `from` in `term`.
  struct IncomingSnapshot {
    std::string from;
    uint64_t term = 0;
    pb::SnapshotMeta meta;
    uint64_t size = 0;
    std::string data;
  };
  std::optional<IncomingSnapshot> incoming_;
  HardState last_hard_state_;
  std::shared_ptr<const Snapshot> pending_install_;
  std::shared_ptr<const Snapshot> pending_compacted_;
  std::vector<pb::RaftMessage> messages_;  // produced since the last TakeBatch
  // Persistence (raft.h): batches taken and persisted, by Batch::seq.
  uint64_t taken_seq_ = 0;      // the last batch taken
  uint64_t persisted_seq_ = 0;  // the last batch Advance reported persisted
  uint64_t sync_seq_ = 0;       // the last batch taken that must_sync
  uint64_t term_vote_seq_ = 0;  // the last batch taken that changed the term or the vote
  // What each batch taken and not yet persisted makes durable, oldest first: its last entry
  // and its snapshot install (index 0: none), marked stable at Advance.
  struct Unpersisted {
    uint64_t seq = 0;
    uint64_t entry_index = 0, entry_term = 0;
    uint64_t snapshot_index = 0, snapshot_term = 0;
  };
  std::deque<Unpersisted> unpersisted_;
  // Messages that wait for batch `after` to be persisted, in the order produced, and those
  // Advance released for the next TakeBatch.
  struct Held {
    uint64_t after = 0;
    pb::RaftMessage message;
  };
  std::deque<Held> held_;
  std::vector<pb::RaftMessage> released_;
  std::optional<pb::RaftMessage> forward_;  // proposals waiting to go to the leader
  bool flush_needed_ = false;               // leader: appends or commit may be due

 public:
  // During Step(Time, RaftMessage&&): the message, whose entries may be moved from.
  pb::RaftMessage* movable_ = nullptr;
};

}  // namespace mesh::core::raft

#endif  // LOCKMESH_CORE_RAFT_RAFT_IMPL_H_

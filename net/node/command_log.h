// net/node/command_log: the node's replicated, durable log of lock commands — the driver of
// core/raft (docs/design.md §2) on the node's libuv loop.
//
// Proposals are buffered and handed to Raft at the end of a loop iteration (or, under load,
// a little later to gather a bigger batch: see OnCheck). Every Batch that Raft produces is
// executed as core/raft/raft.h says, with no rule of this file's own: its messages are sent
// and its committed entries applied to the LockTable (and reported to the node) when it is
// taken; it is then persisted in order (LogStore; one fsync for all the batches waiting,
// none for a batch that need not sync) and Raft is told with Advance, which releases the
// messages that waited for this node's disk (a follower's acknowledgements, votes) and lets
// a leader count its own copy. Raft hands out only committed entries — durable on a
// quorum — so a command's result reaches a client only after that, and may before this
// node's own copy is synced. What this file decides is only how: the sync in the loop, or
// on libuv's thread pool while the loop goes on (Options::sync_off_loop; several batches
// are then taken, sent and applied during one sync, and persisted with the next).
//
// A local node (Options::standalone) is the only voter of its own cluster: a fresh log is
// bootstrapped with itself, Raft elects it at once when the log opens, and each proposal
// batch costs one fsync — the entries' — because a hard state that only moves the commit
// index needs no sync of its own (Batch::must_sync: commit is a hint Raft recovers).
// In a mesh (net/node/cluster.h) a fresh log waits for Bootstrap() or for a leader to add it;
// Raft's messages go out through the sender, and those of peers come in through Step().
// A proposal may then be lost (forwarded to a leader that died, appended by a leader that
// was deposed before commit): the log re-proposes every command it has not seen applied
// after one election timeout. Commands are idempotent by (session, seq), so a duplicate
// costs a log entry and nothing else.
//
// A full disk does not stop the log (core/raft/persist_queue.h and
// core/storage/disk_full_policy.h decide, this executes): the queue holds the batches it
// cannot persist and says when to retry (from the tick timer); Propose refuses new locks
// meanwhile; the disk handler hears of the change to full and back, once each.
//
// Threading: the loop's thread only. Owns its libuv handles; Close() must be called and
// its callback awaited before destruction.
#ifndef LOCKMESH_NET_NODE_COMMAND_LOG_H_
#define LOCKMESH_NET_NODE_COMMAND_LOG_H_

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/lock_table.h"
#include "core/raft/persist_queue.h"
#include "core/raft/raft.h"
#include "core/storage/log_store.h"
#include "lockmesh.pb.h"
#include "mesh/status.h"

namespace mesh::net {

class CommandLog {
 public:
  /// Called for every applied command entry, in log order, after it is durable.
  using ApplyHandler =
      std::function<void(uint64_t index, const pb::Command& command, const core::ApplyResult&)>;
  /// Called once if storage fails; the log refuses further proposals afterwards.
  using FailureHandler = std::function<void(const Status& why)>;
  /// Called after the last entry of a batch was applied.
  using BatchDoneHandler = std::function<void()>;
  /// Called when the disk becomes full (`full` is the no-space error) and when the log
  /// could persist again (`full` ok): once per change, never per request.
  using DiskHandler = std::function<void(const Status& full)>;
  /// Sends one Raft message to its `to` (best effort; Raft retries what matters).
  using Sender = std::function<void(pb::RaftMessage&& message)>;

  struct Options {
    std::string data_dir;
    /// This node's unique id: its Raft id, and the only voter of a fresh log.
    std::string node_id;
    bool fsync = true;
    /// Take a snapshot (and compact the log) after at least this many applied entries; 0
    /// never (core/snapshot_policy.h P1, P2).
    uint64_t snapshot_every = 100000;
    /// And only once the log applied since the last snapshot holds this many times its
    /// bytes (core/snapshot_policy.h P3: a growing table costs O(n), not O(n^2)); 0: by
    /// snapshot_every alone.
    double snapshot_log_ratio = 1.0;
    uint64_t wal_segment_bytes = 64ull << 20;
    /// Longest wait, in microseconds, for more commands before syncing a batch smaller
    /// than the last one (see OnCheck); 0 syncs at the end of every loop iteration.
    uint64_t gather_us = 150;
    /// Raft timing (microseconds): see core::raft::RaftOptions.
    uint64_t election_timeout_us = 1'000'000;
    uint64_t heartbeat_interval_us = 100'000;
    /// True: a local node — bootstrap a fresh log with this node as the only voter, never
    /// re-propose. False: a mesh member (see the file comment).
    bool standalone = true;
    /// Clock-rate bound between nodes (RaftOptions::max_drift).
    double max_drift = 0.01;
    /// Run a batch's writes and fsync on libuv's thread pool while the loop goes on reading
    /// peers and clients, stepping Raft and executing its next batches (see Drive). Only
    /// with fsync on; false syncs in the loop.
    /// The node sets it for mesh members (see net/node/node.cc for the measurements).
    bool sync_off_loop = false;
    /// Where to write a line about the log's own work (snapshots taken, with their size and
    /// cost); loop thread. Null: nowhere.
    std::function<void(const std::string&)> log;
  };

  /// `fs` must outlive the log.
  CommandLog(uv_loop_t* loop, Options options, core::FileSystem* fs);
  ~CommandLog();

  /// Opens the store, starts Raft on what it holds (bootstrapping a fresh log with this
  /// node as the only voter), and replays every committed entry into the table before it
  /// returns. Call once, before Propose. Corruption names the data dir and what to do.
  Status Open();
  void SetHandlers(ApplyHandler on_apply, FailureHandler on_failure,
                   BatchDoneHandler on_batch_done = nullptr);
  /// Who hears that the disk is full and that it is no longer (see DiskHandler).
  void SetDiskHandler(DiskHandler on_disk) { on_disk_ = std::move(on_disk); }
  /// Where Raft's messages go (mesh only; without a sender they are dropped).
  void SetSender(Sender sender) { sender_ = std::move(sender); }
  /// Called after messages were handed to the sender ahead of an fsync (the batch's own,
  /// or one in flight): it must write them now, not when the loop next polls (mesh only;
  /// optional).
  void SetSendFlusher(std::function<void()> flush) { send_flusher_ = std::move(flush); }

  /// A Raft message from a peer: steps Raft and executes what follows.
  void Step(pb::RaftMessage&& message);
  /// Fresh log only: writes `config` as the first entry and starts Raft on it (see
  /// core::raft::Raft::Bootstrap).
  Status Bootstrap(const pb::ClusterConfig& config);
  /// Leader only: one membership change (core::raft::Raft::ProposeMembership).
  Status ProposeMembership(const core::raft::MembershipChange& change);
  /// Leader only: hands leadership to voter `to` (core::raft::Raft::TransferLeadership).
  Status TransferLeadership(const std::string& to);
  /// True if this node is the leader and holds a leader lease now.
  bool HasLeaderLease() const;
  /// Commands proposed and not yet seen applied (mesh only).
  size_t unapplied() const { return unapplied_.size(); }
  /// Mesh only, called often (every few tens of ms): re-proposes the commands not applied
  /// within an election timeout, or proposed to a leader that is no longer the leader. A
  /// command that a leader takes from no peer (core::AdmitCommand refuses it from this node:
  /// the leader's expiry of another node) is dropped instead once this node does not lead.
  void Retry();

  /// Buffers a command; it is proposed, made durable and applied at the end of this loop
  /// iteration (or a little later under load, see OnCheck). An OpenSession alone waits for
  /// the next command, or for Flush(). Returns Unavailable after a storage failure or
  /// Close().
  Status Propose(pb::Command command);
  /// Proposes everything buffered and runs Raft's batches until none is left (Stop uses
  /// it; with this node the only voter, buffered commands are applied when it returns).
  void Flush();

  const core::LockTable& table() const { return *table_; }
  /// Highest log index applied (command entries, and Raft's own NOOP/CONFIG entries).
  uint64_t applied_index() const;
  /// Last index in the log (durable or not).
  uint64_t last_index() const;
  /// Raft's view, for status: term, role, leader.
  const core::raft::Raft* raft() const { return raft_.get(); }
  bool failed() const { return !failure_.ok(); }
  /// "" or, while the disk is full, the line for status (core::DiskFullPolicy::Describe).
  std::string disk_full() const { return persist_.disk().Describe(); }
  /// What opening the store repaired (torn tails with file and offset), for the node's log.
  const std::vector<std::string>& recovery_notes() const;

  /// Closes the libuv handles; `done` runs from the last close callback.
  void Close(std::function<void()> done);

 private:
  static void OnCheck(uv_check_t* h);
  static void OnIdle(uv_idle_t* h);
  static void OnTimer(uv_timer_t* h);
  /// Hands buffered commands to Raft (those it refuses for want of a leader stay buffered).
  void ProposePending();
  /// Executes Raft's batches until it has none; then arms the tick timer.
  void Drive();
  /// Takes Raft's next batch into persist_: sends its messages and applies its committed
  /// entries (both may happen before it is persisted: Raft holds back what may not). False
  /// if the log failed.
  bool TakeAndStart();
  /// Persists what persist_ holds, in order, with one sync: on the pool thread (OnSyncDone then
  /// advances Raft) or, without fsync, for a node alone in its configuration, or for a
  /// retry on a full disk, here (then advances it). False if the log failed.
  bool PersistWaiting();
  /// Thread-pool side of an off-loop sync: PersistBatches, nothing else.
  static void OnSyncWork(uv_work_t* req);
  /// Loop side: finishes the synced batch and drives on.
  static void OnSyncDone(uv_work_t* req, int status);
  /// Runs close_done_ once the handles are closed and no sync is in flight.
  void MaybeFinishClose();
  /// Step 3 of a batch: restore a received snapshot, apply committed command entries.
  Status ApplyBatch(const core::raft::Batch& batch);
  void ArmTimer();
  void Fail(const Status& why);
  /// Hands a persist's result to persist_ (PersistQueue::Settle: Raft advanced through
  /// `persisted` of `batches`, the rest held if `error` is for want of space) and tells the
  /// disk handler of a change. False if the error is fatal (the caller fails the log).
  bool Settle(std::vector<core::raft::Batch> batches, size_t persisted, const Status& error);
  void MaybeSnapshot();
  /// Re-proposes commands not applied within an election timeout (mesh only).
  void RetryUnapplied();
  /// Stops retrying the commands of `session` (it is being closed).
  void ForgetSession(const pb::SessionKey& session);

  uv_loop_t* loop_;
  Options options_;
  core::FileSystem* fs_;
  std::unique_ptr<core::FileSystem> no_sync_fs_;
  std::unique_ptr<core::LogStore> store_;
  std::unique_ptr<core::raft::Random> random_;
  // Reads the latest snapshot back from store_ when raft streams it to a follower, so that
  // neither raft nor the store keeps its data in memory meanwhile. Loop thread.
  std::unique_ptr<core::raft::SnapshotLoader> snapshot_loader_;
  std::unique_ptr<core::raft::Raft> raft_;
  // The lock table. In a mesh, building a snapshot of it and restoring it from a received
  // one run on the thread pool (TableJob): meanwhile it does not change — ApplyBatch keeps
  // what it would apply in deferred_, in order, and ApplyDeferred applies it afterwards.
  std::unique_ptr<core::LockTable> table_;
  struct Deferred {
    std::shared_ptr<const core::raft::Snapshot> snapshot;
    std::vector<pb::Entry> committed;
  };
  std::deque<Deferred> deferred_;
  struct TableJob {
    uv_work_t req;
    CommandLog* log = nullptr;
    bool restore = false;                                  // else build
    uint64_t index = 0;                                    // the snapshot's index
    uint64_t bytes = 0;                                    // restore: the snapshot's size
    uint64_t held = 0;                                     // build: locks held at `index`
    std::string data;                                      // build: out
    std::shared_ptr<const core::raft::Snapshot> snapshot;  // restore: in (shared with raft)
    std::unique_ptr<core::LockTable> restored;
    Status status;
    uint64_t start_ns = 0;
  };
  std::unique_ptr<TableJob> table_job_;  // in flight
  uint64_t applied_through_ = 0;         // the last index the table reflects
  /// Starts a job on the pool (the table must not change until OnTableJobDone).
  void StartTableJob(std::unique_ptr<TableJob> job);
  static void OnTableJobWork(uv_work_t* req);
  static void OnTableJobDone(uv_work_t* req, int status);
  /// Applies deferred_ up to the next snapshot install (which starts a job).
  Status ApplyDeferred();
  /// Applies one batch's snapshot and committed entries now (no job, no deferral).
  Status ApplyNow(const std::shared_ptr<const core::raft::Snapshot>& snapshot,
                  const std::vector<pb::Entry>& committed);
  std::vector<pb::Command> pending_;
  uv_check_t check_;
  uv_idle_t idle_;
  uv_timer_t timer_;
  int open_handles_ = 0;
  std::function<void()> close_done_;
  ApplyHandler on_apply_;
  FailureHandler on_failure_;
  BatchDoneHandler on_batch_done_;
  Sender sender_;
  std::function<void()> send_flusher_;
  // An off-loop sync in flight: while set, the loop takes no batch and touches no store_
  // (the pool thread owns it); Raft keeps taking steps and proposals for the next batch.
  bool sync_in_flight_ = false;
  uv_work_t sync_work_;
  std::vector<core::raft::Batch> syncing_;  // the batches the sync in flight makes durable
  // Taken since (and held for want of space), to persist after it; decides the full disk's
  // hold and retry, and what Propose refuses meanwhile.
  core::raft::PersistQueue persist_;
  Status sync_status_;                // written by the pool thread, read in OnSyncDone
  bool applied_since_done_ = false;  // a batch applied entries since on_batch_done_ ran
  // Mesh only: encoded command -> when (local us) and to which leader it was last proposed,
  // until applied.
  struct Proposed {
    uint64_t when = 0;
    std::string leader;
    uint64_t order = 0;  // first proposal's rank: retries keep the original order
  };
  uint64_t proposal_order_ = 0;
  std::string last_pending_leader_;  // raft_->leader() when ProposePending last ran
  std::unordered_map<std::string, Proposed> unapplied_;
  Status failure_;
  DiskHandler on_disk_;
  bool closing_ = false;
  bool driving_ = false;       // Drive() is on the stack (handlers may call Propose)
  bool step_pending_ = false;  // messages stepped since the last Drive (see Step)
  uint64_t last_snapshot_index_ = 0;
  uint64_t last_snapshot_bytes_ = 0;      // its size (0: unknown); core/snapshot_policy.h P3
  uint64_t last_snapshot_held_ = 0;       // locks held in it
  uint64_t log_bytes_since_snapshot_ = 0;  // payload bytes applied after it
  size_t last_batch_size_ = 0;      // commands in the last proposed batch
  size_t urgent_pending_ = 0;       // pending commands other than OpenSession
  uint64_t gather_started_ns_ = 0;  // uv_hrtime() when this batch began to wait; 0 = not
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_NODE_COMMAND_LOG_H_

#include "net/node/command_log.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <tuple>

#include "core/admission.h"
#include "core/raft/raft_storage.h"
#include "core/snapshot_policy.h"
#include "net/support/lease_clock.h"

namespace mesh::net {
namespace {

// Raft's SnapshotLoader on the node's LogStore: the snapshot file read back and decoded
// (a few hundred ms on the loop for a million locks, once per transfer that starts while
// no other transfer holds it).
class StoreSnapshotLoader final : public core::raft::SnapshotLoader {
 public:
  StoreSnapshotLoader(const core::LogStore* store, std::function<void(const std::string&)> log)
      : store_(store), log_(std::move(log)) {}

  std::shared_ptr<const core::raft::Snapshot> Load(const pb::SnapshotMeta& meta) override {
    auto snap = std::make_shared<core::raft::Snapshot>();
    Status st = core::raft::ReadSnapshot(*store_, snap.get());
    if (st.ok() && (snap->meta.index() != meta.index() || snap->meta.term() != meta.term())) {
      st =
          Status::Corruption("the snapshot file holds index " + std::to_string(snap->meta.index()) +
                             ", raft's latest is " + std::to_string(meta.index()));
    }
    if (st.ok()) {
      failure_.clear();
      return snap;
    }
    // Raft asks again at every heartbeat: the same failure is logged once.
    if (log_ && st.ToString() != failure_) {
      failure_ = st.ToString();
      log_("cannot read the snapshot back to send it to a follower: " + failure_);
    }
    return nullptr;
  }

 private:
  const core::LogStore* store_;  // owned by the CommandLog, outlives raft
  std::function<void(const std::string&)> log_;
  std::string failure_;  // the last failure logged ("" after a success)
};

// Wraps a FileSystem so that Sync() does nothing: for `--no-fsync` benchmarks only.
class NoSyncFile final : public core::WritableFileWrapper {
 public:
  using WritableFileWrapper::WritableFileWrapper;
  Status Sync() override { return Status::OK(); }
};

class NoSyncFileSystem final : public core::FileSystemWrapper {
 public:
  using FileSystemWrapper::FileSystemWrapper;
  Status OpenWritable(const std::string& path, uint64_t preallocate,
                      std::unique_ptr<core::WritableFile>* out) override {
    std::unique_ptr<core::WritableFile> f;
    MESH_RETURN_IF_ERROR(target()->OpenWritable(path, preallocate, &f));
    *out = std::make_unique<NoSyncFile>(std::move(f));
    return Status::OK();
  }
  Status SyncDir(const std::string&) override { return Status::OK(); }
};

// splitmix64 seeded from the clock and the process: election jitter only needs to differ
// between nodes, not to be unpredictable.
class ClockSeededRandom final : public core::raft::Random {
 public:
  ClockSeededRandom() : state_(uv_hrtime() ^ (static_cast<uint64_t>(uv_os_getpid()) << 32)) {}
  uint64_t Next() override {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

core::raft::Time NowUs() { return LeaseClockUs(); }  // net/support/lease_clock.h

}  // namespace

CommandLog::CommandLog(uv_loop_t* loop, Options options, core::FileSystem* fs)
    : loop_(loop),
      options_(std::move(options)),
      fs_(fs),
      table_(std::make_unique<core::LockTable>()) {
  if (!options_.fsync) {
    no_sync_fs_ = std::make_unique<NoSyncFileSystem>(fs_);
    fs_ = no_sync_fs_.get();
  }
  random_ = std::make_unique<ClockSeededRandom>();
  uv_check_init(loop_, &check_);
  uv_idle_init(loop_, &idle_);
  uv_timer_init(loop_, &timer_);
  check_.data = this;
  idle_.data = this;
  timer_.data = this;
  open_handles_ = 3;
}

CommandLog::~CommandLog() = default;

Status CommandLog::Open() {
  MESH_RETURN_IF_ERROR(fs_->CreateDirs(options_.data_dir));
  core::LogStoreOptions opts;
  opts.segment_bytes = options_.wal_segment_bytes;
  const std::string damaged =
      ". The node will not guess what it held. Restore the data dir from a backup, or move it "
      "aside to start empty (fencing tokens and sequence values then restart from 1)";
  Status opened = core::LogStore::Open(fs_, options_.data_dir, opts, &store_);
  if (opened.IsCorruption()) {
    return Status::Corruption("the log in " + options_.data_dir +
                              " is damaged: " + opened.message() + damaged);
  }
  MESH_RETURN_IF_ERROR(opened.Annotate("cannot open the log in " + options_.data_dir));
  core::raft::PersistentState state;
  Status loaded = core::raft::LoadPersistentState(*store_, &state);
  if (!loaded.ok()) {
    return Status::Corruption("the log in " + options_.data_dir +
                              " is damaged: " + loaded.message() + damaged);
  }
  // Raft keeps the log's entries from here on; the store needs only their terms.
  store_->DropEntryData();
  if (state.snapshot.index() > 0) {
    pb::LockTableSnapshot s;
    if (!s.ParseFromString(state.snapshot_data)) {
      return Status::Corruption("the snapshot in " + options_.data_dir + " does not parse" +
                                damaged);
    }
    MESH_RETURN_IF_ERROR(table_->Restore(s).Annotate("cannot restore the snapshot"));
  }
  last_snapshot_index_ = state.snapshot.index();
  last_snapshot_bytes_ = state.snapshot_data.size();
  last_snapshot_held_ = table_->held_count();
  applied_through_ = state.snapshot.index();
  const bool fresh =
      state.hard_state.term == 0 && state.entries.empty() && state.snapshot.index() == 0;
  snapshot_loader_ = std::make_unique<StoreSnapshotLoader>(store_.get(), options_.log);
  core::raft::RaftOptions ro;
  ro.snapshot_loader = snapshot_loader_.get();
  ro.id = options_.node_id;
  ro.election_timeout = options_.election_timeout_us;
  ro.heartbeat_interval = options_.heartbeat_interval_us;
  ro.max_drift = options_.max_drift;
  MESH_RETURN_IF_ERROR(core::raft::Raft::Open(ro, state, random_.get(), NowUs(), &raft_)
                           .Annotate("cannot start consensus on " + options_.data_dir));
  if (fresh && options_.standalone) {
    pb::ClusterConfig config;
    config.set_cluster_id("local-" + options_.node_id);
    pb::Member* self = config.add_members();
    self->set_id(options_.node_id);
    self->set_voter(true);
    MESH_RETURN_IF_ERROR(raft_->Bootstrap(NowUs(), config));
  }
  // Run Raft until it has nothing left to do now: a sole voter elects itself, commits a
  // NOOP of its term and thereby every entry an earlier run left, which replays them.
  Drive();
  if (!failure_.ok()) return failure_;
  uv_check_start(&check_, OnCheck);
  return Status::OK();
}

void CommandLog::SetHandlers(ApplyHandler on_apply, FailureHandler on_failure,
                             BatchDoneHandler on_batch_done) {
  on_batch_done_ = std::move(on_batch_done);
  on_apply_ = std::move(on_apply);
  on_failure_ = std::move(on_failure);
}

uint64_t CommandLog::applied_index() const {
  if (!raft_) return 0;
  // What the table reflects: Raft's handed-out index unless entries wait for a table job.
  return deferred_.empty() && !table_job_ ? raft_->applied_index() : applied_through_;
}

uint64_t CommandLog::last_index() const { return raft_ ? raft_->last_index() : 0; }

const std::vector<std::string>& CommandLog::recovery_notes() const {
  static const std::vector<std::string> kNone;
  return store_ ? store_->recovery_notes() : kNone;
}

Status CommandLog::Propose(pb::Command command) {
  if (!failure_.ok()) return failure_;
  if (closing_) return Status::Unavailable("node is stopping");
  MESH_RETURN_IF_ERROR(persist_.disk().Admit(command));
  // An OpenSession alone is not worth an fsync: nobody waits for it (the hello is answered
  // at once) and the session's first real command, ordered after it, will carry it to disk.
  // Anything else must be synced soon: keep poll from blocking until it is.
  if (!command.has_open_session()) {
    if (urgent_pending_ == 0) uv_idle_start(&idle_, OnIdle);
    ++urgent_pending_;
  }
  pending_.push_back(std::move(command));
  return Status::OK();
}

void CommandLog::OnCheck(uv_check_t* h) {
  auto* self = static_cast<CommandLog*>(h->data);
  if (self->step_pending_) {
    // Peers' messages were stepped in this iteration: execute what they produced now (a
    // follower's append delays the leader's commit), with any pending proposals.
    self->step_pending_ = false;
    self->Flush();
    return;
  }
  if (self->urgent_pending_ == 0) return;  // nothing, or only OpenSessions: no hurry
  // Gather. Under load, the clients answered by the last batch send their next commands a
  // moment after the answers (a wake-up across CPUs costs ~90 us on small VMs). Syncing the
  // first one to arrive at once splits the clients into two alternating half-batches, each
  // paying a whole fsync; and a client that sends an unlock and its next lock back to back
  // pays two. So while this batch is smaller than the last one, keep polling (the idle
  // handle keeps poll from blocking) for at most gather_us, then sync what there is. A lone
  // client sending one command at a time (last batch of one) never waits. Measured on the
  // 2-vCPU machine, alternating runs: 16 clients 16-21k -> 25-32k cycles/s, one client
  // p50 0.38-0.51 -> 0.26-0.32 ms.
  if (self->options_.gather_us > 0 && self->last_batch_size_ > 1 &&
      self->pending_.size() < self->last_batch_size_) {
    uint64_t now = uv_hrtime();
    if (self->gather_started_ns_ == 0) self->gather_started_ns_ = now;
    if (now - self->gather_started_ns_ < self->options_.gather_us * 1000) return;
  }
  self->Flush();
}

void CommandLog::OnIdle(uv_idle_t* h) {
  // Only keeps the poll phase from blocking while proposals wait; OnCheck flushes.
  auto* self = static_cast<CommandLog*>(h->data);
  if (self->urgent_pending_ == 0 && !self->step_pending_) uv_idle_stop(h);
}

void CommandLog::OnTimer(uv_timer_t* h) {
  auto* self = static_cast<CommandLog*>(h->data);
  if (!self->failure_.ok() || self->closing_) return;
  self->raft_->Tick(NowUs());
  self->RetryUnapplied();
  self->ProposePending();
  self->Drive();
}

void CommandLog::Step(pb::RaftMessage&& message) {
  if (!failure_.ok() || closing_ || !raft_) return;
  raft_->Step(NowUs(), std::move(message));
  // Executed at the end of this loop iteration (OnCheck), so that everything the messages
  // received in one iteration produce — appends from the leader, proposals forwarded by
  // followers, acknowledgements — is persisted with one fsync and sent in one write per
  // peer. The idle handle keeps poll from blocking before that.
  if (!step_pending_) {
    step_pending_ = true;
    uv_idle_start(&idle_, OnIdle);
  }
}

Status CommandLog::Bootstrap(const pb::ClusterConfig& config) {
  if (!failure_.ok()) return failure_;
  MESH_RETURN_IF_ERROR(raft_->Bootstrap(NowUs(), config));
  Drive();
  return failure_;
}

Status CommandLog::ProposeMembership(const core::raft::MembershipChange& change) {
  if (!failure_.ok()) return failure_;
  MESH_RETURN_IF_ERROR(raft_->ProposeMembership(NowUs(), change));
  Drive();
  return Status::OK();
}

Status CommandLog::TransferLeadership(const std::string& to) {
  if (!failure_.ok()) return failure_;
  MESH_RETURN_IF_ERROR(raft_->TransferLeadership(NowUs(), to));
  Drive();
  return Status::OK();
}

bool CommandLog::HasLeaderLease() const {
  return raft_ && failure_.ok() && raft_->HasLeaderLease(NowUs());
}

void CommandLog::ForgetSession(const pb::SessionKey& session) {
  // A session being closed must not be re-opened, nor get a lock, by a late retry of its
  // own commands (a retried OpenSession applied after the close would open a session that
  // nobody will ever close). Copies already sent can still arrive; the close is ordered
  // after them whenever the leader does not change in between.
  auto same = [&](const pb::SessionKey& k) {
    return k.node_id() == session.node_id() && k.client_id() == session.client_id();
  };
  for (auto it = unapplied_.begin(); it != unapplied_.end();) {
    pb::Command c;
    bool drop = false;
    if (c.ParseFromString(it->first)) {
      switch (c.body_case()) {
        case pb::Command::kOpenSession:
          drop = same(c.open_session().session());
          break;
        case pb::Command::kAcquire:
          drop = same(c.acquire().session());
          break;
        case pb::Command::kRelease:
          drop = same(c.release().session());
          break;
        case pb::Command::kCancel:
          drop = same(c.cancel().session());
          break;
        default:
          break;
      }
    }
    it = drop ? unapplied_.erase(it) : std::next(it);
  }
}

void CommandLog::RetryUnapplied() {
  if (options_.standalone || unapplied_.empty() || raft_->leader().empty()) return;
  const uint64_t now = NowUs();
  const uint64_t after = options_.election_timeout_us;
  const std::string& leader = raft_->leader();
  // In the order first proposed: the table applies a session's commands only in seq order
  // (and none before its OpenSession), so a reordered retry would be refused.
  std::vector<std::pair<uint64_t, std::unordered_map<std::string, Proposed>::value_type*>> due;
  const bool leading = raft_->role() == core::raft::Role::kLeader;
  for (auto it = unapplied_.begin(); it != unapplied_.end();) {
    const Proposed& p = it->second;
    if (p.leader == leader && now - p.when < after) {
      ++it;
      continue;
    }
    // A command the leader takes from no peer (core/admission.h, R4: the expiry of another
    // node, a decision of the leader that proposed it) is void once this node no longer
    // leads: forwarded, it would only be refused, again and again.
    pb::Command c;
    if (!leading && c.ParseFromString(it->first) &&
        !core::AdmitCommand(options_.node_id, c).accepted) {
      it = unapplied_.erase(it);
      continue;
    }
    due.emplace_back(p.order, &*it);
    ++it;
  }
  std::sort(due.begin(), due.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, entry] : due) {
    if (!raft_->Propose(now, entry->first).ok()) break;  // no leader after all: next time
    entry->second.when = now;
    entry->second.leader = leader;
  }
}

void CommandLog::Retry() {
  if (!failure_.ok() || closing_ || !raft_ || options_.standalone) return;
  RetryUnapplied();
  ProposePending();
  Drive();
}

void CommandLog::Flush() {
  if (!failure_.ok() || !raft_) return;
  ProposePending();
  Drive();
}

void CommandLog::ProposePending() {
  if (pending_.empty() || !failure_.ok()) return;
  uv_idle_stop(&idle_);
  urgent_pending_ = 0;
  gather_started_ns_ = 0;
  last_batch_size_ = pending_.size();
  if (!options_.standalone && raft_->leader() != last_pending_leader_) {
    // A new leader: what an earlier one was given (and may have lost) goes to it first, in
    // its first order, so no newer command overtakes an older one across the change. The
    // table depends on that order (an OpenSession below a newer one of the same node is
    // refused, a command before its OpenSession finds no session); net/node/session_router.cc recovers
    // when it is broken anyway (messages lost on one leader's link), but that costs a
    // round trip.
    last_pending_leader_ = raft_->leader();
    RetryUnapplied();
  }
  size_t taken = 0;
  core::raft::Time now = NowUs();
  for (; taken < pending_.size(); ++taken) {
    std::string data;
    pending_[taken].SerializeToString(&data);
    auto entry = unapplied_.end();
    bool fresh = false;
    if (!options_.standalone) {
      if (pending_[taken].has_close_session())
        ForgetSession(pending_[taken].close_session().session());
      std::tie(entry, fresh) = unapplied_.try_emplace(data);
      if (fresh) entry->second.order = ++proposal_order_;
      entry->second.when = now;
      entry->second.leader = raft_->leader();
    }
    Status st = raft_->Propose(now, std::move(data));
    if (st.IsUnavailable()) {
      // No leader yet (an election under way): this command and the rest stay buffered for
      // the next tick, and only there (RetryUnapplied would propose a second copy).
      if (fresh) unapplied_.erase(entry);
      break;
    }
    if (!st.ok()) {
      Fail(st.Annotate("cannot propose a command"));
      return;
    }
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(taken));
  for (const pb::Command& c : pending_) {
    if (!c.has_open_session()) ++urgent_pending_;
  }
}

void CommandLog::Drive() {
  if (driving_) return;  // a handler proposed from inside: the loop below picks it up
  driving_ = true;
  // Bounded: each round persists or queues real work; a runaway would be a Raft bug.
  for (int round = 0; round < 10000 && failure_.ok(); ++round) {
    // A full disk: the held batches wait for the retry that the tick timer brings
    // (PersistQueue::MayPersist); Raft goes on meanwhile as during a sync.
    if (sync_in_flight_ || !persist_.MayPersist(NowUs())) {
      // The log is syncing on the pool thread; Raft goes on. What it produces meanwhile
      // is sent and applied now, as Raft's batches say (core/raft/raft.h), and persisted
      // after the sync, with the next one.
      if (!raft_->HasBatch()) {
        if (applied_since_done_) {
          applied_since_done_ = false;
          if (on_batch_done_) on_batch_done_();
        }
        break;
      }
      if (!TakeAndStart()) break;
      continue;
    }
    if (!persist_.empty()) {
      if (!PersistWaiting()) break;
      continue;
    }
    if (!raft_->HasBatch()) {
      if (applied_since_done_) {
        applied_since_done_ = false;
        if (on_batch_done_) on_batch_done_();
        MaybeSnapshot();
        continue;
      }
      break;
    }
    if (!TakeAndStart()) break;
    if (!PersistWaiting()) break;
  }
  driving_ = false;
  ArmTimer();
}

bool CommandLog::TakeAndStart() {
  core::raft::Batch batch = raft_->TakeBatch();
  // Core decides (core/raft/raft.h): the batch's messages may go now and its committed
  // entries be applied now; what must wait for this node's disk, Raft holds back until
  // Advance. This only executes.
  if (sender_ && !batch.messages.empty()) {
    for (pb::RaftMessage& m : batch.messages) sender_(std::move(m));
    // Written now if a sync follows or runs: it must not hold them until the loop next polls.
    if (send_flusher_ && (sync_in_flight_ || core::raft::NeedsDisk(batch))) send_flusher_();
  }
  batch.messages.clear();
  Status st = ApplyBatch(batch);
  if (!st.ok()) {
    Fail(st);
    return false;
  }
  applied_since_done_ = applied_since_done_ || !batch.committed.empty();
  persist_.Push(std::move(batch));
  return true;
}

bool CommandLog::PersistWaiting() {
  // Batches are persisted and advanced in the order taken. All buffered ones share one
  // sync: off the loop when fsync is on, else (or for a snapshot, rare) here.
  std::vector<core::raft::Batch> batches = persist_.Take();
  bool disk = false;
  // A node alone in its configuration has no peer to serve while its disk syncs, and
  // off the loop it would pay the pool thread's two wake-ups per batch (see net/node/node.cc).
  bool in_loop = !options_.sync_off_loop || !options_.fsync ||
                 raft_->config().members_size() <= 1 || persist_.retrying();
  for (const core::raft::Batch& b : batches) disk = disk || core::raft::NeedsDisk(b);
  if (!disk || in_loop) {
    size_t persisted = 0;
    Status st;
    for (; persisted < batches.size(); ++persisted) {
      const core::raft::Batch& b = batches[persisted];
      st = core::raft::NeedsDisk(b) ? core::raft::PersistBatch(store_.get(), b)
                                    : core::raft::BufferBatch(store_.get(), b);
      if (!st.ok()) break;
    }
    if (!Settle(std::move(batches), persisted, st)) {
      Fail(st.Annotate("cannot write the log"));
      return false;
    }
    return st.ok();
  }
  // The writes and the fsync off the loop: a sync blocks for 0.2-1.5 ms, and a snapshot of
  // a big lock table takes a write of its whole size; a node that did that in its loop could
  // read neither its peers' messages nor its clients' commands meanwhile (its peers would
  // call it silent, its followers elect another leader), and its CPU time and its disk time
  // would add up instead of overlapping. The loop does not touch the store until
  // OnSyncDone.
  syncing_ = std::move(batches);
  sync_in_flight_ = true;
  sync_work_.data = this;
  int rc = uv_queue_work(loop_, &sync_work_, OnSyncWork, OnSyncDone);
  if (rc != 0) {
    sync_in_flight_ = false;
    Fail(Status::IOError(std::string("cannot queue the log sync: ") + uv_strerror(rc)));
    return false;
  }
  return true;
}

void CommandLog::OnSyncWork(uv_work_t* req) {
  auto* self = static_cast<CommandLog*>(req->data);
  std::vector<const core::raft::Batch*> batches;
  batches.reserve(self->syncing_.size());
  for (const core::raft::Batch& b : self->syncing_) batches.push_back(&b);
  self->sync_status_ = core::raft::PersistBatches(self->store_.get(), batches);
}

void CommandLog::OnSyncDone(uv_work_t* req, int status) {
  auto* self = static_cast<CommandLog*>(req->data);
  self->sync_in_flight_ = false;
  std::vector<core::raft::Batch> synced = std::move(self->syncing_);
  self->syncing_.clear();
  if (status != 0) {
    self->Fail(Status::IOError(std::string("the log sync did not run: ") + uv_strerror(status)));
  } else if (!self->sync_status_.ok() || (self->failure_.ok() && !self->closing_)) {
    // One PersistBatches call: all of them are durable, or none is known to be. Persisted:
    // Raft counts them durable and releases what waited for them. Refused for want of
    // space: held, and Drive takes what Raft has meanwhile and arms the retry.
    const Status st = self->sync_status_;
    const size_t persisted = st.ok() ? synced.size() : 0;
    if (!self->Settle(std::move(synced), persisted, st)) {
      self->Fail(st.Annotate("cannot write the log"));
    } else if (!self->closing_) {
      self->Drive();
    }
  }
  if (self->closing_) self->MaybeFinishClose();
}

Status CommandLog::ApplyBatch(const core::raft::Batch& batch) {
  if (table_job_ || !deferred_.empty()) {
    // The table is being snapshotted or restored on the pool: it must not change. Later
    // batches wait in order (committed entries are durable on a quorum; only their effect
    // on this node's table, and the answers to its clients, are later).
    deferred_.push_back(Deferred{batch.snapshot, batch.committed});
    return Status::OK();
  }
  if (batch.snapshot && options_.sync_off_loop) {
    // Decoding and restoring a big table takes seconds: on the pool, the entries after.
    deferred_.push_back(Deferred{nullptr, batch.committed});
    auto job = std::make_unique<TableJob>();
    job->restore = true;
    job->index = batch.snapshot->meta.index();
    job->bytes = batch.snapshot->data.size();
    job->snapshot = batch.snapshot;
    StartTableJob(std::move(job));
    return Status::OK();
  }
  return ApplyNow(batch.snapshot, batch.committed);
}

Status CommandLog::ApplyNow(const std::shared_ptr<const core::raft::Snapshot>& snapshot,
                            const std::vector<pb::Entry>& committed) {
  if (snapshot) {
    pb::LockTableSnapshot s;
    if (!s.ParseFromString(snapshot->data)) {
      return Status::Corruption("a snapshot received from the leader does not parse");
    }
    // Restore leaves the table unchanged on error.
    MESH_RETURN_IF_ERROR(table_->Restore(s).Annotate("cannot restore a received snapshot"));
    last_snapshot_index_ = snapshot->meta.index();
    last_snapshot_bytes_ = snapshot->data.size();
    last_snapshot_held_ = table_->held_count();
    log_bytes_since_snapshot_ = 0;
  }
  if (snapshot) applied_through_ = std::max(applied_through_, snapshot->meta.index());
  for (const pb::Entry& e : committed) {
    applied_through_ = std::max(applied_through_, e.index());
    if (e.type() != pb::ENTRY_COMMAND) continue;
    if (e.index() <= table_->applied_index()) continue;  // covered by the snapshot
    log_bytes_since_snapshot_ += e.data().size();
    if (!unapplied_.empty()) unapplied_.erase(e.data());
    pb::Command cmd;
    if (!cmd.ParseFromString(e.data())) {
      return Status::Corruption("log entry " + std::to_string(e.index()) +
                                " does not parse as a command");
    }
    core::ApplyResult r = table_->Apply(e.index(), cmd);
    if (on_apply_) on_apply_(e.index(), cmd, r);
  }
  return Status::OK();
}

Status CommandLog::ApplyDeferred() {
  while (!deferred_.empty() && !table_job_) {
    Deferred d = std::move(deferred_.front());
    deferred_.pop_front();
    if (d.snapshot) {
      deferred_.push_front(Deferred{nullptr, std::move(d.committed)});
      auto job = std::make_unique<TableJob>();
      job->restore = true;
      job->index = d.snapshot->meta.index();
      job->bytes = d.snapshot->data.size();
      job->snapshot = std::move(d.snapshot);
      StartTableJob(std::move(job));
      break;
    }
    MESH_RETURN_IF_ERROR(ApplyNow(nullptr, d.committed));
    applied_since_done_ = applied_since_done_ || !d.committed.empty();
  }
  return Status::OK();
}

void CommandLog::StartTableJob(std::unique_ptr<TableJob> job) {
  job->log = this;
  job->req.data = job.get();
  job->start_ns = uv_hrtime();
  table_job_ = std::move(job);
  int rc = uv_queue_work(loop_, &table_job_->req, OnTableJobWork, OnTableJobDone);
  if (rc != 0) {
    table_job_.reset();
    Fail(Status::IOError(std::string("cannot queue a lock-table snapshot: ") + uv_strerror(rc)));
  }
}

void CommandLog::OnTableJobWork(uv_work_t* req) {
  // Pool thread. The loop only reads the table meanwhile (status, listings, leases).
  auto* job = static_cast<TableJob*>(req->data);
  if (job->restore) {
    pb::LockTableSnapshot s;
    const bool parsed = s.ParseFromString(job->snapshot->data);
    job->snapshot.reset();  // raft may still hold it for its own followers
    if (!parsed) {
      job->status = Status::Corruption("a snapshot received from the leader does not parse");
      return;
    }
    job->restored = std::make_unique<core::LockTable>();
    job->status = job->restored->Restore(s).Annotate("cannot restore a received snapshot");
  } else {
    job->log->table_->EncodeSnapshot(&job->data);
  }
}

void CommandLog::OnTableJobDone(uv_work_t* req, int status) {
  auto* job = static_cast<TableJob*>(req->data);
  CommandLog* self = job->log;
  std::unique_ptr<TableJob> done = std::move(self->table_job_);
  const uint64_t ms = (uv_hrtime() - done->start_ns) / 1'000'000;
  if (status != 0) {
    self->Fail(
        Status::IOError(std::string("a lock-table snapshot did not run: ") + uv_strerror(status)));
  } else if (!done->status.ok()) {
    self->Fail(done->status);
  } else if (self->failure_.ok() && !self->closing_) {
    if (done->restore) {
      self->table_ = std::move(done->restored);
      self->last_snapshot_index_ = done->index;
      self->last_snapshot_bytes_ = done->bytes;
      self->last_snapshot_held_ = self->table_->held_count();
      self->log_bytes_since_snapshot_ = 0;
      self->applied_through_ = std::max(self->applied_through_, done->index);
      if (self->options_.log && ms >= 50) {
        self->options_.log("snapshot at index " + std::to_string(done->index) +
                           " received and restored: " + std::to_string(self->table_->held_count()) +
                           " locks held, in " + std::to_string(ms) + " ms off the loop");
      }
    } else if (done->index <= self->raft_->snapshot_meta().index()) {
      // A newer snapshot arrived from the leader meanwhile (it waits in deferred_): this
      // one is of no use.
    } else {
      const size_t bytes = done->data.size();
      Status st = self->raft_->Compact(done->index, std::move(done->data));
      if (!st.ok()) {
        self->Fail(st.Annotate("cannot take a snapshot"));
      } else {
        self->last_snapshot_index_ = done->index;  // the next batch carries it to disk
        self->last_snapshot_bytes_ = bytes;
        self->last_snapshot_held_ = done->held;
        if (self->options_.log && ms >= 50) {
          self->options_.log("snapshot at index " + std::to_string(done->index) + ": " +
                             std::to_string(self->table_->held_count()) + " locks held, " +
                             std::to_string(bytes) + " bytes, built in " + std::to_string(ms) +
                             " ms off the loop");
        }
      }
    }
    if (self->failure_.ok()) {
      Status st = self->ApplyDeferred();
      if (!st.ok()) self->Fail(st);
    }
    if (self->failure_.ok()) self->Drive();
  }
  if (self->closing_) self->MaybeFinishClose();
}

void CommandLog::ArmTimer() {
  if (closing_ || !failure_.ok() || !raft_) return;
  core::raft::Time now = NowUs();
  core::raft::Time deadline = raft_->next_deadline();
  deadline = std::min<core::raft::Time>(deadline, persist_.next_retry_us());
  uint64_t delay_ms = deadline > now ? (deadline - now + 999) / 1000 : 0;
  uv_timer_start(&timer_, OnTimer, delay_ms, 0);
}

void CommandLog::MaybeSnapshot() {
  if (table_job_ || !deferred_.empty()) return;
  uint64_t applied = raft_->applied_index();
  core::SnapshotPolicyOptions policy;
  policy.every = options_.snapshot_every;
  policy.stagger =
      core::SnapshotStagger(options_.snapshot_every, options_.node_id, options_.standalone);
  policy.log_ratio = options_.snapshot_log_ratio;
  const core::SnapshotProgress progress{applied - last_snapshot_index_, log_bytes_since_snapshot_,
                                        last_snapshot_bytes_, last_snapshot_held_,
                                        table_->held_count()};
  if (!core::SnapshotDue(policy, progress)) return;
  // The entries applied from here on count towards the next snapshot.
  log_bytes_since_snapshot_ = 0;
  if (options_.sync_off_loop) {
    // Building and encoding a big table takes a second per million locks or more: on the
    // pool, while the loop serves peers and clients (committed entries wait meanwhile).
    applied_through_ = applied;  // nothing waits: the table reflects every entry handed out
    auto job = std::make_unique<TableJob>();
    job->index = applied;
    job->held = table_->held_count();
    StartTableJob(std::move(job));
    return;
  }
  const uint64_t start_ns = uv_hrtime();
  std::string data;
  table_->EncodeSnapshot(&data);
  const size_t bytes = data.size();
  Status st = raft_->Compact(applied, std::move(data));
  if (!st.ok()) {
    Fail(st.Annotate("cannot take a snapshot"));
    return;
  }
  last_snapshot_index_ = applied;  // the next batch carries it to disk
  last_snapshot_bytes_ = bytes;
  last_snapshot_held_ = table_->held_count();
  const uint64_t ms = (uv_hrtime() - start_ns) / 1'000'000;
  // Once per snapshot_every entries; worth a line when it costs the loop noticeable time.
  if (options_.log && ms >= 50) {
    options_.log("snapshot at index " + std::to_string(applied) + ": " +
                 std::to_string(table_->held_count()) + " locks held, " + std::to_string(bytes) +
                 " bytes, taken in " + std::to_string(ms) + " ms on the loop");
  }
}

bool CommandLog::Settle(std::vector<core::raft::Batch> batches, size_t persisted,
                        const Status& error) {
  using Outcome = core::raft::PersistQueue::Outcome;
  const Outcome outcome =
      persist_.Settle(std::move(batches), persisted, error, NowUs(),
                      [this](const core::raft::Batch& b) { raft_->Advance(b); });
  if (outcome == Outcome::kFatal) return false;
  if (outcome == Outcome::kBecameFull && on_disk_) on_disk_(error);
  if (outcome == Outcome::kSpaceReturned && on_disk_) on_disk_(Status::OK());
  return true;
}

void CommandLog::Fail(const Status& why) {
  if (!failure_.ok()) return;
  failure_ = why;
  pending_.clear();
  urgent_pending_ = 0;
  if (on_failure_) on_failure_(why);
}

void CommandLog::Close(std::function<void()> done) {
  closing_ = true;
  close_done_ = std::move(done);
  auto on_closed = [](uv_handle_t* h) {
    auto* self = static_cast<CommandLog*>(h->data);
    --self->open_handles_;
    self->MaybeFinishClose();
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
}

void CommandLog::MaybeFinishClose() {
  // A sync in flight still uses store_ on the pool thread: done (after which the owner may
  // destroy this object) waits for it.
  if (open_handles_ != 0 || sync_in_flight_ || table_job_ || !close_done_) return;
  auto cb = std::move(close_done_);
  cb();
}

}  // namespace mesh::net

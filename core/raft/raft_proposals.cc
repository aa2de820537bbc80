// core/raft/raft_proposals: proposals, membership changes, leadership transfer, compaction
// and the batch interface of Raft (see raft.h; the rest is in raft.cc).
#include <algorithm>

#include "core/raft/raft_impl.h"
#include "core/raft/raft_validate.h"

namespace mesh::core::raft {

// ---------------------------------------------------------------------------- proposals

Status Raft::Impl::Propose(Time now, std::string data, uint64_t* index) {
  now_ = now;
  if (index != nullptr) *index = 0;
  if (role_ == Role::kLeader) {
    if (!transfer_target_.empty()) {
      return Status::Unavailable("raft: leadership transfer in progress");
    }
    AppendOwn(pb::ENTRY_COMMAND, std::move(data), nullptr);
    if (index != nullptr) *index = log_.last_index();
    return Status::OK();
  }
  if (lead_.empty()) return Status::Unavailable("raft: no leader known");
  if (!forward_) {
    forward_ = NewMessage(pb::PROPOSE, lead_);
  }
  pb::Entry* e = forward_->add_entries();
  e->set_type(pb::ENTRY_COMMAND);
  e->set_data(std::move(data));
  return Status::OK();
}

Status Raft::Impl::ProposeMembership(Time now, const MembershipChange& change) {
  now_ = now;
  if (role_ != Role::kLeader) return Status::Unavailable("raft: not the leader");
  if (!transfer_target_.empty()) {
    return Status::Unavailable("raft: leadership transfer in progress");
  }
  if (log_.config_index() > commit_) {
    return Status::Unavailable("raft: a configuration change is still uncommitted");
  }
  if (commit_ < term_start_index_) {
    return Status::Unavailable("raft: the leader has not committed an entry of its term yet");
  }
  pb::ClusterConfig next = log_.config();
  const pb::Member* member = FindMember(next, change.id);
  switch (change.kind) {
    case MembershipChange::Kind::kAddLearner: {
      if (change.id.empty()) return Status::InvalidArgument("raft: empty member id");
      if (member != nullptr) {
        return Status::InvalidArgument("raft: " + change.id + " is already a member");
      }
      pb::Member* added = next.add_members();
      added->set_id(change.id);
      added->set_voter(false);
      added->set_address(change.address);
      break;
    }
    case MembershipChange::Kind::kPromote: {
      if (member == nullptr || member->voter()) {
        return Status::InvalidArgument("raft: " + change.id + " is not a learner");
      }
      auto it = progress_.find(change.id);
      if (it == progress_.end() || it->second.match < commit_) {
        return Status::Unavailable("raft: learner " + change.id + " has not caught up");
      }
      for (pb::Member& m : *next.mutable_members()) {
        if (m.id() == change.id) m.set_voter(true);
      }
      break;
    }
    case MembershipChange::Kind::kRemove: {
      if (member == nullptr) {
        return Status::InvalidArgument("raft: " + change.id + " is not a member");
      }
      if (member->voter() && CountVoters(next) == 1) {
        return Status::InvalidArgument("raft: cannot remove the last voter");
      }
      auto* members = next.mutable_members();
      for (int i = 0; i < members->size(); ++i) {
        if (members->Get(i).id() == change.id) {
          members->erase(members->begin() + i);
          break;
        }
      }
      break;
    }
  }
  AppendOwn(pb::ENTRY_CONFIG, next.SerializeAsString(), &next);
  SyncProgressWithConfig();
  if (MaybeCommit()) StepDownIfRemoved();
  return Status::OK();
}

Status Raft::Impl::TransferLeadership(Time now, const std::string& to) {
  now_ = now;
  if (role_ != Role::kLeader) return Status::Unavailable("raft: not the leader");
  if (!transfer_target_.empty()) {
    return Status::Unavailable("raft: a leadership transfer is already in progress");
  }
  if (to == opt_.id || !IsVoter(to)) {
    return Status::InvalidArgument("raft: " + to + " is not another voter");
  }
  transfer_target_ = to;
  transfer_deadline_ = now + opt_.election_timeout;
  Progress& pr = progress_.at(to);
  if (pr.match == log_.last_index()) {
    SendTimeoutNow(to);
  } else {
    flush_needed_ = true;
  }
  return Status::OK();
}

Status Raft::Impl::Compact(uint64_t index, std::string data) {
  if (index <= log_.snapshot().index() || index > applied_) {
    return Status::InvalidArgument("raft: compaction index " + std::to_string(index) +
                                   " outside (" + std::to_string(log_.snapshot().index()) + ", " +
                                   std::to_string(applied_) + "]");
  }
  pb::SnapshotMeta meta;
  meta.set_index(index);
  meta.set_term(log_.TermOrZero(index));
  *meta.mutable_config() = log_.ConfigAt(index);
  log_.CompactTo(meta);
  auto snap = std::make_shared<const Snapshot>(Snapshot{std::move(meta), std::move(data)});
  pending_compacted_ = snap;
  KeepSnapshot(std::move(snap));
  return Status::OK();
}

// ---------------------------------------------------------------------------- batches

bool Raft::Impl::HasBatch() {
  Flush();
  HardState hs{term_, vote_, commit_};
  return pending_install_ || pending_compacted_ || !messages_.empty() || !released_.empty() ||
         log_.unsent_from() <= log_.last_index() || commit_ > applied_ ||
         hs.term != last_hard_state_.term || hs.vote != last_hard_state_.vote ||
         hs.commit != last_hard_state_.commit;
}

// True if `m` tells its addressee that entries or a snapshot are durable here: an
// APPEND_RESPONSE (an acknowledgement the leader counts toward commit and match; its
// rejections and the answer to a deposed leader are held too, which costs nothing).
static bool ClaimsDurableLog(const pb::RaftMessage& m) { return m.type() == pb::APPEND_RESPONSE; }

Batch Raft::Impl::TakeBatch() {
  Flush();
  Batch batch;
  batch.seq = ++taken_seq_;
  batch.snapshot = std::move(pending_install_);
  pending_install_.reset();
  log_.TakeUnsent(&batch.entries);
  bool term_or_vote = false;
  if (term_ != last_hard_state_.term || vote_ != last_hard_state_.vote ||
      commit_ != last_hard_state_.commit) {
    term_or_vote = term_ != last_hard_state_.term || vote_ != last_hard_state_.vote;
    last_hard_state_ = HardState{term_, vote_, commit_};
    batch.hard_state = last_hard_state_;
  }
  batch.must_sync = batch.snapshot || !batch.entries.empty() || term_or_vote;
  if (batch.must_sync) sync_seq_ = batch.seq;
  if (term_or_vote) term_vote_seq_ = batch.seq;
  if (batch.must_sync && persisted_seq_ < batch.seq) {
    Unpersisted u;
    u.seq = batch.seq;
    if (!batch.entries.empty()) {
      u.entry_index = batch.entries.back().index();
      u.entry_term = batch.entries.back().term();
    }
    if (batch.snapshot) {
      u.snapshot_index = batch.snapshot->meta.index();
      u.snapshot_term = batch.snapshot->meta.term();
    }
    unpersisted_.push_back(u);
  }
  batch.compacted = std::move(pending_compacted_);
  pending_compacted_.reset();
  // Messages: first those released since the last batch, then this batch's own — each held
  // until what it depends on is persisted (raft.h): the latest change of term or vote, and
  // for an APPEND_RESPONSE the latest batch that must_sync (this one or an earlier one).
  batch.messages = std::move(released_);
  released_.clear();
  for (pb::RaftMessage& m : messages_) {
    uint64_t after = term_vote_seq_;
    if (ClaimsDurableLog(m)) after = std::max(after, sync_seq_);
    if (after > persisted_seq_) {
      held_.push_back(Held{after, std::move(m)});
    } else {
      batch.messages.push_back(std::move(m));
    }
  }
  messages_.clear();
  uint64_t commit = std::min(commit_, log_.last_index());
  if (commit > applied_) {
    batch.committed.reserve(commit - applied_);
    for (uint64_t i = std::max(applied_ + 1, log_.first_index()); i <= commit; ++i) {
      batch.committed.push_back(log_.At(i));
    }
    applied_ = commit;
  }
  batch.next_deadline = NextDeadline();
  return batch;
}

void Raft::Impl::Advance(const Batch& batch) {
  const uint64_t seq = std::min(batch.seq, taken_seq_);
  if (seq <= persisted_seq_) return;
  persisted_seq_ = seq;
  while (!unpersisted_.empty() && unpersisted_.front().seq <= seq) {
    const Unpersisted& u = unpersisted_.front();
    if (u.snapshot_index > 0) log_.MarkStable(u.snapshot_index, u.snapshot_term);
    if (u.entry_index > 0) log_.MarkStable(u.entry_index, u.entry_term);
    unpersisted_.pop_front();
  }
  // Each held message leaves once what it waits for is persisted, in the order produced.
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->after <= seq) {
      released_.push_back(std::move(it->message));
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
  if (MaybeCommit()) StepDownIfRemoved();
}

std::vector<PeerProgress> Raft::Impl::progress() const {
  std::vector<PeerProgress> out;
  if (role_ != Role::kLeader) return out;
  for (const auto& [id, pr] : progress_) {
    PeerProgress p;
    p.id = id;
    p.voter = IsVoter(id);
    p.match = pr.match;
    p.next = pr.next;
    p.state = pr.StateName();
    p.last_contact = pr.last_contact;
    if (pr.snapshot != nullptr) {
      p.snapshot_size = pr.snapshot->data.size();
      p.snapshot_acked = pr.snapshot_acked;
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace mesh::core::raft

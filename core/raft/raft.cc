// core/raft/raft: see raft.h. The structure follows etcd's raft (raft.go): one Step that
// first sorts messages by term, then dispatches by role; outputs accumulate in the Impl and
// leave through TakeBatch.
#include "core/raft/raft.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/raft/raft_impl.h"
#include "core/raft/raft_validate.h"

namespace mesh::core::raft {

Random::~Random() = default;
SnapshotLoader::~SnapshotLoader() = default;

const char* RoleName(Role role) {
  switch (role) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
    case Role::kLearner:
      return "learner";
  }
  return "?";
}

// ---------------------------------------------------------------------------- set-up

Status Raft::Impl::Load(const PersistentState& state, Time now) {
  now_ = now;
  std::vector<std::pair<uint64_t, pb::ClusterConfig>> configs;
  MESH_RETURN_IF_ERROR(ValidatePersistentState(state, &configs));
  std::vector<pb::Entry> entries = state.entries;
  uint64_t last_term = entries.empty() ? state.snapshot.term() : entries.back().term();
  log_.Reset(state.snapshot, std::move(entries), std::move(configs));
  if (state.snapshot.index() > 0 && opt_.snapshot_loader == nullptr) {
    KeepSnapshot(std::make_shared<const Snapshot>(Snapshot{state.snapshot, state.snapshot_data}));
  }
  last_hard_state_ = state.hard_state;
  // An entry of a later term than the hard state: its hard state record was lost in a
  // crash; this node cannot have voted in that term (the vote would have been synced).
  term_ = std::max(state.hard_state.term, last_term);
  vote_ = term_ == state.hard_state.term ? state.hard_state.vote : "";
  commit_ = std::clamp(state.hard_state.commit, log_.snapshot().index(), log_.last_index());
  applied_ = log_.snapshot().index();
  ResetElectionDeadline(now);
  // A restarted voter may have promised a leader not to vote before now + election timeout.
  if (term_ > 0) vote_guard_until_ = now + opt_.election_timeout;
  if (Promotable() && Quorum() == 1) Campaign(now, CampaignKind::kElection);
  return Status::OK();
}

Status Raft::Impl::Bootstrap(Time now, const pb::ClusterConfig& config) {
  now_ = now;
  if (term_ != 0 || log_.last_index() != 0 || log_.snapshot().index() != 0) {
    return Status::Unavailable("raft: bootstrap of a node that already has state");
  }
  MESH_RETURN_IF_ERROR(ValidateConfig(config));
  if (!FindVoter(config, opt_.id)) {
    return Status::InvalidArgument("raft: bootstrap config must make " + opt_.id + " a voter");
  }
  pb::Entry entry;
  entry.set_term(1);
  entry.set_index(1);
  entry.set_type(pb::ENTRY_CONFIG);
  entry.set_data(config.SerializeAsString());
  log_.Append(std::move(entry), &config);
  term_ = 1;
  commit_ = 1;
  ResetElectionDeadline(now);
  if (Quorum() == 1) Campaign(now, CampaignKind::kElection);
  return Status::OK();
}

// ---------------------------------------------------------------------------- roles

size_t Raft::Impl::Quorum() const { return CountVoters(log_.config()) / 2 + 1; }

// The dissertation's rule for removing a server (§4.2.2): a server that is not part of its
// own latest configuration still starts elections while that configuration's entry is not
// committed, because it may still be needed to commit it; it does not count its own vote.
// Without it, voters {a, b} where a leads and appends C_new = {b} while b is down deadlock:
// check-quorum steps a down before C_new commits, b comes back without C_new and needs a's
// vote, and a refuses it (a's log is longer) and would never campaign itself.
//
// Only a node that was a voter of the configuration the latest entry replaced, and is no
// member of the latest one (it is being removed; a learner, or a node being added, never
// campaigns). It asks and counts only the voters of the latest configuration (Campaign,
// Tally, Quorum; its self-vote is recorded but not counted), so it wins only with a quorum
// of C_new, which intersects every quorum of the configuration C_new replaced (they differ
// by one server) and its own: one leader per term, as for any candidate. As leader it
// manages a cluster it is not part of (MaybeCommit, QuorumActive and HasLeaderLease count
// only the others) and steps down once the configuration commits (StepDownIfRemoved).
// commit_ may lag the cluster's: a node removed by a committed configuration that never
// learnt the commit may still campaign, but with pre-vote and check-quorum it is refused by
// a cluster that has a leader (vote guard) or has moved past its log (IsUpToDate), and if
// it does win, its log held everything committed and its NOOP's commit makes it step down.
// A removal committed in this node's view (config_index <= commit_) ends the rule for good.
bool Raft::Impl::RemovalPending() const {
  const uint64_t at = log_.config_index();
  if (at <= commit_ || at <= log_.snapshot().index()) return false;
  if (FindMember(log_.config(), opt_.id) != nullptr) return false;
  return FindVoter(log_.ConfigAt(at - 1), opt_.id);
}

void Raft::Impl::ResetElectionDeadline(Time now) {
  Time jitter = opt_.election_timeout > 0 ? random_->Next() % opt_.election_timeout : 0;
  election_deadline_ = now + opt_.election_timeout + jitter;
}

void Raft::Impl::SetLead(const std::string& lead) {
  if (lead != lead_) forward_.reset();  // those proposals were meant for another node
  lead_ = lead;
}

void Raft::Impl::BecomeFollower(Time now, uint64_t term, const std::string& lead) {
  if (term > term_) {
    term_ = term;
    vote_.clear();
  }
  role_ = Role::kFollower;
  SetLead(lead);
  progress_.clear();
  votes_.clear();
  AbortTransfer();
  flush_needed_ = false;
  ResetElectionDeadline(now);
}

void Raft::Impl::BecomeLeader(Time now) {
  role_ = Role::kLeader;
  SetLead(opt_.id);
  votes_.clear();
  leader_since_ = now;
  heartbeat_deadline_ = now + opt_.heartbeat_interval;
  AbortTransfer();
  progress_.clear();
  incoming_.reset();  // a leader receives no snapshot
  SyncProgressWithConfig();
  // The NOOP commits every earlier term's entry once it is committed itself (§3.6.2).
  AppendOwn(pb::ENTRY_NOOP, "", nullptr);
  term_start_index_ = log_.last_index();
  MaybeCommit();
}

void Raft::Impl::Campaign(Time now, CampaignKind kind) {
  ResetElectionDeadline(now);
  progress_.clear();
  votes_.clear();
  AbortTransfer();
  SetLead("");
  uint64_t campaign_term;
  pb::RaftMessageType type;
  if (kind == CampaignKind::kPreVote) {
    role_ = Role::kPreCandidate;
    campaign_term = term_ + 1;  // the term it would campaign in; term_ does not change
    type = pb::PRE_VOTE;
  } else {
    role_ = Role::kCandidate;
    term_ += 1;
    vote_ = opt_.id;
    campaign_term = term_;
    type = pb::VOTE;
  }
  votes_[opt_.id] = true;
  for (const pb::Member& member : log_.config().members()) {
    if (!member.voter() || member.id() == opt_.id) continue;
    pb::RaftMessage m = NewMessage(type, member.id());
    m.set_term(campaign_term);
    m.set_index(log_.last_index());
    m.set_log_term(log_.last_term());
    m.set_transfer(kind == CampaignKind::kTransfer);
    messages_.push_back(std::move(m));
  }
  Tally(now);
}

// Counts the answers of the configuration's voters and acts once the outcome is known.
void Raft::Impl::Tally(Time now) {
  size_t granted = 0, rejected = 0;
  for (const auto& [id, yes] : votes_) {
    if (!IsVoter(id)) continue;
    (yes ? granted : rejected) += 1;
  }
  size_t quorum = Quorum();
  if (granted >= quorum) {
    if (role_ == Role::kPreCandidate) {
      Campaign(now, CampaignKind::kElection);
    } else {
      BecomeLeader(now);
    }
  } else if (rejected >= quorum) {
    BecomeFollower(now, term_, "");
  }
}

pb::RaftMessage Raft::Impl::NewMessage(pb::RaftMessageType type, const std::string& to) const {
  pb::RaftMessage m;
  m.set_type(type);
  m.set_from(opt_.id);
  m.set_to(to);
  m.set_term(term_);
  return m;
}

Role Raft::Impl::role() const {
  if (role_ == Role::kFollower && !Promotable() && FindMember(log_.config(), opt_.id)) {
    return Role::kLearner;
  }
  return role_;
}

// ---------------------------------------------------------------------------- timers

void Raft::Impl::Tick(Time now) {
  now_ = now;
  if (role_ == Role::kLeader) {
    if (!transfer_target_.empty() && now >= transfer_deadline_) {
      bool step_down = timeout_now_sent_;
      AbortTransfer();
      // A TIMEOUT_NOW still in the network may elect the target: give up leadership (and
      // with it the lease) rather than risk two leaders' acknowledgements overlapping.
      if (step_down) {
        BecomeFollower(now, term_, "");
        return;
      }
    }
    if (now >= heartbeat_deadline_) {
      heartbeat_deadline_ = now + opt_.heartbeat_interval;
      if (opt_.check_quorum && !QuorumActive(now)) {
        BecomeFollower(now, term_, "");
        return;
      }
      for (auto& [id, pr] : progress_) SendHeartbeat(id, &pr);
    }
    return;
  }
  if (now >= election_deadline_) {
    if (MayCampaign()) {
      Campaign(now, opt_.pre_vote ? CampaignKind::kPreVote : CampaignKind::kElection);
    } else {
      ResetElectionDeadline(now);
    }
  }
}

bool Raft::Impl::QuorumActive(Time now) const {
  size_t active = Promotable() ? 1 : 0;
  Time since = now > opt_.election_timeout ? now - opt_.election_timeout : 0;
  for (const auto& [id, pr] : progress_) {
    if (IsVoter(id) && pr.last_contact >= since) ++active;
  }
  return active >= Quorum();
}

Time Raft::Impl::NextDeadline() const {
  if (role_ == Role::kLeader) {
    Time t = heartbeat_deadline_;
    if (!transfer_target_.empty()) t = std::min(t, transfer_deadline_);
    return t;
  }
  return election_deadline_;
}

bool Raft::Impl::HasLeaderLease(Time now) const {
  if (role_ != Role::kLeader || !opt_.check_quorum || timeout_now_sent_) return false;
  std::vector<Time> acks;
  if (Promotable()) acks.push_back(now);
  for (const auto& [id, pr] : progress_) {
    if (pr.lease_acked && IsVoter(id)) acks.push_back(pr.lease_ack);
  }
  size_t quorum = Quorum();
  if (acks.size() < quorum) return false;
  std::nth_element(acks.begin(), acks.begin() + (quorum - 1), acks.end(), std::greater<>());
  Time since = acks[quorum - 1];
  auto lease =
      static_cast<Time>(static_cast<double>(opt_.election_timeout) * (1.0 - opt_.max_drift));
  return since + lease > now;
}

// ---------------------------------------------------------------------------- messages

void Raft::Impl::Step(Time now, const pb::RaftMessage& m) {
  now_ = now;
  if (m.to() != opt_.id || m.from().empty() || m.from() == opt_.id) return;
  if (m.type() <= pb::RAFT_UNKNOWN || m.type() > pb::SNAPSHOT_RESPONSE) return;
  if (m.type() == pb::PROPOSE) {
    HandlePropose(m);
    return;
  }
  if (m.term() == 0 || m.term() >= kMaxIndex) return;
  const bool vote_request = m.type() == pb::VOTE || m.type() == pb::PRE_VOTE;
  if (vote_request && m.log_term() > m.term()) return;
  if (m.term() > term_) {
    if (vote_request && opt_.check_quorum && !m.transfer() &&
        (role_ == Role::kLeader || now < vote_guard_until_)) {
      return;  // a leader is alive as far as this node knows: do not help depose it
    }
    if (m.type() == pb::PRE_VOTE || (m.type() == pb::PRE_VOTE_RESPONSE && !m.reject())) {
      // Pre-votes are for a future term; they change nothing here.
    } else {
      bool from_leader =
          m.type() == pb::APPEND || m.type() == pb::HEARTBEAT || m.type() == pb::SNAPSHOT;
      BecomeFollower(now, m.term(), from_leader ? m.from() : "");
    }
  } else if (m.term() < term_) {
    if (m.type() == pb::APPEND || m.type() == pb::HEARTBEAT || m.type() == pb::SNAPSHOT) {
      // A deposed leader: tell it the new term so that it steps down.
      pb::RaftMessage r = NewMessage(pb::APPEND_RESPONSE, m.from());
      r.set_send_time(m.send_time());
      messages_.push_back(std::move(r));
    } else if (m.type() == pb::PRE_VOTE) {
      pb::RaftMessage r = NewMessage(pb::PRE_VOTE_RESPONSE, m.from());
      r.set_reject(true);
      messages_.push_back(std::move(r));
    }
    return;
  }
  if (vote_request) {
    HandleVoteRequest(now, m);
    return;
  }
  switch (role_) {
    case Role::kLeader:
      StepLeader(now, m);
      break;
    case Role::kPreCandidate:
    case Role::kCandidate:
      StepCandidate(now, m);
      break;
    default:
      StepFollower(now, m);
      break;
  }
}

void Raft::Impl::HandleVoteRequest(Time now, const pb::RaftMessage& m) {
  const bool pre = m.type() == pb::PRE_VOTE;
  const bool can_vote =
      vote_ == m.from() || (vote_.empty() && lead_.empty()) || (pre && m.term() > term_);
  pb::RaftMessage r = NewMessage(pre ? pb::PRE_VOTE_RESPONSE : pb::VOTE_RESPONSE, m.from());
  if (can_vote && log_.IsUpToDate(m.index(), m.log_term())) {
    r.set_term(m.term());
    if (!pre) {
      vote_ = m.from();
      ResetElectionDeadline(now);
    }
  } else {
    r.set_reject(true);
  }
  messages_.push_back(std::move(r));
}

void Raft::Impl::StepLeader(Time now, const pb::RaftMessage& m) {
  auto it = progress_.find(m.from());
  if (it == progress_.end()) return;  // not a member: nothing it says matters here
  Progress* pr = &it->second;
  if (m.type() != pb::APPEND_RESPONSE && m.type() != pb::HEARTBEAT_RESPONSE &&
      m.type() != pb::SNAPSHOT_RESPONSE) {
    return;
  }
  pr->last_contact = now;
  // The peer accepted this leader's term when it answered the message sent at send_time.
  if (m.send_time() >= leader_since_ && m.send_time() <= now) {
    pr->lease_ack = pr->lease_acked ? std::max(pr->lease_ack, m.send_time()) : m.send_time();
    pr->lease_acked = true;
  }
  if (m.type() == pb::APPEND_RESPONSE) {
    HandleAppendResponse(m.from(), pr, m);
  } else if (m.type() == pb::SNAPSHOT_RESPONSE) {
    HandleSnapshotResponse(m.from(), pr, m);
  } else {
    HandleHeartbeatResponse(now, m.from(), pr);
  }
}

void Raft::Impl::HandleAppendResponse(const std::string& from, Progress* pr,
                                      const pb::RaftMessage& m) {
  if (m.index() > log_.last_index()) return;  // about an index this leader never had
  if (m.reject()) {
    uint64_t hint = std::min(m.reject_hint(), m.index());
    if (m.log_term() > 0) hint = log_.FindConflictByTerm(hint, m.log_term()).first;
    if (pr->MaybeDecrTo(m.index(), hint)) {
      if (pr->state == Progress::State::kReplicate) pr->BecomeProbe();
      SendAppend(from, pr, /*allow_empty=*/true);
    }
    return;
  }
  if (!pr->MaybeUpdate(m.index())) return;
  switch (pr->state) {
    case Progress::State::kProbe:
      pr->BecomeReplicate();
      break;
    case Progress::State::kSnapshot:
      if (pr->match + 1 >= log_.first_index() || pr->match >= pr->pending_snapshot) {
        pr->BecomeProbe();
        pr->BecomeReplicate();
      }
      break;
    case Progress::State::kReplicate:
      pr->inflights.FreeLE(m.index());
      break;
  }
  flush_needed_ = true;
  if (MaybeCommit()) StepDownIfRemoved();
  if (role_ == Role::kLeader && from == transfer_target_ && !timeout_now_sent_ &&
      pr->match == log_.last_index()) {
    SendTimeoutNow(from);
  }
}

void Raft::Impl::HandleSnapshotResponse(const std::string& from, Progress* pr,
                                        const pb::RaftMessage& m) {
  if (pr->state != Progress::State::kSnapshot || pr->snapshot == nullptr ||
      m.index() != pr->pending_snapshot) {
    return;  // about a transfer that is over (or never was)
  }
  const uint64_t held = m.snapshot_offset();
  if (held > pr->snapshot_sent_end) return;  // more than was ever sent: nonsense
  if (held < pr->snapshot_acked) {
    // The follower lost its partial copy (it restarted, or heard another leader): resume
    // from what it holds.
    pr->snapshot_next = pr->snapshot_acked = held;
    pr->snapshot_rewound_at = now_;
  } else if (m.reject()) {
    // A chunk arrived past the end of the follower's copy: one before it was lost. Send
    // again from what it holds — unless the refused chunk went out before the last such
    // rewind (the rest of a window that was already resent).
    if (m.send_time() < pr->snapshot_rewound_at) return;
    pr->snapshot_acked = held;
    pr->snapshot_next = held;
    pr->snapshot_rewound_at = now_;
  } else if (held > pr->snapshot_acked) {
    pr->snapshot_acked = held;
    // After a rewind the follower may hold more than is being resent: skip to it.
    pr->snapshot_next = std::max(pr->snapshot_next, held);
  } else {
    return;  // the answer to a duplicate chunk: nothing new
  }
  pr->snapshot_sent_time = now_;
  SendSnapshotChunks(from, pr);
}

void Raft::Impl::HandleHeartbeatResponse(Time now, const std::string& from, Progress* pr) {
  if (pr->state == Progress::State::kSnapshot &&
      now - pr->snapshot_sent_time >= opt_.election_timeout) {
    // No chunk was acknowledged for an election timeout: chunks were probably lost with a
    // connection. Resume from the acknowledged offset (the follower answers a chunk it
    // cannot use with the offset it wants, and a snapshot it already has with its commit).
    if (pr->snapshot != nullptr) {
      pr->snapshot_next = pr->snapshot_acked;
      pr->snapshot_sent_time = pr->snapshot_rewound_at = now;
      SendSnapshotChunks(from, pr);
    } else {
      pr->BecomeProbe();
    }
  }
  pr->probe_sent = false;
  if (pr->state == Progress::State::kReplicate && pr->inflights.Full()) {
    pr->inflights.FreeFirstOne();
  }
  if (pr->match < log_.last_index() || pr->state == Progress::State::kProbe) {
    SendAppend(from, pr, /*allow_empty=*/true);
  }
}

void Raft::Impl::StepCandidate(Time now, const pb::RaftMessage& m) {
  switch (m.type()) {
    case pb::APPEND:
    case pb::HEARTBEAT:
    case pb::SNAPSHOT:
      // Someone won this term.
      BecomeFollower(now, term_, m.from());
      StepFollower(now, m);
      return;
    case pb::PRE_VOTE_RESPONSE:
    case pb::VOTE_RESPONSE: {
      const bool pre = role_ == Role::kPreCandidate;
      if ((m.type() == pb::PRE_VOTE_RESPONSE) != pre) return;
      // Granted pre-votes carry the future term; everything else this term.
      uint64_t expected = pre && !m.reject() ? term_ + 1 : term_;
      if (m.term() != expected || !IsVoter(m.from())) return;
      votes_.emplace(m.from(), !m.reject());  // the first answer counts
      Tally(now);
      return;
    }
    default:
      return;
  }
}

void Raft::Impl::StepFollower(Time now, const pb::RaftMessage& m) {
  switch (m.type()) {
    case pb::APPEND:
    case pb::HEARTBEAT:
    case pb::SNAPSHOT:
      SetLead(m.from());
      ResetElectionDeadline(now);
      vote_guard_until_ = now + opt_.election_timeout;
      if (m.type() == pb::APPEND) {
        HandleAppend(m);
      } else if (m.type() == pb::HEARTBEAT) {
        HandleHeartbeat(m);
      } else {
        HandleSnapshot(m);
      }
      return;
    case pb::TIMEOUT_NOW:
      if (m.from() == lead_ && Promotable()) Campaign(now, CampaignKind::kTransfer);
      return;
    default:
      return;
  }
}

void Raft::Impl::HandlePropose(const pb::RaftMessage& m) {
  if (role_ != Role::kLeader || !transfer_target_.empty()) return;  // the proposer retries
  for (const pb::Entry& e : m.entries()) {
    if (e.type() != pb::ENTRY_COMMAND) return;  // only commands may be forwarded
  }
  for (const pb::Entry& e : m.entries()) AppendOwn(pb::ENTRY_COMMAND, e.data(), nullptr);
}

void Raft::Impl::HandleAppend(const pb::RaftMessage& m) {
  std::vector<std::pair<uint64_t, pb::ClusterConfig>> configs;
  if (!ValidateAppend(m, &configs)) return;
  pb::RaftMessage r = NewMessage(pb::APPEND_RESPONSE, m.from());
  r.set_send_time(m.send_time());
  const uint64_t prev = m.index();
  if (prev < commit_) {
    r.set_index(commit_);
  } else if (log_.MatchTerm(prev, m.log_term())) {
    const uint64_t last_new = prev + m.entries_size();
    int k = 0;
    while (k < m.entries_size() && log_.MatchTerm(m.entries(k).index(), m.entries(k).term())) {
      ++k;
    }
    if (k < m.entries_size()) {
      const uint64_t conflict = m.entries(k).index();
      if (conflict <= commit_) return;  // would rewrite a committed entry: nonsense
      log_.TruncateFrom(conflict);
      size_t c = 0;
      while (c < configs.size() && configs[c].first < conflict) ++c;
      pb::RaftMessage* movable = movable_ == &m ? movable_ : nullptr;
      for (; k < m.entries_size(); ++k) {
        const pb::Entry& e = m.entries(k);
        const pb::ClusterConfig* config = nullptr;
        if (c < configs.size() && configs[c].first == e.index()) config = &configs[c++].second;
        if (movable != nullptr) {
          log_.Append(std::move(*movable->mutable_entries(k)), config);
        } else {
          log_.Append(e, config);
        }
      }
    }
    commit_ = std::max(commit_, std::min(m.commit(), last_new));
    r.set_index(last_new);
  } else {
    auto [hint_index, hint_term] =
        log_.FindConflictByTerm(std::min(prev, log_.last_index()), m.log_term());
    r.set_reject(true);
    r.set_index(prev);
    r.set_reject_hint(hint_index);
    r.set_log_term(hint_term);
  }
  messages_.push_back(std::move(r));
}

void Raft::Impl::HandleHeartbeat(const pb::RaftMessage& m) {
  commit_ = std::max(commit_, std::min(m.commit(), log_.last_index()));
  pb::RaftMessage r = NewMessage(pb::HEARTBEAT_RESPONSE, m.from());
  r.set_send_time(m.send_time());
  messages_.push_back(std::move(r));
}

void Raft::Impl::AnswerSnapshot(const pb::RaftMessage& m, pb::RaftMessageType type, uint64_t index,
                                uint64_t offset, bool reject) {
  pb::RaftMessage r = NewMessage(type, m.from());
  r.set_send_time(m.send_time());
  r.set_index(index);
  r.set_snapshot_offset(offset);
  r.set_reject(reject);
  messages_.push_back(std::move(r));
}

void Raft::Impl::HandleSnapshot(const pb::RaftMessage& m) {
  const pb::SnapshotMeta& meta = m.snapshot_meta();
  if (!ValidateSnapshotMeta(meta, m.term())) return;
  const uint64_t offset = m.snapshot_offset();
  const uint64_t size = m.snapshot_size();
  const std::string& chunk = m.snapshot_data();
  if (offset > size || chunk.size() > size - offset) return;  // a chunk outside its snapshot
  if (meta.index() <= commit_) {
    incoming_.reset();
    AnswerSnapshot(m, pb::APPEND_RESPONSE, commit_, 0);
    return;
  }
  if (log_.MatchTerm(meta.index(), meta.term())) {
    // The log already holds the snapshot's last entry: it is committed, keep the log.
    incoming_.reset();
    commit_ = meta.index();
    AnswerSnapshot(m, pb::APPEND_RESPONSE, commit_, 0);
    return;
  }
  const bool same = incoming_ && incoming_->from == m.from() && incoming_->term == m.term() &&
                    incoming_->size == size && incoming_->meta.index() == meta.index() &&
                    incoming_->meta.term() == meta.term();
  if (offset == 0) {
    // The start of a transfer (or the leader starting over): whatever was collected goes.
    incoming_ = IncomingSnapshot{m.from(), m.term(), meta, size, std::string()};
  } else if (!same || offset != incoming_->data.size()) {
    // A chunk of another transfer, a duplicate, or one past a gap (reject: send again from
    // the offset answered).
    const uint64_t held = same ? incoming_->data.size() : 0;
    AnswerSnapshot(m, pb::SNAPSHOT_RESPONSE, meta.index(), held, /*reject=*/offset > held);
    return;
  }
  incoming_->data.append(chunk);
  if (incoming_->data.size() < size) {
    AnswerSnapshot(m, pb::SNAPSHOT_RESPONSE, meta.index(), incoming_->data.size());
    return;
  }
  log_.Restore(meta);
  commit_ = applied_ = meta.index();
  auto installed = std::make_shared<const Snapshot>(Snapshot{meta, std::move(incoming_->data)});
  incoming_.reset();
  pending_install_ = installed;
  KeepSnapshot(std::move(installed));
  pending_compacted_.reset();  // older than what is being installed
  AnswerSnapshot(m, pb::APPEND_RESPONSE, meta.index(), 0);
}

// ---------------------------------------------------------------------------- replication

void Raft::Impl::AppendOwn(pb::EntryType type, std::string data, const pb::ClusterConfig* config) {
  pb::Entry e;
  e.set_term(term_);
  e.set_index(log_.last_index() + 1);
  e.set_type(type);
  e.set_data(std::move(data));
  log_.Append(std::move(e), config);
  flush_needed_ = true;
}

void Raft::Impl::SyncProgressWithConfig() {
  const pb::ClusterConfig& config = log_.config();
  std::set<std::string> members;
  for (const pb::Member& member : config.members()) {
    if (member.id() == opt_.id) continue;
    members.insert(member.id());
    if (progress_.count(member.id()) == 0) {
      Progress pr(log_.last_index() + 1, opt_.max_inflight);
      pr.last_contact = now_;
      progress_.emplace(member.id(), std::move(pr));
    }
  }
  for (auto it = progress_.begin(); it != progress_.end();) {
    it = members.count(it->first) ? std::next(it) : progress_.erase(it);
  }
  if (!transfer_target_.empty() && !IsVoter(transfer_target_)) AbortTransfer();
}

bool Raft::Impl::SendAppend(const std::string& to, Progress* pr, bool allow_empty) {
  if (pr->IsPaused()) return false;
  const uint64_t prev = pr->next - 1;
  uint64_t prev_term = 0;
  if (pr->next < log_.first_index() || !log_.Term(prev, &prev_term)) {
    SendSnapshot(to, pr);
    return false;
  }
  pb::RaftMessage m = NewMessage(pb::APPEND, to);
  m.set_index(prev);
  m.set_log_term(prev_term);
  m.set_commit(commit_);
  m.set_send_time(now_);
  uint64_t bytes = 0;
  const uint64_t last = log_.last_index();
  for (uint64_t i = pr->next; i <= last; ++i) {
    const pb::Entry& e = log_.At(i);
    uint64_t size = e.data().size() + 16;
    if (m.entries_size() > 0 && bytes + size > opt_.max_append_bytes) break;
    bytes += size;
    *m.add_entries() = e;
  }
  if (m.entries_size() == 0 && !allow_empty) return false;
  if (m.entries_size() > 0) {
    pr->SentEntries(m.entries(m.entries_size() - 1).index());
  } else if (pr->state == Progress::State::kProbe) {
    pr->probe_sent = true;
  }
  pr->sent_commit = commit_;
  messages_.push_back(std::move(m));
  return true;
}

void Raft::Impl::KeepSnapshot(std::shared_ptr<const Snapshot> s) {
  snapshot_weak_ = s;
  snapshot_ = opt_.snapshot_loader == nullptr ? std::move(s) : nullptr;
}

std::shared_ptr<const Snapshot> Raft::Impl::SnapshotForTransfer() {
  const pb::SnapshotMeta& want = log_.snapshot();
  auto same = [&](const std::shared_ptr<const Snapshot>& s) {
    return s != nullptr && s->meta.index() == want.index() && s->meta.term() == want.term();
  };
  if (same(snapshot_)) return snapshot_;
  std::shared_ptr<const Snapshot> s = snapshot_weak_.lock();
  if (same(s)) return s;
  if (opt_.snapshot_loader == nullptr || want.index() == 0) return nullptr;
  s = opt_.snapshot_loader->Load(want);
  if (!same(s)) return nullptr;  // unreadable now, or not the one the log starts from
  snapshot_weak_ = s;
  return s;
}

void Raft::Impl::SendSnapshot(const std::string& to, Progress* pr) {
  // Null only if the loader cannot read it now: the next heartbeat tries again.
  std::shared_ptr<const Snapshot> snap = SnapshotForTransfer();
  if (snap == nullptr) return;
  pr->BecomeSnapshot(snap->meta.index());
  pr->snapshot = std::move(snap);
  pr->snapshot_sent_time = now_;
  SendSnapshotChunks(to, pr);
}

void Raft::Impl::SendSnapshotChunks(const std::string& to, Progress* pr) {
  const Snapshot& snap = *pr->snapshot;
  const uint64_t size = snap.data.size();
  const uint64_t chunk = std::max<uint64_t>(opt_.max_snapshot_chunk_bytes, 1);
  const uint64_t window = chunk * std::max<size_t>(opt_.max_snapshot_chunks_inflight, 1);
  // An empty snapshot is one empty chunk; otherwise chunks until the last byte is out.
  bool first = pr->snapshot_next == 0;
  while ((pr->snapshot_next < size || (size == 0 && first)) &&
         pr->snapshot_next - pr->snapshot_acked < window) {
    first = false;
    const uint64_t len = std::min(chunk, size - pr->snapshot_next);
    pb::RaftMessage m = NewMessage(pb::SNAPSHOT, to);
    *m.mutable_snapshot_meta() = snap.meta;
    m.set_snapshot_offset(pr->snapshot_next);
    m.set_snapshot_size(size);
    m.set_snapshot_data(snap.data.substr(pr->snapshot_next, len));
    m.set_send_time(now_);
    pr->snapshot_next += len;
    pr->snapshot_sent_end = std::max(pr->snapshot_sent_end, pr->snapshot_next);
    messages_.push_back(std::move(m));
  }
}

void Raft::Impl::SendHeartbeat(const std::string& to, Progress* pr) {
  pb::RaftMessage m = NewMessage(pb::HEARTBEAT, to);
  uint64_t commit = std::min(pr->match, commit_);
  m.set_commit(commit);
  m.set_send_time(now_);
  pr->sent_commit = std::max(pr->sent_commit, commit);
  messages_.push_back(std::move(m));
}

void Raft::Impl::SendTimeoutNow(const std::string& to) {
  messages_.push_back(NewMessage(pb::TIMEOUT_NOW, to));
  timeout_now_sent_ = true;
}

bool Raft::Impl::MaybeCommit() {
  if (role_ != Role::kLeader) return false;
  std::vector<uint64_t> matches;
  if (Promotable()) matches.push_back(log_.stable_index());
  for (const auto& [id, pr] : progress_) {
    if (IsVoter(id)) matches.push_back(pr.match);
  }
  size_t quorum = Quorum();
  if (matches.size() < quorum) return false;
  std::nth_element(matches.begin(), matches.begin() + (quorum - 1), matches.end(),
                   std::greater<>());
  uint64_t index = matches[quorum - 1];
  // Only an entry of the current term is committed by counting replicas (§3.6.2).
  if (index <= commit_ || log_.TermOrZero(index) != term_) return false;
  commit_ = index;
  flush_needed_ = true;
  return true;
}

// A leader whose removal is committed hands over to the most up-to-date voter and steps down.
void Raft::Impl::StepDownIfRemoved() {
  if (role_ != Role::kLeader || Promotable() || log_.config_index() > commit_) return;
  const std::string* best = nullptr;
  uint64_t best_match = 0;
  for (const auto& [id, pr] : progress_) {
    if (IsVoter(id) && pr.match >= best_match) {
      best = &id;
      best_match = pr.match;
    }
  }
  if (best != nullptr && best_match == log_.last_index()) SendTimeoutNow(*best);
  BecomeFollower(now_, term_, "");
}

void Raft::Impl::AbortTransfer() {
  transfer_target_.clear();
  transfer_deadline_ = 0;
  timeout_now_sent_ = false;
}

void Raft::Impl::Flush() {
  if (role_ == Role::kLeader && flush_needed_) {
    flush_needed_ = false;
    for (auto& [id, pr] : progress_) {
      bool sent = false;
      while (SendAppend(id, &pr, /*allow_empty=*/false)) {
        sent = true;
        if (pr.state != Progress::State::kReplicate) break;
      }
      if (!sent && std::min(pr.match, commit_) > pr.sent_commit) SendHeartbeat(id, &pr);
    }
  }
  if (forward_) {
    messages_.push_back(std::move(*forward_));
    forward_.reset();
  }
}

// ---------------------------------------------------------------------------- Raft

Raft::Raft() = default;
Raft::~Raft() = default;

Status Raft::Open(const RaftOptions& options, const PersistentState& state, Random* random,
                  Time now, std::unique_ptr<Raft>* out) {
  if (options.id.empty()) return Status::InvalidArgument("raft: empty node id");
  if (options.election_timeout == 0 || options.heartbeat_interval == 0 ||
      options.heartbeat_interval >= options.election_timeout) {
    return Status::InvalidArgument("raft: need 0 < heartbeat_interval < election_timeout");
  }
  if (options.max_inflight == 0) return Status::InvalidArgument("raft: max_inflight is 0");
  if (options.max_drift < 0 || options.max_drift >= 1) {
    return Status::InvalidArgument("raft: max_drift must be in [0, 1)");
  }
  if (random == nullptr) return Status::InvalidArgument("raft: no Random");
  std::unique_ptr<Raft> raft(new Raft());
  raft->impl_ = std::make_unique<Impl>(options, random);
  MESH_RETURN_IF_ERROR(raft->impl_->Load(state, now));
  *out = std::move(raft);
  return Status::OK();
}

Status Raft::Bootstrap(Time now, const pb::ClusterConfig& config) {
  return impl_->Bootstrap(now, config);
}
void Raft::Tick(Time now) { impl_->Tick(now); }
void Raft::Step(Time now, const pb::RaftMessage& message) { impl_->Step(now, message); }
void Raft::Step(Time now, pb::RaftMessage&& message) {
  impl_->movable_ = &message;
  impl_->Step(now, message);
  impl_->movable_ = nullptr;
}
Status Raft::Propose(Time now, std::string data, uint64_t* index) {
  return impl_->Propose(now, std::move(data), index);
}
Status Raft::ProposeMembership(Time now, const MembershipChange& change) {
  return impl_->ProposeMembership(now, change);
}
Status Raft::TransferLeadership(Time now, const std::string& to) {
  return impl_->TransferLeadership(now, to);
}
Status Raft::Compact(uint64_t index, std::string snapshot_data) {
  return impl_->Compact(index, std::move(snapshot_data));
}
bool Raft::HasBatch() const { return impl_->HasBatch(); }
Batch Raft::TakeBatch() { return impl_->TakeBatch(); }
void Raft::Advance(const Batch& batch) { impl_->Advance(batch); }
Time Raft::next_deadline() const { return impl_->NextDeadline(); }
const std::string& Raft::id() const { return impl_->opt_.id; }
Role Raft::role() const { return impl_->role(); }
uint64_t Raft::term() const { return impl_->term_; }
const std::string& Raft::leader() const { return impl_->lead_; }
uint64_t Raft::commit_index() const { return impl_->commit_; }
uint64_t Raft::applied_index() const { return impl_->applied_; }
uint64_t Raft::last_index() const { return impl_->log_.last_index(); }
const pb::SnapshotMeta& Raft::snapshot_meta() const { return impl_->log_.snapshot(); }
const pb::ClusterConfig& Raft::config() const { return impl_->log_.config(); }
std::vector<PeerProgress> Raft::progress() const { return impl_->progress(); }
bool Raft::HasLeaderLease(Time now) const { return impl_->HasLeaderLease(now); }

}  // namespace mesh::core::raft
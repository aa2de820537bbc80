// mesh::Node's sessions and requests (net/node/node_impl.h): locks and unlocks proposed for a
// client's session, the log's applied entries answered to their clients, client id claims,
// reopened and resequenced sessions, deadlines and their undo, the session lease's lapse and
// the grants held back meanwhile.
#include <uv.h>

#include <algorithm>
#include <random>

#include "net/node/node_impl.h"
#include "net/support/log_line.h"

namespace mesh::net::node_impl {

// ------------------------------------------------------------ lock and unlock requests

int64_t NodeImpl::LockDeadline(const pb::LockRequest& l, int64_t arrived_ms) {
  if (l.timeout_ms() > 0) return arrived_ms + l.timeout_ms();
  if (l.timeout_ms() == 0) return arrived_ms + kCommitWaitMs;
  return -1;
}

Status NodeImpl::HandleLock(Conn* c, const pb::ClientRequest& req, int64_t arrived_ms) {
  const pb::LockRequest& l = req.lock();
  if (quiesce_) {
    return Reply(c, req.request_id(), pb::UNAVAILABLE, "node is shutting down");
  }
  if (!pb::LockMode_IsValid(l.mode())) {
    return Reply(c, req.request_id(), pb::INVALID, "unknown lock mode " + std::to_string(l.mode()));
  }
  pb::Command cmd;
  auto* acq = cmd.mutable_acquire();
  SetSession(c, acq->mutable_session());
  uint64_t seq = ++c->next_seq;
  acq->set_seq(seq);
  acq->set_resource(l.resource());
  acq->set_mode(l.mode());
  acq->set_quantity(l.quantity());
  acq->set_wait(l.timeout_ms() != 0);
  acq->set_no_create(l.no_create());
  acq->set_idle_lifespan_ms(std::max<int64_t>(0, l.idle_lifespan_ms()));
  acq->set_stamp_unix_ns(net::WallClockNs());
  const bool replayed = arrived_ms >= 0;
  const int64_t deadline =
      LockDeadline(l, replayed ? arrived_ms : static_cast<int64_t>(uv_now(loop_)));
  c->ops[seq] = Conn::Op{req.request_id(), deadline, l.resource()};
  if (deadline >= 0 && !replayed) {
    deadlines_.emplace(deadline, Deadline{c->serial, req.request_id(), false});
    ArmDeadlineTimer();
  }
  return ProposeForSession(c, req.request_id(), seq, std::move(cmd));
}

Status NodeImpl::ProposeForSession(Conn* c, uint64_t request_id, uint64_t seq, pb::Command cmd) {
  if (!c->open_applied) c->unconfirmed[seq] = cmd;
  Status st = log_->Propose(std::move(cmd));
  if (st.ok()) return Status::OK();
  c->unconfirmed.erase(seq);  // refused (e.g. disk full): answered now, never re-proposed
  return Reply(c, request_id, pb::UNAVAILABLE, st.ToString());
}

void NodeImpl::SetSession(const Conn* c, pb::SessionKey* key) {
  key->set_node_id(options_.node_id);
  key->set_client_id(c->client_id);
}

bool NodeImpl::ClientHolds(const Conn* c, uint64_t lock_id) {
  if (c->locks_lost || c->untold.count(lock_id) != 0) return false;
  pb::SessionKey key;
  SetSession(c, &key);
  return log_->table().Holds(key, lock_id);
}

// ------------------------------------------------------------ applied entries

Conn* NodeImpl::OwnConn(const pb::SessionKey& s) {
  if (s.node_id() != options_.node_id) return nullptr;
  auto it = sessions_.find(s.client_id());
  return it == sessions_.end() ? nullptr : it->second;
}

void NodeImpl::OnApplied(uint64_t index, const pb::Command& cmd, const core::ApplyResult& r) {
  switch (cmd.body_case()) {
    case pb::Command::kOpenSession: {
      const pb::SessionKey& key = cmd.open_session().session();
      if (key.node_id() != options_.node_id) break;
      if (abandoned_ids_.erase(key.client_id()) != 0) {
        // A session given up before its open was applied (Reopen): nobody uses it.
        if (r.result.code() == pb::GRANTED) {
          pb::Command close;
          *close.mutable_close_session()->mutable_session() = key;
          log_->Propose(std::move(close));
        }
        break;
      }
      Conn* c = OwnConn(key);
      if (!c || c->open_applied) break;
      if (r.result.code() == pb::GRANTED) {
        c->open_applied = true;
        c->unconfirmed.clear();
      } else {
        Reopen(c, "its session open was refused (" + r.result.message() + ")",
               /*open_refused=*/true);
      }
      break;
    }
    case pb::Command::kAcquire: {
      const pb::Acquire& a = cmd.acquire();
      Conn* c = OwnConn(a.session());
      if (!c) break;
      if (ReopenIfAhead(c, r.result)) break;
      if (r.result.code() == pb::STALE_SEQ) {
        Resequence(c, cmd);
        break;
      }
      auto it = c->ops.find(a.seq());
      if (it == c->ops.end()) break;
      Conn::Op op = it->second;
      c->ops.erase(it);
      if (op.given_up) {
        // Answered at its deadline before the log decided: undone now.
        if (r.result.code() == pb::GRANTED) {
          c->untold.insert(r.result.lock_id());
          ProposeUndo(c, pb::Command::kRelease, r.result.lock_id());
        }
        if (r.result.code() == pb::QUEUED) {
          c->waiting[r.result.lock_id()] = op;
          ProposeUndo(c, pb::Command::kCancel, r.result.lock_id());
        }
        break;
      }
      if (r.result.code() == pb::QUEUED) {
        c->waiting[r.result.lock_id()] = op;
      } else {
        ForgetDeadline(c->serial, op);
        SendResult(c, op.request_id, r.result);
      }
      break;
    }
    case pb::Command::kRelease: {
      const pb::Release& rel = cmd.release();
      Conn* c = OwnConn(rel.session());
      if (!c) break;
      if (ReopenIfAhead(c, r.result)) break;
      if (r.result.code() == pb::STALE_SEQ) {
        Resequence(c, cmd);
        break;
      }
      c->untold.erase(rel.lock_id());
      auto it = c->ops.find(rel.seq());
      if (it != c->ops.end()) {
        SendResult(c, it->second.request_id, r.result);
        c->ops.erase(it);
      }
      // An unlock naming one of this client's own queued requests withdrew it: that lock
      // request must still get its (one) answer.
      if (auto w = c->waiting.find(rel.lock_id());
          w != c->waiting.end() && r.result.code() == pb::CANCELLED) {
        const Conn::Op op = Settle(c, w);
        if (op.given_up) break;
        pb::CommandResult withdrawn;
        withdrawn.set_code(pb::CANCELLED);
        withdrawn.set_lock_id(rel.lock_id());
        withdrawn.set_message("request withdrawn by an unlock before it was granted");
        SendResult(c, op.request_id, withdrawn);
      }
      break;
    }
    case pb::Command::kCancel: {
      const pb::Cancel& can = cmd.cancel();
      Conn* c = OwnConn(can.session());
      if (!c) break;
      if (r.result.code() == pb::STALE_SEQ) {
        Resequence(c, cmd);
        break;
      }
      auto it = c->waiting.find(can.lock_id());
      if (it != c->waiting.end() && r.result.code() == pb::CANCELLED) {
        const Conn::Op op = Settle(c, it);
        if (op.given_up) break;
        pb::CommandResult timed_out;
        timed_out.set_code(pb::TIMED_OUT);
        timed_out.set_lock_id(can.lock_id());
        timed_out.set_message("timed out waiting for " + op.resource);
        SendResult(c, op.request_id, timed_out);
      }
      break;
    }
    default:
      break;
  }
  // Grants to queued requests of our clients (the issuer's own grant was answered above).
  for (const core::Grant& g : r.grants) {
    Conn* c = OwnConn(g.session);
    if (!c) continue;
    auto it = c->waiting.find(g.lock_id);
    if (it == c->waiting.end()) continue;
    const Conn::Op op = Settle(c, it);
    if (op.given_up) {
      c->untold.insert(g.lock_id);
      ProposeUndo(c, pb::Command::kRelease, g.lock_id);
      continue;
    }
    pb::CommandResult granted;
    granted.set_code(pb::GRANTED);
    granted.set_lock_id(g.lock_id);
    granted.set_token(g.token);
    granted.set_element(g.element);
    SendResult(c, op.request_id, granted);
  }
  for (const core::Withdrawal& w : r.withdrawals) {
    Conn* c = OwnConn(w.session);
    if (!c) continue;
    auto it = c->waiting.find(w.lock_id);
    if (it == c->waiting.end()) continue;
    const Conn::Op op = Settle(c, it);
    if (op.given_up) continue;
    pb::CommandResult res;
    res.set_code(w.code);
    res.set_lock_id(w.lock_id);
    res.set_message("request withdrawn");
    SendResult(c, op.request_id, res);
  }
  for (const core::Grant& g : r.released) {
    Conn* c = OwnConn(g.session);
    // Locks the client was not told of, or was told lost already, end in silence.
    if (!c || c->untold.erase(g.lock_id) != 0 || c->locks_lost || !c->stream) continue;
    pb::ClientResponse resp;
    auto* ev = resp.mutable_event();
    ev->set_lock_id(g.lock_id);
    ev->set_code(pb::LOST);
    ev->set_token(g.token);
    ev->set_message("session of this client was ended by the cluster");
    c->stream->Send(resp);
  }
  (void)index;
  if (cmd.has_expire_node() && cmd.expire_node().node_id() == options_.node_id) {
    // The cluster ended sessions of ours (a lapsed lease, or the leader's expiry): their
    // clients must reconnect to get new ones.
    CloseEndedSessions(cmd.expire_node().below_client_id());
  }
  if (cmd.has_claim_client_ids() && cmd.claim_client_ids().node_id() == options_.node_id) {
    OnOwnIdClaim(cmd.claim_client_ids(), r.result);
  }
  MaybeQuiesce();
  ArmIdleTimer();
}

void NodeImpl::CloseEndedSessions(uint64_t below) {
  std::vector<Conn*> ended;
  for (auto& [id, c] : sessions_) {
    if (below == 0 || id < below) ended.push_back(c);
  }
  for (Conn* c : ended) {
    // session_open stays true: closing proposes a CloseSession, which is a no-op for an
    // ended session but stops the retries of its commands (a late retried OpenSession
    // is refused by the table anyway).
    if (c->stream) {
      c->stream->Close(Status::Unavailable("the cluster expired this node's sessions"));
    }
  }
}

// ------------------------------------------------------------ reopened sessions
//
// The hello is answered, and the session's first commands proposed, without waiting for
// the OpenSession to be applied (see OnFrame, the hello). The table applies an OpenSession only
// above every client id this node opened before, and a command only after its open, so
// when the log orders them otherwise (a proposal lost with a leader, or on a link, and
// retried after newer ones) the session never opens. The client must not pay for that:
// its session is reopened under a new client id and its commands proposed again, in
// order, under the new id with new sequence numbers. The old id is given up (closed, if
// its open is applied after all), so a late copy of an old command grants nothing that
// stays held.

bool NodeImpl::ReopenIfAhead(Conn* c, const pb::CommandResult& result) {
  if (c->open_applied || result.code() != pb::NO_SESSION) return false;
  Reopen(c, "a command was ordered before its session open", /*open_refused=*/false);
  return true;
}

void NodeImpl::Reopen(Conn* c, const std::string& why, bool open_refused) {
  const uint64_t old = c->client_id;
  if (!open_refused) abandoned_ids_.insert(old);
  sessions_.erase(old);
  for (auto& [seq, cmd] : c->unconfirmed) c->stalled.emplace(seq, std::move(cmd));
  c->unconfirmed.clear();
  Log("client " + std::to_string(old) + " (pid " + std::to_string(c->pid) + "): " + why +
      "; reopening its session under a new client id");
  if (!c->stream) return;
  if (!IdsAvailable()) {
    c->session_open = false;
    AwaitIds(c);  // OnIdsClaimed opens it and proposes the stalled commands
    return;
  }
  Status st = OpenSessionFor(c);
  if (!st.ok()) {
    c->stream->Close(Status::Unavailable("node cannot open a session: " + st.ToString()));
    return;
  }
  ProposeStalled(c);
}

void NodeImpl::Resequence(Conn* c, pb::Command cmd) {
  uint64_t old_seq = 0;
  const uint64_t seq = ++c->next_seq;
  switch (cmd.body_case()) {
    case pb::Command::kAcquire:
      old_seq = cmd.acquire().seq();
      cmd.mutable_acquire()->set_seq(seq);
      break;
    case pb::Command::kRelease:
      old_seq = cmd.release().seq();
      cmd.mutable_release()->set_seq(seq);
      break;
    case pb::Command::kCancel:
      old_seq = cmd.cancel().seq();
      cmd.mutable_cancel()->set_seq(seq);
      break;
    default:
      return;
  }
  uint64_t request_id = 0;
  auto op = c->ops.find(old_seq);
  if (op != c->ops.end()) {
    if (op->second.given_up) {
      c->ops.erase(op);  // answered at its deadline; the log never took it
      return;
    }
    request_id = op->second.request_id;
    c->ops.emplace(seq, op->second);
    c->ops.erase(op);
  } else if (cmd.has_acquire()) {
    return;  // a duplicate of one already answered
  }
  ProposeForSession(c, request_id, seq, std::move(cmd));
}

void NodeImpl::ProposeStalled(Conn* c) {
  std::map<uint64_t, pb::Command> stalled;
  stalled.swap(c->stalled);
  for (auto& [old_seq, cmd] : stalled) {
    const uint64_t seq = ++c->next_seq;
    pb::SessionKey* key = nullptr;
    switch (cmd.body_case()) {
      case pb::Command::kAcquire:
        key = cmd.mutable_acquire()->mutable_session();
        cmd.mutable_acquire()->set_seq(seq);
        break;
      case pb::Command::kRelease:
        key = cmd.mutable_release()->mutable_session();
        cmd.mutable_release()->set_seq(seq);
        break;
      default:
        continue;  // only locks and unlocks are kept (ProposeForSession)
    }
    auto op = c->ops.find(old_seq);
    if (op != c->ops.end() && op->second.given_up) {
      c->ops.erase(op);  // answered at its deadline: not proposed again
      continue;
    }
    SetSession(c, key);
    uint64_t request_id = 0;
    if (op != c->ops.end()) {
      request_id = op->second.request_id;
      c->ops.emplace(seq, op->second);
      c->ops.erase(op);
    }
    ProposeForSession(c, request_id, seq, std::move(cmd));
  }
}

// ------------------------------------------------------------ client ids
//
// A node's client ids are (E << 32) | k for an epoch E claimed through the log
// (core/lock_table.h, ClaimClientIds), never taken from a clock: a node restarted with its
// wall clock stepped back must still end its earlier runs' sessions and open new ones.
// Start claims with expire_older; a new epoch is claimed without it when k runs out, and
// again when another claim for this node id (an earlier run's, applied late) overtook ours.
// Connections that say hello meanwhile wait for the claim (AwaitIds, OnIdsClaimed).

void NodeImpl::ClaimClientIds(bool expire_older) {
  std::random_device random;  // a CSPRNG where the platform has one (getrandom on Linux)
  uint64_t nonce = 0;
  while (nonce == 0) nonce = (static_cast<uint64_t>(random()) << 32) ^ random();
  claim_nonce_ = nonce;
  claim_pending_ = true;
  pb::Command cmd;
  pb::ClaimClientIds* claim = cmd.mutable_claim_client_ids();
  claim->set_node_id(options_.node_id);
  claim->set_expire_older(expire_older);
  claim->set_nonce(nonce);
  claim->set_token_floor(options_.token_floor);
  Status st = log_->Propose(std::move(cmd));
  if (!st.ok()) Log("cannot claim client ids: " + st.ToString());
}

bool NodeImpl::IdsAvailable() const {
  return !claim_pending_ && next_client_k_ <= core::kMaxClientIdInEpoch;
}

Status NodeImpl::OpenSessionFor(Conn* c) {
  c->client_id = (id_epoch_ << core::kClientIdEpochBits) | next_client_k_++;
  sessions_[c->client_id] = c;
  pb::Command cmd;
  auto* open = cmd.mutable_open_session();
  SetSession(c, open->mutable_session());
  open->set_pid(c->pid);
  open->set_uid(c->uid);
  open->set_client_name(c->client_name);
  MESH_RETURN_IF_ERROR(log_->Propose(std::move(cmd)));
  c->session_open = true;
  c->awaiting_ids = false;
  return Status::OK();
}

Status NodeImpl::AwaitIds(Conn* c) {
  c->awaiting_ids = true;
  awaiting_ids_.push_back(c->serial);
  if (!claim_pending_) ClaimClientIds(/*expire_older=*/false);
  return Status::OK();
}

void NodeImpl::OnOwnIdClaim(const pb::ClaimClientIds& claim, const pb::CommandResult& result) {
  if (claim.nonce() == claim_nonce_) {
    if (!claim_pending_) return;  // a retry of ours applied once more: the same epoch
    if (result.code() != pb::GRANTED) {
      Log("fatal: cannot claim client ids: " + result.message());
      StopWithReason(Status::Unavailable("cannot claim client ids: " + result.message()));
      return;
    }
    claim_pending_ = false;
    id_epoch_ = result.client_id_epoch();
    next_client_k_ = 1;
    OnIdsClaimed();
    return;
  }
  // Another claim for this node id: an earlier run's, applied late (its proposal outlived
  // it). It ended our sessions below its epoch (with expire_older) and the table refuses
  // our ids below it: close those sessions' clients, and claim ids above it.
  if (result.code() != pb::GRANTED) return;
  const uint64_t epoch = result.client_id_epoch();
  if (claim.expire_older()) CloseEndedSessions(epoch << core::kClientIdEpochBits);
  if (!claim_pending_ && epoch > id_epoch_) {
    Log("another client id claim for this node (epoch " + std::to_string(epoch) +
        ", an earlier run's) was applied after ours (epoch " + std::to_string(id_epoch_) +
        "): claiming again");
    ClaimClientIds(/*expire_older=*/false);
  }
}

void NodeImpl::OnIdsClaimed() {
  std::vector<uint64_t> serials;
  serials.swap(awaiting_ids_);
  for (size_t i = 0; i < serials.size(); ++i) {
    auto it = conns_.find(serials[i]);
    if (it == conns_.end() || !it->second->stream) continue;
    Conn* c = it->second.get();
    if (!IdsAvailable()) {  // used up again: the rest wait for the next claim
      awaiting_ids_.insert(awaiting_ids_.end(), serials.begin() + static_cast<std::ptrdiff_t>(i),
                           serials.end());
      if (!claim_pending_) ClaimClientIds(/*expire_older=*/false);
      return;
    }
    Status st = OpenSessionFor(c);
    if (!st.ok()) {
      c->stream->Close(Status::Unavailable("node cannot open a session: " + st.ToString()));
      continue;
    }
    ProposeStalled(c);  // a reopened session's commands (Reopen), before any newer one
    std::vector<Conn::EarlyRequest> early;
    early.swap(c->early);
    for (const Conn::EarlyRequest& e : early) {
      Status handled = OnFrame(c, e.body, e.arrived_ms);
      if (!c->stream) break;
      if (!handled.ok()) {
        c->stream->Close(handled);
        break;
      }
    }
  }
}

// ------------------------------------------------------------ the session lease

void NodeImpl::OnLeaseLapsed() {
  deferred_grants_.clear();
  std::vector<Conn*> all;
  for (auto& [serial, c] : conns_) all.push_back(c.get());
  for (Conn* c : all) {
    if (!c->stream || c->locks_lost) continue;
    pb::SessionKey key;
    SetSession(c, &key);
    for (uint64_t lock_id : log_->table().HeldLockIds(key)) {
      if (c->untold.count(lock_id) != 0) continue;
      pb::ClientResponse resp;
      auto* ev = resp.mutable_event();
      ev->set_lock_id(lock_id);
      ev->set_code(pb::LOST);
      ev->set_message(
          "this node lost contact with the cluster's leader for the session lease; another "
          "node may be granted the lock");
      c->stream->Send(resp);
    }
    c->locks_lost = true;
    // Closing proposes the session's CloseSession: its locks are released through the log
    // as soon as the cluster is reachable again — the leader expires this node only if it
    // stays silent for the whole ttl, and it may come back before that.
    c->stream->Close(Status::Unavailable("session lease lapsed"));
  }
}

void NodeImpl::FlushDeferredGrants() {
  std::vector<DeferredGrant> grants;
  grants.swap(deferred_grants_);
  for (const DeferredGrant& g : grants) {
    auto it = conns_.find(g.serial);
    if (it == conns_.end() || !it->second->stream) continue;
    Conn* c = it->second.get();
    if (!ClientHolds(c, g.result.lock_id())) continue;  // released or lost meanwhile
    SendResult(c, g.request_id, g.result);
  }
  UncorkAll();
}

// ------------------------------------------------------------ deadlines

void NodeImpl::ArmDeadlineTimer() {
  if (deadlines_.empty() || stopping_) {
    if (timers_ready_) uv_timer_stop(&deadline_timer_);
    return;
  }
  int64_t now = static_cast<int64_t>(uv_now(loop_));
  int64_t wait = std::max<int64_t>(0, deadlines_.begin()->first - now);
  uv_timer_start(&deadline_timer_, OnDeadline, static_cast<uint64_t>(wait), 0);
}

void NodeImpl::OnDeadline(uv_timer_t* t) {
  auto* self = static_cast<NodeImpl*>(t->data);
  int64_t now = static_cast<int64_t>(uv_now(self->loop_));
  while (!self->deadlines_.empty() && self->deadlines_.begin()->first <= now) {
    const Deadline d = self->deadlines_.begin()->second;
    self->deadlines_.erase(self->deadlines_.begin());
    self->DeadlinePassed(d, now);
  }
  self->UncorkAll();
  self->ArmDeadlineTimer();
}

void NodeImpl::DeadlinePassed(const Deadline& d, int64_t now) {
  auto conn = conns_.find(d.serial);
  if (conn == conns_.end() || !conn->second->stream) return;  // closing ends the session
  Conn* c = conn->second.get();
  for (auto e = c->early.begin(); e != c->early.end(); ++e) {
    if (e->request_id != d.request_id) continue;
    c->early.erase(e);
    Reply(c, d.request_id, pb::UNAVAILABLE,
          NoQuorum("this node could not claim the client ids that open a session"));
    return;
  }
  for (auto& [seq, op] : c->ops) {
    if (op.request_id != d.request_id || op.given_up) continue;
    op.given_up = true;
    Reply(c, d.request_id, pb::UNAVAILABLE,
          NoQuorum("the lock request for " + op.resource + " was not committed"));
    return;
  }
  for (auto& [lock_id, op] : c->waiting) {
    if (op.request_id != d.request_id || op.given_up) continue;
    if (!d.cancel_grace) {
      ProposeUndo(c, pb::Command::kCancel, lock_id);
      deadlines_.emplace(now + kCommitWaitMs, Deadline{d.serial, d.request_id, true});
      return;
    }
    op.given_up = true;
    Reply(c, d.request_id, pb::TIMED_OUT,
          "timed out waiting for " + op.resource + "; " + NoQuorum("its cancel was not committed") +
              " (the request is withdrawn when the cluster commits again)");
    return;
  }
  for (auto g = deferred_grants_.begin(); g != deferred_grants_.end(); ++g) {
    if (g->serial != d.serial || g->request_id != d.request_id) continue;
    const uint64_t lock_id = g->result.lock_id();
    deferred_grants_.erase(g);
    if (!ClientHolds(c, lock_id)) return;  // released or lost meanwhile
    c->untold.insert(lock_id);
    ProposeUndo(c, pb::Command::kRelease, lock_id);
    Reply(c, d.request_id, pb::UNAVAILABLE,
          NoQuorum("the lock was granted, but this node's session lease was not confirmed") +
              " (the lock is released)");
    return;
  }
}

Conn::Op NodeImpl::Settle(Conn* c, std::map<uint64_t, Conn::Op>::iterator w) {
  Conn::Op op = std::move(w->second);
  c->waiting.erase(w);
  ForgetDeadline(c->serial, op);
  return op;
}

void NodeImpl::ForgetDeadline(uint64_t serial, const Conn::Op& op) {
  if (op.deadline_ms < 0 || op.given_up) return;
  auto [lo, hi] = deadlines_.equal_range(op.deadline_ms);
  for (auto d = lo; d != hi; ++d) {
    if (d->second.serial == serial && d->second.request_id == op.request_id &&
        !d->second.cancel_grace) {
      deadlines_.erase(d);
      return;
    }
  }
}

std::string NodeImpl::NoQuorum(const std::string& what) const {
  // A full disk holds this node's log: that, not the quorum, is why (see CommandLog).
  if (log_ && !log_->disk_full().empty()) {
    return log_->disk_full() + ": " + what + " within the deadline";
  }
  const std::string leader = cluster_ ? GetStatus().leader_id : "";
  return "no leader or quorum: " + what + " within the deadline (" +
         (leader.empty() ? "this node knows no leader"
                         : "leader " + leader + " did not commit it") +
         ")";
}

void NodeImpl::ProposeUndo(Conn* c, pb::Command::BodyCase kind, uint64_t lock_id) {
  pb::Command cmd;
  if (kind == pb::Command::kCancel) {
    auto* can = cmd.mutable_cancel();
    SetSession(c, can->mutable_session());
    can->set_seq(++c->next_seq);
    can->set_lock_id(lock_id);
    can->set_stamp_unix_ns(net::WallClockNs());
  } else {
    auto* rel = cmd.mutable_release();
    SetSession(c, rel->mutable_session());
    rel->set_seq(++c->next_seq);
    rel->set_lock_id(lock_id);
    rel->set_stamp_unix_ns(net::WallClockNs());
  }
  Status st = log_->Propose(std::move(cmd));
  if (!st.ok())
    Log("cannot propose the withdrawal of lock " + std::to_string(lock_id) + ": " + st.ToString());
}

}  // namespace mesh::net::node_impl

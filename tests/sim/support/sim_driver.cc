// The model of the node driver of net/ (see sim_cluster.h): batches, clients, leases, and
// whom a node without configuration joins.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "core/admission.h"
#include "core/raft/raft_storage.h"
#include "sim/support/sim_cluster.h"
#include "sim/support/sim_cluster_internal.h"

namespace mesh::sim {

using core::raft::Role;

// ---------------------------------------------------------------- the driver model

void Cluster::OnWake(Node& n) {
  const Time local = Local(n);
  // The leader's lease duties before Raft's timers: in net/ they run on separate timers,
  // in either order (after a clock jump this is the worse one).
  if (n.leader_leases->is_leader()) {
    for (const std::string& silent : n.leader_leases->TakeExpired(local)) {
      if (silent == n.id) continue;  // as net/: a leader never expires itself
      pb::Command cmd;
      cmd.mutable_expire_node()->set_node_id(silent);
      Trace(n.index, "proposes ExpireNode(" + silent + ")");
      ++stats_.expirations;
      Propose(n, cmd);
    }
  }
  n.raft->Tick(local);
  // A node without configuration chooses whom to join again from the gossip it sees now
  // (net/node/cluster.cc at every formation tick; it replaces the join targets each time).
  if (n.raft->config().members_size() == 0) ChooseJoinTarget(n);
  if (local >= n.keepalive_at) {
    n.keepalive_at = local + options_.keepalive_interval;
    SendKeepalive(n);
    if (!n.up) return;
  }
  if (n.lease->Lapsed(local)) DeclareLost(n, "lease lapsed");
  for (Client& c : n.clients) {
    if (!c.inflight.empty() && local >= c.retry_at) {
      c.retry_at = local + options_.retry_interval;
      n.raft->Propose(local, c.inflight);
    }
    if (c.deadline != 0 && !c.deadline_passed && local >= c.deadline) {
      c.deadline_passed = true;
      if (c.state == Client::State::kQueued) {
        pb::Command cmd;
        pb::Cancel* cancel = cmd.mutable_cancel();
        *cancel->mutable_session() = pb::SessionKey();
        cancel->mutable_session()->set_node_id(n.id);
        cancel->mutable_session()->set_client_id(c.client_id);
        cancel->set_seq(++c.seq);
        cancel->set_lock_id(c.lock_id);
        c.state = Client::State::kCancelling;
        ProposeFor(n, c, cmd);
      }
    }
    ClientLeaseDuties(n, c);
    if (local >= c.next_action) ClientAct(n, c);
  }
  if (!n.claim.empty() && local >= n.claim_retry_at) {
    n.raft->Propose(local, n.claim);
    n.claim_retry_at = local + options_.retry_interval;
  }
  if (!n.closing.empty() && local >= n.closing_retry_at) {
    for (const auto& [cid, data] : n.closing) n.raft->Propose(local, data);
    n.closing_retry_at = local + options_.retry_interval;
  }
  Pump(n);
  ScheduleWake(n);
}

void Cluster::Propose(Node& n, const pb::Command& cmd) {
  n.raft->Propose(Local(n), cmd.SerializeAsString());
}

void Cluster::ProposeFor(Node& n, Client& c, pb::Command cmd) {
  c.inflight = cmd.SerializeAsString();
  const Time local = Local(n);
  c.retry_at = local + options_.retry_interval;
  n.raft->Propose(local, c.inflight);
}

std::string Cluster::ClientName(const Node& n, const Client& c) const {
  return n.id + "/c" + std::to_string(c.k) + "#" + std::to_string(c.client_id);
}

void Cluster::ClientAct(Node& n, Client& c) {
  const Time local = Local(n);
  switch (c.state) {
    case Client::State::kNoSession: {
      if (n.paused) return;
      if (!n.ids_ready) {  // no client ids before this run's claim is applied
        c.next_action = local + 50'000;
        return;
      }
      c.client_id = (n.epoch << core::kClientIdEpochBits) | ++n.next_client;
      c.seq = 0;
      pb::Command cmd;
      pb::OpenSession* open = cmd.mutable_open_session();
      open->mutable_session()->set_node_id(n.id);
      open->mutable_session()->set_client_id(c.client_id);
      open->set_client_name("sim");
      c.state = Client::State::kOpening;
      c.next_action = kNever;
      ProposeFor(n, c, cmd);
      return;
    }
    case Client::State::kIdle: {
      if (n.paused) return;
      pb::Command cmd;
      pb::Acquire* a = cmd.mutable_acquire();
      a->mutable_session()->set_node_id(n.id);
      a->mutable_session()->set_client_id(c.client_id);
      a->set_seq(++c.seq);
      c.deadline = 0;
      c.deadline_passed = false;
      if (!c.forced_resource.empty()) {
        c.resource = c.forced_resource;
        c.mode = pb::EX;
        a->set_wait(true);
      } else {
        c.resource = "r" + std::to_string(client_rng_.Below(options_.resources));
        const uint64_t m = client_rng_.Below(10);
        c.mode = m < 6 ? pb::EX : m < 8 ? pb::PR : m < 9 ? pb::PW : pb::CR;
        const uint64_t kind = client_rng_.Below(10);
        if (kind < 3) {
          a->set_wait(false);  // try-lock
        } else {
          a->set_wait(true);
          if (kind < 7) c.deadline = local + client_rng_.Between(100'000, 2'000'000);
        }
      }
      a->set_resource(c.resource);
      a->set_mode(c.mode);
      if (Status refused = n.persist.disk().Admit(cmd); !refused.ok()) {
        // The node answers at once (net/node/session_router.cc: the client's answer is this
        // error); the client tries again later.
        --c.seq;
        c.deadline = 0;
        ++stats_.disk_refused;
        c.next_action = local + client_rng_.Between(10'000, options_.client_think_max);
        return;
      }
      c.state = Client::State::kRequesting;
      c.next_action = kNever;
      ++stats_.client_ops;
      ProposeFor(n, c, cmd);
      return;
    }
    case Client::State::kHolding: {
      if (c.delivered) EndHold(n, c, "releases");
      pb::Command cmd;
      pb::Release* r = cmd.mutable_release();
      r->mutable_session()->set_node_id(n.id);
      r->mutable_session()->set_client_id(c.client_id);
      r->set_seq(++c.seq);
      r->set_lock_id(c.lock_id);
      c.state = Client::State::kReleasing;
      c.next_action = kNever;
      ++stats_.client_ops;
      if (n.frozen()) {
        // The client is done with the lock; its node proposes the release once it runs.
        c.inflight = cmd.SerializeAsString();
        c.retry_at = local;
      } else {
        ProposeFor(n, c, cmd);
      }
      return;
    }
    default:
      c.next_action = kNever;
      return;
  }
}

void Cluster::GrantTo(Node& n, Client& c, uint64_t lock_id, uint64_t token) {
  c.await_seq = 0;
  c.state = Client::State::kHolding;
  c.lock_id = lock_id;
  c.token = token;
  c.delivered = false;
  c.deadline = 0;
  Time hold = c.forced_hold;
  if (c.forced_resource.empty()) {
    hold = client_rng_.Chance(0.8) ? client_rng_.Between(30'000, 1'000'000)
                                   : client_rng_.Between(1'000'000, 6'000'000);
  }
  c.next_action = Local(n) + hold;
  if (n.lease->Valid(Local(n))) Deliver(n, c);
}

void Cluster::Deliver(Node& n, Client& c) {
  if (options_.client_lease && !c.lease.Valid(Local(n))) {
    // The grant reached the client without a valid client lease: it counts the lock as
    // held only once a LeaseRequest sent after the grant is answered with a node lease.
    if (c.await_seq == 0) c.await_seq = SendLeaseRequest(n, c);
    return;
  }
  c.delivered = true;
  ++stats_.grants;
  grant_log_.emplace_back(now_, n.index, c.resource);
  Trace(n.index, ClientName(n, c) + " holds " + c.resource + " " + pb::LockMode_Name(c.mode) +
                     " token " + std::to_string(c.token) + " (lease until local " +
                     Ms(n.lease->valid_until()) + ")");
  checker_.BeginHold(now_, ClientName(n, c), c.resource, c.mode, c.lock_id, c.token);
}

void Cluster::EndHold(Node& n, Client& c, const char* why) {
  if (!c.delivered) return;
  c.delivered = false;
  Trace(n.index, ClientName(n, c) + " " + why + " " + c.resource + " token " +
                     std::to_string(c.token));
  checker_.EndHold(now_, ClientName(n, c), c.resource, c.lock_id);
}

void Cluster::ResetClient(Node& n, Client& c, bool close_session, const char* why) {
  if (c.delivered) {
    ++stats_.lost;
    EndHold(n, c, why);
  }
  if (close_session && c.client_id != 0 && c.state != Client::State::kNoSession) {
    pb::Command cmd;
    cmd.mutable_close_session()->mutable_session()->set_node_id(n.id);
    cmd.mutable_close_session()->mutable_session()->set_client_id(c.client_id);
    std::string data = cmd.SerializeAsString();
    n.raft->Propose(Local(n), data);
    n.closing[c.client_id] = std::move(data);
    n.closing_retry_at = std::min(n.closing_retry_at, Local(n) + options_.retry_interval);
  }
  Client fresh;
  fresh.k = c.k;
  NewClientLease(n, fresh);
  fresh.forced_resource = c.forced_resource;
  fresh.forced_hold = c.forced_hold;
  fresh.next_action = Local(n) + client_rng_.Between(10'000, 300'000);
  c = fresh;
}

void Cluster::DeclareLost(Node& n, const char* why) {
  n.lost_at = now_;
  bool any = false;
  for (Client& c : n.clients) {
    if (c.state == Client::State::kNoSession || c.state == Client::State::kOpening ||
        c.state == Client::State::kIdle) {
      continue;
    }
    any = true;
    ResetClient(n, c, /*close_session=*/true, "loses");
  }
  Trace(n.index, std::string(why) + (any ? ": sessions with locks or requests abandoned" : ""));
}

Cluster::Client* Cluster::FindClient(Node& n, const pb::SessionKey& s) {
  if (s.node_id() != n.id) return nullptr;
  for (Client& c : n.clients) {
    if (c.client_id == s.client_id() && c.state != Client::State::kNoSession) return &c;
  }
  return nullptr;
}

void Cluster::Pump(Node& n) {
  // As net/node/command_log's Drive: core decides (core/raft/raft.h), this only executes. Every
  // batch is sent and applied when taken; persisting follows, in order, one sync at a time.
  while (n.up && !failed()) {
    if (n.raft->HasBatch()) {
      core::raft::Batch batch = n.raft->TakeBatch();
      if (!ExecuteBatch(n, &batch)) return;
      continue;
    }
    if (n.sync_id == 0 && !n.persist.empty() && n.persist.MayPersist(Local(n))) {
      StartPersist(n);
      continue;
    }
    break;
  }
  if (n.up) ObserveRole(n);
}

bool Cluster::ExecuteBatch(Node& n, core::raft::Batch* batch) {
  if (n.sync_id != 0) ++stats_.behind_sync;
  if (!batch->committed.empty() && batch->committed.back().index() > n.store->last_index()) {
    stats_.applied_unsynced +=
        std::min<uint64_t>(batch->committed.size(),
                           batch->committed.back().index() - n.store->last_index());
  }
  // Send: whatever the batch carries may leave now (raft holds back the rest).
  for (pb::RaftMessage& m : batch->messages) {
    int to = IndexOf(m.to());
    if (to < 0) continue;
    auto env = std::make_shared<Envelope>();
    env->kind = Envelope::Kind::kRaft;
    env->from = n.index;
    env->raft = std::move(m);
    Send(n, to, std::move(env));
  }
  batch->messages.clear();
  // Apply: a received snapshot, then the committed entries (durable on a quorum, whatever
  // this node's disk holds yet).
  if (batch->snapshot) {
    pb::LockTableSnapshot snap;
    auto table = std::make_unique<core::LockTable>();
    if (!snap.ParseFromString(batch->snapshot->data) || !table->Restore(snap).ok()) {
      checker_.Fail(now_, n.id + ": cannot restore the lock table from an installed snapshot");
      return false;
    }
    n.table = std::move(table);
    n.stale_scan = !options_.claim_client_ids;
    ++stats_.snapshots_installed;
    Trace(n.index, "installs snapshot at " + std::to_string(batch->snapshot->meta.index()));
  }
  for (const pb::Entry& e : batch->committed) ApplyEntry(n, e);
  if (!n.up) return false;
  if (batch->snapshot) ResyncClients(n);
  batch->committed.clear();
  n.persist.Push(std::move(*batch));
  AfterApply(n);
  return n.up;
}

Time Cluster::SyncDelay() {
  if (disk_rng_.Chance(options_.slow_sync)) {
    return disk_rng_.Between(options_.sync_max, options_.slow_sync_max);
  }
  return disk_rng_.Between(options_.sync_min, options_.sync_max);
}

void Cluster::StartPersist(Node& n) {
  std::vector<core::raft::Batch> batches = n.persist.Take();
  bool disk = false, writes = false;
  for (const core::raft::Batch& b : batches) {
    disk = disk || core::raft::NeedsDisk(b);
    writes = writes || !b.entries.empty() || b.hard_state;
  }
  if (!disk) {
    // Only commit hints: written in the loop without a sync (as net/ does), persisted.
    size_t persisted = 0;
    Status s;
    for (; persisted < batches.size(); ++persisted) {
      s = core::raft::BufferBatch(n.store.get(), batches[persisted]);
      if (!s.ok()) break;
    }
    SettlePersist(n, std::move(batches), persisted, s);
    return;
  }
  n.syncing = std::move(batches);
  n.sync_id = ++n.syncs_started;
  if (n.crash_armed && writes) {
    // The worst moment: the batches' messages are out and their committed entries applied,
    // and the sync has not completed.
    n.crash_armed = false;
    Crash(n.index, n.crash_mode);
    return;
  }
  if (n.sync_in_loop || n.persist.retrying()) {  // a retry runs in the loop, as in net/
    CompleteSync(n);
    return;
  }
  ++stats_.syncs;
  const Time at = now_ + SyncDelay();
  if (options_.verbose) Trace(n.index, "sync " + std::to_string(n.sync_id) + " until " + Ms(at));
  const int i = n.index;
  const uint64_t inc = n.incarnation;
  const uint64_t id = n.sync_id;
  const std::string node_id = n.id;
  Schedule(at, [this, i, inc, node_id, id] { OnSyncDone(i, inc, node_id, id); });
}

void Cluster::OnSyncDone(int i, uint64_t incarnation, const std::string& node_id, uint64_t id) {
  Node& n = *nodes_[i];
  if (!n.up || n.incarnation != incarnation || n.id != node_id || n.sync_id != id) return;
  if (n.frozen()) {
    // SIGSTOP stops the pool thread too: the completion runs after the thaw.
    Schedule(n.frozen_until + 1,
             [this, i, incarnation, node_id, id] { OnSyncDone(i, incarnation, node_id, id); });
    return;
  }
  CompleteSync(n);
  Pump(n);
  ScheduleWake(n);
}

size_t Cluster::PersistInOrder(Node& n, const std::vector<core::raft::Batch>& batches,
                               Status* error) {
  for (size_t i = 0; i < batches.size(); ++i) {
    const core::raft::Batch& b = batches[i];
    Status s = core::raft::NeedsDisk(b) ? core::raft::PersistBatch(n.store.get(), b)
                                        : core::raft::BufferBatch(n.store.get(), b);
    if (!s.ok()) {
      *error = s;
      return i;
    }
    checker_.OnPersisted(n.id, *n.store, b.entries);
    // Synced, with nothing buffered in the store nor unsynced on its disk: what the store
    // holds is what survives a crash.
    if (core::raft::NeedsDisk(b) && !n.store->HasPending() &&
        n.fs->UnsyncedWriteCount() == 0) {
      checker_.OnDurable(n.id, *n.store);
    }
  }
  return batches.size();
}

void Cluster::CompleteSync(Node& n) {
  std::vector<core::raft::Batch> batches = std::move(n.syncing);
  n.syncing.clear();
  n.sync_id = 0;
  // net/node/command_log: in the loop (a node alone, or a retry on a full disk) each batch is
  // advanced as persisted; on the pool one PersistBatches call persists all or fails whole.
  const bool in_loop = n.sync_in_loop || n.persist.retrying();
  Status error;
  const size_t done = PersistInOrder(n, batches, &error);
  // Off the loop, one PersistBatches call fails whole: none is known durable.
  const size_t persisted = done < batches.size() && !in_loop ? 0 : done;
  SettlePersist(n, std::move(batches), persisted, error);
}

void Cluster::ApplyEntry(Node& n, const pb::Entry& e) {
  if (e.type() != pb::ENTRY_COMMAND) {
    checker_.OnApplied(n.id, e, n.raft->config(), nullptr, nullptr);
    return;
  }
  pb::Command cmd;
  if (!cmd.ParseFromString(e.data())) {
    checker_.Fail(now_, n.id + ": unparsable command at " + std::to_string(e.index()));
    return;
  }
  core::ApplyResult r = n.table->Apply(e.index(), cmd);
  checker_.OnApplied(n.id, e, n.raft->config(), &cmd, &r);
  const Time local = Local(n);
  if (n.stale_scan == false && !options_.claim_client_ids && n.incarnation > 0 &&
      (cmd.has_acquire() || cmd.has_open_session())) {
    const pb::SessionKey& s =
        cmd.has_acquire() ? cmd.acquire().session() : cmd.open_session().session();
    if (s.node_id() == n.id && (s.client_id() >> 32) != n.epoch) n.stale_scan = true;
  }

  // Routing the outcome to this node's clients.
  for (const core::Grant& g : r.released) {
    Client* c = FindClient(n, g.session);
    if (c != nullptr && c->state == Client::State::kHolding && c->lock_id == g.lock_id &&
        c->delivered && n.lease->Valid(local)) {
      checker_.Fail(now_, n.id + " applied entry " + std::to_string(e.index()) +
                              " that took " + c->resource + " (token " +
                              std::to_string(c->token) + ") from " + ClientName(n, *c) +
                              " while its lease was valid (until local " +
                              Ms(n.lease->valid_until()) + ", now " + Ms(local) + ")");
    }
  }
  switch (cmd.body_case()) {
    case pb::Command::kOpenSession: {
      const pb::SessionKey& s = cmd.open_session().session();
      n.session_nodes.insert(s.node_id());
      n.leader_leases->Track(local, s.node_id());
      Client* c = FindClient(n, s);
      if (c != nullptr && c->state == Client::State::kOpening && r.result.code() != pb::GRANTED) {
        // Refused (an id at or below one the node opened already): a new id, a new try.
        ++stats_.sessions_refused;
        Trace(n.index, ClientName(n, *c) + ": OpenSession refused: " + r.result.message());
        ResetClient(n, *c, false, "session refused");
      } else if (c != nullptr && c->state == Client::State::kOpening) {
        c->inflight.clear();
        c->retry_at = kNever;
        c->state = Client::State::kIdle;
        c->next_action = local + client_rng_.Between(10'000, options_.client_think_max);
      }
      break;
    }
    case pb::Command::kAcquire: {
      const pb::Acquire& a = cmd.acquire();
      Client* c = FindClient(n, a.session());
      if (c == nullptr || c->state != Client::State::kRequesting || c->seq != a.seq()) break;
      c->inflight.clear();
      c->retry_at = kNever;
      switch (r.result.code()) {
        case pb::GRANTED:
          GrantTo(n, *c, r.result.lock_id(), r.result.token());
          break;
        case pb::QUEUED: {
          c->state = Client::State::kQueued;
          c->lock_id = r.result.lock_id();
          if (c->deadline != 0 && c->deadline_passed) {
            c->deadline_passed = false;
            c->deadline = local;  // cancel at the next wake
          }
          // A replayed answer may be older than the grant (snapshot install skipped it).
          for (const core::LockRow& row : n.table->List()) {
            if (row.held && row.lock_id == c->lock_id && row.session.node_id() == n.id) {
              GrantTo(n, *c, row.lock_id, row.token);
            }
          }
          break;
        }
        case pb::NO_SESSION:
          ResetClient(n, *c, false, "session gone");
          break;
        default:
          c->state = Client::State::kIdle;
          c->next_action = local + client_rng_.Between(10'000, options_.client_think_max);
          break;
      }
      break;
    }
    case pb::Command::kRelease: {
      const pb::Release& rel = cmd.release();
      Client* c = FindClient(n, rel.session());
      if (c == nullptr || c->state != Client::State::kReleasing || c->seq != rel.seq()) break;
      c->inflight.clear();
      c->retry_at = kNever;
      c->state = Client::State::kIdle;
      c->next_action = local + client_rng_.Between(10'000, options_.client_think_max);
      break;
    }
    case pb::Command::kCancel: {
      const pb::Cancel& can = cmd.cancel();
      Client* c = FindClient(n, can.session());
      if (c == nullptr || c->seq != can.seq()) break;
      c->inflight.clear();
      c->retry_at = kNever;
      if (c->state != Client::State::kCancelling) break;  // granted meanwhile
      if (r.result.code() == pb::GRANTED) {
        GrantTo(n, *c, r.result.lock_id(), r.result.token());
      } else {
        ++stats_.timeouts;
        c->state = Client::State::kIdle;
        c->next_action = local + client_rng_.Between(10'000, options_.client_think_max);
      }
      break;
    }
    case pb::Command::kCloseSession: {
      const pb::SessionKey& s = cmd.close_session().session();
      if (s.node_id() == n.id) n.closing.erase(s.client_id());
      break;
    }
    case pb::Command::kExpireNode: {
      const std::string& node = cmd.expire_node().node_id();
      n.session_nodes.erase(node);
      if (node == n.id) {
        if (n.lease->Valid(local)) {
          checker_.Fail(now_, n.id + " applied ExpireNode(" + n.id + ") at " +
                                  std::to_string(e.index()) + " while its own lease was valid" +
                                  " (until local " + Ms(n.lease->valid_until()) + ", now " +
                                  Ms(local) + ")");
        }
        n.closing.clear();
        bool any = false;
        for (Client& c : n.clients) {
          if (c.state == Client::State::kNoSession) continue;
          any = true;
          ResetClient(n, c, false, "expired");
        }
        if (any) n.lost_at = now_;
        Trace(n.index, "applied ExpireNode(self) at " + std::to_string(e.index()));
      }
      break;
    }
    default:
      break;
  }
  for (const core::Grant& g : r.grants) {
    Client* c = FindClient(n, g.session);
    if (c == nullptr || c->lock_id != g.lock_id) continue;
    if (c->state == Client::State::kQueued || c->state == Client::State::kCancelling) {
      GrantTo(n, *c, g.lock_id, g.token);
    }
  }
  for (const core::Withdrawal& w : r.withdrawals) {
    Client* c = FindClient(n, w.session);
    if (c == nullptr || c->lock_id != w.lock_id) continue;
    if (c->state == Client::State::kQueued || c->state == Client::State::kCancelling) {
      ResetClient(n, *c, false, "withdrawn");
    }
  }
  for (const core::Grant& g : r.released) {
    Client* c = FindClient(n, g.session);
    if (c != nullptr && c->lock_id == g.lock_id && c->state == Client::State::kHolding) {
      ResetClient(n, *c, false, "loses (released by the log)");
    }
  }
}

void Cluster::AfterApply(Node& n) {
  const uint64_t applied = n.raft->applied_index();
  n.lease->OnApplied(applied);
  if (n.lease->Valid(Local(n))) {
    for (Client& c : n.clients) {
      if (c.state == Client::State::kHolding && !c.delivered) Deliver(n, c);
    }
  }
  LearnEpoch(n);
  CleanupStaleSessions(n);
  if (applied >= n.raft->snapshot_meta().index() + options_.compact_every &&
      n.table->applied_index() <= applied) {
    pb::LockTableSnapshot snap;
    n.table->Snapshot(&snap);
    Status s = n.raft->Compact(applied, snap.SerializeAsString());
    if (!s.ok()) checker_.Fail(now_, n.id + ": Compact(" + std::to_string(applied) + "): " +
                                         s.ToString());
  }
}

void Cluster::LearnEpoch(Node& n) {
  // This run's claim applied (here or inside an installed snapshot): its epoch is the
  // node's, whoever applied it. Sessions of earlier runs ended with it (expire_older), so
  // nothing is left for this run to clean up.
  if (n.claim.empty()) return;
  uint64_t nonce = 0;
  const uint64_t epoch = n.table->ClientIdEpoch(n.id, &nonce);
  if (nonce != n.claim_nonce || epoch == 0) return;
  n.epoch = epoch;
  n.ids_ready = true;
  n.next_client = 0;
  n.claim.clear();
  n.claim_retry_at = kNever;
  Trace(n.index, "claimed client id epoch " + std::to_string(epoch));
}

void Cluster::CleanupStaleSessions(Node& n) {
  // Without the claim path only: sessions of this node's earlier incarnations (before a
  // restart) that still hold or wait for a lock: nobody will release them, so the node
  // closes them.
  if (!n.stale_scan) return;
  n.stale_scan = false;
  for (const core::LockRow& row : n.table->List()) {
    if (row.session.node_id() != n.id) continue;
    const uint64_t cid = row.session.client_id();
    if ((cid >> 32) == n.epoch || n.closing.count(cid) != 0) continue;
    pb::Command cmd;
    *cmd.mutable_close_session()->mutable_session() = row.session;
    std::string data = cmd.SerializeAsString();
    n.raft->Propose(Local(n), data);
    n.closing[cid] = std::move(data);
    n.closing_retry_at = std::min(n.closing_retry_at, Local(n) + options_.retry_interval);
  }
}

void Cluster::ResyncClients(Node& n) {
  // After a snapshot install the table may have skipped grants, releases and expiries.
  std::map<uint64_t, const core::LockRow*> rows;
  std::vector<core::LockRow> list = n.table->List();
  for (const core::LockRow& row : list) rows[row.lock_id] = &row;
  for (Client& c : n.clients) {
    if (c.state == Client::State::kNoSession || c.state == Client::State::kOpening) continue;
    pb::SessionKey key;
    key.set_node_id(n.id);
    key.set_client_id(c.client_id);
    if (!n.table->HasSession(key)) {
      ResetClient(n, c, false, "loses (session gone in snapshot)");
      continue;
    }
    auto it = rows.find(c.lock_id);
    if (c.state == Client::State::kHolding && (it == rows.end() || !it->second->held)) {
      ResetClient(n, c, true, "loses (not in snapshot)");
    } else if ((c.state == Client::State::kQueued || c.state == Client::State::kCancelling) &&
               it != rows.end() && it->second->held) {
      GrantTo(n, c, c.lock_id, it->second->token);
    } else if ((c.state == Client::State::kQueued || c.state == Client::State::kCancelling) &&
               it == rows.end() && c.inflight.empty()) {
      ResetClient(n, c, true, "request gone in snapshot");
    }
  }
}

void Cluster::ObserveRole(Node& n) {
  const bool leader = n.raft->role() == Role::kLeader;
  if (leader) {
    checker_.OnLeader(now_, n.id, n.raft->term());
    if (!n.leader_leases->is_leader()) {
      std::vector<std::string> nodes(n.session_nodes.begin(), n.session_nodes.end());
      for (const pb::Member& m : n.raft->config().members()) nodes.push_back(m.id());
      n.leader_leases->BecomeLeader(Local(n), nodes);
      checker_.CheckLeaderCompleteness(n.id, *n.store, n.raft->term());
      Trace(n.index, "becomes leader of term " + std::to_string(n.raft->term()) +
                         " (last index " + std::to_string(n.raft->last_index()) + ")");
    }
  } else if (n.leader_leases->is_leader()) {
    n.leader_leases->StepDown();
    Trace(n.index, std::string("steps down (") + core::raft::RoleName(n.raft->role()) +
                       ", term " + std::to_string(n.raft->term()) + ")");
  }
}

void Cluster::SendKeepalive(Node& n) {
  const std::string& leader = n.raft->leader();
  if (leader.empty()) return;
  pb::Keepalive k = n.lease->MakeKeepalive(Local(n), n.id);
  n.last_keepalive_seq = k.seq();
  if (leader == n.id) {
    HandleKeepalive(n, k, n.index);
    return;
  }
  const int to = IndexOf(leader);
  if (to < 0) return;
  auto env = std::make_shared<Envelope>();
  env->kind = Envelope::Kind::kKeepalive;
  env->from = n.index;
  env->keepalive = std::move(k);
  Send(n, to, std::move(env));
}

void Cluster::HandleKeepalive(Node& leader, const pb::Keepalive& k, int from) {
  const Time local = Local(leader);
  pb::KeepaliveAck ack;
  // Only members and nodes with sessions may hold a lease (core/admission.h R6), as in
  // net/node/cluster_messages.cc: a rogue's made-up ids are neither tracked nor expired.
  const bool known = core::MayHoldLease(&leader.raft->config(), *leader.table, k.node_id());
  if (!leader.leader_leases->OnKeepalive(local, k, known, leader.raft->HasLeaderLease(local),
                                         leader.id, leader.raft->last_index(), &ack)) {
    return;
  }
  if (from == leader.index) {
    HandleAck(leader, ack);
    return;
  }
  if (from == kRogue) return;  // the ack goes back to the rogue
  auto env = std::make_shared<Envelope>();
  env->kind = Envelope::Kind::kAck;
  env->from = leader.index;
  env->ack = std::move(ack);
  Send(leader, from, std::move(env));
}

void Cluster::HandleAck(Node& n, const pb::KeepaliveAck& ack) {
  n.lease->OnAck(ack, n.raft->applied_index());
  if (n.lease->Valid(Local(n))) {
    for (Client& c : n.clients) {
      if (c.state == Client::State::kHolding && !c.delivered) Deliver(n, c);
    }
  }
}

// ---------------------------------------------------------------- whom a fresh node joins

std::map<std::string, core::JoinGossip> Cluster::GossipSeenBy(const Node& n) const {
  // net/ gossips on every link every second; the simulator has each peer's state now.
  std::map<std::string, core::JoinGossip> out;
  bool cluster_in_view = false;
  for (const auto& m : nodes_) {
    if (m.get() == &n || !m->up || m->frozen() || !link_up_[m->index][n.index]) continue;
    core::JoinGossip& g = out[m->id];
    if (m->raft->config().members_size() > 0) {
      g.cluster_id = m->raft->config().cluster_id();
      cluster_in_view = true;
    }
    g.leader_id = m->raft->leader();
    g.term = m->raft->term();
  }
  if (n.raft->config().members_size() > 0) {
    // To a node of the cluster, the rogue names a leader once it vouches for its
    // accomplice (RogueVouch); before that it gossips no leader. It may be a learner.
    if (!rogue_gossip_.leader_id.empty()) {
      out[kRogueId] = core::JoinGossip{kClusterId, rogue_gossip_.leader_id, rogue_gossip_.term};
    }
  } else if (rogue_lead_term_ != 0 && cluster_in_view) {
    // To a node without configuration, the rogue claims the real cluster's id and to lead
    // it itself in a high term, to become its join target (rule R3a would then take its
    // forged log); once it has an accomplice (RogueVouch), it names the accomplice instead,
    // and the accomplice claims to lead (one naming peer must not carry the choice while
    // the real peers name nobody, C2). The modelled limit: only while a real node of the
    // cluster is in view too (alone in view, the rogue is trusted on first sight, C3 of
    // core/join_choice.h, a documented limit that no driver can close).
    if (rogue_gossip_.leader_id == kAccompliceId) {
      out[kRogueId] = core::JoinGossip{kClusterId, kAccompliceId, rogue_gossip_.term};
      out[kAccompliceId] = core::JoinGossip{kClusterId, kAccompliceId, rogue_gossip_.term};
    } else {
      out[kRogueId] = core::JoinGossip{kClusterId, kRogueId, rogue_lead_term_};
    }
  }
  return out;
}

void Cluster::ChooseJoinTarget(Node& n) {
  const core::JoinChoice choice = core::ChooseJoin(n.id, GossipSeenBy(n), n.join_cluster_id);
  const std::string before = JoinTarget(n.index);
  n.join_cluster_id = choice.cluster_id;
  n.join_targets.clear();
  if (!choice.target.empty()) n.join_targets.insert(choice.target);
  if (choice.target == before && choice.reason == n.join_reason) return;
  n.join_reason = choice.reason;
  Trace(n.index,
        (choice.target.empty() ? std::string("waits to join") : "join target " + choice.target) +
            ": " + (choice.reason.empty() ? "no cluster in view" : choice.reason));
}

std::string Cluster::JoinTarget(int i) const {
  const std::set<std::string>& targets = nodes_[i]->join_targets;
  return targets.empty() ? "" : *targets.begin();
}

}  // namespace mesh::sim

#include "sim/support/sim_cluster.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "sim/support/sim_storage.h"

namespace mesh::sim {

using core::raft::Role;

namespace {
constexpr const char* kDataDir = "/data";
constexpr Time kNever = UINT64_MAX;

std::string Ms(Time t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llu.%03llu", static_cast<unsigned long long>(t / 1000),
                static_cast<unsigned long long>(t % 1000));
  return buf;
}
}  // namespace

// ---------------------------------------------------------------- types

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
  uint64_t next_client = 0;
  std::vector<Client> clients;
  bool paused = false;
  Time keepalive_at = 0;       // local
  Time wake_at = kNever;       // virtual real time of the earliest pending wake event
  std::map<uint64_t, std::string> closing;  // client id -> encoded CloseSession
  Time closing_retry_at = kNever;
  std::set<std::string> session_nodes;      // nodes with open sessions (applied log)
  Time lost_at = 0;                         // virtual time of the last DeclareLost
  bool stale_scan = false;  // sessions of an earlier incarnation may hold locks: look
};

struct Cluster::Envelope {
  enum class Kind { kRaft, kKeepalive, kAck } kind = Kind::kRaft;
  int from = 0;
  pb::RaftMessage raft;
  pb::Keepalive keepalive;
  pb::KeepaliveAck ack;
};

// ---------------------------------------------------------------- set-up

Cluster::Cluster(const SimOptions& options)
    : options_(options),
      seed_rng_(options.seed),
      net_rng_(seed_rng_.Fork(1)),
      fault_rng_(seed_rng_.Fork(2)),
      client_rng_(seed_rng_.Fork(3)),
      drop_(options.drop) {
  const int total = options_.voters + options_.spares;
  link_up_.assign(total, std::vector<bool>(total, true));
  for (int i = 0; i < total; ++i) {
    auto n = std::make_unique<Node>();
    n->index = i;
    double u = options_.extreme_drift ? (i % 2 == 0 ? 1.0 : -1.0) : seed_rng_.Unit() * 2 - 1;
    n->rate = 1.0 + options_.clock_drift * u;
    n->offset = seed_rng_.Between(1'000'000, 100'000'000);
    NewIdentity(*n);
    nodes_.push_back(std::move(n));
  }
}

Cluster::~Cluster() = default;

void Cluster::NewIdentity(Node& n) {
  n.id = "n" + std::to_string(next_id_++);
  n.fs = std::make_unique<core::FaultFileSystem>(seed_rng_.Next());
  n.incarnation = 0;
  n.next_client = 0;
  n.decommissioned = false;
}

void Cluster::Start() {
  pb::ClusterConfig config;
  for (int i = 0; i < options_.voters; ++i) {
    pb::Member* m = config.add_members();
    m->set_id(nodes_[i]->id);
    m->set_voter(true);
    m->set_address(nodes_[i]->id + ":28017");
  }
  for (auto& n : nodes_) {
    OpenNode(*n, /*bootstrap=*/false);
    if (n->index < options_.voters) {
      Status s = n->raft->Bootstrap(Local(*n), config);
      if (!s.ok()) checker_.Fail(now_, "bootstrap " + n->id + ": " + s.ToString());
      Pump(*n);
      ScheduleWake(*n);
    }
  }
}

void Cluster::OpenNode(Node& n, bool) {
  core::LogStoreOptions store_options;
  store_options.segment_bytes = options_.segment_bytes;
  Status s = core::LogStore::Open(n.fs.get(), kDataDir, store_options, &n.store);
  core::raft::PersistentState state;
  if (s.ok()) s = LoadPersistentState(*n.store, &state);
  core::raft::RaftOptions ro;
  ro.id = n.id;
  ro.election_timeout = options_.election_timeout;
  ro.heartbeat_interval = options_.heartbeat_interval;
  // Rates within [1 - d, 1 + d] of real time differ from each other by 2d / (1 + d) at most.
  ro.max_drift = 2 * options_.clock_drift / (1 + options_.clock_drift) + 1e-6;
  n.raft_rng = std::make_unique<SimRandom>(seed_rng_.Next());
  if (s.ok()) s = core::raft::Raft::Open(ro, state, n.raft_rng.get(), Local(n), &n.raft);
  if (!s.ok()) {
    checker_.Fail(now_, "open " + n.id + ": " + s.ToString());
    return;
  }
  n.table = std::make_unique<core::LockTable>();
  if (state.snapshot.index() > 0) {
    pb::LockTableSnapshot snap;
    if (!snap.ParseFromString(state.snapshot_data)) {
      checker_.Fail(now_, n.id + ": unparsable lock table snapshot at open");
      return;
    }
    Status rs = n.table->Restore(snap);
    if (!rs.ok()) checker_.Fail(now_, n.id + ": restore at open: " + rs.ToString());
  }
  core::lease::LeaseOptions lo;
  lo.session_ttl = options_.session_ttl;
  lo.max_drift = ro.max_drift;
  lo.margin = options_.lease_margin;
  lo.keepalive_interval = options_.keepalive_interval;
  n.lease = std::make_unique<core::lease::NodeLease>(lo);
  n.leader_leases = std::make_unique<core::lease::LeaderLeases>(lo);
  n.clients.assign(options_.clients_per_node, Client());
  for (int k = 0; k < options_.clients_per_node; ++k) {
    n.clients[k].k = k;
    n.clients[k].next_action = Local(n) + client_rng_.Between(10'000, 500'000);
  }
  n.closing.clear();
  n.closing_retry_at = kNever;
  n.session_nodes.clear();
  n.keepalive_at = Local(n) + client_rng_.Below(options_.keepalive_interval);
  n.wake_at = kNever;
  n.stale_scan = n.incarnation > 0;
  n.up = true;
  Trace(n.index, "open (incarnation " + std::to_string(n.incarnation) + ", log " +
                     std::to_string(n.store->first_index()) + ".." +
                     std::to_string(n.store->last_index()) + ")");
}

// ---------------------------------------------------------------- time and events

Time Cluster::Local(const Node& n) const {
  return n.offset + static_cast<Time>(static_cast<double>(now_) * n.rate);
}

Time Cluster::LocalNow(int i) const { return Local(*nodes_[i]); }

Time Cluster::RealAt(const Node& n, Time local) const {
  if (local == kNever) return kNever;
  if (local <= n.offset) return 0;
  Time r = static_cast<Time>(std::ceil(static_cast<double>(local - n.offset) / n.rate));
  while (n.offset + static_cast<Time>(static_cast<double>(r) * n.rate) < local) ++r;
  return r;
}

void Cluster::Schedule(Time at, std::function<void()> fn) {
  queue_.push_back(Event{at, event_seq_++, std::move(fn)});
  std::push_heap(queue_.begin(), queue_.end(), [](const Event& a, const Event& b) {
    return a.at != b.at ? a.at > b.at : a.seq > b.seq;
  });
}

bool Cluster::Step() {
  if (queue_.empty()) return false;
  std::pop_heap(queue_.begin(), queue_.end(), [](const Event& a, const Event& b) {
    return a.at != b.at ? a.at > b.at : a.seq > b.seq;
  });
  Event e = std::move(queue_.back());
  queue_.pop_back();
  if (e.at > now_) now_ = e.at;
  checker_.set_now(now_);
  ++stats_.events;
  e.fn();
  return true;
}

void Cluster::RunFor(Time d) {
  const Time end = now_ + d;
  while (!failed() && !queue_.empty() && queue_.front().at <= end) Step();
  if (now_ < end) now_ = end;
  checker_.set_now(now_);
}

bool Cluster::RunUntil(const std::function<bool()>& done, Time limit) {
  const Time end = now_ + limit;
  if (done()) return true;
  while (!failed() && !queue_.empty() && queue_.front().at <= end) {
    Step();
    if (done()) return true;
  }
  if (now_ < end) now_ = end;
  return done();
}

void Cluster::ScheduleWake(Node& n) {
  if (!n.up) return;
  Time local = n.raft->next_deadline();
  local = std::min(local, n.keepalive_at);
  local = std::min(local, n.lease->NextDeadline());
  local = std::min(local, n.leader_leases->NextDeadline());
  if (!n.closing.empty()) local = std::min(local, n.closing_retry_at);
  for (const Client& c : n.clients) {
    local = std::min(local, c.retry_at);
    if (c.state == Client::State::kNoSession || c.state == Client::State::kIdle ||
        c.state == Client::State::kHolding) {
      if (!n.paused || c.state == Client::State::kHolding) local = std::min(local, c.next_action);
    }
    if (c.deadline != 0 && !c.deadline_passed) local = std::min(local, c.deadline);
  }
  Time real = std::max(RealAt(n, local), now_ + 1);
  if (real >= n.wake_at && n.wake_at > now_) return;  // an earlier wake is already pending
  n.wake_at = real;
  const int i = n.index;
  const uint64_t inc = n.incarnation;
  const std::string id = n.id;
  Schedule(real, [this, i, inc, id, real] {
    Node& m = *nodes_[i];
    if (!m.up || m.incarnation != inc || m.id != id) return;
    if (m.wake_at == real) m.wake_at = kNever;
    OnWake(m);
  });
}

// ---------------------------------------------------------------- the driver model

void Cluster::OnWake(Node& n) {
  const Time local = Local(n);
  n.raft->Tick(local);
  if (local >= n.keepalive_at) {
    n.keepalive_at = local + options_.keepalive_interval;
    SendKeepalive(n);
    if (!n.up) return;
  }
  if (n.lease->Lapsed(local)) DeclareLost(n, "lease lapsed");
  if (n.leader_leases->is_leader()) {
    for (const std::string& silent : n.leader_leases->TakeExpired(local)) {
      pb::Command cmd;
      cmd.mutable_expire_node()->set_node_id(silent);
      Trace(n.index, "proposes ExpireNode(" + silent + ")");
      ++stats_.expirations;
      Propose(n, cmd);
    }
  }
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
    if (local >= c.next_action) ClientAct(n, c);
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
      c.client_id = (n.incarnation << 32) | ++n.next_client;
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
      ProposeFor(n, c, cmd);
      return;
    }
    default:
      c.next_action = kNever;
      return;
  }
}

void Cluster::GrantTo(Node& n, Client& c, uint64_t lock_id, uint64_t token) {
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
  while (n.up && n.raft->HasBatch()) {
    core::raft::Batch batch = n.raft->TakeBatch();
    // 1. persist (fsync)
    Status s = PersistBatch(n.store.get(), batch);
    if (!s.ok()) {
      checker_.Fail(now_, n.id + ": persist failed: " + s.ToString());
      return;
    }
    if (batch.snapshot) {
      pb::LockTableSnapshot snap;
      auto table = std::make_unique<core::LockTable>();
      if (!snap.ParseFromString(batch.snapshot->data) || !table->Restore(snap).ok()) {
        checker_.Fail(now_, n.id + ": cannot restore the lock table from an installed snapshot");
        return;
      }
      n.table = std::move(table);
      n.stale_scan = true;
      ++stats_.snapshots_installed;
      Trace(n.index, "installs snapshot at " + std::to_string(batch.snapshot->meta.index()));
    }
    checker_.OnPersisted(n.id, *n.store, batch.entries);
    // 2. send
    for (pb::RaftMessage& m : batch.messages) {
      int to = IndexOf(m.to());
      if (to < 0) continue;
      auto env = std::make_shared<Envelope>();
      env->kind = Envelope::Kind::kRaft;
      env->from = n.index;
      env->raft = std::move(m);
      Send(n, to, std::move(env));
    }
    // 3. apply
    for (const pb::Entry& e : batch.committed) ApplyEntry(n, e);
    // 4. acknowledge
    n.raft->Advance(batch);
    if (batch.snapshot) ResyncClients(n);
    AfterApply(n);
  }
  if (n.up) ObserveRole(n);
}

void Cluster::ApplyEntry(Node& n, const pb::Entry& e) {
  if (e.type() != pb::ENTRY_COMMAND) {
    checker_.OnApplied(n.id, e, nullptr, nullptr);
    return;
  }
  pb::Command cmd;
  if (!cmd.ParseFromString(e.data())) {
    checker_.Fail(now_, n.id + ": unparsable command at " + std::to_string(e.index()));
    return;
  }
  core::ApplyResult r = n.table->Apply(e.index(), cmd);
  checker_.OnApplied(n.id, e, &cmd, &r);
  const Time local = Local(n);
  if (n.incarnation > 0 && (cmd.has_acquire() || cmd.has_open_session())) {
    const pb::SessionKey& s =
        cmd.has_acquire() ? cmd.acquire().session() : cmd.open_session().session();
    if (s.node_id() == n.id && (s.client_id() >> 32) != n.incarnation) n.stale_scan = true;
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
      if (c != nullptr && c->state == Client::State::kOpening) {
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

void Cluster::CleanupStaleSessions(Node& n) {
  // Sessions of this node's earlier incarnations (before a restart) that still hold or wait
  // for a lock: nobody will release them, so the node closes them.
  if (!n.stale_scan) return;
  n.stale_scan = false;
  for (const core::LockRow& row : n.table->List()) {
    if (row.session.node_id() != n.id) continue;
    const uint64_t cid = row.session.client_id();
    if ((cid >> 32) == n.incarnation || n.closing.count(cid) != 0) continue;
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
      checker_.CheckLeaderCompleteness(n.id, *n.store);
      Trace(n.index, "becomes leader of term " + std::to_string(n.raft->term()) +
                         " (last index " + std::to_string(n.raft->last_index()) + ")");
    }
  } else if (n.leader_leases->is_leader()) {
    n.leader_leases->StepDown();
    Trace(n.index, std::string("steps down (") + core::raft::RoleName(n.raft->role()) +
                       ", term " + std::to_string(n.raft->term()) + ")");
  }
}

// ---------------------------------------------------------------- network and leases

int Cluster::IndexOf(const std::string& id) const {
  for (const auto& n : nodes_) {
    if (n->id == id) return n->index;
  }
  return -1;
}

void Cluster::Send(Node& from, int to, std::shared_ptr<Envelope> env) {
  ++stats_.messages;
  if (options_.verbose && env->kind == Envelope::Kind::kRaft) {
    const pb::RaftMessage& m = env->raft;
    Trace(from.index, std::string("-> ") + nodes_[to]->id + " " +
                          pb::RaftMessageType_Name(m.type()) + " t" + std::to_string(m.term()) +
                          " i" + std::to_string(m.index()) + " lt" + std::to_string(m.log_term()) +
                          " n" + std::to_string(m.entries_size()) + " c" +
                          std::to_string(m.commit()) + (m.reject() ? " reject" : ""));
  }
  if (!link_up_[from.index][to]) return;
  if (drop_ > 0 && net_rng_.Chance(drop_)) return;
  const int copies = net_rng_.Chance(options_.duplicate) ? 2 : 1;
  for (int k = 0; k < copies; ++k) {
    const Time delay = net_rng_.Between(options_.min_delay, options_.max_delay);
    Schedule(now_ + delay, [this, to, env] { Deliver(to, env); });
  }
}

void Cluster::Deliver(int to, const std::shared_ptr<Envelope>& env) {
  Node& n = *nodes_[to];
  if (!n.up) return;
  const Time local = Local(n);
  switch (env->kind) {
    case Envelope::Kind::kRaft:
      n.raft->Step(local, env->raft);
      break;
    case Envelope::Kind::kKeepalive:
      HandleKeepalive(n, env->keepalive, env->from);
      break;
    case Envelope::Kind::kAck:
      if (env->ack.node_id() == n.id) HandleAck(n, env->ack);
      break;
  }
  Pump(n);
  ScheduleWake(n);
}

void Cluster::SendKeepalive(Node& n) {
  const std::string& leader = n.raft->leader();
  if (leader.empty()) return;
  pb::Keepalive k = n.lease->MakeKeepalive(Local(n), n.id);
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
  if (!leader.leader_leases->OnKeepalive(local, k, leader.raft->HasLeaderLease(local), leader.id,
                                         leader.raft->last_index(), &ack)) {
    return;
  }
  if (from == leader.index) {
    HandleAck(leader, ack);
    return;
  }
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

// ---------------------------------------------------------------- faults

void Cluster::Partition(const std::vector<std::vector<int>>& groups) {
  ++stats_.faults;
  std::vector<int> group_of(nodes_.size(), static_cast<int>(groups.size()));
  std::string text = "partition";
  for (size_t g = 0; g < groups.size(); ++g) {
    text += " {";
    for (int i : groups[g]) {
      group_of[i] = static_cast<int>(g);
      text += " " + nodes_[i]->id;
    }
    text += " }";
  }
  for (size_t a = 0; a < nodes_.size(); ++a) {
    for (size_t b = 0; b < nodes_.size(); ++b) link_up_[a][b] = group_of[a] == group_of[b];
  }
  Trace(-1, text);
}

void Cluster::SetLink(int from, int to, bool up) {
  ++stats_.faults;
  link_up_[from][to] = up;
  Trace(-1, std::string("link ") + nodes_[from]->id + " -> " + nodes_[to]->id +
                (up ? " restored" : " cut (one-way)"));
}

void Cluster::Heal() {
  ++stats_.faults;
  for (auto& row : link_up_) std::fill(row.begin(), row.end(), true);
  drop_ = options_.drop;
  Trace(-1, "heal");
}

void Cluster::SetLoss(double drop) {
  ++stats_.faults;
  drop_ = drop;
  Trace(-1, "loss burst: drop " + std::to_string(drop));
}

void Cluster::Crash(int i, core::FaultFileSystem::TearMode mode) {
  Node& n = *nodes_[i];
  if (!n.up) return;
  ++stats_.faults;
  ++stats_.crashes;
  for (Client& c : n.clients) {
    if (c.delivered) {
      c.delivered = false;
      checker_.EndHold(now_, ClientName(n, c), c.resource, c.lock_id);
    }
  }
  n.up = false;
  n.raft.reset();
  n.store.reset();
  n.table.reset();
  n.clients.clear();
  n.fs->Crash(mode);
  n.lost_at = now_;
  Trace(i, std::string("crash (") +
               (mode == core::FaultFileSystem::TearMode::kDropUnsynced ? "unsynced writes lost"
                : mode == core::FaultFileSystem::TearMode::kTearLastWrite ? "last write torn"
                                                                            : "last write garbled") +
               ")");
}

void Cluster::Restart(int i) {
  Node& n = *nodes_[i];
  if (n.up || n.decommissioned) return;
  ++stats_.faults;
  ++n.incarnation;
  OpenNode(n, false);
  if (!n.up) return;
  Pump(n);
  ScheduleWake(n);
}

Status Cluster::AtLeader(const core::raft::MembershipChange& change) {
  const int l = Leader();
  if (l < 0) return Status::Unavailable("no leader");
  Node& n = *nodes_[l];
  Status s = n.raft->ProposeMembership(Local(n), change);
  Trace(l, std::string("membership ") +
               (change.kind == core::raft::MembershipChange::Kind::kAddLearner ? "add learner "
                : change.kind == core::raft::MembershipChange::Kind::kPromote  ? "promote "
                                                                               : "remove ") +
               change.id + ": " + s.ToString());
  if (s.ok()) {
    ++stats_.faults;
    ++stats_.membership_changes;
  }
  Pump(n);
  ScheduleWake(n);
  return s;
}

Status Cluster::AddLearner(int i) {
  core::raft::MembershipChange c;
  c.kind = core::raft::MembershipChange::Kind::kAddLearner;
  c.id = nodes_[i]->id;
  c.address = c.id + ":28017";
  return AtLeader(c);
}

Status Cluster::Promote(int i) {
  core::raft::MembershipChange c;
  c.kind = core::raft::MembershipChange::Kind::kPromote;
  c.id = nodes_[i]->id;
  return AtLeader(c);
}

Status Cluster::Remove(int i) {
  core::raft::MembershipChange c;
  c.kind = core::raft::MembershipChange::Kind::kRemove;
  c.id = nodes_[i]->id;
  Status s = AtLeader(c);
  if (!s.ok()) return s;
  const std::string id = nodes_[i]->id;
  // Once the removal is committed, the node is switched off and later comes back as a new,
  // empty spare (a new id: a node never rejoins under an id whose state it lost).
  Schedule(now_ + 3 * options_.election_timeout, [this, i, id] {
    Node& n = *nodes_[i];
    if (n.id != id || IsMember(i)) return;
    const int l = Leader();
    if (l < 0 || nodes_[l]->raft->commit_index() < nodes_[l]->raft->last_index()) return;
    for (Client& c : n.clients) {
      if (c.delivered) {
        c.delivered = false;
        checker_.EndHold(now_, ClientName(n, c), c.resource, c.lock_id);
      }
    }
    Trace(i, "decommissioned; comes back as a fresh spare");
    n.up = false;
    n.raft.reset();
    n.store.reset();
    n.table.reset();
    n.clients.clear();
    NewIdentity(n);
    OpenNode(n, false);
    ScheduleWake(n);
  });
  return s;
}

Status Cluster::TransferLeadership(int i) {
  const int l = Leader();
  if (l < 0) return Status::Unavailable("no leader");
  Node& n = *nodes_[l];
  Status s = n.raft->TransferLeadership(Local(n), nodes_[i]->id);
  Trace(l, "transfers leadership to " + nodes_[i]->id + ": " + s.ToString());
  Pump(n);
  ScheduleWake(n);
  return s;
}

void Cluster::PauseClients(int i, bool paused) { nodes_[i]->paused = paused; }

void Cluster::ForceHold(int i, const std::string& resource, Time hold) {
  Node& n = *nodes_[i];
  for (Client& c : n.clients) {
    c.forced_resource = resource;
    c.forced_hold = hold;
  }
}

// ---------------------------------------------------------------- observation

int Cluster::Leader() const {
  int best = -1;
  uint64_t term = 0;
  for (const auto& n : nodes_) {
    if (n->up && n->raft->role() == Role::kLeader && n->raft->term() >= term) {
      best = n->index;
      term = n->raft->term();
    }
  }
  return best;
}

bool Cluster::up(int i) const { return nodes_[i]->up; }
const std::string& Cluster::id(int i) const { return nodes_[i]->id; }
const core::raft::Raft* Cluster::raft(int i) const {
  return nodes_[i]->up ? nodes_[i]->raft.get() : nullptr;
}

namespace {
const pb::Member* FindMember(const pb::ClusterConfig& config, const std::string& id) {
  for (const pb::Member& m : config.members()) {
    if (m.id() == id) return &m;
  }
  return nullptr;
}
}  // namespace

bool Cluster::IsVoter(int i) const {
  const int l = Leader();
  const int ref = l >= 0 ? l : (nodes_[i]->up ? i : -1);
  if (ref < 0) return false;
  const pb::Member* m = FindMember(nodes_[ref]->raft->config(), nodes_[i]->id);
  return m != nullptr && m->voter();
}

bool Cluster::IsMember(int i) const {
  const int l = Leader();
  const int ref = l >= 0 ? l : (nodes_[i]->up ? i : -1);
  if (ref < 0) return false;
  return FindMember(nodes_[ref]->raft->config(), nodes_[i]->id) != nullptr;
}

int Cluster::VoterCount() const {
  int count = 0;
  for (int i = 0; i < size(); ++i) count += IsVoter(i) ? 1 : 0;
  return count;
}

Time Cluster::LeaseUntil(int i) const {
  return nodes_[i]->up ? nodes_[i]->lease->valid_until() : 0;
}

int Cluster::HeldBy(int i) const {
  int held = 0;
  for (const Client& c : nodes_[i]->clients) held += c.delivered ? 1 : 0;
  return held;
}

Time Cluster::LastLostAt(int i) const { return nodes_[i]->lost_at; }

Time Cluster::FirstGrantElsewhere(int i, const std::string& resource, Time after) const {
  for (const auto& [t, node, res] : grant_log_) {
    if (t > after && node != i && res == resource) return t;
  }
  return 0;
}

void Cluster::Trace(int node, const std::string& text) {
  std::string line = "[" + Ms(now_) + "ms] " + (node >= 0 ? nodes_[node]->id : "--") + ": " +
                     text;
  if (options_.verbose) std::cerr << line << "\n";
  trace_.push_back(std::move(line));
  while (trace_.size() > options_.trace_capacity) trace_.pop_front();
}

std::string Cluster::Report() const {
  std::ostringstream out;
  out << "seed " << options_.seed << " (" << options_.voters << " voters + " << options_.spares
      << " spare): " << (failed() ? checker_.violation() : "no violation") << "\n";
  out << "last " << trace_.size() << " events:\n";
  for (const std::string& line : trace_) out << "  " << line << "\n";
  return out.str();
}

}  // namespace mesh::sim

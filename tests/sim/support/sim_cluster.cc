#include "sim/support/sim_cluster.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "core/raft/raft_storage.h"
#include "sim/support/sim_cluster_internal.h"

namespace mesh::sim {

using core::raft::Role;

// ---------------------------------------------------------------- set-up

bool AdmissionTakesClaims() {
  pb::Command claim;
  claim.mutable_claim_client_ids()->set_node_id("n1");
  pb::RaftMessage m;
  m.set_type(pb::PROPOSE);
  m.set_from("n1");
  m.set_to("n2");
  m.set_term(1);
  pb::Entry* e = m.add_entries();
  e->set_type(pb::ENTRY_COMMAND);
  e->set_data(claim.SerializeAsString());
  pb::ClusterConfig config;
  for (const char* id : {"n1", "n2"}) {
    pb::Member* mem = config.add_members();
    mem->set_id(id);
    mem->set_voter(true);
  }
  core::AdmissionView view;
  view.self_id = "n2";
  view.config = &config;
  view.leader = true;
  view.leader_id = "n2";
  return core::AdmitRaft(view, "n1", m).accepted;
}

Cluster::Cluster(const SimOptions& options)
    : options_(options),
      seed_rng_(options.seed),
      net_rng_(seed_rng_.Fork(1)),
      fault_rng_(seed_rng_.Fork(2)),
      client_rng_(seed_rng_.Fork(3)),
      disk_rng_(seed_rng_.Fork(4)),
      drop_(options.drop) {
  const int total = options_.voters + options_.spares;
  link_up_.assign(total, std::vector<bool>(total, true));
  for (int i = 0; i < total; ++i) {
    auto n = std::make_unique<Node>();
    n->index = i;
    double u = options_.extreme_drift ? (i % 2 == 0 ? 1.0 : -1.0) : seed_rng_.Unit() * 2 - 1;
    n->rate = 1.0 + options_.clock_drift * u;
    n->offset = seed_rng_.Between(1'000'000, 100'000'000);
    // Wall clocks around 2026 (microseconds since the epoch), a few ms apart.
    n->wall_offset = 1'780'000'000'000'000 + static_cast<int64_t>(seed_rng_.Below(10'000));
    NewIdentity(*n);
    nodes_.push_back(std::move(n));
  }
}

Cluster::~Cluster() = default;

void Cluster::NewIdentity(Node& n) {
  n.id = "n" + std::to_string(next_id_++);
  n.fs = std::make_unique<core::FaultFileSystem>(seed_rng_.Next());
  n.disk_limited = false;  // a new disk
  n.incarnation = 0;
  n.next_client = 0;
  n.decommissioned = false;
}

void Cluster::Start() {
  pb::ClusterConfig config;
  config.set_cluster_id(kClusterId);
  for (int i = 0; i < options_.voters; ++i) {
    pb::Member* m = config.add_members();
    m->set_id(nodes_[i]->id);
    m->set_voter(true);
    m->set_address(nodes_[i]->id + ":28017");
  }
  // Every initial voter writes and applies the bootstrap configuration (entry 1) before any
  // sync: it is committed by construction, not by a quorum's acknowledgements.
  checker_.set_check_durable_quorum(false);
  for (auto& n : nodes_) {
    OpenNode(*n, /*bootstrap=*/false);
    if (n->index < options_.voters) {
      Status s = n->raft->Bootstrap(Local(*n), config);
      if (!s.ok()) checker_.Fail(now_, "bootstrap " + n->id + ": " + s.ToString());
    }
    // A spare's timers run too: it chooses whom to join at every wake (ChooseJoinTarget).
    Pump(*n);
    ScheduleWake(*n);
  }
  checker_.set_check_durable_quorum(true);
}

void Cluster::OpenNode(Node& n, bool) {
  core::LogStoreOptions store_options;
  store_options.segment_bytes = options_.segment_bytes;
  Status s = core::LogStore::Open(n.fs.get(), kDataDir, store_options, &n.store);
  core::raft::PersistentState state;
  if (s.ok()) s = core::raft::LoadPersistentState(*n.store, &state);
  if (s.ok()) checker_.OnRecovered(n.id, *n.store);
  core::raft::RaftOptions ro;
  ro.id = n.id;
  ro.election_timeout = options_.election_timeout;
  ro.heartbeat_interval = options_.heartbeat_interval;
  ro.max_append_bytes = options_.max_append_bytes;
  ro.max_inflight = options_.max_inflight;
  ro.max_snapshot_chunk_bytes = options_.max_snapshot_chunk_bytes;
  ro.max_snapshot_chunks_inflight = options_.max_snapshot_chunks_inflight;
  // Rates within [1 - d, 1 + d] of real time differ from each other by 2d / (1 + d) at most.
  ro.max_drift = 2 * options_.clock_drift / (1 + options_.clock_drift) + 1e-6;
  n.raft_rng = std::make_unique<SimRandom>(seed_rng_.Next());
  if (s.ok()) s = core::raft::Raft::Open(ro, state, n.raft_rng.get(), Local(n), &n.raft);
  if (!s.ok() && core::IsNoSpace(s)) {
    // A node that cannot open its store for want of space does not start (net/: it exits
    // with the error); it starts once there is room (FreeDisk).
    n.store.reset();
    n.raft.reset();
    n.start_when_space = true;
    Trace(n.index, "cannot start: " + s.ToString());
    return;
  }
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
  // A leader whose clock advances past the election timeout between two calls (a freeze,
  // a monotonic jump) treats the gap as its own pause (as net/node/cluster.cc sets it).
  lo.election_timeout = options_.election_timeout;
  n.lease = std::make_unique<core::lease::NodeLease>(lo);
  n.leader_leases = std::make_unique<core::lease::LeaderLeases>(lo);
  n.clients.assign(options_.clients_per_node, Client());
  for (int k = 0; k < options_.clients_per_node; ++k) {
    n.clients[k].k = k;
    NewClientLease(n, n.clients[k]);
    n.clients[k].next_action = Local(n) + client_rng_.Between(10'000, 500'000);
  }
  n.closing.clear();
  n.closing_retry_at = kNever;
  n.session_nodes.clear();
  n.join_targets.clear();  // the driver's formation state starts afresh with each run
  n.join_cluster_id.clear();
  n.join_reason.clear();
  n.keepalive_at = Local(n) + client_rng_.Below(options_.keepalive_interval);
  n.wake_at = kNever;
  // This run's claim of client ids (the first of the run ends the earlier runs' sessions).
  n.epoch = 0;
  n.next_client = 0;
  n.claim.clear();
  n.claim_retry_at = kNever;
  n.ids_ready = !options_.claim_client_ids;
  if (!options_.claim_client_ids) n.epoch = n.incarnation;
  n.stale_scan = !options_.claim_client_ids && n.incarnation > 0;
  n.claim_nonce = 1 + seed_rng_.Below(UINT64_MAX - 1);
  pb::Command claim;
  claim.mutable_claim_client_ids()->set_node_id(n.id);
  claim.mutable_claim_client_ids()->set_expire_older(true);
  claim.mutable_claim_client_ids()->set_nonce(n.claim_nonce);
  if (options_.claim_client_ids) {
    n.claim = claim.SerializeAsString();
    n.claim_retry_at = Local(n);
  }
  n.syncing.clear();
  n.sync_id = 0;
  n.persist = core::raft::PersistQueue();
  n.start_when_space = false;
  n.sync_in_loop = disk_rng_.Chance(options_.sync_in_loop);
  n.up = true;
  Trace(n.index, std::string(n.sync_in_loop ? "persists in its loop; " : "") + "open (incarnation " + std::to_string(n.incarnation) + ", log " +
                     std::to_string(n.store->first_index()) + ".." +
                     std::to_string(n.store->last_index()) + ")");
}

// ---------------------------------------------------------------- time and events

Time Cluster::Local(const Node& n) const {
  return n.offset + static_cast<Time>(static_cast<double>(now_) * n.rate);
}

Time Cluster::LocalNow(int i) const { return Local(*nodes_[i]); }

int64_t Cluster::WallNow(int i) const {
  const Node& n = *nodes_[i];
  return n.wall_offset + static_cast<int64_t>(static_cast<double>(now_) * n.rate);
}

bool Cluster::frozen(int i) const { return nodes_[i]->frozen(); }

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

Time Cluster::NodeDeadline(const Node& n) const {
  Time local = n.raft->next_deadline();
  local = std::min(local, n.keepalive_at);
  local = std::min(local, n.lease->NextDeadline());
  local = std::min(local, n.leader_leases->NextDeadline());
  if (!n.closing.empty()) local = std::min(local, n.closing_retry_at);
  if (!n.claim.empty()) local = std::min(local, n.claim_retry_at);
  local = std::min(local, n.persist.next_retry_us());
  for (const Client& c : n.clients) {
    local = std::min(local, c.retry_at);
    if (c.state == Client::State::kNoSession || c.state == Client::State::kIdle ||
        c.state == Client::State::kHolding) {
      if (!n.paused || c.state == Client::State::kHolding) local = std::min(local, c.next_action);
    }
    if (c.deadline != 0 && !c.deadline_passed) local = std::min(local, c.deadline);
    local = std::min(local, ClientDeadline(n, c));
  }
  return local;
}

Time Cluster::FrozenDeadline(const Node& n) const {
  // Only the clients run while their node is frozen: their holds end.
  Time local = kNever;
  for (const Client& c : n.clients) {
    if (c.state == Client::State::kHolding) local = std::min(local, c.next_action);
    local = std::min(local, ClientDeadline(n, c));
  }
  return local;
}

void Cluster::ScheduleWake(Node& n) {
  if (!n.up) return;
  Time local = n.frozen() ? FrozenDeadline(n) : NodeDeadline(n);
  if (local == kNever && n.frozen()) return;  // the Thaw event resumes the node
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
    if (m.frozen()) {
      OnFrozenWake(m);
    } else {
      OnWake(m);
    }
  });
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
  env->link = from.id;
  if (options_.verbose && env->kind == Envelope::Kind::kRaft) {
    const pb::RaftMessage& m = env->raft;
    Trace(from.index, std::string("-> ") + nodes_[to]->id + " " +
                          pb::RaftMessageType_Name(m.type()) + " t" + std::to_string(m.term()) +
                          " i" + std::to_string(m.index()) + " lt" + std::to_string(m.log_term()) +
                          " n" + std::to_string(m.entries_size()) + " c" +
                          std::to_string(m.commit()) + (m.reject() ? " reject" : "") +
                          (m.type() == pb::SNAPSHOT || m.type() == pb::SNAPSHOT_RESPONSE
                               ? " s" + std::to_string(m.snapshot_meta().index()) + " o" +
                                     std::to_string(m.snapshot_offset()) + "+" +
                                     std::to_string(m.snapshot_data().size()) + "/" +
                                     std::to_string(m.snapshot_size())
                               : ""));
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
  if (n.frozen()) {
    n.inbox.push_back(env);
    return;
  }
  if (!Admit(n, *env)) return;
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

bool Cluster::Admit(Node& n, const Envelope& env) {
  core::AdmissionView view;
  view.self_id = n.id;
  view.config = &n.raft->config();
  view.leader = n.raft->role() == Role::kLeader;
  view.leader_id = n.raft->leader();
  view.term = n.raft->term();
  view.join_targets = &n.join_targets;
  // Gossip: what every peer in view says about its leader (GossipSeenBy). Needed only when
  // the link is not a voter: only then does admission ask who vouches.
  std::map<std::string, core::GossipClaim> gossip;
  const bool voter_link = core::IsVoterOf(view.config, env.link);
  if (!voter_link) {
    for (const auto& [id, g] : GossipSeenBy(n)) gossip[id] = core::GossipClaim{g.leader_id, g.term};
  }
  view.gossip = &gossip;
  core::Admission a;
  switch (env.kind) {
    case Envelope::Kind::kRaft:
      a = core::AdmitRaft(view, env.link, env.raft);
      break;
    case Envelope::Kind::kKeepalive:
      a = core::AdmitKeepalive(env.link, env.keepalive);
      break;
    case Envelope::Kind::kAck:
      a = core::AdmitKeepaliveAck(view, env.link, env.ack);
      break;
  }
  if (a.accepted) return true;
  ++stats_.refused;
  if (options_.verbose || env.from != kRogue) {
    Trace(n.index, "refuses (" + a.rule + ") from link " + env.link + ": " + a.detail);
  }
  return false;
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
  n.frozen_until = 0;
  n.inbox.clear();
  n.lease_inbox.clear();
  bool mid_sync = false;
  if (n.sync_id != 0) ++stats_.mid_sync_crashes;
  if (n.sync_id != 0 && disk_rng_.Chance(0.5)) {
    // The pool thread had issued the writes of the sync in flight and not seen its fsync
    // return: up to two of the syncs inside it (a segment's growth, a compacted snapshot)
    // went through, the rest of its writes are unsynced and go the way of `mode`.
    mid_sync = true;
    n.fs->FailNextSyncs(1 << 30, static_cast<int>(disk_rng_.Below(3)));
    std::vector<const core::raft::Batch*> batches;
    for (const core::raft::Batch& b : n.syncing) batches.push_back(&b);
    (void)core::raft::PersistBatches(n.store.get(), batches);
    n.fs->FailNextSyncs(0, 0);
  }
  n.persist = core::raft::PersistQueue();  // what it had not synced is lost
  n.syncing.clear();
  n.sync_id = 0;
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
               (mid_sync ? ", in the middle of a sync" : "") + ")");
}

void Cluster::CrashAfterNextWrite(int i, core::FaultFileSystem::TearMode mode) {
  Node& n = *nodes_[i];
  if (!n.up) return;
  n.crash_armed = true;
  n.crash_mode = mode;
  Trace(i, "power cut armed: in its next sync of entries or a hard state");
}

void Cluster::Restart(int i) {
  Node& n = *nodes_[i];
  n.crash_armed = false;
  if (n.up || n.decommissioned) return;
  ++stats_.faults;
  ++n.incarnation;
  OpenNode(n, false);
  if (!n.up) return;
  Pump(n);
  ScheduleWake(n);
}

void Cluster::Freeze(int i, Time d) {
  Node& n = *nodes_[i];
  if (!n.up) return;
  ++stats_.faults;
  ++stats_.freezes;
  const Time until = std::max(n.frozen_until, now_ + d);
  n.frozen_until = until;
  Trace(i, "frozen (SIGSTOP) for " + Ms(d) + " ms");
  const uint64_t inc = n.incarnation;
  const std::string id = n.id;
  Schedule(until, [this, i, inc, id, until] {
    Node& m = *nodes_[i];
    if (!m.up || m.incarnation != inc || m.id != id || m.frozen_until != until) return;
    Thaw(m);
  });
  n.wake_at = kNever;
  ScheduleWake(n);
}

void Cluster::Thaw(Node& n) {
  n.frozen_until = 0;
  Trace(n.index, "thawed (" + std::to_string(n.inbox.size()) + " messages queued)");
  // libuv runs due timers before it polls for I/O.
  n.wake_at = kNever;
  OnWake(n);
  std::vector<std::shared_ptr<Envelope>> inbox;
  inbox.swap(n.inbox);
  for (const auto& env : inbox) {
    if (!n.up || n.frozen()) break;
    Deliver(n.index, env);
  }
  std::vector<std::tuple<int, uint64_t, uint64_t>> requests;
  requests.swap(n.lease_inbox);
  for (const auto& [k, conn, seq] : requests) {
    if (!n.up || n.frozen()) break;
    AnswerLeaseRequest(n, k, conn, seq);
  }
}

void Cluster::OnFrozenWake(Node& n) {
  // The node does nothing; its clients (other processes) end their holds on time. A
  // release is proposed by the node once it runs again.
  const Time local = Local(n);
  for (Client& c : n.clients) {
    ClientLeaseDuties(n, c);
    if (c.state == Client::State::kHolding && local >= c.next_action) ClientAct(n, c);
  }
  ScheduleWake(n);
}

void Cluster::JumpClock(int i, Time d) {
  Node& n = *nodes_[i];
  ++stats_.faults;
  ++stats_.clock_steps;
  n.offset += d;
  Trace(i, "monotonic clock jumps forward " + Ms(d) + " ms");
  if (!n.up) return;
  n.wake_at = kNever;
  ScheduleWake(n);
}

void Cluster::StepWall(int i, int64_t delta) {
  Node& n = *nodes_[i];
  ++stats_.faults;
  ++stats_.clock_steps;
  n.wall_offset += delta;
  Trace(i, std::string("wall clock stepped ") + (delta < 0 ? "back " : "forward ") +
               Ms(static_cast<Time>(delta < 0 ? -delta : delta)) + " ms");
}

Status Cluster::AtLeader(const core::raft::MembershipChange& change) {
  const int l = Leader();
  if (l < 0) return Status::Unavailable("no leader");
  Node& n = *nodes_[l];
  if (n.frozen()) return Status::Unavailable("the leader is frozen");
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
  // The spare asked to join (net/: a JoinRequest to the peer core::ChooseJoin names, who
  // forwards it to the leader); it trusts that peer and the leader it names.
  if (nodes_[i]->up && nodes_[i]->raft->config().members_size() == 0) {
    ChooseJoinTarget(*nodes_[i]);
  }
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
    n.frozen_until = 0;
    n.inbox.clear();
    n.lease_inbox.clear();
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
  if (n.frozen()) return Status::Unavailable("the leader is frozen");
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

const core::LockTable* Cluster::table(int i) const {
  return nodes_[i]->up ? nodes_[i]->table.get() : nullptr;
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

bool Cluster::AllMembersServe(std::string* why) const {
  for (const auto& n : nodes_) {
    if (!n->up || n->frozen() || n->paused || !IsMember(n->index)) continue;
    // Only nodes that follow a running leader: this is about client ids and sessions, not
    // Raft's liveness.
    const int l = IndexOf(n->raft->leader());
    if (l < 0 || !nodes_[l]->up || nodes_[l]->raft->role() != Role::kLeader) continue;
    bool serving = false;
    for (const Client& c : n->clients) {
      serving |= c.state != Client::State::kNoSession && c.state != Client::State::kOpening;
    }
    if (!n->ids_ready || !serving) {
      if (why != nullptr) {
        *why = n->id +
               (n->ids_ready ? " has no open session" : " has no client ids (claim not applied)");
        for (const Client& c : n->clients) {
          *why += " [c" + std::to_string(c.k) + " state " +
                  std::to_string(static_cast<int>(c.state)) + " id " + std::to_string(c.client_id) +
                  " inflight " + std::to_string(c.inflight.size()) + " next " + Ms(c.next_action) +
                  "]";
        }
        *why += " local " + Ms(Local(*n)) + "; its configuration:";
        for (const pb::Member& m : n->raft->config().members()) {
          *why += " " + m.id() + (m.voter() ? "" : "(learner)");
        }
        *why += std::string("; role ") + core::raft::RoleName(n->raft->role()) + " term " +
                std::to_string(n->raft->term()) + " commit " +
                std::to_string(n->raft->commit_index()) + "/" +
                std::to_string(n->raft->last_index());
      }
      return false;
    }
  }
  return true;
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

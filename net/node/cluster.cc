// net/node/cluster.h: the Cluster's start, formation and membership, its tick, and its leave,
// stop, reload and status. Its links, peer messages, admission and leases are
// cluster_messages.cc's.
#include "net/node/cluster.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <random>

#include "core/formation_plan.h"
#include "core/hex.h"
#include "core/host_port.h"
#include "core/join_choice.h"
#include "core/lease/lease_tuning.h"
#include "net/node/peer_address.h"
#include "net/support/lease_clock.h"
#include "net/support/log_line.h"

namespace mesh::net {
namespace {

constexpr uint64_t kTickMs = 50;
constexpr uint64_t kGossipIntervalMs = 500;

std::string RandomClusterId() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return core::HexUint64(v);
}

using core::JoinHostPort;

}  // namespace

Cluster::Cluster(uv_loop_t* loop, ClusterOptions options, CommandLog* log, Callbacks callbacks)
    : loop_(loop),
      options_(std::move(options)),
      log_(log),
      callbacks_(std::move(callbacks)),
      lease_options_(core::lease::MeshLeaseOptions(options_.session_ttl_us, options_.max_drift,
                                                   options_.election_timeout_us)),
      leader_leases_(lease_options_),
      node_lease_(lease_options_),
      links_(core::LinkWatchOptions{kTickMs, kGossipIntervalMs, options_.election_timeout_us}) {}

Cluster::~Cluster() = default;

void Cluster::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    fprintf(stderr, "%s\n", line.c_str());
  }
}

const std::string& Cluster::ClusterId() const { return log_->raft()->config().cluster_id(); }

bool Cluster::InConfig() const { return IsMember(options_.node_id); }

bool Cluster::IsMember(const std::string& id) const {
  for (const pb::Member& m : log_->raft()->config().members()) {
    if (m.id() == id) return true;
  }
  return false;
}

Status Cluster::Start() {
  start_ms_ = uv_now(loop_);
  options_.tls.node_id = options_.node_id;
  PeerCallbacks cb;
  cb.on_peer_up = [this](const PeerInfo& info) { OnPeerUp(info); };
  cb.on_peer_down = [this](const std::string& id, const Status& why) { OnPeerDown(id, why); };
  cb.on_message = [this](const std::string& from, pb::PeerEnvelope& env) { OnMessage(from, env); };
  cb.on_refused = [this](const PeerRefusal& r) {
    // The transport logs the refusal itself; a second-cluster hint helps the operator.
    (void)r;
  };
  auto make_transport = [&](const std::string& listen) {
    PeerTransportOptions to;
    to.cluster = options_.cluster;
    to.node_id = options_.node_id;
    to.listen_address = listen;
    to.advertise_address = options_.advertise;
    to.tls = options_.tls;
    to.data_dir = options_.data_dir;
    to.trusted_fingerprints_file = options_.trusted_fingerprints_file;
    to.log = [this](const std::string& line) { Log(line); };
    to.handshake_timeout_ms = options_.handshake_timeout_ms;
    to.pending_limits = options_.pending_limits;
    // A link lost to an outage must come back soon after the network does: the session
    // lease (and the leader's expiry of this node) depends on it.
    to.reconnect_max_ms = std::min<uint64_t>(1000, to.reconnect_max_ms);
    return std::make_unique<PeerTransport>(loop_, to, cb);
  };
  std::string listen = options_.listen;
  if (listen.empty()) {
    const std::string port = std::to_string(kDefaultPeerPort);
    transport_ = make_transport("[::]:" + port);
    Status st = transport_->Start();
    if (!st.ok()) {
      // No IPv6 here (a container without it, say): IPv4 only. The failed transport may
      // hold a listener handle: it is stopped (and freed) with the rest at Stop().
      failed_transport_ = std::move(transport_);
      transport_ = make_transport("0.0.0.0:" + port);
      MESH_RETURN_IF_ERROR(transport_->Start().Annotate("cannot listen for peers"));
    }
  } else {
    transport_ = make_transport(listen);
    MESH_RETURN_IF_ERROR(transport_->Start().Annotate("cannot listen for peers on " + listen));
  }
  log_->SetSender([this](pb::RaftMessage&& m) { SendRaft(std::move(m)); });
  log_->SetSendFlusher([this] {
    if (!stopping_ && transport_) transport_->FlushQueued();
  });

  DiscoveryOptions d;
  d.cluster_name = options_.cluster;
  d.node_id = options_.node_id;
  d.multicast = options_.multicast;
  d.port = options_.discovery_port;
  d.group4 = options_.discovery_group4;
  d.group6 = options_.discovery_group6;
  d.interface = options_.discovery_interface;
  d.ttl = options_.discovery_ttl;
  d.join = options_.join;
  d.advert.peer_port = transport_->listen_port();
  d.advert.security = SecurityLevelName(options_.tls.level);
  {
    std::string host, port;
    SplitHostPortOrEmpty(options_.advertise, &host, &port);
    if (!IsUnspecifiedHost(host)) {
      d.advert.peer_host = host;
      if (!port.empty()) d.advert.peer_port = static_cast<uint16_t>(std::stoi(port));
    }
  }
  d.advert.cluster_id = ClusterId();
  advertised_cluster_id_ = ClusterId();
  d.log = [this](DiscoveryLogLevel level, const std::string& line) {
    if (level == DiscoveryLogLevel::kWarning) Log(MarkLogLevel(line, LogLevel::kWarn));
    if (level == DiscoveryLogLevel::kInfo) Log(line);
  };
  discovery_ = std::make_unique<Discovery>(loop_, d);
  MESH_RETURN_IF_ERROR(
      discovery_
          ->Start(
              [this](PeerEvent ev, const DiscoveredPeer& p) {
                if (stopping_) return;
                if (ev == PeerEvent::kExpired) {
                  // A beacon's suggestion ends with the beacon (a forged one must not leave a
                  // dialer behind); --join addresses are kept, and members' addresses are
                  // dialled again by DialMembers.
                  if (join_addresses_.count(p.address) == 0) transport_->Undial(p.address);
                  return;
                }
                if (!p.join_entry.empty()) join_addresses_.insert(p.address);
                if (!p.beacon.node_id.empty() && transport_->IsConnected(p.beacon.node_id)) return;
                Status st = transport_->Dial(p.address);
                if (!st.ok()) Log("cannot dial " + p.address + ": " + st.ToString());
              },
              [this](const DiscoveredPeer& p) {
                Log("error: another live node claims our node id " + options_.node_id +
                    " (beacons from " + p.source +
                    "); every node needs its own id (--node-id, or a distinct machine id)");
              })
          .Annotate("cannot start discovery"));

  uv_timer_init(loop_, &tick_timer_);
  uv_timer_init(loop_, &lapse_timer_);
  tick_timer_.data = this;
  lapse_timer_.data = this;
  uv_timer_start(&tick_timer_, OnTick, kTickMs, kTickMs);
  started_ = true;
  if (options_.session_ttl_us < 3 * options_.election_timeout_us) {
    Log("warning: --session-ttl " + std::to_string(options_.session_ttl_us / 1000) +
        " ms is less than 3 election timeouts (" +
        std::to_string(3 * options_.election_timeout_us / 1000) +
        " ms): a leader change may outlast the session lease, and clients then lose their locks");
  }
  // Who may speak (docs/mesh.md): the configuration decides, but only as far as the link's
  // id is an identity.
  switch (options_.tls.level) {
    case SecurityLevel::kNone:
      Log("warning: --security none: any host on this network that uses the cluster name '" +
          options_.cluster +
          "' may join this cluster and take or release its locks; a node id is only a claim, so "
          "a host may also claim a member's id (while that member is not connected) and speak "
          "for it in Raft");
      break;
    case SecurityLevel::kEncrypt:
      Log("warning: --security encrypt: certificates carry no identity; any holder of a "
          "certificate from --tls-ca may claim any node id, a member's included (while that "
          "member is not connected), and then speak for it in Raft (vote, lead, propose its "
          "commands); use --security mutual to bind each id to its own certificate");
      break;
    case SecurityLevel::kTofu:
      Log("--security tofu: a node id is bound to the first certificate seen for it (known_peers" +
          std::string(options_.trusted_fingerprints_file.empty()
                          ? "); any new id with any self-signed certificate may ask to join, "
                            "and is then added as a learner"
                          : ", and only fingerprints on --trusted-fingerprints are let in)") +
          "; Raft traffic is taken from members only, on their own pinned links");
      break;
    case SecurityLevel::kMutual:
      Log("--security mutual: a peer speaks only as the id of its certificate's CN; Raft "
          "traffic is taken from members only, and a holder of a certificate from --tls-ca "
          "that is not a member may only ask to join (it is then added as a learner, logged)");
      break;
  }
  Log("mesh: cluster '" + options_.cluster + "', listening for peers on port " +
      std::to_string(transport_->listen_port()) + ", security " +
      SecurityLevelName(options_.tls.level) +
      (ClusterId().empty()
           ? ", no cluster yet (expecting " + std::to_string(options_.expect) + " node(s))"
           : ", cluster id " + ClusterId()));
  return Status::OK();
}

// ---------------------------------------------------------------- formation, membership

std::string Cluster::SelfAddress() const {
  if (!options_.advertise.empty()) return options_.advertise;
  const std::string port = std::to_string(transport_->listen_port());
  std::string host, listen_port;
  SplitHostPortOrEmpty(options_.listen, &host, &listen_port);
  if (!IsUnspecifiedHost(host)) return JoinHostPort(host, port);
  host = FirstGlobalAddress();
  return host.empty() ? "" : JoinHostPort(host, port);
}

void Cluster::Form() {
  // The decision is core's (core/formation_plan.h, rules F1-F3): this gathers the connected
  // peers' gossip and executes the answer.
  const uint64_t now_ms = uv_now(loop_);
  std::map<std::string, core::JoinGossip> gossip;
  for (const auto& [id, p] : peers_) {
    if (p.gossiped) gossip[id] = core::JoinGossip{p.cluster_id, p.leader_id, p.term};
  }
  core::FormationView view;
  view.self_id = options_.node_id;
  view.expect = options_.expect;
  view.now_ms = now_ms;
  view.start_ms = start_ms_;
  view.formation_wait_ms = options_.formation_wait_ms;
  view.last_join_ms = last_join_ms_;
  view.peers = &gossip;
  view.joining_cluster_id = joining_cluster_id_;
  const core::FormationStep step = core::PlanFormation(view);
  if (step.kind == core::FormationStep::Kind::kListen) return;
  const core::JoinChoice& choice = step.choice;
  if (choice.reason != join_reason_) {
    join_reason_ = choice.reason;
    if (!choice.reason.empty()) {
      Log(std::string(choice.target.empty() ? "not joining yet: " : "joining through ") +
          (choice.target.empty() ? "" : "'" + choice.target + "': ") + choice.reason);
    }
  }
  switch (step.kind) {
    case core::FormationStep::Kind::kListen:
    case core::FormationStep::Kind::kWait:
      return;
    case core::FormationStep::Kind::kJoin: {
      // Only the current target is trusted (R3a): a peer chosen earlier and no longer is, is
      // not.
      if (!choice.cluster_id.empty()) joining_cluster_id_ = choice.cluster_id;
      join_targets_.clear();
      if (!choice.target.empty()) join_targets_.insert(choice.target);
      if (!step.send_join) return;
      last_join_ms_ = now_ms;
      SendJoinRequest(choice.target, choice.cluster_id);
      Log("asking " + choice.target + " to join cluster " + choice.cluster_id + " as a learner");
      return;
    }
    case core::FormationStep::Kind::kBootstrap:
      break;
  }
  pb::ClusterConfig config;
  config.set_cluster_id(RandomClusterId());
  pb::Member* self = config.add_members();
  self->set_id(options_.node_id);
  self->set_voter(true);
  self->set_address(SelfAddress());
  Status st = log_->Bootstrap(config);
  if (!st.ok()) {
    Log("cannot bootstrap a cluster: " + st.ToString());
    return;
  }
  Log("bootstrapped cluster " + config.cluster_id() + " ('" + options_.cluster + "') with " +
      std::to_string(step.fresh_peers) + " other fresh node(s) in view; they join as learners");
  for (const auto& [id, p] : peers_) Gossip(id);
}

void Cluster::SendJoinRequest(const std::string& to, const std::string& cluster_id) {
  // A fresh node takes the log only from its join target and the leader it names (Form sets
  // join_targets_); a node with a configuration judges by it (R2, R3b).
  pb::PeerEnvelope env;
  env.mutable_join()->set_node_id(options_.node_id);
  env.mutable_join()->set_address(SelfAddress());
  env.mutable_join()->set_cluster_id(cluster_id);
  env.mutable_join()->set_last_index(log_->raft()->last_index());
  transport_->Send(to, env);
}

void Cluster::ManageMembership() {
  // Proposing drives the log, whose apply callback comes back here: one level only (the
  // loop below holds iterators).
  if (in_membership_) return;
  in_membership_ = true;
  ManageMembershipOnce();
  in_membership_ = false;
}

void Cluster::ManageMembershipOnce() {
  // The decision is core's (core/membership_plan.h); this gathers the view and proposes.
  const core::raft::Raft* raft = log_->raft();
  core::MembershipView view;
  view.now_us = LeaseClockUs();
  view.leader_since_us = leader_since_us_;
  view.dead_after_us = options_.dead_after_us;
  view.voters_target = options_.voters;
  view.commit_index = raft->commit_index();
  view.config = &raft->config();
  view.joins = &pending_joins_;
  std::vector<std::string> ids;
  for (const core::raft::PeerProgress& p : raft->progress()) {
    catch_up_.Observe(p.id, view.now_us, p.match, p.snapshot_acked, view.commit_index);
    ids.push_back(p.id);
    core::FollowerView f;
    f.id = p.id;
    f.voter = p.voter;
    f.match = p.match;
    auto heard = last_heard_us_.find(p.id);
    f.last_heard_us =
        std::max<uint64_t>(p.last_contact, heard == last_heard_us_.end() ? 0 : heard->second);
    f.connected = transport_->IsConnected(p.id);
    f.behind_for_us = catch_up_.BehindFor(p.id, view.now_us);
    view.followers.push_back(std::move(f));
  }
  catch_up_.Retain(ids);
  core::MembershipStep step = core::PlanMembership(view);
  for (const std::string& id : step.drop_joins) {
    if (id != step.id) pending_joins_.erase(id);
  }
  if (step.kind == core::MembershipStep::Kind::kNone) return;
  core::raft::MembershipChange c;
  c.id = step.id;
  c.address = step.address;
  switch (step.kind) {
    case core::MembershipStep::Kind::kAddLearner:
      c.kind = core::raft::MembershipChange::Kind::kAddLearner;
      break;
    case core::MembershipStep::Kind::kPromote:
      c.kind = core::raft::MembershipChange::Kind::kPromote;
      break;
    default:
      c.kind = core::raft::MembershipChange::Kind::kRemove;
      break;
  }
  Status st = log_->ProposeMembership(c);
  if (st.IsUnavailable()) return;  // a change in flight: the next round asks again
  if (st.ok()) {
    Log(step.why);
  } else {
    Log("cannot change membership (" + step.why + "): " + st.ToString());
  }
  if (step.kind == core::MembershipStep::Kind::kAddLearner) pending_joins_.erase(step.id);
}

void Cluster::DialMembers() {
  for (const pb::Member& m : log_->raft()->config().members()) {
    if (m.id() == options_.node_id || m.address().empty()) continue;
    if (transport_->IsConnected(m.id())) continue;
    transport_->Dial(m.address());  // a no-op once dialled; bad addresses are logged once
  }
}

// ---------------------------------------------------------------- the tick

void Cluster::OnTick(uv_timer_t* t) { static_cast<Cluster*>(t->data)->Tick(); }

void Cluster::Tick() {
  if (stopping_) return;
  const uint64_t now_ms = uv_now(loop_);
  const uint64_t now = LeaseClockUs();
  const core::raft::Raft* raft = log_->raft();
  if (now_ms - last_gossip_ms_ >= kGossipIntervalMs) {
    last_gossip_ms_ = now_ms;
    for (const auto& [id, p] : peers_) Gossip(id);
  }
  // Half-open links (silent too long, a stall of our own credited): core/link_health.h.
  const uint64_t silent_limit = links_.silent_limit_ms();
  for (const std::string& id : links_.Tick(now_ms)) {
    Log("peer " + id + " silent for " + std::to_string(silent_limit) +
        " ms: closing the link to redial it");
    transport_->Disconnect(id, "silent for " + std::to_string(silent_limit) + " ms");
  }
  if (ClusterId() != advertised_cluster_id_) {
    advertised_cluster_id_ = ClusterId();
    BeaconAdvert a;
    a.cluster_id = advertised_cluster_id_;
    a.peer_port = transport_->listen_port();
    a.security = SecurityLevelName(options_.tls.level);
    std::string host, port;
    SplitHostPortOrEmpty(options_.advertise, &host, &port);
    if (!IsUnspecifiedHost(host)) {
      a.peer_host = host;
      if (!port.empty()) a.peer_port = static_cast<uint16_t>(std::stoi(port));
    }
    discovery_->SetBeaconContent(a);
    for (const auto& [id, p] : peers_) Gossip(id);
  }
  if (raft->config().members_size() == 0) {
    Form();
  } else if (!InConfig() && core::JoinDue(now_ms, last_join_ms_)) {
    // Removed (or added nowhere yet): ask again (core/formation_plan.h F4).
    last_join_ms_ = now_ms;
    std::map<std::string, core::RejoinPeer> peers;
    for (const auto& [id, p] : peers_) peers[id] = core::RejoinPeer{p.cluster_id, p.member};
    const std::string& leader = raft->leader();
    const std::string to = core::RejoinTarget(
        leader, !leader.empty() && transport_->IsConnected(leader), peers, ClusterId());
    if (!to.empty()) SendJoinRequest(to, ClusterId());
  }
  DialMembers();
  log_->Retry();
  LeaderLeaseDuties(now);
  if (raft->role() == core::raft::Role::kLeader) ManageMembership();
  if (now - last_keepalive_us_ >= lease_options_.keepalive_interval) {
    last_keepalive_us_ = now;
    SendKeepalive(now);
  }
  // Leaving: done once the commands proposed before leaving are applied (sessions closed)
  // and, for a leader, once leadership has moved — or at the deadline.
  // (core/formation_plan.h F6.)
  if (leave_done_ &&
      core::LeaveComplete(raft->role() == core::raft::Role::kLeader, raft->config().members_size(),
                          log_->unapplied(), now_ms, leave_deadline_ms_)) {
    auto done = std::move(leave_done_);
    leave_done_ = nullptr;
    done();
  }
}

void Cluster::OnApplied() {
  if (stopping_ || !started_) return;
  node_lease_.OnApplied(log_->applied_index());
  LeaderLeaseDuties(LeaseClockUs());
  CheckLapse();
  // The next membership change can go as soon as the last one is applied, rather than at
  // the next tick (formation makes several in a row).
  const core::raft::Raft* raft = log_->raft();
  if (raft->role() != core::raft::Role::kLeader) return;
  int voters = 0;
  for (const pb::Member& m : raft->config().members()) voters += m.voter() ? 1 : 0;
  if (!pending_joins_.empty() ||
      (voters < options_.voters && raft->config().members_size() > voters)) {
    ManageMembership();
  }
}

// ---------------------------------------------------------------- leave, stop, reload, status

void Cluster::Leave(std::function<void()> done) {
  if (!started_ || stopping_) {
    done();
    return;
  }
  leave_done_ = std::move(done);
  leave_deadline_ms_ = uv_now(loop_) + 2 * options_.election_timeout_us / 1000;
  const core::raft::Raft* raft = log_->raft();
  if (raft->role() != core::raft::Role::kLeader) return;  // Tick waits for the log to drain
  // The most up-to-date connected voter (core/formation_plan.h F5).
  std::vector<core::HandOverCandidate> followers;
  for (const core::raft::PeerProgress& p : raft->progress()) {
    followers.push_back(
        core::HandOverCandidate{p.id, p.voter, p.voter && transport_->IsConnected(p.id), p.match});
  }
  const std::string best = core::ChooseHandOver(followers);
  if (best.empty()) return;
  Status st = log_->TransferLeadership(best);
  if (!st.ok()) {
    Log("cannot hand over leadership: " + st.ToString());
    return;
  }
  Log("leaving: handing leadership to " + best);
}

void Cluster::Stop(std::function<void()> done) {
  stopping_ = true;
  stop_done_ = std::move(done);
  if (leave_done_) {
    auto d = std::move(leave_done_);
    leave_done_ = nullptr;
    d();
  }
  log_->SetSender(nullptr);
  log_->SetSendFlusher(nullptr);
  stop_waits_ = 1;  // this function's own, released at its end
  if (started_) {
    stop_waits_ += 2;
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_timer_), OnHandleClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&lapse_timer_), OnHandleClosed);
  }
  for (PeerTransport* t : {failed_transport_.get(), transport_.get()}) {
    if (t == nullptr) continue;
    ++stop_waits_;
    t->Stop([this] { StopStep(); });
  }
  if (discovery_) {
    ++stop_waits_;
    discovery_->Close([this] { StopStep(); });
  }
  StopStep();
}

void Cluster::OnHandleClosed(uv_handle_t* h) { static_cast<Cluster*>(h->data)->StopStep(); }

void Cluster::StopStep() {
  if (--stop_waits_ > 0 || !stop_done_) return;
  auto d = std::move(stop_done_);
  stop_done_ = nullptr;
  d();
}

Status Cluster::Reload(size_t* cut_off) {
  if (!transport_) return Status::Unavailable("the mesh is not running");
  return transport_->Reload(cut_off);
}

void Cluster::FillStatus(NodeStatus* s) const {
  s->mesh = true;
  s->cluster_id = ClusterId();
  s->security = SecurityLevelName(options_.tls.level);
  const uint64_t now = LeaseClockUs();
  s->lease_ms =
      node_lease_.Valid(now) ? static_cast<int64_t>((node_lease_.valid_until() - now) / 1000) : -1;
  s->warnings = warnings_;
  if (transport_) {
    for (std::string& w : transport_->CertificateWarnings(time(nullptr))) {
      s->warnings.push_back(std::move(w));
    }
  }
  const core::raft::Raft* raft = log_->raft();
  if (raft->config().members_size() == 0) s->role = "joining";
  std::map<std::string, core::raft::PeerProgress> progress;
  for (const core::raft::PeerProgress& p : raft->progress()) progress[p.id] = p;
  s->members.clear();
  for (const pb::Member& m : raft->config().members()) {
    MemberInfo mi;
    mi.node_id = m.id();
    mi.voter = m.voter();
    mi.role = !m.voter() ? "learner" : m.id() == raft->leader() ? "leader" : "follower";
    mi.address = m.address();
    auto peer = peers_.find(m.id());
    mi.connected = m.id() == options_.node_id || peer != peers_.end();
    if (peer != peers_.end()) {
      mi.found_at = UnmappedAddress(peer->second.info.address);
      if (options_.tls.level != SecurityLevel::kNone) {
        mi.fingerprint = peer->second.info.fingerprint.ToCompact();
      }
    }
    auto pr = progress.find(m.id());
    if (pr != progress.end()) {
      mi.match = pr->second.match;
      mi.lag =
          raft->commit_index() > pr->second.match ? raft->commit_index() - pr->second.match : 0;
    } else if (m.id() == options_.node_id && raft->role() == core::raft::Role::kLeader) {
      mi.match = raft->last_index();
    }
    s->members.push_back(std::move(mi));
  }
}

}  // namespace mesh::net

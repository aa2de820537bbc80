// net/node/cluster.h: the Cluster's links and peer messages — gossip, admission of every Raft
// message, join request and keepalive (core/admission.h), join requests, and the session
// leases. Its start, formation, membership, tick and stop are cluster.cc's.
#include <string>

#include "core/host_port.h"
#include "net/node/cluster.h"
#include "net/node/peer_address.h"
#include "net/support/lease_clock.h"
#include "net/support/log_line.h"

namespace mesh::net {
namespace {

constexpr size_t kMaxWarnings = 16;

using core::JoinHostPort;

}  // namespace

// ---------------------------------------------------------------- links and messages

void Cluster::OnPeerUp(const PeerInfo& info) {
  Peer& p = peers_[info.node_id];
  p = Peer{};
  p.info = info;
  links_.Up(info.node_id, uv_now(loop_));
  Gossip(info.node_id);
}

void Cluster::OnPeerDown(const std::string& node_id, const Status& why) {
  (void)why;
  peers_.erase(node_id);
  gossip_claims_.erase(node_id);
  links_.Down(node_id);
}

void Cluster::Gossip(const std::string& to) {
  pb::PeerEnvelope env;
  pb::MeshGossip* g = env.mutable_gossip();
  g->set_cluster_id(ClusterId());
  g->set_leader_id(log_->raft()->leader());
  g->set_term(log_->raft()->term());
  g->set_member(InConfig());
  transport_->Send(to, env);
}

void Cluster::OnMessage(const std::string& from, pb::PeerEnvelope& env) {
  if (stopping_) return;
  auto it = peers_.find(from);
  if (it == peers_.end()) return;
  links_.Heard(from, uv_now(loop_));
  switch (env.body_case()) {
    case pb::PeerEnvelope::kGossip:
      OnGossip(from, env.gossip());
      break;
    case pb::PeerEnvelope::kJoin:
      OnJoinRequest(from, std::move(*env.mutable_join()));
      break;
    case pb::PeerEnvelope::kRaft: {
      // Members only, on their own link (core/admission.h); then only from our own cluster
      // (or the one we are joining): two clusters of one name must never exchange log
      // entries.
      core::Admission a = core::AdmitRaft(View(), from, env.raft());
      if (!a.accepted) {
        Refused(from, a);
        return;
      }
      // A node we added that has not received the configuration yet still gossips no
      // cluster id: it is let in as a member of ours.
      const Peer& p = it->second;
      const std::string& ours = ClusterId().empty() ? joining_cluster_id_ : ClusterId();
      if (!p.gossiped || ours.empty()) return;
      if (p.cluster_id != ours && !(p.cluster_id.empty() && IsMember(from))) return;
      log_->Step(std::move(*env.mutable_raft()));
      break;
    }
    case pb::PeerEnvelope::kKeepalive:
      OnKeepalive(from, env.keepalive());
      break;
    case pb::PeerEnvelope::kKeepaliveAck:
      OnKeepaliveAck(from, env.keepalive_ack());
      break;
    default:
      break;  // unknown to this version: ignored
  }
}

void Cluster::SendRaft(pb::RaftMessage&& m) {
  if (stopping_ || !transport_) return;
  if (!transport_->IsConnected(m.to())) return;  // best effort: raft retries
  pb::PeerEnvelope env;
  std::string to = m.to();
  *env.mutable_raft() = std::move(m);
  transport_->Send(to, env);
}

core::AdmissionView Cluster::View() const {
  core::AdmissionView v;
  const core::raft::Raft* raft = log_->raft();
  v.self_id = options_.node_id;
  v.config = &raft->config();
  v.leader = raft->role() == core::raft::Role::kLeader;
  v.leader_id = raft->leader();
  v.term = raft->term();
  v.join_targets = &join_targets_;
  v.gossip = &gossip_claims_;
  return v;
}

void Cluster::Refused(const std::string& from, const core::Admission& refusal) {
  uint64_t suppressed = 0;
  if (!refusals_.ShouldLog(LeaseClockUs(), from, refusal.rule + "/" + refusal.what, &suppressed)) {
    return;
  }
  std::string address = "?", fingerprint = "none (--security none)";
  auto it = peers_.find(from);
  if (it != peers_.end()) {
    address = UnmappedAddress(it->second.info.address);
    if (options_.tls.level != SecurityLevel::kNone) {
      fingerprint = it->second.info.fingerprint.ToCompact();
    }
  }
  Log("refused from peer '" + from + "' at " + address + " (certificate " + fingerprint +
      "): " + refusal.detail + " [" + refusal.rule + "]" +
      (suppressed > 0
           ? "; " + std::to_string(suppressed) + " more like it refused since the last report"
           : ""));
}

void Cluster::OnGossip(const std::string& from, const pb::MeshGossip& g) {
  Peer& p = peers_[from];
  p.gossiped = true;
  p.cluster_id = g.cluster_id();
  p.leader_id = g.leader_id();
  p.term = g.term();
  gossip_claims_[from] = core::GossipClaim{g.leader_id(), g.term()};
  p.member = g.member();
  const std::string& ours = ClusterId();
  if (!ours.empty() && !g.cluster_id().empty() && g.cluster_id() != ours) {
    std::string key = from + "/" + g.cluster_id();
    if (warned_.insert(key).second) {
      std::string w = "a second cluster named '" + options_.cluster + "' (id " + g.cluster_id() +
                      ") is on the network: node " + from + " at " + p.info.address +
                      " belongs to it; this node stays in cluster " + ours +
                      " (clusters are never merged: give one of them another --cluster name)";
      Log("warning: " + w);
      if (warnings_.size() < kMaxWarnings) warnings_.push_back(w);
    }
  }
}

std::string Cluster::AddressOf(const PeerInfo& info, const std::string& claimed) const {
  std::string host, port;
  SplitHostPortOrEmpty(claimed, &host, &port);
  if (!IsUnspecifiedHost(host) && !port.empty()) return claimed;
  std::string conn_host, conn_port, listen_host, listen_port;
  SplitHostPortOrEmpty(info.address, &conn_host, &conn_port);
  SplitHostPortOrEmpty(info.listen_address, &listen_host, &listen_port);
  if (port.empty()) port = listen_port;
  if (port.empty()) port = std::to_string(kDefaultPeerPort);
  return JoinHostPort(UnmappedHost(conn_host), port);
}

void Cluster::OnJoinRequest(const std::string& from, pb::JoinRequest req) {
  core::Admission a = core::AdmitJoinRequest(View(), from, req);
  if (!a.accepted) {
    Refused(from, a);
    return;
  }
  const std::string& ours = ClusterId();
  if (ours.empty() || (!req.cluster_id().empty() && req.cluster_id() != ours)) return;
  if (req.node_id().empty() || req.node_id() == options_.node_id) return;
  if (req.node_id() == from) {
    // First hop: the joiner may not know the address others reach it at.
    req.set_address(AddressOf(peers_[from].info, req.address()));
  }
  const core::raft::Raft* raft = log_->raft();
  if (raft->role() == core::raft::Role::kLeader) {
    if (pending_joins_.size() < 1024) {
      pending_joins_[req.node_id()] = core::JoinAsk{req.address(), req.last_index()};
    }
    return;
  }
  const std::string& leader = raft->leader();
  // Only a voter's forward is taken (core/admission.h R5).
  if (!leader.empty() && leader != from && transport_->IsConnected(leader) &&
      core::IsVoterOf(&raft->config(), options_.node_id)) {
    pb::PeerEnvelope env;
    *env.mutable_join() = std::move(req);
    transport_->Send(leader, env);
  }
}

// ---------------------------------------------------------------- leases

void Cluster::OnKeepalive(const std::string& from, const pb::Keepalive& ka) {
  core::Admission a = core::AdmitKeepalive(from, ka);
  if (!a.accepted) {
    Refused(from, a);
    return;
  }
  const uint64_t now = LeaseClockUs();
  const bool known = core::MayHoldLease(&log_->raft()->config(), log_->table(), from);
  if (known) last_heard_us_[from] = now;
  pb::KeepaliveAck ack;
  if (!leader_leases_.OnKeepalive(now, ka, known, log_->HasLeaderLease(), options_.node_id,
                                  log_->last_index(), &ack)) {
    return;
  }
  pb::PeerEnvelope env;
  *env.mutable_keepalive_ack() = ack;
  transport_->Send(from, env);
}

void Cluster::OnKeepaliveAck(const std::string& from, const pb::KeepaliveAck& ack) {
  // Only the current leader, a member, on its own link extends this node's lease.
  core::Admission a = core::AdmitKeepaliveAck(View(), from, ack);
  if (!a.accepted) {
    Refused(from, a);
    return;
  }
  node_lease_.OnAck(ack, log_->applied_index());
  CheckLapse();
}

void Cluster::SendKeepalive(uint64_t now) {
  const std::string& leader = log_->raft()->leader();
  if (leader.empty()) return;
  if (leader == options_.node_id) {
    pb::Keepalive ka = node_lease_.MakeKeepalive(now, options_.node_id);
    pb::KeepaliveAck ack;
    const bool known = core::MayHoldLease(&log_->raft()->config(), log_->table(), options_.node_id);
    if (leader_leases_.OnKeepalive(now, ka, known, log_->HasLeaderLease(), options_.node_id,
                                   log_->last_index(), &ack)) {
      node_lease_.OnAck(ack, log_->applied_index());
      CheckLapse();
    }
    return;
  }
  if (!transport_->IsConnected(leader)) return;
  pb::PeerEnvelope env;
  *env.mutable_keepalive() = node_lease_.MakeKeepalive(now, options_.node_id);
  transport_->Send(leader, env);
}

bool Cluster::LeaseValid() const { return node_lease_.Valid(LeaseClockUs()); }

void Cluster::RequestLease() {
  if (stopping_ || !started_) return;
  const uint64_t now = LeaseClockUs();
  if (now - last_keepalive_us_ < 20'000) return;  // one is on its way
  last_keepalive_us_ = now;
  SendKeepalive(now);
}

void Cluster::CheckLapse() {
  if (stopping_) return;
  const uint64_t now = LeaseClockUs();
  if (node_lease_.Lapsed(now)) {
    if (lease_was_valid_) {
      Log("lease lapsed: no acknowledgement from a leader within the session lease (" +
          std::to_string(options_.session_ttl_us / 1000) +
          " ms less the drift bound); this node's clients lose their locks");
    }
    lease_was_valid_ = false;
    if (callbacks_.on_lease_lapsed) callbacks_.on_lease_lapsed();
  }
  if (node_lease_.Valid(now) && !lease_was_valid_) {
    lease_was_valid_ = true;
    if (callbacks_.on_lease_valid) callbacks_.on_lease_valid();
  }
  ArmLapseTimer();
}

void Cluster::ArmLapseTimer() {
  if (stopping_ || !started_) return;
  uint64_t deadline = node_lease_.NextDeadline();
  if (deadline == UINT64_MAX) {
    uv_timer_stop(&lapse_timer_);
    return;
  }
  uint64_t now = LeaseClockUs();
  uint64_t delay_ms = deadline > now ? (deadline - now + 999) / 1000 : 0;
  uv_timer_start(&lapse_timer_, OnLapseTimer, delay_ms, 0);
}

void Cluster::OnLapseTimer(uv_timer_t* t) { static_cast<Cluster*>(t->data)->CheckLapse(); }

void Cluster::LeaderLeaseDuties(uint64_t now) {
  const core::raft::Raft* raft = log_->raft();
  const bool leader = raft->role() == core::raft::Role::kLeader;
  if (leader && !was_leader_) {
    std::vector<std::string> nodes;
    for (const pb::Member& m : raft->config().members()) nodes.push_back(m.id());
    for (const core::LockRow& row : log_->table().List()) nodes.push_back(row.session.node_id());
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    leader_leases_.BecomeLeader(now, nodes);
    leader_since_us_ = now;
    last_heard_us_.clear();
    catch_up_.Forget();
    was_leader_ = true;
    Log("leader of cluster " + ClusterId() + " in term " + std::to_string(raft->term()));
  } else if (!leader && was_leader_) {
    leader_leases_.StepDown();
    pending_joins_.clear();
    was_leader_ = false;
  }
  if (!leader) return;
  for (const std::string& node : leader_leases_.TakeExpired(now)) {
    if (node == options_.node_id) continue;
    Log("node " + node + " silent for the session ttl (" +
        std::to_string(options_.session_ttl_us / 1000) + " ms): expiring its sessions");
    // Only the sessions that exist now: one the node opens after this decision (it is back,
    // and its OpenSession reached the log) is spared — its grants still wait for the node's
    // lease, which needs an acknowledgement from a leader.
    pb::Command c;
    c.mutable_expire_node()->set_node_id(node);
    c.mutable_expire_node()->set_below_client_id(log_->table().MaxClientId(node) + 1);
    Status st = log_->Propose(std::move(c));
    if (!st.ok()) Log("cannot propose the expiry of " + node + ": " + st.ToString());
  }
}

}  // namespace mesh::net

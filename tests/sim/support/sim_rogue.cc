// The rogue process of the simulator (see Cluster::RogueBurst): a process that is not a
// member of the cluster but can reach every node (a certificate from the cluster's CA, or
// any key under `none`/`tofu`), and sends forged peer and Raft messages. It sniffs what a
// passive observer of the cluster could learn or guess (terms, log indexes, lock ids,
// keepalive sequence numbers) to make the forgeries as damaging as possible. Everything
// it sends arrives on its own link: Envelope::link is "rogue" even when the message
// claims to come from a member. Its accomplice (RogueVouch) is a second such process with
// a link of its own, "rogue-b", that never joins: the rogue's gossip names it as a leader.
#include <algorithm>
#include <string>
#include <vector>

#include "sim/support/sim_cluster.h"
#include "sim/support/sim_cluster_internal.h"

namespace mesh::sim {
namespace {

// Makes `m` (its term set) an APPEND of `cmd` right after a log ending at (last, last_term),
// committed at once: the forged entry a rogue "leader" sends.
void ForgeCommittedAppend(uint64_t last, uint64_t last_term, const pb::Command& cmd,
                          pb::RaftMessage* m) {
  m->set_type(pb::APPEND);
  m->set_index(last);
  m->set_log_term(last_term);
  pb::Entry* e = m->add_entries();
  e->set_term(m->term());
  e->set_index(last + 1);
  e->set_type(pb::ENTRY_COMMAND);
  e->set_data(cmd.SerializeAsString());
  m->set_commit(last + 1);
}

}  // namespace

void Cluster::SendRogue(int to, std::shared_ptr<Envelope> env, const char* link) {
  ++stats_.messages;
  ++stats_.rogue_messages;
  env->from = kRogue;
  env->link = link;
  const Time delay = net_rng_.Between(options_.min_delay, options_.max_delay);
  Schedule(now_ + delay, [this, to, env] { Deliver(to, env); });
}

bool Cluster::RogueIsMember() const {
  int i = Leader();
  for (int k = 0; i < 0 && k < size(); ++k) {
    if (nodes_[k]->up) i = k;
  }
  return i >= 0 && core::IsMemberOf(&nodes_[i]->raft->config(), kRogueId);
}

Status Cluster::RogueJoin() {
  const int l = Leader();
  if (l < 0) return Status::Unavailable("no leader");
  Node& n = *nodes_[l];
  if (n.frozen()) return Status::Unavailable("the leader is frozen");
  // The JoinRequest, on the rogue's own link, judged as net/node/cluster_messages.cc judges it.
  core::AdmissionView view;
  view.self_id = n.id;
  view.config = &n.raft->config();
  view.leader = n.raft->role() == core::raft::Role::kLeader;
  view.leader_id = n.raft->leader();
  view.term = n.raft->term();
  pb::JoinRequest request;
  request.set_node_id(kRogueId);
  request.set_address(std::string(kRogueId) + ":28017");
  const core::Admission a = core::AdmitJoinRequest(view, kRogueId, request);
  if (!a.accepted) return Status::PermissionDenied(a.detail);
  core::raft::MembershipChange c;
  c.kind = core::raft::MembershipChange::Kind::kAddLearner;
  c.id = kRogueId;
  c.address = request.address();
  return AtLeader(c);
}

void Cluster::RogueClaimsToLead() {
  uint64_t highest = 0;
  for (const auto& n : nodes_) {
    if (n->up) highest = std::max(highest, n->raft->term());
  }
  rogue_lead_term_ = std::max(rogue_lead_term_, highest + 50);
}

void Cluster::RogueBurst(int count, bool as_member) {
  std::vector<int> targets;
  for (const auto& n : nodes_) {
    if (n->up) targets.push_back(n->index);
  }
  if (targets.empty()) return;
  ++stats_.faults;
  RogueClaimsToLead();
  Trace(-1, "rogue burst: " + std::to_string(count) + " forged messages" +
                (as_member ? " claiming members' ids" : " as " + std::string(kRogueId)));
  SimRandom& rng = fault_rng_;
  const int l = Leader();
  const bool learner = RogueIsMember();
  std::vector<std::string> members;
  for (const auto& n : nodes_) {
    if (n->up) {
      for (const pb::Member& m : n->raft->config().members()) {
        if (m.id() != kRogueId) members.push_back(m.id());  // the others
      }
      break;
    }
  }
  if (members.empty()) members.push_back(nodes_[0]->id);
  std::vector<std::string> voters;
  for (const auto& n : nodes_) {
    if (n->up && IsVoter(n->index)) voters.push_back(n->id);
  }
  if (voters.empty()) voters = members;
  for (int k = 0; k < count; ++k) {
    const int to = targets[rng.Below(targets.size())];
    const Node& t = *nodes_[to];
    std::string from = kRogueId;
    if (as_member) {
      from =
          l >= 0 && l != to && rng.Chance(0.7) ? nodes_[l]->id : members[rng.Below(members.size())];
    }
    // A command the rogue would like applied: the expiry of a member, or a release, close
    // or acquire in another node's session.
    pb::Command cmd;
    const std::vector<core::LockRow> rows = t.table->List();
    const uint64_t what = rng.Below(4);
    if (what == 0 || rows.empty()) {
      cmd.mutable_expire_node()->set_node_id(members[rng.Below(members.size())]);
    } else {
      const core::LockRow& row = rows[rng.Below(rows.size())];
      if (what == 1) {
        pb::Release* r = cmd.mutable_release();
        *r->mutable_session() = row.session;
        r->set_seq(1'000'000 + rng.Below(1'000'000));
        r->set_lock_id(row.lock_id);
      } else if (what == 2) {
        *cmd.mutable_close_session()->mutable_session() = row.session;
      } else {
        pb::Acquire* a = cmd.mutable_acquire();
        *a->mutable_session() = row.session;
        a->set_seq(1'000'000 + rng.Below(1'000'000));
        a->set_resource(row.resource);
        a->set_mode(pb::EX);
        a->set_wait(true);
      }
    }
    auto env = std::make_shared<Envelope>();
    env->kind = Envelope::Kind::kRaft;
    pb::RaftMessage& m = env->raft;
    m.set_from(from);
    m.set_to(t.id);
    // To a node without configuration (a spare: every up node is a target) the rogue's
    // leader traffic comes in the term it claims to lead in its gossip, or above.
    const bool fresh = t.raft->config().members_size() == 0;
    const uint64_t term = fresh ? rogue_lead_term_ : t.raft->term();
    const uint64_t last = t.raft->last_index();
    uint64_t last_term = 0;
    if (!t.store->Term(last, &last_term).ok()) last_term = term;
    // A learner proposes (to the leader) more often: R4 is what guards its proposals. It
    // also vouches for its accomplice (R3b; a non-member's word counts for nothing at all,
    // and drawing it for learners only leaves the schedules without a join unchanged).
    uint64_t kind = 0;
    if (!learner || !rng.Chance(0.3)) kind = learner && rng.Chance(0.2) ? 8 : rng.Below(8);
    switch (kind) {
      case 0: {  // PROPOSE (to the leader if there is one)
        const int dest = l >= 0 && rng.Chance(0.8) ? l : to;
        m.set_to(nodes_[dest]->id);
        m.set_type(pb::PROPOSE);
        m.set_term(nodes_[dest]->raft->term());
        pb::Entry* e = m.add_entries();
        e->set_type(pb::ENTRY_COMMAND);
        e->set_data(cmd.SerializeAsString());
        SendRogue(dest, std::move(env), kRogueId);
        continue;
      }
      case 1:  // HEARTBEAT from a "leader" of a much higher term
        m.set_type(pb::HEARTBEAT);
        m.set_term(term + (rng.Chance(0.3) ? 0 : 1 + rng.Below(50)));
        m.set_commit(t.raft->commit_index() + 1 + rng.Below(5));
        break;
      case 2: {  // APPEND of a forged entry right after the target's log, committed at once
        m.set_term(term + (rng.Chance(0.5) ? 0 : 1 + rng.Below(50)));
        ForgeCommittedAppend(last, last_term, cmd, &m);
        break;
      }
      case 3:  // VOTE or PRE_VOTE with a high term and a long log
        m.set_type(rng.Chance(0.5) ? pb::VOTE : pb::PRE_VOTE);
        m.set_term(term + 1 + rng.Below(50));
        m.set_index(last + 1000);
        m.set_log_term(m.term());
        break;
      case 4:  // TIMEOUT_NOW: "campaign now"
        m.set_type(pb::TIMEOUT_NOW);
        m.set_term(term);
        break;
      case 5: {  // KeepaliveAck for the target: extends its lease without the leader
        env->kind = Envelope::Kind::kAck;
        env->ack.set_leader_id(l >= 0 ? nodes_[l]->id : from);
        env->ack.set_node_id(t.id);
        env->ack.set_seq(t.last_keepalive_seq);
        env->ack.set_required_index(0);
        break;
      }
      case 7: {  // APPEND_RESPONSE/HEARTBEAT_RESPONSE to the leader: "I have all of it"
        if (l < 0) continue;
        const Node& ld = *nodes_[l];
        if (as_member) {
          // Claiming a voter's id (R1): a counted forged ack would commit what no majority has.
          std::vector<std::string> others;
          for (const std::string& v : voters) {
            if (v != ld.id) others.push_back(v);
          }
          if (others.empty()) continue;
          from = others[rng.Below(others.size())];
        }
        m.set_from(from);
        m.set_to(ld.id);
        m.set_type(rng.Chance(0.7) ? pb::APPEND_RESPONSE : pb::HEARTBEAT_RESPONSE);
        m.set_term(ld.raft->term());
        m.set_index(ld.raft->last_index());
        SendRogue(l, std::move(env), kRogueId);
        continue;
      }
      case 8:  // the accomplice's leader traffic, the rogue's gossip vouching for it
        SendAccomplice(to, cmd);
        continue;
      default: {  // Keepalive for a member, to the leader: keeps a silent node alive
        if (l < 0) continue;
        env->kind = Envelope::Kind::kKeepalive;
        env->keepalive.set_node_id(members[rng.Below(members.size())]);
        env->keepalive.set_seq(1 + rng.Below(1'000'000));
        SendRogue(l, std::move(env), kRogueId);
        continue;
      }
    }
    if (fresh && (kind == 1 || kind == 2)) rogue_lead_term_ = std::max(rogue_lead_term_, m.term());
    SendRogue(to, std::move(env), kRogueId);
  }
}

void Cluster::SendAccomplice(int to, const pb::Command& cmd) {
  SimRandom& rng = fault_rng_;
  const Node& t = *nodes_[to];
  auto env = std::make_shared<Envelope>();
  env->kind = Envelope::Kind::kRaft;
  pb::RaftMessage& m = env->raft;
  m.set_from(kAccompliceId);
  m.set_to(t.id);
  m.set_term(t.raft->term() + (rng.Chance(0.2) ? 0 : 1 + rng.Below(50)));
  // The rogue gossips, over its own link, that the accomplice leads that term (net/ keeps
  // every connected peer's latest gossip; core/admission decides whose word counts).
  rogue_gossip_.leader_id = kAccompliceId;
  rogue_gossip_.term = std::max(rogue_gossip_.term, m.term());
  if (rng.Chance(0.3)) {
    m.set_type(pb::HEARTBEAT);
    m.set_commit(t.raft->commit_index() + 1 + rng.Below(5));
  } else {  // a forged entry right after the target's log, committed at once
    const uint64_t last = t.raft->last_index();
    uint64_t last_term = 0;
    if (!t.store->Term(last, &last_term).ok()) last_term = t.raft->term();
    ForgeCommittedAppend(last, last_term, cmd, &m);
  }
  SendRogue(to, std::move(env), kAccompliceId);
}

void Cluster::RogueVouch(int count) {
  std::vector<int> targets;
  for (const auto& n : nodes_) {
    if (n->up) targets.push_back(n->index);
  }
  if (targets.empty()) return;
  ++stats_.faults;
  RogueClaimsToLead();
  Trace(-1, "rogue vouches for " + std::string(kAccompliceId) + ": " + std::to_string(count) +
                " messages of its leadership");
  SimRandom& rng = fault_rng_;
  for (int k = 0; k < count; ++k) {
    const int to = targets[rng.Below(targets.size())];
    // The forged entry expires a member (the target's applying it is the damage).
    const pb::ClusterConfig& config = nodes_[to]->raft->config();
    pb::Command cmd;
    cmd.mutable_expire_node()->set_node_id(
        config.members_size() > 0 ? config.members(rng.Below(config.members_size())).id()
                                  : nodes_[to]->id);
    SendAccomplice(to, cmd);
  }
}

}  // namespace mesh::sim

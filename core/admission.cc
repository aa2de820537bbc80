#include "core/admission.h"

#include <algorithm>
#include <vector>

#include "core/hex.h"

namespace mesh::core {
namespace {

const char* TypeName(pb::RaftMessageType type) {
  switch (type) {
    case pb::APPEND:
      return "APPEND";
    case pb::APPEND_RESPONSE:
      return "APPEND_RESPONSE";
    case pb::VOTE:
      return "VOTE";
    case pb::VOTE_RESPONSE:
      return "VOTE_RESPONSE";
    case pb::PRE_VOTE:
      return "PRE_VOTE";
    case pb::PRE_VOTE_RESPONSE:
      return "PRE_VOTE_RESPONSE";
    case pb::SNAPSHOT:
      return "SNAPSHOT";
    case pb::HEARTBEAT:
      return "HEARTBEAT";
    case pb::HEARTBEAT_RESPONSE:
      return "HEARTBEAT_RESPONSE";
    case pb::PROPOSE:
      return "PROPOSE";
    case pb::TIMEOUT_NOW:
      return "TIMEOUT_NOW";
    case pb::SNAPSHOT_RESPONSE:
      return "SNAPSHOT_RESPONSE";
    default:
      return "an unknown Raft message";
  }
}

bool IsLeaderTraffic(pb::RaftMessageType type) {
  return type == pb::APPEND || type == pb::SNAPSHOT || type == pb::HEARTBEAT;
}

bool HasMembers(const pb::ClusterConfig* config) {
  return config != nullptr && config->members_size() > 0;
}

// A peer other than `leader` and this node whose gossip names `leader` as leader in a term
// >= `term`: a member of the configuration (R3b) or, with members_only false, a peer this
// node asked to join (R3a). "" if there is none.
std::string Voucher(const AdmissionView& view, const std::string& leader, uint64_t term,
                    bool members_only) {
  if (view.gossip == nullptr) return "";
  for (const auto& [peer, claim] : *view.gossip) {
    if (peer == leader || peer == view.self_id) continue;
    if (claim.leader_id != leader || claim.term < term) continue;
    if (members_only) {
      if (!IsVoterOf(view.config, peer)) continue;
    } else if (view.join_targets == nullptr || view.join_targets->count(peer) == 0) {
      continue;
    }
    return peer;
  }
  return "";
}

// R3's exceptions: leader traffic of `term` from the non-member `link` is accepted.
bool AcceptedLeader(const AdmissionView& view, const std::string& link, uint64_t term) {
  if (!HasMembers(view.config)) {
    if (view.join_targets != nullptr && view.join_targets->count(link) != 0) return true;
    return !Voucher(view, link, term, /*members_only=*/false).empty();
  }
  return !Voucher(view, link, term, /*members_only=*/true).empty();
}

// "session of n2" for the detail of a refused command.
std::string SessionText(const pb::SessionKey& s) {
  return "a session of node '" + s.node_id() + "' (client " + std::to_string(s.client_id()) + ")";
}

Admission OwnSession(const std::string& proposer, const char* kind, const pb::SessionKey& s) {
  if (s.node_id() == proposer) return Admission::Accept();
  return Admission::Refuse("propose-foreign-session", "PROPOSE",
                           std::string("PROPOSE of ") + kind + " for " + SessionText(s) +
                               ": a node proposes only for its own "
                               "sessions");
}

}  // namespace

std::string Admission::PrintableDetail(const std::string& detail) {
  std::string out;
  out.reserve(std::min(detail.size(), kMaxDetail));
  for (char ch : detail) {
    if (out.size() >= kMaxDetail) {
      out += "... (cut)";
      break;
    }
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      AppendHexByte(&out, c);
    } else {
      out += ch;
    }
  }
  return out;
}

// Only voters vouch, lead, campaign, move the term or forward a join (R2, R5): a learner
// may be anyone who got a link and asked to join.
bool IsVoterOf(const pb::ClusterConfig* config, const std::string& id) {
  if (config == nullptr || id.empty()) return false;
  for (const pb::Member& m : config->members()) {
    if (m.id() == id) return m.voter();
  }
  return false;
}

bool IsMemberOf(const pb::ClusterConfig* config, const std::string& id) {
  if (config == nullptr || id.empty()) return false;
  for (const pb::Member& m : config->members()) {
    if (m.id() == id) return true;
  }
  return false;
}

Admission AdmitCommand(const std::string& proposer, const pb::Command& c) {
  // The allow-list: a kind not named here is refused (a kind added to pb::Command later
  // must be added here, with the check that it concerns only the proposer's own node).
  switch (c.body_case()) {
    case pb::Command::kOpenSession:
      return OwnSession(proposer, "OpenSession", c.open_session().session());
    case pb::Command::kAcquire:
      return OwnSession(proposer, "Acquire", c.acquire().session());
    case pb::Command::kRelease:
      return OwnSession(proposer, "Release", c.release().session());
    case pb::Command::kCancel:
      return OwnSession(proposer, "Cancel", c.cancel().session());
    case pb::Command::kCloseSession:
      return OwnSession(proposer, "CloseSession", c.close_session().session());
    case pb::Command::kExpireNode:
      // Expiring a node is the leader's own decision, proposed locally; a restarting node
      // ends its own earlier runs' sessions with ClaimClientIds (net/node/node.cc).
      return Admission::Refuse("propose-expire-node", "PROPOSE",
                               "PROPOSE of ExpireNode '" + c.expire_node().node_id() +
                                   "': only the leader expires a node, by its own decision");
    case pb::Command::kClaimClientIds:
      // A node claims client ids for its own id only (net/node/node.cc, at start): another's
      // claim with expire_older would end that node's sessions.
      if (c.claim_client_ids().node_id() == proposer) return Admission::Accept();
      return Admission::Refuse("propose-claim-client-ids", "PROPOSE",
                               "PROPOSE of ClaimClientIds for '" + c.claim_client_ids().node_id() +
                                   "': a node claims client ids only for itself");
    default:
      return Admission::Refuse("propose-unknown-command", "PROPOSE",
                               "PROPOSE of a command kind that peers may not propose (body " +
                                   std::to_string(static_cast<int>(c.body_case())) + ")");
  }
}

Admission AdmitRaft(const AdmissionView& view, const std::string& link, const pb::RaftMessage& m) {
  const char* type = TypeName(m.type());
  // R1.
  if (m.from() != link) {
    return Admission::Refuse("from-mismatch", type,
                             std::string(type) + " claiming to be from '" + m.from() +
                                 "' on the link of '" + link + "': a peer speaks only for itself");
  }
  const std::string term = std::to_string(m.term());
  if (IsMemberOf(view.config, link)) {
    // R2, and R4 for proposals.
    if (m.type() != pb::PROPOSE && !IsVoterOf(view.config, link)) {
      // A learner answers its leader (in no term above ours) and proposes; it leads only
      // as a non-member would, vouched for by a voter (it was promoted since our config).
      const bool answer = m.type() == pb::APPEND_RESPONSE || m.type() == pb::HEARTBEAT_RESPONSE ||
                          m.type() == pb::SNAPSHOT_RESPONSE;
      if (answer && m.term() <= view.term) return Admission::Accept();
      if (IsLeaderTraffic(m.type()) && AcceptedLeader(view, link, m.term())) {
        return Admission::Accept();
      }
      return Admission::Refuse("learner", type,
                               std::string(type) + " in term " + term + " from '" + link +
                                   "', a learner of this node's configuration: a learner "
                                   "answers its leader and proposes, and leads only when a "
                                   "voter vouches for it");
    }
    if (m.type() != pb::PROPOSE) return Admission::Accept();
    for (const pb::Entry& e : m.entries()) {
      if (e.type() != pb::ENTRY_COMMAND) {
        return Admission::Refuse("propose-not-command", "PROPOSE",
                                 "PROPOSE of an entry that is not a command (type " +
                                     std::to_string(static_cast<int>(e.type())) + ")");
      }
      pb::Command c;
      if (!c.ParseFromString(e.data())) {
        return Admission::Refuse("propose-unparsable", "PROPOSE",
                                 "PROPOSE of an entry that is not a valid command");
      }
      Admission a = AdmitCommand(link, c);
      if (!a.accepted) return a;
    }
    return Admission::Accept();
  }
  // R3: a non-member.
  if (IsLeaderTraffic(m.type()) && AcceptedLeader(view, link, m.term())) {
    return Admission::Accept();
  }
  if (!HasMembers(view.config)) {
    return Admission::Refuse("not-a-member", type,
                             std::string(type) + " in term " + term + " from '" + link +
                                 "': this node has no configuration yet, and '" + link +
                                 "' is neither a peer it asked to join nor the leader one of them "
                                 "names");
  }
  return Admission::Refuse(
      "not-a-member", type,
      std::string(type) + " in term " + term + " from '" + link +
          "', which is not in this node's configuration" +
          (IsLeaderTraffic(m.type()) ? " and whose leadership no member vouches for" : ""));
}

Admission AdmitJoinRequest(const AdmissionView& view, const std::string& link,
                           const pb::JoinRequest& request) {
  if (request.node_id() == link || IsVoterOf(view.config, link)) return Admission::Accept();
  if (IsMemberOf(view.config, link)) {
    return Admission::Refuse("join-forward-from-learner", "JoinRequest",
                             "JoinRequest for '" + request.node_id() + "' from learner '" + link +
                                 "': only a voter forwards another node's request");
  }
  return Admission::Refuse("join-for-another", "JoinRequest",
                           "JoinRequest for '" + request.node_id() + "' from '" + link +
                               "': a non-member may ask to join only for itself");
}

Admission AdmitKeepalive(const std::string& link, const pb::Keepalive& keepalive) {
  if (keepalive.node_id() == link) return Admission::Accept();
  return Admission::Refuse("keepalive-for-another", "Keepalive",
                           "Keepalive for '" + keepalive.node_id() + "' from '" + link +
                               "': a node keeps only its own sessions alive");
}

bool MayHoldLease(const pb::ClusterConfig* config, const LockTable& table,
                  const std::string& node) {
  return IsMemberOf(config, node) || table.HasNodeSessions(node);
}

Admission AdmitKeepaliveAck(const AdmissionView& view, const std::string& link,
                            const pb::KeepaliveAck& ack) {
  if (ack.node_id() != view.self_id) {
    return Admission::Refuse(
        "ack-not-for-us", "KeepaliveAck",
        "KeepaliveAck for '" + ack.node_id() + "' from '" + link + "': it is not for this node");
  }
  if (view.leader) {
    return Admission::Refuse("ack-to-leader", "KeepaliveAck",
                             "KeepaliveAck from '" + link +
                                 "' while this node is the leader (a leader "
                                 "acknowledges itself)");
  }
  if (!IsMemberOf(view.config, link) && !AcceptedLeader(view, link, 0)) {
    return Admission::Refuse("not-a-member", "KeepaliveAck",
                             "KeepaliveAck from '" + link +
                                 "', which is not in this node's configuration: only the "
                                 "leader extends this node's lease");
  }
  if (link != view.leader_id) {
    return Admission::Refuse(
        "ack-not-from-leader", "KeepaliveAck",
        "KeepaliveAck from '" + link + "', which is not the leader (" +
            (view.leader_id.empty() ? std::string("none known") : "'" + view.leader_id + "'") +
            "): only the leader extends this node's lease");
  }
  if (ack.leader_id() != link) {
    return Admission::Refuse(
        "ack-leader-mismatch", "KeepaliveAck",
        "KeepaliveAck naming leader '" + ack.leader_id() + "' on the link of '" + link + "'");
  }
  return Admission::Accept();
}

RefusalLimiter::RefusalLimiter(uint64_t interval, size_t max_keys)
    : interval_(interval), max_keys_(max_keys == 0 ? 1 : max_keys) {}

bool RefusalLimiter::ShouldLog(uint64_t now, const std::string& peer, const std::string& rule,
                               uint64_t* suppressed) {
  auto key = std::make_pair(peer, rule);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    if (now - it->second.last_logged < interval_) {
      ++it->second.suppressed;
      return false;
    }
    if (suppressed != nullptr) *suppressed = it->second.suppressed;
    it->second.last_logged = now;
    it->second.suppressed = 0;
    return true;
  }
  if (entries_.size() >= max_keys_) {
    // Forget the pairs whose interval has passed; if none, the stalest one.
    std::vector<std::pair<std::string, std::string>> old;
    auto stalest = entries_.begin();
    for (auto e = entries_.begin(); e != entries_.end(); ++e) {
      if (now - e->second.last_logged >= interval_) old.push_back(e->first);
      if (e->second.last_logged < stalest->second.last_logged) stalest = e;
    }
    if (old.empty()) {
      entries_.erase(stalest);
    } else {
      for (const auto& k : old) entries_.erase(k);
    }
  }
  entries_[key] = Entry{now, 0};
  if (suppressed != nullptr) *suppressed = 0;
  return true;
}

}  // namespace mesh::core

#include "core/join_choice.h"

#include <set>
#include <vector>

namespace mesh::core {
namespace {

// "a, b and c" of at most a few ids, for the log.
std::string Names(const std::vector<std::string>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += i + 1 == ids.size() ? " and " : ", ";
    out += "'" + ids[i] + "'";
  }
  return out;
}

// The peers of the cluster (`members`) whose gossip is weighed for or against `candidate`
// as leader (C2): all but the candidate and the peers that claim to lead themselves (a
// claim about oneself counts for nothing, either way).
size_t Judges(const std::map<std::string, JoinGossip>& peers,
              const std::vector<std::string>& members, const std::string& candidate) {
  size_t n = 0;
  for (const std::string& id : members) {
    if (id != candidate && peers.at(id).leader_id != id) ++n;
  }
  return n;
}

}  // namespace

JoinChoice ChooseJoin(const std::string& self_id, const std::map<std::string, JoinGossip>& peers,
                      const std::string& previous_cluster_id) {
  JoinChoice out;
  // C1: the peers of each cluster in view.
  std::map<std::string, std::vector<std::string>> clusters;
  for (const auto& [id, g] : peers) {
    if (id == self_id || g.cluster_id.empty()) continue;
    clusters[g.cluster_id].push_back(id);
  }
  if (clusters.empty()) return out;
  if (!previous_cluster_id.empty() && clusters.count(previous_cluster_id) != 0) {
    out.cluster_id = previous_cluster_id;
  } else {
    size_t best = 0;
    std::vector<std::string> tied;
    for (const auto& [cid, ids] : clusters) {
      if (ids.size() > best) {
        best = ids.size();
        tied = {cid};
      } else if (ids.size() == best) {
        tied.push_back(cid);
      }
    }
    if (tied.size() > 1) {
      out.reason = std::to_string(tied.size()) + " clusters of this name are in view with " +
                   std::to_string(best) + " peer(s) each (" + Names(tied) +
                   "): waiting until one has more peers in view";
      return out;
    }
    out.cluster_id = tied.front();
  }
  const std::vector<std::string>& members = clusters[out.cluster_id];
  // C2: who is named as leader by peers other than itself.
  std::map<std::string, std::set<std::string>> named_by;
  for (const std::string& id : members) {
    const std::string& leader = peers.at(id).leader_id;
    if (leader.empty() || leader == id || leader == self_id) continue;
    named_by[leader].insert(id);
  }
  if (!named_by.empty()) {
    // More than half of the cluster's other peers in view must name the leader (those
    // naming nobody count against): one peer naming its accomplice while the real peers
    // hold an election must not carry the choice. Two leaders that both pass (two peers
    // naming each other, and nobody else in view) are not told apart either.
    std::vector<std::string> passing;
    std::string best;
    size_t best_by = 0, best_others = 0;
    for (const auto& [named, by] : named_by) {
      const size_t others = Judges(peers, members, named);
      if (2 * by.size() > others) passing.push_back(named);
      if (by.size() > best_by) {
        best = named;
        best_by = by.size();
        best_others = others;
      }
    }
    if (passing.size() != 1) {
      out.reason =
          passing.empty()
              ? "'" + best + "' is named leader of cluster " + out.cluster_id + " by " +
                    std::to_string(best_by) + " of the " + std::to_string(best_others) +
                    " other peer(s) in view: waiting until more than half name one leader"
              : "the peers of cluster " + out.cluster_id + " name " + Names(passing) +
                    " as leader, each by more than half of the others: waiting until one is";
      return out;
    }
    out.leader = passing.front();
    bool in_view = false;
    for (const std::string& id : members) in_view = in_view || id == out.leader;
    // In view: ask the leader itself. Otherwise the lowest-id peer that names it (the set
    // is ordered) forwards the request, and vouches for the leader.
    const std::set<std::string>& by = named_by[out.leader];
    out.target = in_view ? out.leader : *by.begin();
    out.reason = "'" + out.leader + "' is named leader of cluster " + out.cluster_id + " by " +
                 std::to_string(by.size()) + " of the " +
                 std::to_string(Judges(peers, members, out.leader)) + " other peer(s) in view";
    return out;
  }
  // C3.
  if (members.size() == 1) {
    out.target = members.front();
    out.reason = "'" + out.target + "' is the only peer of cluster " + out.cluster_id + " in view";
    return out;
  }
  out.reason = std::to_string(members.size()) + " peers of cluster " + out.cluster_id +
               " are in view and none is named leader by another: waiting until one is (a "
               "peer's claim to lead counts only when others confirm it)";
  return out;
}

}  // namespace mesh::core

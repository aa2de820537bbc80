#include "core/formation_plan.h"

namespace mesh::core {

bool JoinDue(uint64_t now_ms, uint64_t last_join_ms) {
  return now_ms - last_join_ms >= kJoinIntervalMs;
}

FormationStep PlanFormation(const FormationView& view) {
  FormationStep step;
  // F1: listen first.
  if (view.now_ms - view.start_ms < view.formation_wait_ms) return step;
  static const std::map<std::string, JoinGossip> kNone;
  const std::map<std::string, JoinGossip>& peers = view.peers != nullptr ? *view.peers : kNone;
  // F2: which cluster to join, and whom to trust for its log (core/join_choice.h).
  step.choice = ChooseJoin(view.self_id, peers, view.joining_cluster_id);
  if (!step.choice.cluster_id.empty() || !step.choice.reason.empty()) {
    // A cluster is in view, or two tie: never bootstrap beside it.
    step.kind = FormationStep::Kind::kJoin;
    step.send_join = !step.choice.target.empty() && JoinDue(view.now_ms, view.last_join_ms);
    return step;
  }
  // F3: nobody in view belongs to a cluster.
  step.choice = JoinChoice{};
  std::string lower;
  for (const auto& [id, g] : peers) {
    if (id == view.self_id || !g.cluster_id.empty()) continue;
    ++step.fresh_peers;
    if (lower.empty() && id < view.self_id) lower = id;  // the map is ordered: the lowest
  }
  if (static_cast<int>(step.fresh_peers) + 1 < view.expect) {
    step.kind = FormationStep::Kind::kWait;
    step.why = std::to_string(step.fresh_peers + 1) + " of the " + std::to_string(view.expect) +
               " fresh node(s) --expect asks for are in view";
    return step;
  }
  if (!lower.empty()) {
    step.kind = FormationStep::Kind::kWait;
    step.why = "'" + lower + "' has a lower id: it bootstraps, and this node joins it";
    return step;
  }
  step.kind = FormationStep::Kind::kBootstrap;
  return step;
}

std::string RejoinTarget(const std::string& leader, bool leader_connected,
                         const std::map<std::string, RejoinPeer>& peers,
                         const std::string& cluster_id) {
  if (!leader.empty() && leader_connected) return leader;
  std::string to;
  for (const auto& [id, p] : peers) {
    if (p.cluster_id == cluster_id && p.member) to = id;  // ordered: the highest id wins
  }
  return to;
}

std::string ChooseHandOver(const std::vector<HandOverCandidate>& followers) {
  std::string best;
  uint64_t best_match = 0;
  for (const HandOverCandidate& f : followers) {
    if (!f.voter || !f.connected) continue;
    if (best.empty() || f.match > best_match) {
      best = f.id;
      best_match = f.match;
    }
  }
  return best;
}

bool LeaveComplete(bool leader, int members, uint64_t unapplied, uint64_t now_ms,
                   uint64_t deadline_ms) {
  const bool handed_over = !leader || members <= 1;
  return (handed_over && unapplied == 0) || now_ms >= deadline_ms;
}

}  // namespace mesh::core

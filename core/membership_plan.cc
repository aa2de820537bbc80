// core/membership_plan: see membership_plan.h.
#include "core/membership_plan.h"

#include <algorithm>
#include <set>

namespace mesh::core {

void CatchUpTracker::Observe(const std::string& id, uint64_t now_us, uint64_t match,
                             uint64_t snapshot_acked, uint64_t commit) {
  auto [it, inserted] = peers_.try_emplace(id);
  Peer& p = it->second;
  if (inserted || match >= p.target || snapshot_acked > p.snapshot_acked) {
    p.target = commit;
    p.since = now_us;
  }
  p.snapshot_acked = snapshot_acked;
}

uint64_t CatchUpTracker::BehindFor(const std::string& id, uint64_t now_us) const {
  auto it = peers_.find(id);
  if (it == peers_.end() || now_us < it->second.since) return 0;
  return now_us - it->second.since;
}

void CatchUpTracker::Retain(const std::vector<std::string>& keep) {
  std::set<std::string> ids(keep.begin(), keep.end());
  for (auto it = peers_.begin(); it != peers_.end();) {
    it = ids.count(it->first) ? std::next(it) : peers_.erase(it);
  }
}

namespace {

std::string Seconds(uint64_t us) { return std::to_string(us / 1'000'000) + " s"; }

// Why `f` has failed, or "" if it has not.
std::string FailedBecause(const MembershipView& view, const FollowerView& f) {
  if (view.now_us - view.leader_since_us < view.dead_after_us) return "";
  if (f.last_heard_us == 0 || view.now_us - f.last_heard_us >= view.dead_after_us) {
    return "unreachable for " + Seconds(view.dead_after_us) + " (--dead-after)";
  }
  if (f.behind_for_us >= view.dead_after_us) {
    return std::string(f.connected ? "connected but " : "") + "no progress for " +
           Seconds(f.behind_for_us) + " (--dead-after " + Seconds(view.dead_after_us) +
           "; at index " + std::to_string(f.match) + " of " + std::to_string(view.commit_index) +
           ")";
  }
  return "";
}

}  // namespace

MembershipStep PlanMembership(const MembershipView& view) {
  MembershipStep step;
  std::map<std::string, const FollowerView*> followers;
  for (const FollowerView& f : view.followers) followers[f.id] = &f;
  std::set<std::string> members;
  if (view.config != nullptr) {
    for (const pb::Member& m : view.config->members()) members.insert(m.id());
  }
  // M1 and M2: join requests.
  if (view.joins != nullptr) {
    for (const auto& [id, ask] : *view.joins) {
      if (!members.count(id)) {
        if (step.kind != MembershipStep::Kind::kNone) continue;
        step.kind = MembershipStep::Kind::kAddLearner;
        step.id = id;
        step.address = ask.address;
        step.why = "adding " + id + " (" + ask.address + ") as a learner";
        continue;
      }
      auto f = followers.find(id);
      if (f == followers.end() || ask.last_index >= f->second->match) {
        step.drop_joins.push_back(id);  // a member asking again (it has not heard yet)
        continue;
      }
      if (step.kind != MembershipStep::Kind::kNone) continue;
      step.kind = MembershipStep::Kind::kRemove;
      step.id = id;
      step.why = std::string("removing ") + (f->second->voter ? "voter " : "learner ") + id +
                 ": it asks to join with a log that ends at " + std::to_string(ask.last_index) +
                 " though it had acknowledged " + std::to_string(f->second->match) +
                 " (it lost its data); it joins again as a learner";
    }
  }
  if (step.kind != MembershipStep::Kind::kNone) {
    // A removal (M1) keeps its join request: the node joins again once it is out.
    if (step.kind == MembershipStep::Kind::kAddLearner) step.drop_joins.push_back(step.id);
    return step;
  }
  // Who has failed, who is ready.
  std::vector<std::pair<std::string, std::string>> failed_voters, failed_learners;
  std::vector<std::string> ready_learners;
  for (const FollowerView& f : view.followers) {
    std::string failed = FailedBecause(view, f);
    if (!failed.empty()) {
      (f.voter ? failed_voters : failed_learners).emplace_back(f.id, failed);
    } else if (!f.voter && f.match >= view.commit_index && f.connected) {
      ready_learners.push_back(f.id);
    }
  }
  int voters = 0;
  if (view.config != nullptr) {
    for (const pb::Member& m : view.config->members()) voters += m.voter() ? 1 : 0;
  }
  // M3: a failed voter makes room for a caught-up learner.
  if (!failed_voters.empty() && !ready_learners.empty()) {
    step.kind = MembershipStep::Kind::kRemove;
    step.id = failed_voters.front().first;
    step.why = "removing voter " + step.id + ": " + failed_voters.front().second + "; learner " +
               ready_learners.front() + " will take its place";
    return step;
  }
  // M4: promote learners up to the target.
  if (voters < view.voters_target && !ready_learners.empty()) {
    step.kind = MembershipStep::Kind::kPromote;
    step.id = ready_learners.front();
    step.why = "promoting learner " + step.id + " to voter (" + std::to_string(voters + 1) +
               " of " + std::to_string(view.voters_target) + ")";
    return step;
  }
  // M5: failed learners leave the configuration.
  if (!failed_learners.empty()) {
    step.kind = MembershipStep::Kind::kRemove;
    step.id = failed_learners.front().first;
    step.why = "removing learner " + step.id + ": " + failed_learners.front().second;
  }
  return step;
}

}  // namespace mesh::core

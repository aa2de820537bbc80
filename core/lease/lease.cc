#include "core/lease/lease.h"

#include <algorithm>
#include <cmath>

namespace mesh::core::lease {

// ---------------------------------------------------------------- LeaderLeases

LeaderLeases::LeaderLeases(const LeaseOptions& options) : options_(options) {}

void LeaderLeases::BecomeLeader(Time now, const std::vector<std::string>& nodes) {
  leader_ = true;
  nodes_.clear();
  for (const std::string& node : nodes) nodes_[node] = Tracked{now, false};
  last_call_ = now;
}

void LeaderLeases::StepDown() {
  leader_ = false;
  nodes_.clear();
  last_call_ = 0;
}

void LeaderLeases::Observe(Time now) {
  if (!leader_) return;
  if (options_.election_timeout != 0 && now > last_call_ &&
      now - last_call_ > options_.election_timeout) {
    // A pause of this leader (or a jump of its clock): nobody was heard because nobody was
    // listening. Start every clock again, as a new leader does.
    for (auto& [node, tracked] : nodes_)
      tracked = Tracked{std::max(tracked.last_heard, now), false};
    ++pauses_;
  }
  last_call_ = std::max(last_call_, now);
}

void LeaderLeases::Track(Time now, const std::string& node) {
  if (!leader_) return;
  Observe(now);
  nodes_.try_emplace(node, Tracked{now, false});
}

void LeaderLeases::Forget(const std::string& node) { nodes_.erase(node); }

bool LeaderLeases::OnKeepalive(Time now, const pb::Keepalive& keepalive, bool known,
                               bool has_leader_lease, const std::string& leader_id,
                               uint64_t last_log_index, pb::KeepaliveAck* ack) {
  if (!leader_ || keepalive.node_id().empty()) return false;
  Observe(now);
  if (!known) {
    // No session to keep alive and none it could open: neither tracked nor acknowledged. A
    // node tracked since it was known (a member since removed, whose sessions ended) is
    // forgotten, so the map holds only nodes that may hold a lease.
    nodes_.erase(keepalive.node_id());
    return false;
  }
  Tracked& tracked = nodes_[keepalive.node_id()];
  // A message delayed in the network may carry an older send time than one already seen;
  // the receive time is what counts, and it only moves forward.
  tracked.last_heard = std::max(tracked.last_heard, now);
  tracked.reported = false;
  if (!has_leader_lease) return false;
  ack->Clear();
  ack->set_leader_id(leader_id);
  ack->set_node_id(keepalive.node_id());
  ack->set_seq(keepalive.seq());
  ack->set_required_index(last_log_index);
  return true;
}

std::vector<std::string> LeaderLeases::TakeExpired(Time now) {
  std::vector<std::string> expired;
  if (!leader_) return expired;
  Observe(now);
  for (auto& [node, tracked] : nodes_) {
    if (!tracked.reported && now >= tracked.last_heard + options_.session_ttl) {
      tracked.reported = true;
      expired.push_back(node);
    }
  }
  return expired;
}

Time LeaderLeases::NextDeadline() const {
  Time next = UINT64_MAX;
  if (!leader_) return next;
  for (const auto& [node, tracked] : nodes_) {
    if (!tracked.reported) next = std::min(next, tracked.last_heard + options_.session_ttl);
  }
  return next;
}

bool LeaderLeases::LastHeard(const std::string& node, Time* when) const {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return false;
  *when = it->second.last_heard;
  return true;
}

// ---------------------------------------------------------------- NodeLease

namespace {
constexpr size_t kMaxUnacknowledged = 64;
}  // namespace

NodeLease::NodeLease(const LeaseOptions& options) : options_(options) {}

pb::Keepalive NodeLease::MakeKeepalive(Time now, const std::string& node_id) {
  pb::Keepalive keepalive;
  keepalive.set_node_id(node_id);
  keepalive.set_seq(next_seq_);
  sent_[next_seq_] = now;
  ++next_seq_;
  while (sent_.size() > kMaxUnacknowledged) sent_.erase(sent_.begin());
  return keepalive;
}

Time NodeLease::LeaseEnd(Time sent) const {
  const double usable = static_cast<double>(options_.session_ttl) * (1.0 - options_.max_drift);
  // Round down: a lease may only ever be shorter than the argument allows.
  const Time span = static_cast<Time>(std::floor(usable));
  if (span <= options_.margin) return sent;  // a lease this short is no lease at all
  return sent + span - options_.margin;
}

void NodeLease::Extend(Time sent) {
  Time end = LeaseEnd(sent);
  if (end > valid_until_) valid_until_ = end;
}

void NodeLease::OnAck(const pb::KeepaliveAck& ack, uint64_t applied_index) {
  auto it = sent_.find(ack.seq());
  if (it == sent_.end()) return;
  Time sent = it->second;
  // Older sends can no longer give a later lease than this one.
  sent_.erase(sent_.begin(), std::next(it));
  if (ack.required_index() <= applied_index) {
    Extend(sent);
    return;
  }
  pending_.push_back(PendingAck{sent, ack.required_index()});
  while (pending_.size() > kMaxUnacknowledged) pending_.pop_front();
}

void NodeLease::OnApplied(uint64_t applied_index) {
  // Acks are not necessarily pending in required_index order; keep the others waiting.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->required_index <= applied_index) {
      Extend(it->sent);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

bool NodeLease::Lapsed(Time now) {
  // valid_until_ only grows, so each lease end lapses at most once.
  if (valid_until_ == 0 || now < valid_until_ || reported_end_ == valid_until_) return false;
  reported_end_ = valid_until_;
  return true;
}

Time NodeLease::NextDeadline() const {
  return valid_until_ == 0 || reported_end_ == valid_until_ ? UINT64_MAX : valid_until_;
}

}  // namespace mesh::core::lease

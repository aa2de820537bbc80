#include "sim/support/sim_checker.h"

#include <algorithm>
#include <functional>
#include <sstream>

namespace mesh::sim {
namespace {

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

uint64_t HashString(const std::string& s) { return std::hash<std::string>{}(s); }

std::string SessionName(const pb::SessionKey& s) {
  return s.node_id() + "/" + std::to_string(s.client_id());
}

}  // namespace

Checker::Checker() { committed_.resize(1); ref_results_.resize(1); }

void Checker::Fail(uint64_t now, const std::string& what) {
  if (!violation_.empty()) return;
  std::ostringstream out;
  out << "t=" << now / 1000 << "." << (now % 1000) / 100 << "ms: " << what;
  violation_ = out.str();
}

uint64_t Checker::HashEntry(const pb::Entry& e) {
  return Mix(HashString(e.data()), static_cast<uint64_t>(e.type()) + 1);
}

uint64_t Checker::HashResult(const core::ApplyResult& r) {
  uint64_t h = Mix(HashString(r.result.SerializeAsString()), 7);
  for (const core::Grant& g : r.grants) h = Mix(Mix(h, g.lock_id), g.token);
  for (const core::Withdrawal& w : r.withdrawals) h = Mix(Mix(h, w.lock_id), w.code);
  for (const core::Grant& g : r.released) h = Mix(Mix(h, g.lock_id), 0x51);
  return h | 1;  // never 0 (0 means "no result recorded")
}

void Checker::OnLeader(uint64_t now, const std::string& node, uint64_t term) {
  auto [it, inserted] = leader_of_term_.emplace(term, node);
  if (!inserted && it->second != node) {
    Fail(now, "election safety: term " + std::to_string(term) + " has two leaders, " +
                  it->second + " and " + node);
  }
}

void Checker::OnPersisted(const std::string& node, const core::LogStore& store,
                          const std::vector<pb::Entry>& entries) {
  for (const pb::Entry& e : entries) {
    uint64_t prev_term = 0;
    if (e.index() > 1 && !store.Term(e.index() - 1, &prev_term).ok()) continue;  // compacted
    const uint64_t digest = HashEntry(e);
    auto& slot = persisted_[e.index()];
    bool found = false;
    for (auto& [term, value] : slot) {
      if (term != e.term()) continue;
      found = true;
      if (value.first != digest || value.second != prev_term) {
        Fail(now_, "log matching: " + node + " persisted entry " + std::to_string(e.index()) +
                       " of term " + std::to_string(e.term()) +
                       " that differs from another node's entry with the same index and term" +
                       (value.second != prev_term ? " (previous terms differ: " +
                                                        std::to_string(value.second) + " vs " +
                                                        std::to_string(prev_term) + ")"
                                                  : " (data differs)"));
      }
    }
    if (!found) slot.push_back({e.term(), {digest, prev_term}});
  }
}

void Checker::CheckLeaderCompleteness(const std::string& node, const core::LogStore& store,
                                      uint64_t leader_term) {
  uint64_t top = max_applied();
  // Terms never decrease along the log: skip the entries of this term and later ones.
  while (top > 0 && committed_[top].term >= leader_term) --top;
  if (top == 0 || top <= store.snapshot().index) return;
  uint64_t term = 0;
  if (top > store.last_index() || !store.Term(top, &term).ok() || term != committed_[top].term) {
    Fail(now_, "leader completeness: new leader " + node + " lacks committed entry " +
                   std::to_string(top) + " (term " + std::to_string(committed_[top].term) +
                   "); its last index is " + std::to_string(store.last_index()));
  }
}

bool Checker::DurableLog::Holds(uint64_t index, uint64_t term) const {
  // A snapshot holds the state through its index (of committed entries: compacted at the
  // applied index, or installed from a leader).
  if (index < snapshot) return true;
  if (index == snapshot) return term == snapshot_term;
  const uint64_t k = index - snapshot - 1;
  return k < terms.size() && terms[k] == term;
}

void Checker::DurableLog::Assign(const core::LogStore& store) {
  snapshot = store.snapshot().index;
  snapshot_term = store.snapshot().term;
  terms.clear();
  for (uint64_t i = snapshot + 1; i <= store.last_index(); ++i) {
    uint64_t term = 0;
    if (!store.Term(i, &term).ok()) break;
    terms.push_back(term);
  }
}

void Checker::OnDurable(const std::string& node, const core::LogStore& store) {
  durable_[node].Assign(store);
}

void Checker::OnRecovered(const std::string& node, const core::LogStore& store) {
  DurableLog& d = durable_[node];
  DurableLog now;
  now.Assign(store);
  const uint64_t last = std::min<uint64_t>(max_applied(), d.snapshot + d.terms.size());
  for (uint64_t i = now.snapshot + 1; i <= last; ++i) {
    const uint64_t term = committed_[i].term;
    if (d.Holds(i, term) && !now.Holds(i, term)) {
      Fail(now_, "durability: " + node + " held committed entry " + std::to_string(i) +
                     " (term " + std::to_string(term) +
                     ") durably, and its log recovered after the crash lacks it (snapshot " +
                     std::to_string(now.snapshot) + ", last index " +
                     std::to_string(store.last_index()) + ")");
      break;
    }
  }
  d = std::move(now);
}

void Checker::CheckDurableQuorum(const std::string& node, const pb::Entry& entry,
                                 const pb::ClusterConfig& config) {
  size_t voters = 0, durable = 0;
  std::string on, off;
  for (const pb::Member& m : config.members()) {
    if (!m.voter()) continue;
    ++voters;
    auto it = durable_.find(m.id());
    const bool holds = it != durable_.end() && it->second.Holds(entry.index(), entry.term());
    durable += holds ? 1 : 0;
    std::string& list = holds ? on : off;
    list += (list.empty() ? "" : ",") + m.id();
  }
  if (durable >= voters / 2 + 1) return;
  Fail(now_, "durable quorum: " + node + " applied entry " + std::to_string(entry.index()) +
                 " (term " + std::to_string(entry.term()) + ") first, durable on " +
                 std::to_string(durable) + " of its configuration's " +
                 std::to_string(voters) + " voters (on: " + (on.empty() ? "none" : on) +
                 "; not on: " + (off.empty() ? "none" : off) + ")");
}

void Checker::OnApplied(const std::string& node, const pb::Entry& entry,
                        const pb::ClusterConfig& config, const pb::Command* command,
                        const core::ApplyResult* result) {
  const uint64_t index = entry.index();
  const uint64_t digest = HashEntry(entry);
  if (index < committed_.size()) {
    const Digest& d = committed_[index];
    if (d.term != entry.term() || d.hash != digest) {
      Fail(now_, "state machine safety: " + node + " applied a different entry at index " +
                     std::to_string(index) + " (term " + std::to_string(entry.term()) +
                     ", first applied with term " + std::to_string(d.term) + ")");
      return;
    }
  } else if (index == committed_.size()) {
    if (check_durable_quorum_) CheckDurableQuorum(node, entry, config);
    committed_.push_back(Digest{entry.term(), digest, true});
    ref_results_.push_back(0);
    ApplyReference(now_, entry, command);
  } else {
    Fail(now_, node + " applied index " + std::to_string(index) + " while no node had applied " +
                   std::to_string(committed_.size()));
    return;
  }
  if (result != nullptr && ref_results_[index] != 0 && HashResult(*result) != ref_results_[index]) {
    Fail(now_, "lock table divergence: " + node + "'s result for entry " + std::to_string(index) +
                   " (" + pb::ResultCode_Name(result->result.code()) + " " +
                   result->result.message() +
                   ") differs from the reference state machine's");
  }
}

void Checker::ApplyReference(uint64_t now, const pb::Entry& entry, const pb::Command* command) {
  if (command == nullptr) return;
  const uint64_t index = entry.index();
  core::ApplyResult r = reference_.Apply(index, *command);
  ref_results_[index] = HashResult(r);
  if (command->has_open_session() && r.result.code() == pb::GRANTED) {
    const pb::SessionKey& s = command->open_session().session();
    opened_at_.try_emplace({s.node_id(), s.client_id()}, index);
  }
  if (command->has_close_session()) {
    const pb::SessionKey& s = command->close_session().session();
    opened_at_.erase({s.node_id(), s.client_id()});
  }
  if (command->has_expire_node()) {
    const std::string& n = command->expire_node().node_id();
    expired_at_[n] = index;
    for (auto it = opened_at_.begin(); it != opened_at_.end();) {
      it = it->first.first == n ? opened_at_.erase(it) : std::next(it);
    }
  }
  for (const core::Grant& g : r.grants) {
    uint64_t& last = last_grant_token_[g.resource];
    if (g.token <= last && !(g.token == last && g.token == index)) {
      Fail(now, "fencing: entry " + std::to_string(index) + " granted " + g.resource +
                    " with token " + std::to_string(g.token) + " after token " +
                    std::to_string(last));
    }
    if (g.token != index) {
      Fail(now, "fencing: entry " + std::to_string(index) + " granted token " +
                    std::to_string(g.token));
    }
    last = g.token;
    auto open = opened_at_.find({g.session.node_id(), g.session.client_id()});
    if (open == opened_at_.end()) {
      Fail(now, "grant at " + std::to_string(index) + " to " + SessionName(g.session) +
                    ", a session that is not open (expired or closed)");
    }
  }
}

void Checker::BeginHold(uint64_t now, const std::string& client, const std::string& resource,
                        pb::LockMode mode, uint64_t lock_id, uint64_t token) {
  now_ = now;
  ++holds_begun_;
  std::vector<Hold>& holds = holders_[resource];
  for (const Hold& h : holds) {
    if (!core::ModesCompatible(h.mode, mode) || !core::ModesCompatible(mode, h.mode)) {
      Fail(now, "mutual exclusion: " + client + " holds " + resource + " (" +
                    pb::LockMode_Name(mode) + ", token " + std::to_string(token) + ") while " +
                    h.client + " holds it (" + pb::LockMode_Name(h.mode) + ", token " +
                    std::to_string(h.token) + ")");
    }
  }
  auto& by_mode = max_token_by_mode_[resource];
  for (const auto& [m, max_token] : by_mode) {
    const auto held = static_cast<pb::LockMode>(m);
    if (!core::ModesCompatible(held, mode) && token <= max_token) {
      Fail(now, "fencing: " + client + " got " + resource + " (" + pb::LockMode_Name(mode) +
                    ") with token " + std::to_string(token) + ", not above token " +
                    std::to_string(max_token) + " handed out earlier for " +
                    pb::LockMode_Name(held));
    }
  }
  uint64_t& mine = by_mode[mode];
  if (token > mine) mine = token;
  holds.push_back(Hold{client, mode, lock_id, token});
}

void Checker::EndHold(uint64_t now, const std::string& client, const std::string& resource,
                      uint64_t lock_id) {
  now_ = now;
  std::vector<Hold>& holds = holders_[resource];
  for (auto it = holds.begin(); it != holds.end(); ++it) {
    if (it->client == client && it->lock_id == lock_id) {
      holds.erase(it);
      return;
    }
  }
}

}  // namespace mesh::sim

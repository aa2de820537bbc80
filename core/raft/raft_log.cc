// core/raft/raft_log: see raft_log.h.
#include "core/raft/raft_log.h"

#include <algorithm>

namespace mesh::core::raft {

RaftLog::RaftLog() = default;

void RaftLog::Reset(const pb::SnapshotMeta& snapshot, std::vector<pb::Entry> entries,
                    std::vector<std::pair<uint64_t, pb::ClusterConfig>> configs) {
  snapshot_ = snapshot;
  entries_.clear();
  for (pb::Entry& e : entries) entries_.push_back(std::move(e));
  configs_.clear();
  for (auto& c : configs) configs_.push_back(std::move(c));
  unsent_from_ = last_index() + 1;
  stable_ = last_index();
}

bool RaftLog::Term(uint64_t index, uint64_t* term) const {
  if (index == snapshot_.index()) {
    *term = snapshot_.term();
    return true;
  }
  if (index < first_index() || index > last_index()) return false;
  *term = entries_[index - first_index()].term();
  return true;
}

uint64_t RaftLog::TermOrZero(uint64_t index) const {
  uint64_t term = 0;
  return Term(index, &term) ? term : 0;
}

bool RaftLog::MatchTerm(uint64_t index, uint64_t term) const {
  uint64_t t = 0;
  return Term(index, &t) && t == term;
}

bool RaftLog::IsUpToDate(uint64_t index, uint64_t term) const {
  return term > last_term() || (term == last_term() && index >= last_index());
}

std::pair<uint64_t, uint64_t> RaftLog::FindConflictByTerm(uint64_t index, uint64_t term) const {
  if (index > last_index()) index = last_index();
  if (index < first_index()) {
    // At or below the snapshot: nothing to search; the snapshot index is the best guess.
    uint64_t t = 0;
    if (index == snapshot_.index() && Term(index, &t) && t <= term) return {index, t};
    return {std::min(index, snapshot_.index()), 0};
  }
  // Terms are non-decreasing along the log: binary search for the last entry in
  // [first_index(), index] whose term is <= term.
  size_t lo = 0, hi = index - first_index() + 1;  // candidates [lo, hi)
  if (entries_[0].term() > term) {
    if (snapshot_.term() <= term) return {snapshot_.index(), snapshot_.term()};
    return {snapshot_.index(), 0};
  }
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (entries_[mid].term() <= term) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return {first_index() + lo, entries_[lo].term()};
}

void RaftLog::Append(pb::Entry entry, const pb::ClusterConfig* config) {
  if (config != nullptr) configs_.emplace_back(entry.index(), *config);
  entries_.push_back(std::move(entry));
}

void RaftLog::TruncateFrom(uint64_t index) {
  if (index <= snapshot_.index() || index > last_index()) return;
  entries_.erase(entries_.begin() + (index - first_index()), entries_.end());
  while (!configs_.empty() && configs_.back().first >= index) configs_.pop_back();
  unsent_from_ = std::min(unsent_from_, index);
  stable_ = std::min(stable_, index - 1);
}

void RaftLog::CompactTo(const pb::SnapshotMeta& meta) {
  uint64_t index = meta.index();
  if (index <= snapshot_.index() || index > last_index()) return;
  entries_.erase(entries_.begin(), entries_.begin() + (index - snapshot_.index()));
  while (!configs_.empty() && configs_.front().first <= index) configs_.pop_front();
  snapshot_ = meta;
  unsent_from_ = std::max(unsent_from_, index + 1);
  stable_ = std::max(stable_, index);
}

void RaftLog::Restore(const pb::SnapshotMeta& meta) {
  snapshot_ = meta;
  entries_.clear();
  configs_.clear();
  unsent_from_ = meta.index() + 1;
  stable_ = meta.index();
}

const pb::ClusterConfig& RaftLog::config() const {
  return configs_.empty() ? snapshot_.config() : configs_.back().second;
}

uint64_t RaftLog::config_index() const {
  return configs_.empty() ? snapshot_.index() : configs_.back().first;
}

const pb::ClusterConfig& RaftLog::ConfigAt(uint64_t index) const {
  for (auto it = configs_.rbegin(); it != configs_.rend(); ++it) {
    if (it->first <= index) return it->second;
  }
  return snapshot_.config();
}

void RaftLog::TakeUnsent(std::vector<pb::Entry>* out) {
  for (uint64_t i = std::max(unsent_from_, first_index()); i <= last_index(); ++i) {
    out->push_back(At(i));
  }
  unsent_from_ = last_index() + 1;
}

void RaftLog::MarkStable(uint64_t index, uint64_t term) {
  if (index > stable_ && MatchTerm(index, term)) stable_ = index;
}

}  // namespace mesh::core::raft

// core/raft/raft_log: the in-memory Raft log of one node — the snapshot it starts from, the
// entries after it, which of them are not yet handed to the driver for persisting, which are
// known durable, and the history of configurations in the log (a configuration takes effect
// when appended, and is undone when its entry is truncated).
//
// Invariants (the caller, core/raft/raft.cc, validates input before calling in):
//   entries are contiguous from snapshot.index + 1; terms never decrease along the log and
//   are >= snapshot.term; every CONFIG entry has a parsed configuration in the history.
// Cost: Term, At, MatchTerm are O(1); FindConflictByTerm is O(log n) (terms are sorted).
//
// Threading: not thread-safe; owned by one Raft object.
#ifndef LOCKMESH_CORE_RAFT_RAFT_LOG_H_
#define LOCKMESH_CORE_RAFT_RAFT_LOG_H_

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "raft.pb.h"

namespace mesh::core::raft {

class RaftLog {
 public:
  /// An empty log with no snapshot and an empty configuration.
  RaftLog();

  /// Replaces everything with `snapshot` followed by `entries` (which the caller checked),
  /// all considered durable. CONFIG entries must carry parsed configurations in `configs`
  /// (index, config) pairs, ascending.
  void Reset(const pb::SnapshotMeta& snapshot, std::vector<pb::Entry> entries,
             std::vector<std::pair<uint64_t, pb::ClusterConfig>> configs);

  uint64_t first_index() const { return snapshot_.index() + 1; }
  uint64_t last_index() const { return snapshot_.index() + entries_.size(); }
  uint64_t last_term() const {
    return entries_.empty() ? snapshot_.term() : entries_.back().term();
  }
  const pb::SnapshotMeta& snapshot() const { return snapshot_; }

  /// Term of `index` if it is the snapshot's index or in the log; false otherwise.
  bool Term(uint64_t index, uint64_t* term) const;
  /// Term of `index`, 0 if unknown.
  uint64_t TermOrZero(uint64_t index) const;
  /// True if the log holds (index, term) (index 0 with term 0 always matches).
  bool MatchTerm(uint64_t index, uint64_t term) const;
  /// The entry at `index`; requires first_index() <= index <= last_index().
  const pb::Entry& At(uint64_t index) const { return entries_[index - first_index()]; }

  /// True if a log ending at (last_index, last_term) is at least as up to date as this one.
  bool IsUpToDate(uint64_t last_index, uint64_t last_term) const;

  /// The largest index <= `index` whose term is <= `term`, with its term. If no entry in the
  /// log qualifies, the snapshot's index and 0 (its term may be larger; the caller probes
  /// there). Used for fast conflict backtracking in both directions.
  std::pair<uint64_t, uint64_t> FindConflictByTerm(uint64_t index, uint64_t term) const;

  /// Appends one entry at last_index() + 1 (a leader's own entry). `config` must be the parsed
  /// configuration for a CONFIG entry, nullptr otherwise.
  void Append(pb::Entry entry, const pb::ClusterConfig* config);

  /// Removes every entry with index >= `index` (index > snapshot index): conflict repair.
  /// Configurations of removed entries are forgotten.
  void TruncateFrom(uint64_t index);

  /// Drops entries <= `index` (snapshot index < index <= last_index()) and makes `meta`
  /// (whose index is `index`) the snapshot. Keeps the configuration in effect at `index`.
  void CompactTo(const pb::SnapshotMeta& meta);

  /// Replaces the whole log by the snapshot `meta` (snapshot install).
  void Restore(const pb::SnapshotMeta& meta);

  /// The configuration in effect: of the last CONFIG entry in the log, else the snapshot's.
  const pb::ClusterConfig& config() const;
  /// Index of the entry that carries config() (the snapshot index if it came from there).
  uint64_t config_index() const;
  /// The configuration in effect at `index` (snapshot index <= index <= last_index()).
  const pb::ClusterConfig& ConfigAt(uint64_t index) const;

  /// Entries handed to the driver for persisting end at unsent_from() - 1.
  uint64_t unsent_from() const { return unsent_from_; }
  /// Appends entries [unsent_from(), last_index()] to `out` and marks them handed out.
  void TakeUnsent(std::vector<pb::Entry>* out);
  /// Highest index known durable (Advance), never above last_index().
  uint64_t stable_index() const { return stable_; }
  /// The driver persisted entries through `index` with `term` at `index`: raises the
  /// durable index if the log still holds (index, term).
  void MarkStable(uint64_t index, uint64_t term);

 private:
  pb::SnapshotMeta snapshot_;
  std::deque<pb::Entry> entries_;
  // Configurations of CONFIG entries in the log, ascending by index; the snapshot's
  // configuration is snapshot_.config().
  std::deque<std::pair<uint64_t, pb::ClusterConfig>> configs_;
  uint64_t unsent_from_ = 1;
  uint64_t stable_ = 0;
};

}  // namespace mesh::core::raft

#endif  // LOCKMESH_CORE_RAFT_RAFT_LOG_H_

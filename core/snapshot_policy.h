// core/snapshot_policy: when a node snapshots its lock table and compacts its log, as a pure
// function, so that the rule is tested without a table or a disk (net/node/command_log.cc counts
// the entries and bytes and runs the snapshot).
//
// A snapshot costs the whole table (built, written, and sent to every member that needs
// it); the log it replaces costs what was applied since the last one. Taken every fixed
// number of entries, a table that grows to N locks is snapshotted N / every times at a
// growing size: O(N^2) work. Measured by the log's volume against the last snapshot's size,
// the work is amortised: each snapshot is paid for by at least as many log bytes.
//
//  P1 `every` == 0: never.
//  P2 Not before `every` + `stagger` entries were applied since the last snapshot (the floor,
//     the `--snapshot-every` flag; `stagger` spreads members over different indexes).
//  P3 Nor before the log bytes applied since the last snapshot reach `log_ratio` times the
//     last snapshot's size, or times the table's size now if it shrank since: that size
//     scaled by held_now / held_at_last_snapshot (0 or an unknown size: P2 alone). A table
//     that stays small under churn snapshots at the floor; a growing one at geometrically
//     spaced indexes; one emptied by releases (whose entries are small) at the floor, so
//     that the log of the releases does not stay in memory.
//
// Threading: pure functions.
#ifndef LOCKMESH_CORE_SNAPSHOT_POLICY_H_
#define LOCKMESH_CORE_SNAPSHOT_POLICY_H_

#include <cstdint>
#include <string>

namespace mesh::core {

/// What the log holds since the last snapshot, and that snapshot's size.
struct SnapshotProgress {
  uint64_t entries_since = 0;          // entries applied since the last snapshot
  uint64_t log_bytes_since = 0;        // their payload bytes
  uint64_t last_snapshot_bytes = 0;    // 0: none yet, or its size is unknown
  uint64_t held_at_last_snapshot = 0;  // locks held in it
  uint64_t held_now = 0;               // locks held in the table now
};

/// The tuning of rules P1-P3.
struct SnapshotPolicyOptions {
  uint64_t every = 100000;  // P1, P2
  uint64_t stagger = 0;     // P2
  double log_ratio = 1.0;   // P3; 0 disables it
};

/// True when a snapshot is due (rules P1-P3).
bool SnapshotDue(const SnapshotPolicyOptions& options, const SnapshotProgress& progress);

/// A member's stagger for P2: up to half of `every`, by a hash of `node_id`, so that members
/// of one mesh do not all snapshot at one index and a quorum keeps answering while one
/// writes a big table. 0 for a standalone node.
uint64_t SnapshotStagger(uint64_t every, const std::string& node_id, bool standalone);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_SNAPSHOT_POLICY_H_

#include "core/snapshot_policy.h"

#include <functional>

namespace mesh::core {

bool SnapshotDue(const SnapshotPolicyOptions& options, const SnapshotProgress& progress) {
  if (options.every == 0) return false;                                        // P1
  if (progress.entries_since < options.every + options.stagger) return false;  // P2
  if (options.log_ratio <= 0 || progress.last_snapshot_bytes == 0) return true;
  double table_bytes = static_cast<double>(progress.last_snapshot_bytes);
  if (progress.held_now < progress.held_at_last_snapshot) {
    table_bytes = table_bytes * static_cast<double>(progress.held_now) /
                  static_cast<double>(progress.held_at_last_snapshot);
  }
  return static_cast<double>(progress.log_bytes_since) >= options.log_ratio * table_bytes;  // P3
}

uint64_t SnapshotStagger(uint64_t every, const std::string& node_id, bool standalone) {
  if (standalone) return 0;
  return every / 2 * (std::hash<std::string>()(node_id) % 1000) / 1000;
}

}  // namespace mesh::core

// core/storage/disk_full_policy: what a node does when its disk is full (docs/design.md §8).
//
// A write refused for want of space (core::IsNoSpace: ENOSPC, EDQUOT) changes nothing that
// was durable (core/storage/log_store.h), so the node need not stop. The policy, decided
// here so that the simulator can run it and net/node/command_log.cc only executes it:
//   * A persist (log append, hard state, snapshot install or compaction) that fails for want
//     of space makes the node "full". Any other write or sync failure is fatal: the file's
//     state is unknown and the node stops, as before.
//   * While full, the driver keeps every batch it could not persist, in order, and does not
//     advance Raft past them: nothing is acknowledged that is not durable
//     (core/raft/persist_queue.h holds them, with this policy, for the node and the simulator). Raft goes on
//     (heartbeats, elections, committed entries from a quorum of others are applied); a
//     batch whose messages must wait for its sync (votes, a follower's acknowledgements)
//     waits, so a full follower neither votes nor acknowledges.
//   * It retries the held batches with exponential backoff (first_retry_us doubling up to
//     max_retry_us); the first retry that persists them ends the full state by itself.
//   * While full, new lock requests (Acquire) are refused with Unavailable "disk full: ..."
//     (the client's answer), while commands that only end or free something (Release,
//     Cancel, CloseSession, ExpireNode) and the small bookkeeping a connection needs to be
//     served at all (OpenSession, ClaimClientIds: `lockmesh status` and `locks` open a
//     session) are taken and wait, in memory, for the space to return.
//   * The driver reports the change to full and back once each (the node logs it and shows
//     it in `lockmesh status`), never per request.
//
// Threading: a plain value, used by one thread (the node's loop).
#ifndef LOCKMESH_CORE_STORAGE_DISK_FULL_POLICY_H_
#define LOCKMESH_CORE_STORAGE_DISK_FULL_POLICY_H_

#include <cstdint>
#include <string>

#include "lockmesh.pb.h"
#include "mesh/status.h"

namespace mesh::core {

/// Retry timing for DiskFullPolicy, in microseconds.
struct DiskFullOptions {
  uint64_t first_retry_us = 50'000;
  uint64_t max_retry_us = 1'000'000;
};

class DiskFullPolicy {
 public:
  /// What a failed persist means.
  enum class Verdict {
    kFatal,       // not for want of space: stop the node
    kBecameFull,  // for want of space, and the node was not full: report it (once)
    kStillFull,   // for want of space again (a retry failed): hold on, say nothing
  };

  explicit DiskFullPolicy(DiskFullOptions options = {}) : options_(options) {}

  /// A persist failed with `error` at `now_us`. For want of space the node is full from
  /// now on and the next retry is due one backoff step later.
  Verdict OnPersistFailed(const Status& error, uint64_t now_us);
  /// A persist succeeded. Returns true if that ends a full period (report it, once).
  bool OnPersisted();

  /// True while the node is full (between a failed persist and the next good one).
  bool full() const { return full_; }
  /// The no-space error that made the node full; ok when it is not full.
  const Status& why() const { return why_; }
  /// When the held batches should be persisted again (only meaningful while full).
  uint64_t next_retry_us() const { return next_retry_us_; }
  /// True if the node is full and a retry is due at `now_us`.
  bool RetryDue(uint64_t now_us) const { return full_ && now_us >= next_retry_us_; }
  /// Failed retries in this full period.
  uint64_t retries() const { return retries_; }

  /// Whether `command` may be proposed now: ok, or (full, and it is an Acquire)
  /// Unavailable "disk full: <why>; ..." for the client.
  Status Admit(const pb::Command& command) const;
  /// One line for `lockmesh status` and the node's log, "" when not full:
  /// "disk full: <why>; new locks are refused until space returns (retrying)".
  std::string Describe() const;

 private:
  DiskFullOptions options_;
  bool full_ = false;
  Status why_;
  uint64_t backoff_us_ = 0;
  uint64_t next_retry_us_ = 0;
  uint64_t retries_ = 0;
};

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_STORAGE_DISK_FULL_POLICY_H_

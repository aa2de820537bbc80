// core/raft/persist_queue: the batches a driver took from Raft and has not yet persisted, and
// what a failed persist does to them (docs/design.md §8). The rules are here, once; the node
// (net/node/command_log.cc) and the simulator (tests/sim/support/sim_driver.cc) execute them.
//
// A driver takes a Batch (core/raft/raft.h), sends its messages and applies its committed
// entries, then Push()es it here. When MayPersist, it Take()s every waiting batch, persists
// them in order (core/raft/raft_storage.h), and reports how many it persisted to Settle, which
// decides, with core::DiskFullPolicy:
//   * Raft is advanced through the last persisted batch, never past it: a batch that was not
//     persisted is never acknowledged, nor any taken after it.
//   * A persist refused for want of space (core::IsNoSpace) makes the disk full. The batches
//     not persisted are held, in order, ahead of every batch pushed since: persisting again
//     is idempotent (raft_storage.h: entries appended again over themselves, the hard state
//     set again, a snapshot saved again), so each held batch is persisted whole at the retry.
//   * While full, nothing is persisted until the policy's retry is due (exponential backoff);
//     then everything waiting is. The first retry that persists everything waiting, touching
//     the disk, ends the full state.
//   * Any other failure is fatal: the driver stops the node (the batches are dropped).
//
// No I/O: the driver persists, and passes the time in (this node's clock, microseconds).
// Threading: a plain value, used by one thread (the node's loop).
#ifndef LOCKMESH_CORE_RAFT_PERSIST_QUEUE_H_
#define LOCKMESH_CORE_RAFT_PERSIST_QUEUE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <vector>

#include "core/raft/raft.h"
#include "core/storage/disk_full_policy.h"
#include "mesh/status.h"

namespace mesh::core::raft {

class PersistQueue {
 public:
  /// What Settle decided, for the driver to report.
  enum class Outcome {
    kPersisted,      // all persisted, Raft advanced through the last
    kSpaceReturned,  // as kPersisted, and that ended a full period: report it, once
    kBecameFull,     // refused for want of space, the disk was not full: report it, once
    kStillFull,      // refused for want of space again (a retry failed): say nothing
    kFatal,          // failed otherwise: stop the node
  };
  /// next_retry_us() when no retry is pending.
  static constexpr uint64_t kNoRetry = std::numeric_limits<uint64_t>::max();

  explicit PersistQueue(DiskFullOptions options = {}) : disk_(options) {}

  /// A batch taken from Raft (its messages sent, its committed entries applied): it is
  /// persisted after every batch already waiting or held.
  void Push(Batch batch) { waiting_.push_back(std::move(batch)); }
  /// True if no batch waits (none taken since the last Take, none held).
  bool empty() const { return waiting_.empty(); }
  /// Batches waiting, held ones included.
  size_t size() const { return waiting_.size(); }
  /// True if the driver may Take and persist what waits at `now_us` (when it has no persist
  /// in flight): the disk is not full, or its retry is due. False: the held batches wait,
  /// and so does every batch taken since; the driver goes on taking batches meanwhile.
  bool MayPersist(uint64_t now_us) const { return !disk_.full() || disk_.RetryDue(now_us); }
  /// True while the disk is full: the next persist is a retry. A driver runs it in its loop,
  /// batch by batch, so that what persists before space runs out again is advanced (an
  /// off-loop group sync fails whole), and so that it takes no thread for a disk that has
  /// no room.
  bool retrying() const { return disk_.full(); }
  /// Every waiting batch, in the order to persist (held ones first); the queue is empty after.
  std::vector<Batch> Take();
  /// The driver persisted `batches` (from Take, in order) through `persisted` of them (all:
  /// batches.size()); if fewer, the next one failed with `error` (a driver that persists
  /// them in one call passes 0: none is known durable). Calls `advance` once, with the last
  /// persisted batch, if any (the driver passes it to Raft::Advance, which covers the ones
  /// before it), and holds the rest as the file comment says. `now_us` dates a failure.
  Outcome Settle(std::vector<Batch> batches, size_t persisted, const Status& error, uint64_t now_us,
                 const std::function<void(const Batch&)>& advance);
  /// When a retry is due (this node's clock), while full; kNoRetry otherwise.
  uint64_t next_retry_us() const { return disk_.full() ? disk_.next_retry_us() : kNoRetry; }
  /// The disk-full state: Admit and Describe for new commands and status.
  const DiskFullPolicy& disk() const { return disk_; }

 private:
  DiskFullPolicy disk_;
  std::deque<Batch> waiting_;  // taken, not persisted; held ones first
};

}  // namespace mesh::core::raft

#endif  // LOCKMESH_CORE_RAFT_PERSIST_QUEUE_H_

// core/raft/persist_queue: see persist_queue.h.
#include "core/raft/persist_queue.h"

#include <iterator>

#include "core/raft/raft_storage.h"

namespace mesh::core::raft {

std::vector<Batch> PersistQueue::Take() {
  std::vector<Batch> batches(std::make_move_iterator(waiting_.begin()),
                             std::make_move_iterator(waiting_.end()));
  waiting_.clear();
  return batches;
}

PersistQueue::Outcome PersistQueue::Settle(std::vector<Batch> batches, size_t persisted,
                                           const Status& error, uint64_t now_us,
                                           const std::function<void(const Batch&)>& advance) {
  if (persisted > batches.size()) persisted = batches.size();
  // What is durable is acknowledged, whatever happened to the batch after it.
  if (persisted > 0) advance(batches[persisted - 1]);
  if (persisted == batches.size()) {
    // Only a write ends a full period: a batch that was only buffered proves no room.
    bool wrote = false;
    for (const Batch& b : batches) wrote = wrote || NeedsDisk(b);
    return wrote && disk_.OnPersisted() ? Outcome::kSpaceReturned : Outcome::kPersisted;
  }
  const DiskFullPolicy::Verdict verdict = disk_.OnPersistFailed(error, now_us);
  if (verdict == DiskFullPolicy::Verdict::kFatal) return Outcome::kFatal;
  // The refused batch and those after it go back, in order, ahead of those taken since.
  waiting_.insert(waiting_.begin(),
                  std::make_move_iterator(batches.begin() + static_cast<ptrdiff_t>(persisted)),
                  std::make_move_iterator(batches.end()));
  return verdict == DiskFullPolicy::Verdict::kBecameFull ? Outcome::kBecameFull
                                                         : Outcome::kStillFull;
}

}  // namespace mesh::core::raft

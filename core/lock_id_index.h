// core/lock_id_index: a session's locks by id (LockTable's only index of locks by id), kept
// small because one session may hold a million locks.
//
// A std::map node costs 64 bytes of heap per lock; this is a vector of (id, value) pairs
// sorted by id, 16 bytes each. Lock ids are the indexes of the Acquire entries that asked
// for them, so a table applying its log adds them in ascending order (a push_back); a
// restore adds them in any order and sorts once (SortAfterBulkAdd). Erasing marks the entry
// dead instead of moving the tail (a session releasing 100,000 locks one by one would
// otherwise move gigabytes); the dead are swept out once they outnumber the live, so every
// operation is O(log n) amortised and the vector stays within four times the live entries
// (two for the dead, two for the capacity, which is given back on a sweep).
#ifndef LOCKMESH_CORE_LOCK_ID_INDEX_H_
#define LOCKMESH_CORE_LOCK_ID_INDEX_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mesh::core {

/// Maps lock ids to a non-null pointer the owner chooses (LockTable: the lock's queue). Not
/// thread-safe: one thread at a time, as the table it belongs to. Holds the pointers only;
/// what they point to is the owner's.
template <typename T>
class LockIdIndex {
 public:
  /// Adds `id` -> `value` (non-null). `id` must not be present (it may have been erased). O(1)
  /// amortised when `id` is above every id added since the last sweep (the log's order); otherwise
  /// O(n).
  void Add(uint64_t id, T* value) {
    if (entries_.empty() || entries_.back().id < id) {
      entries_.push_back({id, value});
    } else if (auto it = LowerBound(id); it != entries_.end() && it->id == id) {
      it->value = value;  // erased earlier, not yet swept
    } else {
      entries_.insert(it, Entry{id, value});
    }
    ++live_;
  }

  /// Adds `id` -> `value` in any order; until SortAfterBulkAdd, nothing else may be called.
  /// For a restore, which meets a session's locks in resource order, not id order.
  void BulkAdd(uint64_t id, T* value) {
    entries_.push_back({id, value});
    ++live_;
  }
  /// Sorts what BulkAdd added. Returns false (and leaves the index sorted) if an id was
  /// added twice.
  bool SortAfterBulkAdd() {
    std::sort(entries_.begin(), entries_.end(),
              [](const Entry& a, const Entry& b) { return a.id < b.id; });
    auto dup = std::adjacent_find(entries_.begin(), entries_.end(),
                                  [](const Entry& a, const Entry& b) { return a.id == b.id; });
    if (dup == entries_.end()) return true;
    entries_.erase(std::unique(entries_.begin(), entries_.end(),
                               [](const Entry& a, const Entry& b) { return a.id == b.id; }),
                   entries_.end());
    live_ = entries_.size();
    return false;
  }

  /// The value of `id`, or null if it is absent (never added, or erased).
  T* Find(uint64_t id) const {
    auto it = LowerBound(id);
    return it != entries_.end() && it->id == id ? it->value : nullptr;
  }

  /// Removes `id` if present; returns whether it was.
  bool Erase(uint64_t id) {
    auto it = LowerBound(id);
    if (it == entries_.end() || it->id != id || it->value == nullptr) return false;
    it->value = nullptr;
    --live_;
    if (live_ == 0) {
      std::vector<Entry>().swap(entries_);  // a session that released all: no heap kept
    } else if (entries_.size() - live_ > live_) {
      Sweep();
    }
    return true;
  }

  /// Number of ids present.
  size_t size() const { return live_; }
  bool empty() const { return live_ == 0; }

  /// The ids present, ascending.
  std::vector<uint64_t> Ids() const {
    std::vector<uint64_t> ids;
    ids.reserve(live_);
    for (const Entry& e : entries_) {
      if (e.value != nullptr) ids.push_back(e.id);
    }
    return ids;
  }

  /// Heap bytes held (for benchmarks and tests of the bound).
  size_t HeapBytes() const { return entries_.capacity() * sizeof(Entry); }

 private:
  struct Entry {
    uint64_t id;
    T* value;  // null: erased, awaiting a sweep
  };
  static bool IdBelow(const Entry& e, uint64_t id) { return e.id < id; }
  typename std::vector<Entry>::const_iterator LowerBound(uint64_t id) const {
    return std::lower_bound(entries_.begin(), entries_.end(), id, IdBelow);
  }
  typename std::vector<Entry>::iterator LowerBound(uint64_t id) {
    return std::lower_bound(entries_.begin(), entries_.end(), id, IdBelow);
  }
  // Drops the dead entries, and the capacity beyond twice what is left.
  void Sweep() {
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                  [](const Entry& e) { return e.value == nullptr; }),
                   entries_.end());
    if (entries_.capacity() > 2 * entries_.size()) entries_.shrink_to_fit();
  }

  std::vector<Entry> entries_;  // sorted by id (after SortAfterBulkAdd)
  size_t live_ = 0;             // entries with a value
};

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_LOCK_ID_INDEX_H_

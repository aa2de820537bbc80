// net/support/heap_trim: gives the memory that a large release of locks, or a snapshot, leaves free
// inside glibc's heap back to the kernel (README, "Memory per held lock").
//
// Measured without it: a node that held 100,000 locks (100-byte names) kept its high-water
// RSS after they were released, and a snapshot of that table (a protobuf message of every
// lock, freed once encoded) took the heap from 96 to 181 MB for good while 96 MB were in
// use. The freed blocks lie among blocks still in use (the log entries a compaction frees
// sit between the table's), and glibc gives back only the top of its heap on its own;
// malloc_trim(0) also returns the whole free pages inside it (madvise). It walks the heap,
// so it runs only when a check finds at least kMinFreeBytes, and a quarter of what is in
// use, lying free (mallinfo2); the heap is checked every kCheckMs while entries are applied
// and for kQuietChecks checks after the last one (a snapshot is taken at the end of a batch,
// and its memory is freed after it), and not at all on an idle node.
// Start() also fixes glibc's mmap threshold, so that a large transient buffer (a snapshot
// being encoded, written or sent) is its own mapping and goes back to the kernel when it is
// freed (glibc otherwise raises its threshold to up to 32 MiB once such a buffer is freed,
// and the next ones grow the heap instead).
//
// Threading: the node's loop thread only.
#ifndef LOCKMESH_NET_SUPPORT_HEAP_TRIM_H_
#define LOCKMESH_NET_SUPPORT_HEAP_TRIM_H_

#include <uv.h>

#include <cstdint>
#include <functional>

namespace mesh::net {

class HeapTrimmer {
 public:
  /// Time between checks, and how many checks follow the last applied entry.
  static constexpr uint64_t kCheckMs = 1000;
  static constexpr int kQuietChecks = 3;
  /// A check trims when at least this much, and a quarter of the bytes in use, is free.
  static constexpr uint64_t kMinFreeBytes = 8u << 20;
  /// The mmap threshold Start() sets: blocks of this size or more are mappings of their own.
  static constexpr int kMmapThresholdBytes = 256 * 1024;

  HeapTrimmer() = default;
  HeapTrimmer(const HeapTrimmer&) = delete;
  HeapTrimmer& operator=(const HeapTrimmer&) = delete;

  /// Initialises the timer on `loop` (unreferenced: it keeps no loop alive) and sets the
  /// mmap threshold. Call once, before the others.
  void Start(uv_loop_t* loop);
  /// After each applied entry (cheap: counts it, starts the checks if they were stopped).
  void NoteApplied();
  /// Closes the timer; `done` runs from its close callback. Only after Start.
  void Close(std::function<void()> done);

  /// Trims done so far.
  uint64_t trims() const { return trims_; }

 private:
  static void OnTimer(uv_timer_t* timer);

  uv_timer_t timer_;
  bool started_ = false;
  uint64_t applied_ = 0;  // entries applied since the last check
  int quiet_checks_ = 0;  // checks in a row with nothing applied before them
  uint64_t trims_ = 0;
  std::function<void()> close_done_;
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_SUPPORT_HEAP_TRIM_H_

// core/raft/progress: a leader's view of one follower's replication, as in etcd's raft
// tracker (Ongaro's thesis §3.5 and §10.2.3 — flow control).
//
// A follower is in one of three states:
//   probe:     the leader does not know where the logs agree; it sends one APPEND and waits
//              for its answer (or a heartbeat answer) before sending the next.
//   replicate: the logs agree through `match`; the leader streams APPENDs optimistically
//              (next advances at send time), at most max_inflight unacknowledged at once.
//   snapshot:  the follower needs entries the leader has compacted away; the snapshot is
//              streamed in chunks (at most a window of them unacknowledged) and no APPEND
//              is sent until it is installed (or the transfer stalls and is resumed).
//
// Threading: not thread-safe; owned by one Raft object.
#ifndef LOCKMESH_CORE_RAFT_PROGRESS_H_
#define LOCKMESH_CORE_RAFT_PROGRESS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace mesh::core::raft {

struct Snapshot;  // raft.h

/// The last indexes of unacknowledged APPENDs to one follower, oldest first (a ring).
class Inflights {
 public:
  explicit Inflights(size_t capacity) : buffer_(capacity) {}
  bool Full() const { return count_ == buffer_.size(); }
  size_t count() const { return count_; }
  /// Records an APPEND whose last entry is `last_index` (ascending). Requires !Full().
  void Add(uint64_t last_index);
  /// Forgets every APPEND whose last index is <= `index` (acknowledged).
  void FreeLE(uint64_t index);
  /// Forgets the oldest APPEND (presumed lost; lets one more go out).
  void FreeFirstOne();
  void Reset() { start_ = count_ = 0; }

 private:
  std::vector<uint64_t> buffer_;
  size_t start_ = 0;
  size_t count_ = 0;
};

class Progress {
 public:
  enum class State { kProbe, kReplicate, kSnapshot };

  Progress(uint64_t next, size_t max_inflight) : next(next), inflights(max_inflight) {}

  /// True if nothing may be sent now (probe waiting for an answer, replicate window full,
  /// snapshot in flight).
  bool IsPaused() const;

  /// An acknowledgement of everything through `index`: raises match (and next). False if
  /// it tells nothing new (a stale or duplicate answer).
  bool MaybeUpdate(uint64_t index);
  /// A rejection of the APPEND after `rejected`; `match_hint` is the highest index where
  /// the logs may agree. Moves next back. False if the rejection is stale.
  bool MaybeDecrTo(uint64_t rejected, uint64_t match_hint);

  void BecomeProbe();
  void BecomeReplicate();
  /// Starts a snapshot transfer of the snapshot at `snapshot_index` (the caller sets
  /// `snapshot`); forgets any earlier transfer.
  void BecomeSnapshot(uint64_t snapshot_index);

  /// An APPEND whose last entry is `last_index` went out (with entries, in replicate).
  void SentEntries(uint64_t last_index);

  const char* StateName() const;
  /// Forgets the transfer state (pending_snapshot, snapshot, offsets).
  void ClearSnapshot();

  uint64_t match = 0;
  uint64_t next = 1;
  State state = State::kProbe;
  /// probe: an APPEND is out and unanswered.
  bool probe_sent = false;
  /// snapshot: the index of the snapshot in flight and when a chunk of it last went out or
  /// was acknowledged (a transfer silent for election_timeout is resumed).
  uint64_t pending_snapshot = 0;
  uint64_t snapshot_sent_time = 0;
  /// snapshot: the snapshot being streamed (shared with the leader's own copy; it stays
  /// alive for the transfer if the leader compacts again), the offset of the next chunk to
  /// send and the bytes the follower acknowledged. Cleared when the state changes.
  std::shared_ptr<const Snapshot> snapshot;
  uint64_t snapshot_next = 0;
  uint64_t snapshot_acked = 0;
  /// snapshot: the end of the furthest chunk sent (an answer claiming more is nonsense).
  uint64_t snapshot_sent_end = 0;
  /// snapshot: when snapshot_next was last moved back (chunks sent before then that the
  /// follower refuses are the rest of an abandoned window, not a new gap).
  uint64_t snapshot_rewound_at = 0;
  Inflights inflights;
  /// Leader's clock at the last message received from this peer (check-quorum, status).
  uint64_t last_contact = 0;
  /// Latest send_time of this leader's own messages that the peer acknowledged (lease);
  /// meaningful only if lease_acked.
  uint64_t lease_ack = 0;
  bool lease_acked = false;
  /// Commit index last sent to the peer (to know when a commit-only update is due).
  uint64_t sent_commit = 0;
};

}  // namespace mesh::core::raft

#endif  // LOCKMESH_CORE_RAFT_PROGRESS_H_

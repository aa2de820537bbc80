// core/raft/progress: see progress.h.
#include "core/raft/progress.h"

#include <algorithm>

namespace mesh::core::raft {

void Inflights::Add(uint64_t last_index) {
  if (Full()) return;
  buffer_[(start_ + count_) % buffer_.size()] = last_index;
  ++count_;
}

void Inflights::FreeLE(uint64_t index) {
  while (count_ > 0 && buffer_[start_] <= index) {
    start_ = (start_ + 1) % buffer_.size();
    --count_;
  }
  if (count_ == 0) start_ = 0;
}

void Inflights::FreeFirstOne() {
  if (count_ == 0) return;
  start_ = (start_ + 1) % buffer_.size();
  --count_;
}

bool Progress::IsPaused() const {
  switch (state) {
    case State::kProbe:
      return probe_sent;
    case State::kReplicate:
      return inflights.Full();
    case State::kSnapshot:
      return true;
  }
  return true;
}

bool Progress::MaybeUpdate(uint64_t index) {
  bool updated = false;
  if (index > match) {
    match = index;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, index + 1);
  return updated;
}

bool Progress::MaybeDecrTo(uint64_t rejected, uint64_t match_hint) {
  if (state == State::kReplicate) {
    // Stale if the rejected APPEND was at or below what is already known to match.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // Probe (or snapshot): only the answer to the APPEND just sent counts.
  if (next == 0 || next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  probe_sent = false;
  return true;
}

void Progress::BecomeProbe() {
  if (state == State::kSnapshot) {
    next = std::max(match + 1, pending_snapshot + 1);
    ClearSnapshot();
  } else {
    next = match + 1;
  }
  state = State::kProbe;
  probe_sent = false;
  inflights.Reset();
}

void Progress::BecomeReplicate() {
  ClearSnapshot();
  state = State::kReplicate;
  next = match + 1;
  probe_sent = false;
  inflights.Reset();
}

void Progress::ClearSnapshot() {
  pending_snapshot = 0;
  snapshot.reset();
  snapshot_next = snapshot_acked = snapshot_sent_end = snapshot_rewound_at = 0;
}

void Progress::BecomeSnapshot(uint64_t snapshot_index) {
  ClearSnapshot();
  state = State::kSnapshot;
  pending_snapshot = snapshot_index;
  probe_sent = false;
  inflights.Reset();
}

void Progress::SentEntries(uint64_t last_index) {
  if (state == State::kReplicate) {
    next = last_index + 1;
    inflights.Add(last_index);
  } else if (state == State::kProbe) {
    probe_sent = true;
  }
}

const char* Progress::StateName() const {
  switch (state) {
    case State::kProbe:
      return "probe";
    case State::kReplicate:
      return "replicate";
    case State::kSnapshot:
      return "snapshot";
  }
  return "?";
}

}  // namespace mesh::core::raft

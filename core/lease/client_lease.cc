#include "core/lease/client_lease.h"

#include <cmath>
#include <iterator>

namespace mesh::core::lease {

ClientLease::ClientLease(const ClientLeaseOptions& options) : options_(options) {}

uint64_t ClientLease::MakeRequest(Time now) {
  const uint64_t seq = next_seq_++;
  sent_[seq] = now;
  while (sent_.size() > kMaxOutstanding) sent_.erase(sent_.begin());
  return seq;
}

Time ClientLease::LeaseEnd(Time sent, Time remaining_us) const {
  double drift = options_.max_drift;
  if (!(drift >= 0.0)) drift = 0.0;  // NaN or negative: the factor below must stay <= 1
  if (drift > 1.0) drift = 1.0;
  const double usable = static_cast<double>(remaining_us) * (1.0 - drift);
  // Round down: a lease may only ever be shorter than the argument allows.
  Time span = static_cast<Time>(std::floor(usable));
  if (span > remaining_us) span = remaining_us;  // rounding of huge values
  if (span <= options_.margin) return sent;      // a lease this short is no lease at all
  return sent + (span - options_.margin);
}

void ClientLease::OnReply(uint64_t seq, Time remaining_us) {
  auto it = sent_.find(seq);
  if (it == sent_.end()) return;
  const Time sent = it->second;
  // Requests sent before this one are answered before it on one connection: a reply to one
  // of them that comes later is stale, and forgetting it can only shorten the lease.
  sent_.erase(sent_.begin(), std::next(it));
  const Time end = LeaseEnd(sent, remaining_us);
  if (end > valid_until_) valid_until_ = end;
}

bool ClientLease::Lapsed(Time now) {
  // valid_until_ only grows, so each lease end lapses at most once.
  if (valid_until_ == 0 || now < valid_until_ || reported_end_ == valid_until_) return false;
  reported_end_ = valid_until_;
  return true;
}

Time ClientLease::NextDeadline() const {
  return valid_until_ == 0 || reported_end_ == valid_until_ ? UINT64_MAX : valid_until_;
}

}  // namespace mesh::core::lease

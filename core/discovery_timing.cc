// core/discovery_timing: see discovery_timing.h.
#include "core/discovery_timing.h"

#include <algorithm>

namespace mesh::core {

uint64_t BeaconSchedule::NextDelayMs(double unit) {
  if (burst_left_ > 1) {
    --burst_left_;
    return std::max<uint64_t>(1, timing_.burst_interval_ms);
  }
  burst_left_ = 0;
  const double u = std::clamp(unit, 0.0, 1.0);
  const auto delay =
      static_cast<uint64_t>(static_cast<double>(timing_.period_ms) * (0.8 + 0.4 * u));
  return std::max<uint64_t>(1, delay);
}

std::optional<uint64_t> BeaconSchedule::SoonDueMs(uint64_t now_ms,
                                                  std::optional<uint64_t> armed_due_ms) const {
  const uint64_t due = sent_ ? std::max(now_ms, last_sent_ms_ + timing_.burst_interval_ms) : now_ms;
  if (armed_due_ms && *armed_due_ms <= due) return std::nullopt;
  return due;
}

uint64_t PeerExpiryMs(const DiscoveryTiming& timing) {
  return timing.expire_ms > 0 ? timing.expire_ms : 3 * timing.period_ms + timing.burst_interval_ms;
}

bool KeepCurrentPath(const DiscoveryTiming& timing, uint64_t now_ms, uint64_t current_seen_ms) {
  return now_ms - current_seen_ms <= timing.period_ms * 3 / 2;
}

bool ReportDuplicateNow(uint64_t now_ms, std::optional<uint64_t> last_reported_ms) {
  return !last_reported_ms || now_ms - *last_reported_ms >= kDuplicateReportEveryMs;
}

bool ForgetDuplicateReport(const DiscoveryTiming& timing, uint64_t now_ms,
                           uint64_t last_reported_ms) {
  return now_ms - last_reported_ms > PeerExpiryMs(timing) + kDuplicateReportEveryMs;
}

}  // namespace mesh::core

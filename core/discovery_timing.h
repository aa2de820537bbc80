// core/discovery_timing: when a node sends its discovery beacons and how long what it heard
// stays true (docs/design.md §1 and §5), as pure code, so that the rules are tested without sockets
// (net/discovery/discovery.cc draws the random number, reads the clock and runs the timers).
//
//  T1 At start, `burst_count` beacons `burst_interval_ms` apart (the first at once), then one
//     every period_ms * (0.8 + 0.4 * unit), `unit` uniform in [0, 1): +-20 % jitter, so that
//     nodes started together do not beacon in lock step. Never less than 1 ms.
//  T2 An extra beacon "soon" (a newcomer heard, our content changed) goes out as soon as
//     allowed: at once if none was sent, else burst_interval_ms after the last one, and not
//     at all if the beacon timer already fires no later than that (at most one beacon per
//     burst interval however many peers appear).
//  T3 A peer unheard for expire_ms is expired; expire_ms 0 means 3 * period_ms +
//     burst_interval_ms (three beacons lost in a row, and the slack of a burst).
//  T4 A peer heard with the same content on another path (the other family, another
//     interface) keeps its current path while that path was heard within 1.5 * period_ms,
//     so that its address does not flap.
//  T5 A duplicate of our node id is reported at most once per kDuplicateReportEveryMs per
//     offending instance; an instance's report is forgotten once it is quiet for the expiry
//     (T3) plus that interval.
//
// Threading: a plain value, used by one thread (the discovery loop's).
#ifndef LOCKMESH_CORE_DISCOVERY_TIMING_H_
#define LOCKMESH_CORE_DISCOVERY_TIMING_H_

#include <cstdint>
#include <optional>

namespace mesh::core {

/// The timing options (net/discovery/discovery.h DiscoveryOptions), in ms; validated there
/// (intervals >= 1).
struct DiscoveryTiming {
  int burst_count = 5;
  uint64_t burst_interval_ms = 200;
  uint64_t period_ms = 2000;
  uint64_t expire_ms = 0;  // 0: T3's default
};

/// T5: a duplicate id is reported again only after this long.
inline constexpr uint64_t kDuplicateReportEveryMs = 10000;

/// Rules T1 and T2 for one node's beacons: when the next one is due.
class BeaconSchedule {
 public:
  explicit BeaconSchedule(DiscoveryTiming timing = {}) : timing_(timing) {}

  /// Discovery starts: the burst begins (its first beacon is sent at once).
  void Start() { burst_left_ = timing_.burst_count; }
  /// A beacon was sent at `now_ms`.
  void OnSent(uint64_t now_ms) {
    last_sent_ms_ = now_ms;
    sent_ = true;
  }
  /// T1: the delay from a beacon just sent to the next one. `unit` is the caller's uniform
  /// draw in [0, 1) (values outside are clamped); unused during the burst.
  uint64_t NextDelayMs(double unit);
  /// T2: when (ms, the caller's clock) an extra beacon asked for at `now_ms` is due, or
  /// nullopt if the beacon timer, armed for `armed_due_ms` (nullopt: not armed), already
  /// fires by then.
  std::optional<uint64_t> SoonDueMs(uint64_t now_ms, std::optional<uint64_t> armed_due_ms) const;

 private:
  DiscoveryTiming timing_;
  int burst_left_ = 0;
  uint64_t last_sent_ms_ = 0;
  bool sent_ = false;
};

/// T3: how long a peer may stay unheard before it is expired.
uint64_t PeerExpiryMs(const DiscoveryTiming& timing);
/// T4: true if a peer whose current path was last heard at `current_seen_ms` keeps it at
/// `now_ms` (the same content came over another path).
bool KeepCurrentPath(const DiscoveryTiming& timing, uint64_t now_ms, uint64_t current_seen_ms);
/// T5: true if a duplicate of our id, last reported at `last_reported_ms` (nullopt: never),
/// is reported again at `now_ms`.
bool ReportDuplicateNow(uint64_t now_ms, std::optional<uint64_t> last_reported_ms);
/// T5: true if the report of a duplicate last reported at `last_reported_ms` is forgotten at
/// `now_ms`.
bool ForgetDuplicateReport(const DiscoveryTiming& timing, uint64_t now_ms,
                           uint64_t last_reported_ms);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_DISCOVERY_TIMING_H_

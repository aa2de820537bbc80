// core/link_health: when a peer link that carries nothing is half-open and must be closed
// (then redialled), by the driver's loop clock — a rule with no I/O, so that unit tests and
// the simulator run the one net/node/cluster.cc runs.
//
// Every link carries gossip both ways every gossip interval (net/node/cluster.h), so silence on a
// link means an outage TCP has not noticed yet (its retransmission backoff can keep quiet for
// many seconds):
//  L1 A link not heard from (no message of any kind) for more than
//     max(4 gossip intervals, 2 election timeouts) is closed, once: one close, one log line
//     (the transport then redials a dialled address; the peer redials us otherwise).
//  L2 A tick that comes more than 4 tick intervals after the previous one means this node's own
//     loop was held up (CPU starvation, a long callback): its peers' frames may be waiting unread
//     in the sockets (timers run before the loop reads them), so the gap, less one tick, is
//     credited to every link as if heard then (never past now). Without it, a node that stalled
//     for two seconds dropped every link the moment it woke up.
//
// Threading: not thread-safe; one owner (the driver's loop thread). Times are the caller's.
#ifndef LOCKMESH_CORE_LINK_HEALTH_H_
#define LOCKMESH_CORE_LINK_HEALTH_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mesh::core {

/// Plain data: the driver's cadence.
struct LinkWatchOptions {
  /// How often the driver calls Tick, ms.
  uint64_t tick_ms = 50;
  /// How often each side of a link gossips, ms.
  uint64_t gossip_interval_ms = 500;
  /// Raft's election timeout, microseconds (as ClusterOptions and RaftOptions have it).
  uint64_t election_timeout_us = 1'000'000;
};

/// The silence after which a link is closed (L1), ms: max(4 * gossip_interval_ms,
/// 2 * election_timeout_us / 1000).
uint64_t SilentLinkLimitMs(const LinkWatchOptions& options);

/// The time credited to every link at a tick at `now_ms` after one at `last_tick_ms`
/// (0 = none yet): L2's stall, 0 if the tick was on time.
uint64_t StallCreditMs(const LinkWatchOptions& options, uint64_t last_tick_ms, uint64_t now_ms);

/// Tracks the links of one node by peer id: when each was last heard, and whether it was closed
/// as silent already.
class LinkWatch {
 public:
  explicit LinkWatch(const LinkWatchOptions& options) : options_(options) {}

  /// A link to `id` came up at `now_ms` (a new link replaces the old one's record).
  void Up(const std::string& id, uint64_t now_ms);
  /// A message from `id` arrived at `now_ms` (ignored if no link to `id` is up).
  void Heard(const std::string& id, uint64_t now_ms);
  /// The link to `id` is gone.
  void Down(const std::string& id);
  /// The driver's tick at `now_ms`: credits a stall (L2), then returns the links to close now
  /// (L1), each once per link, in id order.
  std::vector<std::string> Tick(uint64_t now_ms);

  /// SilentLinkLimitMs(options).
  uint64_t silent_limit_ms() const { return SilentLinkLimitMs(options_); }

 private:
  struct Link {
    uint64_t last_heard_ms = 0;
    bool closed = false;  // reported by Tick already
  };
  LinkWatchOptions options_;
  uint64_t last_tick_ms_ = 0;
  std::map<std::string, Link> links_;
};

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_LINK_HEALTH_H_
